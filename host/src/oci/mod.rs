//! Plugins by reference, from OCI registries: resolve a tag to the digest it
//! stands for, verify that digest's signature as the operator requires, and
//! pull it (or take it from the local content cache) within a size limit;
//! push and sign for plugin authors. What `informant push`, `pull`, `sign`
//! and `check REF` use, and the Plugin objects' source (`catalog`).

mod config_file;
mod credentials;
mod registry;
mod signature;
mod store;

use std::{path::PathBuf, time::Duration};

pub use config_file::OciFile;
pub use credentials::from_docker_config;
pub use oci_client::{Reference, secrets::RegistryAuth};
pub use registry::{Artifact, Registry, sha256};
pub use signature::{Identity, Policy, Rule, TrustRoot, Verified, generate_key_pair, sign};
pub use store::ContentStore;

/// What went wrong with a plugin in a registry. The reason (`reason()`) is
/// what a Plugin object's `Ready` condition says.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reference does not parse.
    #[error("{reference:?} is not an OCI reference: {message}")]
    Reference {
        /// What was given.
        reference: String,
        /// Why it does not parse.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the registry client: {0}")]
    Client(String),
    /// The registry could not be reached.
    #[error("registry {registry} cannot be reached: {message}")]
    Unreachable {
        /// The registry.
        registry: String,
        /// The transport's error.
        message: String,
    },
    /// The registry does not have it.
    #[error("{reference}: not found in the registry")]
    NotFound {
        /// The reference.
        reference: String,
    },
    /// The registry refused the credentials (or their absence).
    #[error("{reference}: the registry refused access: {message}")]
    Unauthorized {
        /// The reference.
        reference: String,
        /// The registry's answer.
        message: String,
    },
    /// The registry answered something else that is wrong.
    #[error("{reference}: {message}")]
    Registry {
        /// The reference.
        reference: String,
        /// The registry's answer.
        message: String,
    },
    /// What the reference names is not a plugin in the Wasm OCI layout.
    #[error("{reference} is not a Wasm component artifact: {why}")]
    NotWasm {
        /// The reference.
        reference: String,
        /// Why.
        why: String,
    },
    /// The component is larger than the operator allows.
    #[error(
        "{reference}: the component is {size} bytes, over the limit of {limit} (oci.maxSizeMib)"
    )]
    TooLarge {
        /// The reference.
        reference: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The content did not arrive whole.
    #[error("{reference}: the download failed: {message}")]
    Transfer {
        /// The reference.
        reference: String,
        /// What went wrong.
        message: String,
    },
    /// The manifest is not the one the reference pins.
    #[error("{reference}: the registry served manifest {got}, not {expected}")]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// The digest asked for.
        expected: String,
        /// The digest served.
        got: String,
    },
    /// A signature is required and there is none.
    #[error("{reference} ({digest}) is not signed, and the signature policy requires a signature")]
    Unsigned {
        /// The reference.
        reference: String,
        /// The digest.
        digest: String,
    },
    /// Signatures exist, and none verifies.
    #[error(
        "{reference} ({digest}): none of its {signatures} signature(s) is by a signer the policy accepts ({tried})"
    )]
    BadSignature {
        /// The reference.
        reference: String,
        /// The digest.
        digest: String,
        /// How many signatures were found.
        signatures: usize,
        /// The keys and identities tried.
        tried: String,
    },
    /// Signatures could not be read or made.
    #[error("{reference}: signature: {message}")]
    Signature {
        /// The reference.
        reference: String,
        /// What went wrong.
        message: String,
    },
    /// Credentials could not be read.
    #[error("credentials from {origin}: {message}")]
    Credentials {
        /// Where they come from: a file or a Secret.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// A short CamelCase reason, for a condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Reference { .. } => "InvalidReference",
            Self::Client(_) | Self::Registry { .. } | Self::Transfer { .. } => "PullFailed",
            Self::Unreachable { .. } => "RegistryUnreachable",
            Self::NotFound { .. } => "NotFound",
            Self::Unauthorized { .. } | Self::Credentials { .. } => "Unauthorized",
            Self::NotWasm { .. } => "NotAComponent",
            Self::TooLarge { .. } => "TooLarge",
            Self::DigestMismatch { .. } => "DigestMismatch",
            Self::Unsigned { .. } => "Unsigned",
            Self::BadSignature { .. } | Self::Signature { .. } => "SignatureInvalid",
        }
    }
}

/// Parse an OCI reference (`registry/repository:tag` or `@sha256:...`).
///
/// # Errors
/// [`Error::Reference`] saying why not.
pub fn parse_reference(reference: &str) -> Result<Reference, Error> {
    reference.parse().map_err(|e| Error::Reference {
        reference: reference.to_string(),
        message: format!("{e}"),
    })
}

/// How the host reaches registries: the operator's `oci:` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Registries (`host:port`) spoken to over plain HTTP; every other is
    /// HTTPS.
    pub insecure_registries: Vec<String>,
    /// The largest component pulled.
    pub max_bytes: u64,
    /// How often tags are resolved again (a moved tag is a reload).
    pub resolve_interval: Duration,
    /// A docker config with credentials for every Plugin object.
    pub docker_config: Option<PathBuf>,
    /// Which references must be signed, and by whom.
    pub signatures: Policy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            max_bytes: 64 << 20,
            resolve_interval: Duration::from_secs(300),
            docker_config: None,
            signatures: Policy::default(),
        }
    }
}

/// A plugin fetched by reference.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The digest its reference resolved to (or pinned).
    pub digest: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// What signature verification found.
    pub verified: Verified,
    /// Whether it came from the local content cache.
    pub cached: bool,
}

/// Resolving, verifying and pulling, with a content cache.
#[derive(Debug, Clone)]
pub struct Fetcher {
    config: Config,
    registry: Registry,
    store: Option<ContentStore>,
}

impl Fetcher {
    /// A fetcher for `config`, caching content in `cache_dir` if given.
    ///
    /// # Errors
    /// [`Error::Client`] if the registry client cannot be built.
    pub fn new(config: Config, cache_dir: Option<&std::path::Path>) -> Result<Self, Error> {
        let registry = Registry::new(&config.insecure_registries, config.max_bytes)?;
        Ok(Self {
            store: cache_dir.map(ContentStore::new),
            config,
            registry,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The registry client.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The credentials the operator's docker config holds for `reference`.
    ///
    /// # Errors
    /// [`Error::Credentials`] if the file cannot be read or used.
    pub fn configured_auth(&self, reference: &Reference) -> Result<RegistryAuth, Error> {
        let Some(path) = &self.config.docker_config else {
            return Ok(RegistryAuth::Anonymous);
        };
        let bytes = std::fs::read(path).map_err(|e| Error::Credentials {
            origin: path.display().to_string(),
            message: e.to_string(),
        })?;
        from_docker_config(
            &bytes,
            &path.display().to_string(),
            reference.resolve_registry(),
        )
    }

    /// The digest `reference` stands for now.
    ///
    /// # Errors
    /// [`Error`] from the registry.
    pub async fn resolve(
        &self,
        reference: &Reference,
        auth: &RegistryAuth,
    ) -> Result<String, Error> {
        match reference.digest() {
            Some(d) => Ok(d.to_string()),
            None => self.registry.resolve(reference, auth).await,
        }
    }

    /// Fetch the plugin `reference` names at `digest` (what it resolved
    /// to): verify its signature as the policy requires (always, even from
    /// the cache: the policy may have changed), then take it from the
    /// content cache or pull it.
    ///
    /// # Errors
    /// [`Error`]: the signature, or the pull.
    pub async fn fetch(
        &self,
        reference: &Reference,
        digest: &str,
        auth: &RegistryAuth,
    ) -> Result<Fetched, Error> {
        let verified = self
            .config
            .signatures
            .verify(reference, digest, auth, &self.config.insecure_registries)
            .await?;
        if let Some(bytes) = self.store.as_ref().and_then(|s| s.get(digest)) {
            return Ok(Fetched {
                digest: digest.to_string(),
                bytes,
                verified,
                cached: true,
            });
        }
        let pinned = Reference::with_digest(
            reference.registry().to_string(),
            reference.repository().to_string(),
            digest.to_string(),
        );
        let artifact = self.registry.pull(&pinned, auth).await?;
        if let Some(store) = &self.store
            && let Err(e) = store.put(&artifact.digest, &artifact.bytes)
        {
            tracing::warn!(digest = %artifact.digest, error = %e, "cannot keep the pulled plugin in the content cache; the next start pulls it again");
        }
        Ok(Fetched {
            digest: artifact.digest,
            bytes: artifact.bytes,
            verified,
            cached: false,
        })
    }

    /// Forget a cached component that did not load.
    pub fn forget(&self, digest: &str) {
        if let Some(store) = &self.store {
            store.remove(digest);
        }
    }
}
