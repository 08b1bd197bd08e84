//! The webhook server's certificate: PEM files (a cert-manager Secret
//! mounts `tls.crt`, `tls.key` and `ca.crt`), read at start and again
//! whenever they change, or a CA and a serving certificate generated at
//! start for `dev` and tests.
//!
//! A file that is missing or unreadable at start fails start-up naming it.
//! A renewal that cannot be read later keeps the certificate in service and
//! says why, so a half-written Secret never takes admission down. The CA
//! bundle that goes into the webhook configurations follows the files.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use parking_lot::RwLock;
use rustls::{
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::configuration::CertSource;

/// How long the certificate files must be quiet before they are read again.
const QUIET: Duration = Duration::from_millis(200);

/// Why the webhook server has no certificate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file is missing or unreadable.
    #[error("{path}: cannot read the webhook certificate file")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no PEM certificate.
    #[error("{path}: no PEM certificate in it")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no usable private key.
    #[error("{path}: no usable PEM private key in it ({reason})")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("{key} is not the private key of the certificate in {cert}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rcgen could not make a certificate.
    #[error("generating the webhook certificate: {0}")]
    Generate(String),
    /// The TLS configuration could not be built.
    #[error("the TLS configuration: {0}")]
    Tls(String),
    /// The files cannot be watched for renewals.
    #[error("{path}: cannot watch it for certificate renewals")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: notify::Error,
    },
}

/// One certificate and key, with the CA bundle that verifies it.
struct Loaded {
    key: Arc<CertifiedKey>,
    ca_bundle: Vec<u8>,
}

/// The certificate in service; TLS handshakes read it, reloads replace it.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

/// The webhook server's certificate and the CA bundle that verifies it.
pub struct Certificates {
    current: Arc<Current>,
    ca_bundle: watch::Receiver<Arc<Vec<u8>>>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").finish_non_exhaustive()
    }
}

impl Certificates {
    /// Load the certificate `source` names (for files: and keep following
    /// them until `stop`); a generated one is valid for `hosts` (DNS names
    /// or IP addresses) and loopback.
    ///
    /// # Errors
    /// [`Error`] naming the file that is missing, unreadable or wrong.
    pub fn start(
        source: &CertSource,
        hosts: &[String],
        stop: &CancellationToken,
    ) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = match source {
            CertSource::Files { cert, key, ca } => load(&provider, cert, key, ca.as_deref())?,
            CertSource::Generate => generate(&provider, hosts)?,
            CertSource::Unset => {
                return Err(Error::Tls(
                    "no certificate configured (--webhook-cert-dir or --webhook-generate-cert)"
                        .into(),
                ));
            }
        };
        let current = Arc::new(Current(RwLock::new(loaded.key)));
        let (tx, ca_bundle) = watch::channel(Arc::new(loaded.ca_bundle));
        if let CertSource::Files { cert, key, ca } = source {
            follow(
                provider.clone(),
                current.clone(),
                tx,
                [cert.clone(), key.clone()]
                    .into_iter()
                    .chain(ca.clone())
                    .collect(),
                stop.clone(),
            )?;
        }
        Ok(Self {
            current,
            ca_bundle,
            provider,
        })
    }

    /// The PEM bundle of the CA that verifies the certificate, as it is now
    /// and as it changes.
    pub fn ca_bundle(&self) -> watch::Receiver<Arc<Vec<u8>>> {
        self.ca_bundle.clone()
    }

    /// A rustls server configuration that serves the certificate in
    /// service, over HTTP/1.1.
    ///
    /// # Errors
    /// [`Error::Tls`] if rustls refuses the protocol versions.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read and check a certificate chain, its key and (if given) its CA.
fn load(
    provider: &CryptoProvider,
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
) -> Result<Loaded, Error> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let ca_pem = ca.map(read).transpose()?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(Error::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| Error::Key {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| Error::Key {
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
    // The bundle: the CA file, or else the chain's last certificate (the
    // one closest to the root that the file has).
    let ca_bundle = match ca_pem {
        Some(pem) => {
            if CertificateDer::pem_slice_iter(&pem).next().is_none() {
                return Err(Error::NoCertificate {
                    path: ca.map(Path::to_path_buf).unwrap_or_default(),
                });
            }
            pem
        }
        None => chain
            .last()
            .map(|c| pem_of(c.as_ref()).into_bytes())
            .unwrap_or_default(),
    };
    let certified = CertifiedKey::new(chain, signing);
    if certified.keys_match().is_err() {
        return Err(Error::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        });
    }
    Ok(Loaded {
        key: Arc::new(certified),
        ca_bundle,
    })
}

/// A certificate in PEM.
fn pem_of(der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// A fresh CA and a serving certificate it signed for `hosts` and loopback.
fn generate(provider: &CryptoProvider, hosts: &[String]) -> Result<Loaded, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let g = |e: rcgen::Error| Error::Generate(e.to_string());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(g)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "informant webhook CA (generated)");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(g)?).map_err(g)?;
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for h in hosts {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    let mut params = CertificateParams::new(names).map_err(g)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "informant webhook");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(g)?;
    let cert = params.signed_by(&key, &ca).map_err(g)?;
    let private = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
        .map_err(|e| Error::Generate(e.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| Error::Generate(e.to_string()))?;
    Ok(Loaded {
        key: Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)),
        ca_bundle: ca.pem().into_bytes(),
    })
}

/// Watch the files' directories and load them again when they change; a
/// load that fails keeps what is in service.
fn follow(
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    ca_tx: watch::Sender<Arc<Vec<u8>>>,
    files: Vec<PathBuf>,
    stop: CancellationToken,
) -> Result<(), Error> {
    use notify::Watcher as _;
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.try_send(());
        }
    })
    .map_err(|source| Error::Watch {
        path: files.first().cloned().unwrap_or_default(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .map(|f| {
            f.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        watcher
            .watch(dir, notify::RecursiveMode::NonRecursive)
            .map_err(|source| Error::Watch {
                path: dir.clone(),
                source,
            })?;
    }
    let (cert, key, ca) = (files[0].clone(), files[1].clone(), files.get(2).cloned());
    tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                got = rx.recv() => if got.is_none() { return },
            }
            // Wait for the files to be quiet: a Secret volume swaps them
            // together, an editor writes in steps.
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(QUIET) => break,
                    got = rx.recv() => if got.is_none() { return },
                }
            }
            match load(&provider, &cert, &key, ca.as_deref()) {
                Ok(loaded) => {
                    let unchanged = current.0.read().cert == loaded.key.cert
                        && **ca_tx.borrow() == loaded.ca_bundle;
                    if unchanged {
                        continue;
                    }
                    *current.0.write() = loaded.key;
                    ca_tx.send_if_modified(|bundle| {
                        let changed = **bundle != loaded.ca_bundle;
                        if changed {
                            *bundle = Arc::new(loaded.ca_bundle);
                        }
                        changed
                    });
                    tracing::info!(cert = %cert.display(), "webhook certificate reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "webhook certificate not reloaded; the one in service stays");
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_generated(dir: &Path, host: &str) -> (PathBuf, PathBuf, PathBuf) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![host.to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let paths = (dir.join("tls.crt"), dir.join("tls.key"), dir.join("ca.crt"));
        std::fs::write(&paths.0, cert.pem()).unwrap();
        std::fs::write(&paths.1, key.serialize_pem()).unwrap();
        std::fs::write(&paths.2, ca.pem()).unwrap();
        paths
    }

    #[tokio::test]
    async fn files_load_and_a_missing_or_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, ca) = write_generated(dir.path(), "informant.informant-system.svc");
        let stop = CancellationToken::new();
        let source = CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
            ca: Some(ca.clone()),
        };
        let certs = Certificates::start(&source, &[], &stop).unwrap();
        assert_eq!(**certs.ca_bundle().borrow(), std::fs::read(&ca).unwrap());
        certs.server_config().unwrap();
        let missing = CertSource::Files {
            cert: dir.path().join("nope.crt"),
            key: key.clone(),
            ca: None,
        };
        let err = Certificates::start(&missing, &[], &stop)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope.crt") && err.contains("cannot read"),
            "{err}"
        );
        let swapped = CertSource::Files {
            cert: key.clone(),
            key: cert.clone(),
            ca: None,
        };
        let err = Certificates::start(&swapped, &[], &stop)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.key: no PEM certificate"), "{err}");
        let other = tempfile::tempdir().unwrap();
        let (_, other_key, _) = write_generated(other.path(), "x");
        let mismatched = CertSource::Files {
            cert,
            key: other_key,
            ca: None,
        };
        let err = Certificates::start(&mismatched, &[], &stop)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not the private key"), "{err}");
        stop.cancel();
    }

    #[tokio::test]
    async fn a_renewed_certificate_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, ca) = write_generated(dir.path(), "a.example");
        let stop = CancellationToken::new();
        let source = CertSource::Files {
            cert,
            key,
            ca: Some(ca.clone()),
        };
        let certs = Certificates::start(&source, &[], &stop).unwrap();
        let mut bundle = certs.ca_bundle();
        let before = bundle.borrow_and_update().clone();
        let first = certs.current.0.read().cert.clone();
        write_generated(dir.path(), "b.example");
        tokio::time::timeout(Duration::from_secs(10), bundle.changed())
            .await
            .expect("the renewal is seen")
            .unwrap();
        assert_ne!(*bundle.borrow(), before);
        assert_eq!(**bundle.borrow(), std::fs::read(&ca).unwrap());
        assert_ne!(certs.current.0.read().cert, first);
        stop.cancel();
    }

    #[test]
    fn a_generated_certificate_comes_with_its_ca() {
        let stop = CancellationToken::new();
        let certs = Certificates::start(&CertSource::Generate, &["informant.ns.svc".into()], &stop)
            .unwrap();
        let bundle = certs.ca_bundle().borrow().clone();
        assert!(
            String::from_utf8_lossy(&bundle).starts_with("-----BEGIN CERTIFICATE-----"),
            "{}",
            String::from_utf8_lossy(&bundle)
        );
        certs.server_config().unwrap();
    }
}
