//! The embedded server's HTTPS client for admission webhooks: one pooled
//! client per CA bundle (the `caBundle` a configuration carries is the
//! only trust it gets), errors worded as kube-apiserver words them.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use parking_lot::Mutex;
use rustls_pki_types::{CertificateDer, pem::PemObject};

type Https = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Pooled HTTPS clients, by CA bundle.
#[derive(Default)]
pub(crate) struct WebhookClients {
    by_ca: Mutex<HashMap<Vec<u8>, Https>>,
}

impl WebhookClients {
    fn client(&self, ca_bundle: &[u8]) -> Result<Https, String> {
        if let Some(c) = self.by_ca.lock().get(ca_bundle) {
            return Ok(c.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_bundle) {
            let cert = cert.map_err(|e| format!("the caBundle is not PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("the caBundle holds a bad certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("the caBundle holds no certificate".into());
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        self.by_ca.lock().insert(ca_bundle.to_vec(), client.clone());
        Ok(client)
    }

    /// POST `body` to `url` (which already carries `?timeout=`), within
    /// `timeout`: the response body, or the error as kube-apiserver words
    /// it after "failed to call webhook: ".
    pub(crate) async fn post(
        &self,
        url: &str,
        ca_bundle: &[u8],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, String> {
        let client = self.client(ca_bundle)?;
        let request = axum::http::Request::post(url)
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .header(axum::http::header::ACCEPT, "application/json, */*")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("Post {url:?}: {e}"))?;
        let call = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| format!("Post {url:?}: {}", root_cause(&e)))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("Post {url:?}: {e}"))?
                .to_bytes();
            if status.is_success() {
                return Ok(bytes);
            }
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            Err(match status.as_u16() {
                404 => "the server could not find the requested resource".into(),
                400 => format!("the server rejected our request for an unknown reason ({text})"),
                _ => format!(
                    "an error on the server ({text:?}) has prevented the request from succeeding"
                ),
            })
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(format!("Post {url:?}: context deadline exceeded")),
        }
    }
}

/// The innermost cause: "connection refused", not "client error (Connect)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
