//! Plugins in a registry, in the CNCF Wasm OCI artifact layout (what Spin,
//! wasmCloud and wkg use): an image manifest whose config is
//! `application/vnd.wasm.config.v0+json` and whose one layer is the
//! component, `application/wasm`. Pull by tag or digest (a tag resolved to
//! the digest that is then pulled), within a size limit; push.

use std::time::Duration;

use futures::TryStreamExt;
use oci_client::{
    Client, Reference,
    client::{ClientConfig, ClientProtocol},
    errors::{OciDistributionError, OciErrorCode},
    manifest::OciImageManifest,
    secrets::RegistryAuth,
};
use sha2::{Digest as _, Sha256};

use super::Error;

/// The manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config's media type in the CNCF Wasm layout.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The one layer's media type: the component.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";

/// A registry client: plain HTTP only for the registries the operator
/// listed as insecure, HTTPS (with the system's roots) for every other.
#[derive(Clone)]
pub struct Registry {
    client: Client,
    max_bytes: u64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// A plugin as pulled: the manifest's digest and the component's bytes.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// `sha256:...` of the manifest: what a reference pins.
    pub digest: String,
    /// The component.
    pub bytes: Vec<u8>,
}

impl Registry {
    /// A client for these insecure (plain HTTP) registries, refusing
    /// components over `max_bytes`.
    ///
    /// # Errors
    /// [`Error::Client`] if the HTTP client cannot be built.
    pub fn new(insecure: &[String], max_bytes: u64) -> Result<Self, Error> {
        crate::tls::install_crypto_provider();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure.to_vec()),
            // A plugin is never an image index: refuse one rather than
            // choose a platform.
            platform_resolver: None,
            read_timeout: Some(Duration::from_secs(60)),
            connect_timeout: Some(Duration::from_secs(10)),
            ..ClientConfig::default()
        };
        // `Client::new` would fall back to a default (HTTPS) client on error.
        let client = Client::try_from(config).map_err(|e| Error::Client(e.to_string()))?;
        Ok(Self { client, max_bytes })
    }

    /// The digest a reference stands for now: its own, or its tag's.
    ///
    /// # Errors
    /// [`Error`] saying whether the registry is unreachable, refused us or
    /// does not have it.
    pub async fn resolve(
        &self,
        reference: &Reference,
        auth: &RegistryAuth,
    ) -> Result<String, Error> {
        self.client
            .fetch_manifest_digest(reference, auth)
            .await
            .map_err(|e| classify(reference, e))
    }

    /// Pull the component `reference` names (by digest, or its tag resolved
    /// first), checking the layout, the size and the digests.
    ///
    /// # Errors
    /// [`Error`]: unreachable, refused, missing, not a Wasm artifact, too
    /// large, or content that does not match its digest.
    pub async fn pull(
        &self,
        reference: &Reference,
        auth: &RegistryAuth,
    ) -> Result<Artifact, Error> {
        let digest = match reference.digest() {
            Some(d) => d.to_string(),
            None => self.resolve(reference, auth).await?,
        };
        let pinned = Reference::with_digest(
            reference.registry().to_string(),
            reference.repository().to_string(),
            digest.clone(),
        );
        let (manifest, got) = self
            .client
            .pull_image_manifest(&pinned, auth)
            .await
            .map_err(|e| classify(reference, e))?;
        if got != digest {
            return Err(Error::DigestMismatch {
                reference: reference.whole(),
                expected: digest,
                got,
            });
        }
        let layer = wasm_layer(reference, &manifest)?;
        let size = u64::try_from(layer.size).unwrap_or(u64::MAX);
        if size > self.max_bytes {
            return Err(Error::TooLarge {
                reference: reference.whole(),
                size,
                limit: self.max_bytes,
            });
        }
        let mut stream = self
            .client
            .pull_blob_stream(&pinned, &layer)
            .await
            .map_err(|e| classify(reference, e))?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        // The stream checks the layer's digest when it ends; the size is
        // checked as it comes, so a lying registry cannot fill memory.
        while let Some(chunk) = stream.try_next().await.map_err(|e| Error::Transfer {
            reference: reference.whole(),
            message: e.to_string(),
        })? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > size {
                return Err(Error::Transfer {
                    reference: reference.whole(),
                    message: format!("the layer is larger than the {size} bytes its manifest says"),
                });
            }
        }
        if bytes.len() as u64 != size {
            return Err(Error::Transfer {
                reference: reference.whole(),
                message: format!(
                    "the layer has {} bytes, its manifest says {size}",
                    bytes.len()
                ),
            });
        }
        Ok(Artifact { digest, bytes })
    }

    /// Push a component to `reference` (a tag) in the CNCF Wasm layout;
    /// returns the manifest's digest. The same bytes give the same digest.
    ///
    /// # Errors
    /// [`Error`] if the registry refuses or cannot be reached.
    pub async fn push(
        &self,
        reference: &Reference,
        component: &[u8],
        auth: &RegistryAuth,
    ) -> Result<String, Error> {
        let layer_digest = sha256(component);
        // A fixed `created`: pushing the same component twice gives the
        // same manifest, so tags can be compared by digest.
        let config = serde_json::json!({
            "created": "1970-01-01T00:00:00Z",
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [layer_digest],
            "component": {"exports": [], "imports": [], "target": null},
        });
        let config = serde_json::to_vec(&config).map_err(|e| Error::Client(e.to_string()))?;
        let config_digest = sha256(&config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": WASM_CONFIG_MEDIA_TYPE,
            "config": {"mediaType": WASM_CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": WASM_LAYER_MEDIA_TYPE, "digest": layer_digest, "size": component.len()}],
        });
        let manifest = serde_json::to_vec(&manifest).map_err(|e| Error::Client(e.to_string()))?;
        let digest = sha256(&manifest);
        self.client
            .store_auth_if_needed(reference.resolve_registry(), auth)
            .await;
        let fail = |e| classify(reference, e);
        self.client
            .push_blob(reference, config, &config_digest)
            .await
            .map_err(fail)?;
        self.client
            .push_blob(reference, component.to_vec(), &layer_digest)
            .await
            .map_err(fail)?;
        self.client
            .push_manifest_raw(
                reference,
                manifest,
                http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
            )
            .await
            .map_err(fail)?;
        Ok(digest)
    }
}

/// The component's layer, if the manifest is a Wasm artifact.
fn wasm_layer(
    reference: &Reference,
    manifest: &OciImageManifest,
) -> Result<oci_client::manifest::OciDescriptor, Error> {
    let not_wasm = |why: String| Error::NotWasm {
        reference: reference.whole(),
        why,
    };
    let layers: Vec<_> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == WASM_LAYER_MEDIA_TYPE)
        .collect();
    match layers.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(not_wasm(format!(
            "it has no {WASM_LAYER_MEDIA_TYPE} layer (config {}, layers {}); push a component with `informant push`",
            manifest.config.media_type,
            manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        _ => Err(not_wasm(format!(
            "it has {} {WASM_LAYER_MEDIA_TYPE} layers; a plugin is one component",
            layers.len()
        ))),
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What an OCI client error means for whoever asked.
fn classify(reference: &Reference, e: OciDistributionError) -> Error {
    let whole = reference.whole();
    let registry = reference.resolve_registry().to_string();
    match &e {
        OciDistributionError::ImageManifestNotFoundError(_) => Error::NotFound { reference: whole },
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) =>
        {
            Error::NotFound { reference: whole }
        }
        OciDistributionError::ServerError { code: 404, .. } => Error::NotFound { reference: whole },
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => Error::Unauthorized {
            reference: whole,
            message: e.to_string(),
        },
        OciDistributionError::RegistryError { envelope, .. }
            if envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
        {
            Error::Unauthorized {
                reference: whole,
                message: e.to_string(),
            }
        }
        OciDistributionError::RequestError(inner) if inner.is_connect() || inner.is_timeout() => {
            Error::Unreachable {
                registry,
                message: error_chain(inner),
            }
        }
        OciDistributionError::RequestError(inner) => Error::Unreachable {
            registry,
            message: error_chain(inner),
        },
        OciDistributionError::DigestError(_) => Error::Transfer {
            reference: whole,
            message: e.to_string(),
        },
        OciDistributionError::ImageIndexParsingNoPlatformResolverError => Error::NotWasm {
            reference: whole,
            why: "it is an image index, not a Wasm artifact".into(),
        },
        _ => Error::Registry {
            reference: whole,
            message: e.to_string(),
        },
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_of_the_bytes() {
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn manifest(layers: &[&str]) -> OciImageManifest {
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": WASM_CONFIG_MEDIA_TYPE, "digest": sha256(b"{}"), "size": 2},
            "layers": layers.iter().map(|m| serde_json::json!({"mediaType": m, "digest": sha256(m.as_bytes()), "size": 1})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn a_plugin_is_exactly_one_wasm_layer() {
        let r: Reference = "example.com/p:1".parse().unwrap();
        assert!(wasm_layer(&r, &manifest(&[WASM_LAYER_MEDIA_TYPE])).is_ok());
        let err = wasm_layer(
            &r,
            &manifest(&["application/vnd.oci.image.layer.v1.tar+gzip"]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no application/wasm layer"), "{err}");
        let err = wasm_layer(
            &r,
            &manifest(&[WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("2 application/wasm layers"), "{err}");
    }
}
