//! Registration: one replica applies the `ValidatingWebhookConfiguration`
//! and `MutatingWebhookConfiguration` that send the API server's requests to
//! the plugins, with server-side apply, and keeps them in line with the
//! plugins in service: a plugin's webhook is added once its subscriptions
//! have synced, follows its reloads, and goes when it is unloaded (as the
//! only manager of the list, the host's apply removes what it no longer
//! lists; a kind with no webhook left is deleted). A new CA bundle (a
//! renewed certificate) is applied too.
//!
//! Which replica registers is behind one seam, [`Singleton`]: a watch of
//! "this replica does the work that must happen once". Leader election
//! feeds it today (`leader::Follower` is implemented for
//! `watch::Sender<bool>`); a sharded host would feed it from the Lease that
//! holds its singleton work. Without either, the one replica registers.
//!
//! Webhooks that point at a URL point at this process (`dev`, tests, a
//! host outside the cluster): they are removed when it stops, so nothing is
//! left calling a host that is gone. In a cluster they point at the Service
//! and stay, since the other replicas keep serving.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{
    Admission,
    configuration::{self, Client, FIELD_MANAGER, Target},
};

/// Whether this replica does the work that must happen once in the cluster
/// (registering webhooks): true while it does.
pub type Singleton = watch::Receiver<bool>;

/// A [`Singleton`] that is always this replica: a host without leader
/// election, alone by definition.
pub fn alone() -> Singleton {
    watch::channel(true).1
}

/// The first and the longest wait before a failed registration is tried again.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// What the registrar has done, for the admin API.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Whether this replica registers (it holds the singleton work).
    pub registering: bool,
    /// The webhooks it registered last, by name.
    pub registered: Vec<String>,
    /// When it last applied the configurations (RFC 3339).
    pub last_applied: Option<String>,
    /// Why the last attempt failed, if it did; it is retried with backoff.
    pub last_error: Option<String>,
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
#[error("{what} {name}: {source}")]
pub struct Error {
    /// What was done: applying or deleting which kind.
    what: &'static str,
    /// The configuration's name.
    name: String,
    /// The API server's answer.
    #[source]
    source: kube::Error,
}

/// The two configurations as they should be.
type Desired = (
    Option<ValidatingWebhookConfiguration>,
    Option<MutatingWebhookConfiguration>,
);

/// Keep the configurations in line with the plugins in service while this
/// replica holds `singleton`, until `stop`; then, for URL endpoints, remove
/// them.
pub async fn run(
    admission: Arc<Admission>,
    client: kube::Client,
    mut ca_bundle: watch::Receiver<Arc<Vec<u8>>>,
    mut singleton: Singleton,
    target: Client,
    own_namespace: String,
    stop: CancellationToken,
) {
    let mut changes = admission.dispatcher().changes();
    let name = admission.settings().configuration_name.clone();
    let mut applied: Option<Desired> = None;
    let mut backoff = BACKOFF.0;
    loop {
        let registering = *singleton.borrow_and_update();
        changes.borrow_and_update();
        let bundle = ca_bundle.borrow_and_update().clone();
        let mut retry = None;
        if registering {
            let (desired, names) = desired(&admission, &bundle, &target, &own_namespace);
            if applied.as_ref() != Some(&desired) {
                match apply(&client, &name, &desired).await {
                    Ok(()) => {
                        tracing::info!(configuration = %name, webhooks = ?names, "webhook configurations applied");
                        admission.set_registration(|s| {
                            s.registering = true;
                            s.registered = names;
                            s.last_applied = Some(jiff::Timestamp::now().to_string());
                            s.last_error = None;
                        });
                        applied = Some(desired);
                        backoff = BACKOFF.0;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "webhook configurations not applied; trying again");
                        admission.set_registration(|s| {
                            s.registering = true;
                            s.last_error = Some(e.to_string());
                        });
                        retry = Some(backoff);
                        backoff = (backoff * 2).min(BACKOFF.1);
                    }
                }
            }
        } else {
            // Another replica registers; if this one leads again, it applies
            // afresh.
            applied = None;
            admission.set_registration(|s| s.registering = false);
        }
        // A channel whose sender is gone never changes again (a generated
        // certificate is never renewed; a singleton nobody feeds any more
        // keeps its last word): it is no reason to stop.
        tokio::select! {
            () = stop.cancelled() => break,
            () = changed(&mut changes) => {},
            () = changed(&mut ca_bundle) => {},
            () = changed(&mut singleton) => {},
            () = sleep(retry) => {}
        }
    }
    if matches!(target, Client::Url(_)) && *singleton.borrow() && applied.is_some() {
        let removal = apply(&client, &name, &(None, None));
        match tokio::time::timeout(Duration::from_secs(5), removal).await {
            Ok(Ok(())) => {
                tracing::info!(configuration = %name, "webhook configurations removed: they pointed at this process")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "webhook configurations not removed on shutdown")
            }
            Err(_) => {
                tracing::warn!(configuration = %name, "webhook configurations not removed on shutdown: the API server did not answer within 5 s")
            }
        }
    }
}

/// The next change, or never if nothing can change any more.
async fn changed<T>(rx: &mut watch::Receiver<T>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn sleep(after: Option<Duration>) {
    match after {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The configurations for the plugins whose webhooks are ready, and the
/// webhooks' names.
fn desired(
    admission: &Admission,
    ca_bundle: &[u8],
    client: &Client,
    own_namespace: &str,
) -> (Desired, Vec<String>) {
    let settings = admission.settings();
    let webhooks: Vec<_> = admission
        .current()
        .into_iter()
        .filter(|c| c.ready)
        .map(|c| (c.plugin, c.webhook))
        .collect();
    let names = webhooks
        .iter()
        .map(|(p, _)| settings.webhook_name(p))
        .collect();
    let target = Target {
        settings,
        client: client.clone(),
        own_namespace,
        ca_bundle,
    };
    (configuration::configurations(&webhooks, &target), names)
}

/// Apply both configurations; delete a kind that has no webhook.
async fn apply(client: &kube::Client, name: &str, desired: &Desired) -> Result<(), Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let error = |what, source| Error {
        what,
        name: name.to_string(),
        source,
    };
    match &desired.0 {
        Some(v) => {
            validating
                .patch(name, &params, &Patch::Apply(v))
                .await
                .map_err(|e| error("applying ValidatingWebhookConfiguration", e))?;
        }
        None => delete(&validating, name)
            .await
            .map_err(|e| error("deleting ValidatingWebhookConfiguration", e))?,
    }
    match &desired.1 {
        Some(m) => {
            mutating
                .patch(name, &params, &Patch::Apply(m))
                .await
                .map_err(|e| error("applying MutatingWebhookConfiguration", e))?;
        }
        None => delete(&mutating, name)
            .await
            .map_err(|e| error("deleting MutatingWebhookConfiguration", e))?,
    }
    Ok(())
}

/// Delete `name`; one that is not there is fine.
async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
