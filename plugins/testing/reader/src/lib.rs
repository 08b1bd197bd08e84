//! reader: a fixture for delivery at scale. It subscribes to
//! `bench.informant.dev/v1` Widgets with the SDK's defaults (every-event),
//! reads one field of each (`spec.size`), counts what it saw in `self`, and
//! on `synced` logs `reader <name> synced: <n> objects in this instance`.
//!
//! The `latest` build ("reader-latest") subscribes with latest-state; the
//! `single` build ("reader-single") asks for one instance at a time, so its
//! count is the plugin's, not one instance's. The `labels` build
//! ("reader-labels", one instance too) declares that it reads labels only,
//! reads them instead of `spec.size`, and on `synced` also logs how many
//! objects it was handed and read through the cache projected and whole:
//! `reader reader-labels kept: handed P projected, W whole; cache P2
//! projected, W2 whole`.
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

#[cfg(feature = "labels")]
const NAME: &str = "reader-labels";
#[cfg(all(feature = "latest", not(feature = "labels")))]
const NAME: &str = "reader-latest";
#[cfg(all(feature = "single", not(any(feature = "latest", feature = "labels"))))]
const NAME: &str = "reader-single";
#[cfg(not(any(feature = "latest", feature = "single", feature = "labels")))]
const NAME: &str = "reader";

/// The annotation of an object the host keeps only some fields of.
#[cfg(feature = "labels")]
const PROJECTION: &str = "informant.dev/projection";

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
    /// Objects handed and read back projected and whole: [handed, cache].
    #[cfg(feature = "labels")]
    kept: [(u64, u64); 2],
}

impl Plugin for Reader {
    fn describe() -> Manifest {
        let widgets = Subscription::to("bench.informant.dev/v1", "Widget");
        #[cfg(feature = "latest")]
        let widgets = widgets.latest_state();
        #[cfg(feature = "labels")]
        let widgets = widgets.fields(["metadata.labels"]);
        let manifest = Manifest::new(NAME, "0.1.0").subscribe(widgets);
        #[cfg(any(feature = "single", feature = "labels"))]
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
            #[cfg(feature = "labels")]
            kept: [(0, 0); 2],
        })
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        if event.event_type == EventType::Synced {
            info!(
                "reader {NAME} synced: {} objects in this instance, {} merged",
                self.seen, self.merged
            );
            #[cfg(feature = "labels")]
            info!(
                "reader {NAME} kept: handed {} projected, {} whole; cache {} projected, {} whole",
                self.kept[0].0, self.kept[0].1, self.kept[1].0, self.kept[1].1
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
        #[cfg(not(feature = "labels"))]
        let _size = event.object.get("spec.size").and_then(Value::as_u64);
        #[cfg(feature = "labels")]
        if event.is_upsert() {
            let _tier = event.object.label("tier");
            self.count_kept(0, &event.object);
            if let Some(cached) = cache::get(&event.object.object_ref())? {
                self.count_kept(1, &cached);
            }
        }
        self.seen += 1;
        self.merged += u64::from(event.merged);
        Ok(())
    }
}

impl Reader {
    /// Count `object` as projected (only labels and metadata, and saying
    /// so) or whole, among what was handed (`at` 0) or read back (1).
    #[cfg(feature = "labels")]
    fn count_kept(&mut self, at: usize, object: &Object) {
        let projected = object.annotation(PROJECTION) == Some("metadata.labels")
            && object.get("spec").is_none();
        if projected {
            self.kept[at].0 += 1;
        } else {
            self.kept[at].1 += 1;
        }
    }

    /// What the cache shows of this object's namespace, against what this
    /// instance has been handed.
    fn check(&mut self, object: &Object) -> Result<()> {
        self.handed.insert(object.name().to_string());
        let listed =
            cache::list_keys("bench.informant.dev/v1", "Widget", object.namespace(), None)?;
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
