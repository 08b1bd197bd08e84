//! Write [Informant](https://github.com/informant-dev/informant) plugins in Rust.
//!
//! A plugin is a type that implements [`Plugin`], exported with
//! [`export_plugin!`], built with `cargo build --target wasm32-wasip2`:
//!
//! ```no_run
//! use informant_sdk::{prelude::*, action, info};
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn describe() -> Manifest {
//!         Manifest::new("hello", "0.1.0")
//!             .subscribe(Subscription::to("v1", "ConfigMap").events([EventType::Added]))
//!             .writes("v1", "ConfigMap", [Verb::Patch])
//!     }
//!
//!     fn init(_settings: Settings) -> Result<Self> {
//!         Ok(Hello)
//!     }
//!
//!     fn handle(&mut self, event: Event) -> Result<()> {
//!         let cm = &event.object;
//!         if cm.label("greeted").is_none() {
//!             info!("greeting {}", cm.object_ref());
//!             action::merge_patch(&cm.object_ref(), json!({"metadata": {"labels": {"greeted": "yes"}}})).enqueue()?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! informant_sdk::export_plugin!(Hello);
//! ```
//!
//! Actions, and writes to the plugin's [`state`] store, are committed only if
//! `handle` returns `Ok`.

pub mod action;
pub mod admission;
pub mod cache;
mod error;
mod event;
mod head;
pub mod log;
mod manifest;
pub mod state;

#[cfg(feature = "k8s-openapi")]
pub use k8s_openapi;
pub use serde_json::{self, Value, json};

pub use error::{Error, ErrorCode, Result};
pub use event::{Event, EventType, Object, ObjectRef};
pub use manifest::{Delivery, Index, Manifest, StateTier, Subscription, Verb};

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::{
        Delivery, Error, ErrorCode, Event, EventType, Index, Manifest, Object, ObjectRef, Plugin,
        Result, Settings, StateTier, Subscription, Value, Verb, json,
    };
}

/// The bindings generated from the WIT contract. Not part of the SDK's
/// stable API: use the types above.
#[doc(hidden)]
pub mod bindings {
    // The generated glue uses `unsafe` to move values across the boundary.
    #![allow(unsafe_code, missing_docs, clippy::too_many_arguments)]
    wit_bindgen::generate!({
        path: "wit",
        world: "plugin",
        ownership: Borrowing { duplicate_if_necessary: true },
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "informant_sdk::bindings",
    });

    /// The `plugin-with-admission` world: the same imports, and the
    /// `admission` export.
    pub mod with_admission {
        #![allow(unsafe_code, missing_docs, clippy::too_many_arguments)]
        wit_bindgen::generate!({
            path: "wit",
            world: "plugin-with-admission",
            ownership: Borrowing { duplicate_if_necessary: true },
            with: {
                "informant:plugin/types@0.3.0": crate::bindings::informant::plugin::types,
                "informant:plugin/cache@0.3.0": crate::bindings::informant::plugin::cache,
                "informant:plugin/actions@0.3.0": crate::bindings::informant::plugin::actions,
                "informant:plugin/log@0.3.0": crate::bindings::informant::plugin::log,
                "informant:plugin/state@0.3.0": crate::bindings::informant::plugin::state,
            },
            pub_export_macro: true,
            export_macro_name: "__export_plugin_with_admission_world",
            default_bindings_module: "informant_sdk::bindings::with_admission",
        });
    }
}

/// The plugin's settings: the JSON given to the host (`null` when none).
#[derive(Debug, Clone, Default)]
pub struct Settings(pub Value);

impl Settings {
    /// Deserialize the settings into your own type; `null` becomes the
    /// type's `Default`.
    ///
    /// # Errors
    /// An [`ErrorCode::Invalid`] error naming what did not deserialize.
    pub fn parse<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T> {
        if self.0.is_null() {
            return Ok(T::default());
        }
        serde_json::from_value(self.0.clone())
            .map_err(|e| Error::new(ErrorCode::Invalid, format!("invalid settings: {e}")))
    }

    /// The raw JSON value.
    pub fn value(&self) -> &Value {
        &self.0
    }
}

/// What a plugin implements.
pub trait Plugin: Sized + 'static {
    /// What the plugin subscribes to, indexes, reads and writes. Called once
    /// per loaded version; must not depend on settings.
    fn describe() -> Manifest;

    /// Build the plugin's state from its settings. Called on every fresh
    /// instance before its first event.
    ///
    /// # Errors
    /// Refuse bad settings: the host then refuses to load the plugin.
    fn init(settings: Settings) -> Result<Self>;

    /// Handle one event.
    ///
    /// # Errors
    /// Returning an error discards the actions enqueued during the call.
    fn handle(&mut self, event: Event) -> Result<()>;
}

#[doc(hidden)]
pub mod __export {
    use std::{any::Any, cell::RefCell, marker::PhantomData};

    use crate::{Error, ErrorCode, Event, Plugin, Settings, bindings};

    thread_local! {
        static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    /// Adapts a [`Plugin`] to the generated `Guest` trait.
    pub struct Exporter<P>(PhantomData<P>);

    /// The `plugin-with-admission` world's functions: the same as the
    /// `plugin` world's.
    impl<P: Plugin> bindings::with_admission::Guest for Exporter<P> {
        fn describe() -> bindings::informant::plugin::types::Manifest {
            <Self as bindings::Guest>::describe()
        }

        fn init(settings: String) -> Result<(), bindings::informant::plugin::types::Error> {
            <Self as bindings::Guest>::init(settings)
        }

        fn handle(
            event: bindings::informant::plugin::types::Event,
        ) -> Result<(), bindings::informant::plugin::types::Error> {
            <Self as bindings::Guest>::handle(event)
        }
    }

    impl<P: crate::admission::Admission>
        bindings::with_admission::exports::informant::plugin::admission::Guest for Exporter<P>
    {
        fn review(
            request: bindings::with_admission::exports::informant::plugin::admission::Request,
        ) -> Result<
            bindings::with_admission::exports::informant::plugin::admission::Response,
            bindings::informant::plugin::types::Error,
        > {
            let request = crate::admission::Request::from_wit(request);
            STATE.with(|s| {
                let mut state = s.borrow_mut();
                let plugin = state
                    .as_mut()
                    .and_then(|p| p.downcast_mut::<P>())
                    .ok_or_else(|| Error::new(ErrorCode::Failed, "review called before init"))?;
                plugin
                    .review(request)
                    .map(crate::admission::Response::into_wit)
                    .map_err(Into::into)
            })
        }
    }

    impl<P: Plugin> bindings::Guest for Exporter<P> {
        fn describe() -> bindings::informant::plugin::types::Manifest {
            P::describe().into_wit()
        }

        fn init(settings: String) -> Result<(), bindings::informant::plugin::types::Error> {
            // A panic traps the call; the host reports this line as its error.
            std::panic::set_hook(Box::new(|info| {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                match info.location() {
                    Some(at) => eprintln!(
                        "panicked at {}:{}:{}: {message}",
                        at.file(),
                        at.line(),
                        at.column()
                    ),
                    None => eprintln!("panicked: {message}"),
                }
            }));
            let value = serde_json::from_str(&settings).map_err(|e| {
                Error::new(ErrorCode::Invalid, format!("settings are not JSON: {e}"))
            })?;
            let plugin = P::init(Settings(value))?;
            STATE.with(|s| *s.borrow_mut() = Some(Box::new(plugin)));
            Ok(())
        }

        fn handle(
            event: bindings::informant::plugin::types::Event,
        ) -> Result<(), bindings::informant::plugin::types::Error> {
            let event = Event::from_wit(event)?;
            STATE.with(|s| {
                let mut state = s.borrow_mut();
                let plugin = state
                    .as_mut()
                    .and_then(|p| p.downcast_mut::<P>())
                    .ok_or_else(|| Error::new(ErrorCode::Failed, "handle called before init"))?;
                plugin.handle(event).map_err(Into::into)
            })
        }
    }
}

/// Export a [`Plugin`] implementation as the component's `plugin` world;
/// `export_plugin!(MyPlugin, admission)` for one that also implements
/// [`admission::Admission`] (the `plugin-with-admission` world).
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        type __InformantExporter = $crate::__export::Exporter<$plugin>;
        $crate::bindings::__export_plugin_world!(__InformantExporter with_types_in $crate::bindings);
    };
    ($plugin:ty, admission) => {
        type __InformantExporter = $crate::__export::Exporter<$plugin>;
        $crate::bindings::with_admission::__export_plugin_with_admission_world!(__InformantExporter with_types_in $crate::bindings::with_admission);
    };
}
