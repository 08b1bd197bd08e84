//! Admission: the same plugins that react to changes also validate and
//! mutate requests before they are stored, as webhooks the API server
//! calls.
//!
//! A plugin's manifest declares its webhook (`plugin::webhook`); the
//! operator's configuration narrows or overrides it ([`configuration`]).
//! Every replica serves the webhooks over HTTPS ([`server`], certificates
//! from files reloaded when they change, or generated for `dev` and tests in
//! [`certs`]); a request is read ([`review`]), handed to the plugin
//! ([`webhooks`]), and its verdict checked and answered, or the failure
//! policy answers for it ([`decision`]). One replica registers the webhook
//! configurations with server-side apply ([`registrar`]).

pub mod certs;
pub mod configuration;
pub mod decision;
pub mod metrics;
pub mod registrar;
pub mod review;
pub mod server;
pub mod webhooks;

pub use configuration::{CertSource, Endpoint, Override, Settings};
pub use registrar::Singleton;
pub use webhooks::{Admission, ReviewError};
