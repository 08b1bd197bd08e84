//! The versions of the WIT contract the host speaks, and what differs
//! between them. A component is linked against every version the host has
//! shipped; the one whose exports it has is the one it speaks. Imports of
//! every version run the same host code (`host`), written once: the macro
//! below only converts the generated types. Exports are called through
//! [`Exports`], which turns each version's manifest and event into the
//! host's own.
//!
//! From 0.3.0 a component may also export `admission` (the
//! `plugin-with-admission` world, which includes `plugin`): the imports are
//! the same, so the host links one set, and tells the two worlds apart by
//! whether the component has that export.

use wasmtime::component::HasSelf;
use wasmtime::{Store, component::Linker};

use super::{
    Event, Manifest,
    admission::{AdmissionRequest, Verdict},
    bindings::{v0_1, v0_2, v0_3},
    host::{ActionRequest, Code, GuestError, HostState, Level},
    manifest::ManifestError,
};
use crate::{action::Severity, vocabulary::ObjectRef};

/// The contract versions the host speaks, newest first.
pub(crate) const VERSIONS: [&str; 3] = ["0.3.0", "0.2.0", "0.1.0"];

/// The name of the admission export of 0.3.0.
pub(crate) const ADMISSION_EXPORT: &str = "informant:plugin/admission@0.3.0";

/// Implement the imports of one contract version for [`HostState`].
macro_rules! imports {
    ($module:ident, $v:ident) => {
        mod $module {
            use super::*;
            use crate::plugin::bindings::$v::informant::plugin::{actions, cache, log, types};

            impl From<types::ObjectRef> for ObjectRef {
                fn from(r: types::ObjectRef) -> Self {
                    Self {
                        api_version: r.api_version,
                        kind: r.kind,
                        namespace: r.namespace.filter(|n| !n.is_empty()),
                        name: r.name,
                    }
                }
            }

            impl From<ObjectRef> for types::ObjectRef {
                fn from(r: ObjectRef) -> Self {
                    Self {
                        api_version: r.api_version,
                        kind: r.kind,
                        namespace: r.namespace,
                        name: r.name,
                    }
                }
            }

            impl From<GuestError> for types::Error {
                fn from(e: GuestError) -> Self {
                    let code = match e.code {
                        Code::Invalid => types::ErrorCode::Invalid,
                        Code::Forbidden => types::ErrorCode::Forbidden,
                        Code::LimitExceeded => types::ErrorCode::LimitExceeded,
                        Code::NotFound => types::ErrorCode::NotFound,
                        Code::Failed => types::ErrorCode::Failed,
                    };
                    Self {
                        code,
                        message: e.message,
                    }
                }
            }

            impl From<types::Error> for GuestError {
                fn from(e: types::Error) -> Self {
                    let code = match e.code {
                        types::ErrorCode::Invalid => Code::Invalid,
                        types::ErrorCode::Forbidden => Code::Forbidden,
                        types::ErrorCode::LimitExceeded => Code::LimitExceeded,
                        types::ErrorCode::NotFound => Code::NotFound,
                        types::ErrorCode::Failed => Code::Failed,
                    };
                    Self {
                        code,
                        message: e.message,
                    }
                }
            }

            fn refs(refs: Vec<ObjectRef>) -> Vec<types::ObjectRef> {
                refs.into_iter().map(Into::into).collect()
            }

            impl types::Host for HostState {}

            impl cache::Host for HostState {
                fn get(&mut self, r: types::ObjectRef) -> Result<Option<String>, types::Error> {
                    Ok(HostState::get(self, r.into())?)
                }

                fn list(
                    &mut self,
                    api_version: String,
                    kind: String,
                    namespace: Option<String>,
                    label_selector: Option<String>,
                ) -> Result<Vec<String>, types::Error> {
                    Ok(HostState::list(
                        self,
                        &api_version,
                        &kind,
                        namespace.as_deref(),
                        label_selector.as_deref(),
                    )?)
                }

                fn list_keys(
                    &mut self,
                    api_version: String,
                    kind: String,
                    namespace: Option<String>,
                    label_selector: Option<String>,
                ) -> Result<Vec<types::ObjectRef>, types::Error> {
                    Ok(refs(HostState::list_keys(
                        self,
                        &api_version,
                        &kind,
                        namespace.as_deref(),
                        label_selector.as_deref(),
                    )?))
                }

                fn by_index(
                    &mut self,
                    index: String,
                    value: String,
                ) -> Result<Vec<String>, types::Error> {
                    Ok(HostState::by_index(self, &index, &value)?)
                }

                fn by_index_keys(
                    &mut self,
                    index: String,
                    value: String,
                ) -> Result<Vec<types::ObjectRef>, types::Error> {
                    Ok(refs(HostState::by_index_keys(self, &index, &value)?))
                }

                fn index_values(&mut self, index: String) -> Result<Vec<String>, types::Error> {
                    Ok(HostState::index_values(self, &index)?)
                }
            }

            impl actions::Host for HostState {
                fn enqueue(&mut self, action: actions::Action) -> Result<(), types::Error> {
                    use actions::Action as A;
                    let request = match action {
                        A::Apply(a) => ActionRequest::Apply {
                            object: a.object,
                            force: a.force,
                        },
                        A::Create(json) => ActionRequest::Create(json),
                        A::MergePatch(p) => ActionRequest::MergePatch {
                            target: p.target.into(),
                            patch: p.patch,
                        },
                        A::JsonPatch(p) => ActionRequest::JsonPatch {
                            target: p.target.into(),
                            patch: p.patch,
                        },
                        A::PatchStatus(p) => ActionRequest::PatchStatus {
                            target: p.target.into(),
                            patch: p.patch,
                        },
                        A::Delete(d) => ActionRequest::Delete {
                            target: d.target.into(),
                            uid: d.uid,
                            resource_version: d.resource_version,
                        },
                        A::EmitEvent(e) => ActionRequest::EmitEvent {
                            regarding: e.regarding.into(),
                            severity: match e.severity {
                                actions::EventSeverity::Normal => Severity::Normal,
                                actions::EventSeverity::Warning => Severity::Warning,
                            },
                            reason: e.reason,
                            message: e.message,
                            action: e.action,
                        },
                        A::RequeueAfter(r) => ActionRequest::RequeueAfter {
                            target: r.target.into(),
                            delay_ms: r.delay_ms,
                        },
                    };
                    Ok(HostState::enqueue(self, request)?)
                }
            }

            impl log::Host for HostState {
                fn log(&mut self, level: log::Level, message: String) {
                    let level = match level {
                        log::Level::Trace => Level::Trace,
                        log::Level::Debug => Level::Debug,
                        log::Level::Info => Level::Info,
                        log::Level::Warn => Level::Warn,
                        log::Level::Error => Level::Error,
                    };
                    HostState::log(self, level, message);
                }
            }
        }
    };
}

imports!(imports_v0_1, v0_1);
imports!(imports_v0_2, v0_2);
imports!(imports_v0_3, v0_3);

/// The `state` interface, new in 0.3.0: the store's host functions.
mod state_v0_3 {
    use super::*;
    use crate::plugin::bindings::v0_3::informant::plugin::{state, types};

    impl state::Host for HostState {
        fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, types::Error> {
            Ok(HostState::state_get(self, &key)?)
        }

        fn get_versioned(&mut self, key: String) -> Result<Option<state::Versioned>, types::Error> {
            Ok(HostState::state_get_versioned(self, &key)?
                .map(|(value, version)| state::Versioned { value, version }))
        }

        fn set(
            &mut self,
            key: String,
            value: Vec<u8>,
            ttl_ms: Option<u64>,
        ) -> Result<(), types::Error> {
            Ok(HostState::state_set(self, key, value, ttl_ms)?)
        }

        fn delete(&mut self, key: String) -> Result<(), types::Error> {
            Ok(HostState::state_delete(self, key)?)
        }

        fn exists(&mut self, key: String) -> Result<bool, types::Error> {
            Ok(HostState::state_exists(self, &key)?)
        }

        fn compare_and_swap(
            &mut self,
            key: String,
            expected: Option<String>,
            value: Vec<u8>,
            ttl_ms: Option<u64>,
        ) -> Result<bool, types::Error> {
            Ok(HostState::state_compare_and_swap(
                self, key, expected, value, ttl_ms,
            )?)
        }

        fn increment(&mut self, key: String, delta: i64) -> Result<i64, types::Error> {
            Ok(HostState::state_increment(self, key, delta)?)
        }

        fn get_many(&mut self, keys: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, types::Error> {
            Ok(HostState::state_get_many(self, &keys)?)
        }

        fn set_many(
            &mut self,
            entries: Vec<(String, Vec<u8>)>,
            ttl_ms: Option<u64>,
        ) -> Result<(), types::Error> {
            Ok(HostState::state_set_many(self, entries, ttl_ms)?)
        }

        fn delete_many(&mut self, keys: Vec<String>) -> Result<(), types::Error> {
            Ok(HostState::state_delete_many(self, keys)?)
        }

        fn list_keys(
            &mut self,
            prefix: String,
            cursor: Option<String>,
            limit: u32,
        ) -> Result<state::KeyPage, types::Error> {
            let (keys, cursor) = HostState::state_list_keys(self, &prefix, cursor, limit)?;
            Ok(state::KeyPage { keys, cursor })
        }
    }
}

/// Add every version's imports to `linker`. The `plugin-with-admission`
/// world imports exactly what `plugin` does, so these serve both.
///
/// # Errors
/// If wasmtime refuses a definition (a bug in the bindings, not a user error).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_3::Plugin::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    v0_2::Plugin::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    v0_1::Plugin::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

/// The `admission` export's functions, found by name at load time; their
/// types are checked when an instance is created (the first, `init`'s,
/// is created at load time too).
type AdmissionIndices = v0_3::with_admission::exports::informant::plugin::admission::GuestIndices;

/// One instance's `admission` export.
pub(crate) type Admission = v0_3::with_admission::exports::informant::plugin::admission::Guest;

/// A component's exports, checked at load time, ready to instantiate.
#[derive(Clone)]
pub(crate) enum ExportsPre {
    /// Built against 0.3.0, for the `plugin` world or, with `admission`,
    /// the `plugin-with-admission` world.
    V0_3 {
        pre: wasmtime::component::InstancePre<HostState>,
        plugin: v0_3::PluginIndices,
        admission: Option<AdmissionIndices>,
    },
    /// Built against 0.2.0.
    V0_2(v0_2::PluginPre<HostState>),
    /// Built against 0.1.0.
    V0_1(v0_1::PluginPre<HostState>),
}

impl ExportsPre {
    /// The exports of a linked component, in the newest version it has.
    ///
    /// # Errors
    /// What is missing or mistyped, against the newest version.
    pub(crate) fn new(pre: wasmtime::component::InstancePre<HostState>) -> wasmtime::Result<Self> {
        let newest = match v0_3::PluginIndices::new(&pre) {
            Ok(plugin) => {
                let admission = AdmissionIndices::new(&pre).ok();
                return Ok(Self::V0_3 {
                    pre,
                    plugin,
                    admission,
                });
            }
            Err(e) => e,
        };
        if let Ok(p) = v0_2::PluginPre::new(pre.clone()) {
            return Ok(Self::V0_2(p));
        }
        v0_1::PluginPre::new(pre)
            .map(Self::V0_1)
            .map_err(|_| newest)
    }

    /// The contract version the component speaks.
    pub(crate) fn version(&self) -> &'static str {
        match self {
            Self::V0_3 { .. } => VERSIONS[0],
            Self::V0_2(_) => VERSIONS[1],
            Self::V0_1(_) => VERSIONS[2],
        }
    }

    /// Whether the component exports `admission` (it targets the
    /// `plugin-with-admission` world).
    pub(crate) fn has_admission(&self) -> bool {
        matches!(
            self,
            Self::V0_3 {
                admission: Some(_),
                ..
            }
        )
    }

    /// A new instance's exports.
    ///
    /// # Errors
    /// If instantiation fails (a start function trapped, memory refused),
    /// or an export has the wrong type.
    pub(crate) fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Exports> {
        Ok(match self {
            Self::V0_3 {
                pre,
                plugin,
                admission,
            } => {
                let instance = pre.instantiate(&mut *store)?;
                let exports = plugin.load(&mut *store, &instance)?;
                let admission = admission
                    .as_ref()
                    .map(|a| a.load(&mut *store, &instance))
                    .transpose()?;
                Exports::V0_3 {
                    plugin: exports,
                    admission,
                }
            }
            Self::V0_2(p) => Exports::V0_2(p.instantiate(&mut *store)?),
            Self::V0_1(p) => Exports::V0_1(p.instantiate(&mut *store)?),
        })
    }
}

/// One instance's exports.
pub(crate) enum Exports {
    /// Built against 0.3.0.
    V0_3 {
        plugin: v0_3::Plugin,
        admission: Option<Admission>,
    },
    /// Built against 0.2.0.
    V0_2(v0_2::Plugin),
    /// Built against 0.1.0.
    V0_1(v0_1::Plugin),
}

impl Exports {
    /// The `admission` export of a 0.3.0 instance of the
    /// `plugin-with-admission` world.
    pub(crate) fn admission(&self) -> Option<&Admission> {
        match self {
            Self::V0_3 { admission, .. } => admission.as_ref(),
            _ => None,
        }
    }
}

/// A manifest as a plugin returned it, before the host validates it.
pub(crate) type RawManifest = v0_3::informant::plugin::types::Manifest;

/// An older version's manifest as a 0.3.0 one: the fields it lacks are
/// none (each is an option).
fn upgrade<M: serde::Serialize>(old: M, version: &str) -> Result<RawManifest, ManifestError> {
    serde_json::to_value(old)
        .and_then(serde_json::from_value)
        .map_err(|e| ManifestError {
            field: format!("({version} manifest)"),
            reason: e.to_string(),
        })
}

impl Exports {
    /// Call `describe`; a 0.1.0 or 0.2.0 manifest reads as a 0.3.0 one
    /// without the fields it lacks.
    ///
    /// # Errors
    /// A trap or an interrupt.
    pub(crate) fn describe(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Result<Manifest, ManifestError>> {
        let raw = match self {
            Self::V0_3 { plugin, .. } => Ok(plugin.call_describe(store)?),
            Self::V0_2(p) => upgrade(p.call_describe(store)?, VERSIONS[1]),
            Self::V0_1(p) => upgrade(p.call_describe(store)?, VERSIONS[2]),
        };
        Ok(raw.and_then(Manifest::try_from))
    }

    /// Call `init` with the settings.
    ///
    /// # Errors
    /// A trap or an interrupt; the plugin's own error is the inner result.
    pub(crate) fn init(
        &self,
        store: &mut Store<HostState>,
        settings: &str,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        Ok(match self {
            Self::V0_3 { plugin, .. } => plugin.call_init(store, settings)?.map_err(Into::into),
            Self::V0_2(p) => p.call_init(store, settings)?.map_err(Into::into),
            Self::V0_1(p) => p.call_init(store, settings)?.map_err(Into::into),
        })
    }

    /// Call the `admission` export's `review` with one request, and read
    /// its answer as a [`Verdict`].
    ///
    /// # Errors
    /// A trap or an interrupt; the plugin's own error is the inner result,
    /// as is asking a component that has no `admission` export (its
    /// manifest declares no webhook, so the host never does).
    pub(crate) fn admit(
        &self,
        store: &mut Store<HostState>,
        request: &AdmissionRequest,
    ) -> wasmtime::Result<Result<Verdict, GuestError>> {
        use super::admission::RequestOperation as Op;
        use v0_3::with_admission::exports::informant::plugin::admission as wit;
        let Some(admission) = self.admission() else {
            let version = match self {
                Self::V0_3 { .. } => VERSIONS[0],
                Self::V0_2(_) => VERSIONS[1],
                Self::V0_1(_) => VERSIONS[2],
            };
            return Ok(Err(GuestError {
                code: Code::Failed,
                message: format!(
                    "built against informant:plugin@{version} without the admission export"
                ),
            }));
        };
        let user = &request.user_info;
        let groups: Vec<&str> = user.groups.iter().map(String::as_str).collect();
        let extra_values: Vec<Vec<&str>> = user
            .extra
            .iter()
            .map(|(_, values)| values.iter().map(String::as_str).collect())
            .collect();
        let extra: Vec<(&str, &[&str])> = user
            .extra
            .iter()
            .zip(&extra_values)
            .map(|((key, _), values)| (key.as_str(), values.as_slice()))
            .collect();
        let r = wit::Request {
            uid: &request.uid,
            operation: match request.operation {
                Op::Create => v0_3::informant::plugin::types::Operation::Create,
                Op::Update => v0_3::informant::plugin::types::Operation::Update,
                Op::Delete => v0_3::informant::plugin::types::Operation::Delete,
                Op::Connect => v0_3::informant::plugin::types::Operation::Connect,
            },
            kind: wit::GroupVersionKind {
                group: &request.kind.group,
                version: &request.kind.version,
                kind: &request.kind.kind,
            },
            resource: wit::GroupVersionResource {
                group: &request.resource.group,
                version: &request.resource.version,
                resource: &request.resource.resource,
            },
            sub_resource: request.sub_resource.as_deref(),
            namespace: request.namespace.as_deref(),
            name: (!request.name.is_empty()).then_some(request.name.as_str()),
            user_info: wit::UserInfo {
                username: &user.username,
                uid: &user.uid,
                groups: &groups,
                extra: &extra,
            },
            object: request.object.as_deref(),
            old_object: request.old_object.as_deref(),
            dry_run: request.dry_run,
            options: request.options.as_deref(),
        };
        Ok(admission
            .call_review(store, r)?
            .map(|response| {
                let mut verdict = Verdict {
                    allowed: true,
                    warnings: response.warnings,
                    ..Verdict::default()
                };
                match response.decision {
                    wit::Decision::Allow => {}
                    wit::Decision::Patch(patch) => verdict.patch = Some(patch),
                    wit::Decision::Deny(d) => {
                        verdict.allowed = false;
                        verdict.message = Some(d.message);
                        verdict.code = Some(d.code);
                    }
                }
                verdict
            })
            .map_err(Into::into))
    }

    /// Call `handle` with one event.
    ///
    /// # Errors
    /// A trap or an interrupt; the plugin's own error is the inner result.
    pub(crate) fn handle(
        &self,
        store: &mut Store<HostState>,
        event: &Event,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        use crate::vocabulary::EventType as E;
        // Borrowed from the cache's copy: the only copy of the object is the
        // one into the guest's memory.
        let object = event.object.as_ref().map_or("", |o| o.json());
        let old_object = event.old_object.as_ref().map(|o| o.json());
        Ok(match self {
            Self::V0_3 { plugin, .. } => {
                use v0_3::informant::plugin::types as t;
                let e = t::Event {
                    event_type: match event.event_type {
                        E::Added => t::EventType::Added,
                        E::Modified => t::EventType::Modified,
                        E::Deleted => t::EventType::Deleted,
                        E::Synced => t::EventType::Synced,
                        E::Resync => t::EventType::Resync,
                    },
                    subscription: event.subscription,
                    initial: event.initial,
                    final_state_unknown: event.final_state_unknown,
                    object,
                    old_object,
                    merged: event.merged,
                };
                plugin.call_handle(store, e)?.map_err(Into::into)
            }
            Self::V0_2(p) => {
                use v0_2::informant::plugin::types as t;
                let e = t::Event {
                    event_type: match event.event_type {
                        E::Added => t::EventType::Added,
                        E::Modified => t::EventType::Modified,
                        E::Deleted => t::EventType::Deleted,
                        E::Synced => t::EventType::Synced,
                        E::Resync => t::EventType::Resync,
                    },
                    subscription: event.subscription,
                    initial: event.initial,
                    final_state_unknown: event.final_state_unknown,
                    object,
                    old_object,
                    merged: event.merged,
                };
                p.call_handle(store, e)?.map_err(Into::into)
            }
            Self::V0_1(p) => {
                use v0_1::informant::plugin::types as t;
                let e = t::Event {
                    event_type: match event.event_type {
                        E::Added => t::EventType::Added,
                        E::Modified => t::EventType::Modified,
                        E::Deleted => t::EventType::Deleted,
                        E::Synced => t::EventType::Synced,
                        E::Resync => t::EventType::Resync,
                    },
                    subscription: event.subscription,
                    initial: event.initial,
                    final_state_unknown: event.final_state_unknown,
                    object,
                    old_object,
                };
                p.call_handle(store, e)?.map_err(Into::into)
            }
        })
    }
}
