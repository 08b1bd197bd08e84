//! reader: a fixture for delivery at scale. It subscribes to
//! `bench.informant.dev/v1` Widgets with the SDK's defaults (every-event),
//! reads one field of each (`spec.size`), counts what it saw in `self`, and
//! on `synced` logs `reader <name> synced: <n> objects in this instance`.
//!
//! The `latest` build ("reader-latest") subscribes with latest-state; the
//! `single` build ("reader-single") asks for one instance at a time, so its
//! count is the plugin's, not one instance's.
//!
//! With the setting `{"checkCacheIn": "NAMESPACE"}` (meant for `single`,
//! whose one instance sees every event), each initial `added` of a Widget in
//! that namespace also lists the namespace's Widgets from the cache and
//! counts those it has not been handed yet, and whether the object itself
//! is there; `synced` reports both, and the most and fewest Widgets a list
//! showed: `reader <name> cache: N not handed yet, M own objects missing,
//! lists showed A to B`.

use std::collections::BTreeSet;

use informant_sdk::{cache, info, prelude::*};

#[cfg(feature = "latest")]
const NAME: &str = "reader-latest";
#[cfg(all(feature = "single", not(feature = "latest")))]
const NAME: &str = "reader-single";
#[cfg(not(any(feature = "latest", feature = "single")))]
const NAME: &str = "reader";

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Config {
    check_cache_in: Option<String>,
}

struct Reader {
    seen: u64,
    merged: u64,
    check_cache_in: Option<String>,
    /// Widgets handed as `added` there, by name.
    handed: BTreeSet<String>,
    not_handed: u64,
    own_missing: u64,
    fewest: Option<usize>,
    most: usize,
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

    fn init(settings: Settings) -> Result<Self> {
        let config: Config = settings.parse()?;
        Ok(Reader {
            seen: 0,
            merged: 0,
            check_cache_in: config.check_cache_in,
            handed: BTreeSet::new(),
            not_handed: 0,
            own_missing: 0,
            fewest: None,
            most: 0,
        })
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        if event.event_type == EventType::Synced {
            info!(
                "reader {NAME} synced: {} objects in this instance, {} merged",
                self.seen, self.merged
            );
            if self.check_cache_in.is_some() {
                info!(
                    "reader {NAME} cache: {} not handed yet, {} own objects missing, lists showed {} to {}",
                    self.not_handed,
                    self.own_missing,
                    self.fewest.unwrap_or(0),
                    self.most
                );
            }
            return Ok(());
        }
        if event.initial
            && event.event_type == EventType::Added
            && self.check_cache_in.is_some()
            && event.object.namespace() == self.check_cache_in.as_deref()
        {
            self.check(&event.object)?;
        }
        // One field of each object, as a plugin deciding something would.
        let _size = event.object.get("spec.size").and_then(Value::as_u64);
        self.seen += 1;
        self.merged += u64::from(event.merged);
        Ok(())
    }
}

impl Reader {
    /// What the cache shows of this object's namespace, against what this
    /// instance has been handed.
    fn check(&mut self, object: &Object) -> Result<()> {
        self.handed.insert(object.name().to_string());
        let listed = cache::list_keys("bench.informant.dev/v1", "Widget", object.namespace(), None)?;
        let mut own = false;
        for r in &listed {
            own |= r.name == object.name();
            if !self.handed.contains(&r.name) {
                self.not_handed += 1;
            }
        }
        self.own_missing += u64::from(!own);
        self.fewest = Some(self.fewest.map_or(listed.len(), |f| f.min(listed.len())));
        self.most = self.most.max(listed.len());
        Ok(())
    }
}

informant_sdk::export_plugin!(Reader);
