//! The versions of the WIT contract the host speaks, and what differs
//! between them. A component is linked against every version the host has
//! shipped; the one whose exports it has is the one it speaks. Imports of
//! every version run the same host code (`host`), written once: the macro
//! below only converts the generated types. Exports are called through
//! [`Exports`], which turns each version's manifest and event into the
//! host's own.

use wasmtime::component::HasSelf;
use wasmtime::{Store, component::Linker};

use super::{
    Event, Manifest,
    admission::{AdmissionRequest, Verdict},
    bindings::{v0_1, v0_2},
    host::{ActionRequest, Code, GuestError, HostState, Level},
    manifest::ManifestError,
};
use crate::{action::Severity, vocabulary::ObjectRef};

/// The contract versions the host speaks, newest first.
pub(crate) const VERSIONS: [&str; 2] = ["0.2.0", "0.1.0"];

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

/// Add every version's imports to `linker`.
///
/// # Errors
/// If wasmtime refuses a definition (a bug in the bindings, not a user error).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_2::Plugin::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    v0_1::Plugin::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

/// A component's exports, checked at load time, ready to instantiate.
#[derive(Clone)]
pub(crate) enum ExportsPre {
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
        match v0_2::PluginPre::new(pre.clone()) {
            Ok(p) => Ok(Self::V0_2(p)),
            Err(newest) => v0_1::PluginPre::new(pre)
                .map(Self::V0_1)
                .map_err(|_| newest),
        }
    }

    /// The contract version the component speaks.
    pub(crate) fn version(&self) -> &'static str {
        match self {
            Self::V0_2(_) => VERSIONS[0],
            Self::V0_1(_) => VERSIONS[1],
        }
    }

    /// A new instance's exports.
    ///
    /// # Errors
    /// If instantiation fails (a start function trapped, memory refused).
    pub(crate) fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Exports> {
        Ok(match self {
            Self::V0_2(p) => Exports::V0_2(p.instantiate(&mut *store)?),
            Self::V0_1(p) => Exports::V0_1(p.instantiate(&mut *store)?),
        })
    }
}

/// One instance's exports.
pub(crate) enum Exports {
    /// Built against 0.2.0.
    V0_2(v0_2::Plugin),
    /// Built against 0.1.0.
    V0_1(v0_1::Plugin),
}

/// A manifest as a plugin returned it, before the host validates it.
pub(crate) type RawManifest = v0_2::informant::plugin::types::Manifest;

impl Exports {
    /// Call `describe`; a 0.1.0 manifest reads as a 0.2.0 one without the
    /// fields 0.1.0 lacks.
    ///
    /// # Errors
    /// A trap or an interrupt.
    pub(crate) fn describe(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Result<Manifest, ManifestError>> {
        let raw: RawManifest = match self {
            Self::V0_2(p) => p.call_describe(store)?,
            Self::V0_1(p) => {
                let old = p.call_describe(store)?;
                let upgraded = serde_json::to_value(old).and_then(serde_json::from_value);
                match upgraded {
                    Ok(m) => m,
                    Err(e) => {
                        return Ok(Err(ManifestError {
                            field: "(0.1.0 manifest)".into(),
                            reason: e.to_string(),
                        }));
                    }
                }
            }
        };
        Ok(Manifest::try_from(raw))
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
            Self::V0_2(p) => p.call_init(store, settings)?.map_err(Into::into),
            Self::V0_1(p) => p.call_init(store, settings)?.map_err(Into::into),
        })
    }

    /// Call `admit` with one admission request.
    ///
    /// # Errors
    /// A trap or an interrupt; the plugin's own error is the inner result.
    /// Plugins built against 0.2.0 or 0.1.0 have no admission export (and
    /// their manifests no webhook, so the host never asks).
    pub(crate) fn admit(
        &self,
        _store: &mut Store<HostState>,
        _request: &AdmissionRequest,
    ) -> wasmtime::Result<Result<Verdict, GuestError>> {
        let version = match self {
            Self::V0_2(_) => VERSIONS[0],
            Self::V0_1(_) => VERSIONS[1],
        };
        Ok(Err(GuestError {
            code: Code::Failed,
            message: format!(
                "built against informant:plugin@{version}, which has no admission interface"
            ),
        }))
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
        let object = event
            .object
            .as_ref()
            .map(|o| o.json().to_string())
            .unwrap_or_default();
        let old_object = event.old_object.as_ref().map(|o| o.json().to_string());
        Ok(match self {
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
                p.call_handle(store, &e)?.map_err(Into::into)
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
                p.call_handle(store, &e)?.map_err(Into::into)
            }
        })
    }
}
