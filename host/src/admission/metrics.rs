//! Admission's numbers for `/metrics`, read from the live counters at
//! scrape time: requests by plugin and decision, failures by cause, how long
//! the host took per request, and whether each webhook is ready.

use std::sync::Arc;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

use super::Admission;

/// Collects admission metrics on each scrape.
#[derive(Debug)]
pub struct AdmissionCollector {
    admission: Arc<Admission>,
}

impl AdmissionCollector {
    /// A collector over `admission`.
    pub fn new(admission: Arc<Admission>) -> Self {
        Self { admission }
    }
}

impl Collector for AdmissionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let served = self.admission.served();
        {
            let mut family = encoder.encode_descriptor(
                "informant_admission_requests",
                "Admission requests by plugin and decision: allowed, mutated (allowed with a patch), denied, error (the plugin could not decide; its failure policy answered).",
                None,
                MetricType::Counter,
            )?;
            for (plugin, s) in &served {
                for (decision, n) in s.by_decision() {
                    let labels = [("plugin", plugin.as_str()), ("decision", decision.as_str())];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "informant_admission_failures",
                "Admission requests the plugin could not decide, by cause: the call's outcome (trap, timeout, out_of_memory, failed), refused, bad_patch, not_ready, unloaded, busy, wrong_kind.",
                None,
                MetricType::Counter,
            )?;
            for (plugin, s) in &served {
                for (cause, n) in s.failures() {
                    let labels = [("plugin", plugin.as_str()), ("cause", cause)];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "informant_admission_duration_seconds",
                "How long the host took to answer an admission request: reading it, the plugin's call, checking and writing the answer.",
                None,
                MetricType::Histogram,
            )?;
            for (plugin, s) in &served {
                let labels = [("plugin", plugin.as_str())];
                s.seconds.encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "informant_webhook_ready",
                "1 while the plugin's webhook answers (its subscriptions have synced).",
                None,
                MetricType::Gauge,
            )?;
            for c in self.admission.current() {
                let labels = [("plugin", c.plugin.as_str())];
                ConstGauge::new(i64::from(c.ready)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
