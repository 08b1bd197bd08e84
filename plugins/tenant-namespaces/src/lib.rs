//! tenant-namespaces: a small operator. For every `Tenant`
//! (`informant.dev/v1alpha1`, cluster-scoped) it creates the namespace
//! `tenant-<name>`, reports progress in the Tenant's status, and deletes the
//! namespace when the Tenant goes.
//!
//! It shows the operator pattern on Informant: create, then requeue until the
//! cache shows the namespace, then mark the status Ready.

use std::time::Duration;

use informant_sdk::{action, cache, info, prelude::*};

const TENANT_LABEL: &str = "informant.dev/tenant";

struct TenantNamespaces;

fn namespace_for(tenant: &str) -> String {
    format!("tenant-{tenant}")
}

impl Plugin for TenantNamespaces {
    fn describe() -> Manifest {
        Manifest::new("tenant-namespaces", env!("CARGO_PKG_VERSION"))
            .subscribe(Subscription::to("informant.dev/v1alpha1", "Tenant").latest_state())
            .reads("v1", "Namespace")
            .writes("v1", "Namespace", [Verb::Create, Verb::Delete])
            .writes("informant.dev/v1alpha1", "Tenant", [Verb::PatchStatus])
    }

    fn init(_settings: Settings) -> Result<Self> {
        Ok(TenantNamespaces)
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        let tenant = &event.object;
        let ns_name = namespace_for(tenant.name());
        let ns_ref = ObjectRef::cluster("v1", "Namespace", &ns_name);
        let namespace = cache::get(&ns_ref)?;
        match event.event_type {
            EventType::Synced => Ok(()),
            EventType::Deleted => {
                // Delete only a namespace this plugin made for this tenant, and
                // only that very object (uid precondition).
                if let Some(ns) =
                    namespace.filter(|ns| ns.label(TENANT_LABEL) == Some(tenant.name()))
                {
                    info!(
                        "tenant {} deleted: deleting namespace {ns_name}",
                        tenant.name()
                    );
                    action::delete(&ns_ref).uid(ns.uid()).enqueue()?;
                }
                Ok(())
            }
            _ => {
                let phase = tenant.get("status.phase").and_then(Value::as_str);
                match namespace {
                    None => {
                        let owner = tenant
                            .get("spec.owner")
                            .and_then(Value::as_str)
                            .unwrap_or("unknown");
                        action::create(&json!({
                            "apiVersion": "v1",
                            "kind": "Namespace",
                            "metadata": {"name": ns_name, "labels": {TENANT_LABEL: tenant.name(), "owner": owner}},
                        }))
                        .enqueue()?;
                        if phase != Some("Provisioning") {
                            action::patch_status(
                                &tenant.object_ref(),
                                json!({"status": {"phase": "Provisioning", "namespace": ns_name}}),
                            )
                            .enqueue()?;
                        }
                        // Look again once the namespace has had time to appear.
                        action::requeue_after(&tenant.object_ref(), Duration::from_secs(2))
                            .enqueue()?;
                        info!("tenant {}: creating namespace {ns_name}", tenant.name());
                    }
                    Some(_) if phase != Some("Ready") => {
                        action::patch_status(
                            &tenant.object_ref(),
                            json!({"status": {"phase": "Ready", "namespace": ns_name}}),
                        )
                        .enqueue()?;
                        info!("tenant {} is ready", tenant.name());
                    }
                    Some(_) => {}
                }
                Ok(())
            }
        }
    }
}

informant_sdk::export_plugin!(TenantNamespaces);
