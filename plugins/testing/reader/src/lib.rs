//! reader: a fixture for delivery at scale. It subscribes to
//! `bench.informant.dev/v1` Widgets with the SDK's defaults (every-event),
//! reads one field of each (`spec.size`), counts what it saw in `self`, and
//! on `synced` logs `reader <name> synced: <n> objects in this instance`.
//!
//! The `latest` build ("reader-latest") subscribes with latest-state; the
//! `single` build ("reader-single") asks for one instance at a time, so its
//! count is the plugin's, not one instance's.

use informant_sdk::{info, prelude::*};

#[cfg(feature = "latest")]
const NAME: &str = "reader-latest";
#[cfg(all(feature = "single", not(feature = "latest")))]
const NAME: &str = "reader-single";
#[cfg(not(any(feature = "latest", feature = "single")))]
const NAME: &str = "reader";

struct Reader {
    seen: u64,
    merged: u64,
}

impl Plugin for Reader {
    fn describe() -> Manifest {
        let widgets = Subscription::to("bench.informant.dev/v1", "Widget");
        #[cfg(feature = "latest")]
        let widgets = widgets.latest_state();
        let manifest = Manifest::new(NAME, "0.1.0").subscribe(widgets);
        #[cfg(feature = "single")]
        let manifest = manifest.instances(1);
        manifest
    }

    fn init(_settings: Settings) -> Result<Self> {
        Ok(Reader { seen: 0, merged: 0 })
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        if event.event_type == EventType::Synced {
            info!(
                "reader {NAME} synced: {} objects in this instance, {} merged",
                self.seen, self.merged
            );
            return Ok(());
        }
        // One field of each object, as a plugin deciding something would.
        let _size = event.object.get("spec.size").and_then(Value::as_u64);
        self.seen += 1;
        self.merged += u64::from(event.merged);
        Ok(())
    }
}

informant_sdk::export_plugin!(Reader);
