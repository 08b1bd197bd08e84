//! The `oci:` section of the host's configuration file, as written, and its
//! validation into [`super::Config`]: key and certificate files are read
//! here, so a missing or unreadable one fails start-up naming it.
//!
//! ```yaml
//! oci:
//!   insecureRegistries: ["127.0.0.1:5000"]   # plain HTTP; every other registry is HTTPS
//!   maxSizeMib: 64                           # the largest component pulled
//!   resolveIntervalSeconds: 300              # tags are resolved again this often
//!   dockerConfig: /etc/informant/registry/config.json
//!   signatures:                              # first match wins; unnamed references need none
//!   - references: ["ghcr.io/acme/*"]
//!     keys: [/etc/informant/keys/cosign.pub]
//!     keyless:
//!     - {issuer: "https://token.actions.githubusercontent.com",
//!        subject: "https://github.com/acme/plugins/.github/workflows/release.yml@refs/heads/main"}
//!     trustRoot: {fulcioCerts: [/etc/informant/sigstore/fulcio.pem], rekorKeys: [/etc/informant/sigstore/rekor.pub]}
//! ```

use std::{path::PathBuf, time::Duration};

use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer, pem::PemObject};
use serde::Deserialize;

use super::{Config, Identity, Policy, Rule, TrustRoot};

/// `oci:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OciFile {
    /// Registries spoken to over plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// The largest component pulled, in MiB.
    pub max_size_mib: Option<u64>,
    /// How often tags are resolved again.
    pub resolve_interval_seconds: Option<u64>,
    /// A docker config with registry credentials.
    pub docker_config: Option<PathBuf>,
    /// Which references must be signed, and by whom.
    #[serde(default)]
    pub signatures: Vec<RuleFile>,
}

/// One signature rule as written.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleFile {
    /// `registry/repository`, or a prefix ending in `*`.
    #[serde(default)]
    pub references: Vec<String>,
    /// Public key files (PEM).
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    /// Keyless identities.
    #[serde(default)]
    pub keyless: Vec<IdentityFile>,
    /// The trust root for keyless signatures.
    pub trust_root: Option<TrustRootFile>,
}

/// A keyless identity as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityFile {
    /// The OIDC issuer.
    pub issuer: String,
    /// A workflow URL or an e-mail address.
    pub subject: String,
}

/// A trust root as written: files.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustRootFile {
    /// Fulcio's certificates (PEM; a file may hold several).
    #[serde(default)]
    pub fulcio_certs: Vec<PathBuf>,
    /// Rekor's public keys (PEM).
    #[serde(default)]
    pub rekor_keys: Vec<PathBuf>,
}

impl OciFile {
    /// Validate, reading the key and certificate files.
    ///
    /// # Errors
    /// The dotted key (under `oci.`) and what is wrong with it.
    pub fn resolve(self) -> Result<Config, (String, String)> {
        let mut config = Config::default();
        if let Some(mib) = self.max_size_mib {
            if mib == 0 {
                return Err(("oci.maxSizeMib".into(), "must be greater than 0".into()));
            }
            config.max_bytes = mib << 20;
        }
        if let Some(s) = self.resolve_interval_seconds {
            if s == 0 {
                return Err((
                    "oci.resolveIntervalSeconds".into(),
                    "must be greater than 0".into(),
                ));
            }
            config.resolve_interval = Duration::from_secs(s);
        }
        for (i, r) in self.insecure_registries.iter().enumerate() {
            if r.is_empty() || r.contains('/') {
                return Err((
                    format!("oci.insecureRegistries[{i}]"),
                    format!("{r:?}: give a registry host, with its port if any (127.0.0.1:5000)"),
                ));
            }
        }
        config.insecure_registries = self.insecure_registries;
        config.docker_config = self.docker_config;
        let mut rules = Vec::new();
        for (i, rule) in self.signatures.into_iter().enumerate() {
            rules.push(rule.resolve(&format!("oci.signatures[{i}]"))?);
        }
        config.signatures = Policy { rules };
        Ok(config)
    }
}

impl RuleFile {
    fn resolve(self, at: &str) -> Result<Rule, (String, String)> {
        if self.references.is_empty() {
            return Err((
                format!("{at}.references"),
                "names no reference; give registry/repository, or a prefix ending in *".into(),
            ));
        }
        if self.keys.is_empty() && self.keyless.is_empty() {
            return Err((
                at.to_string(),
                "names no signer: give keys, keyless identities, or both".into(),
            ));
        }
        let read = |key: String, path: &PathBuf| {
            std::fs::read(path).map_err(|e| (key, format!("{}: {e}", path.display())))
        };
        let mut keys = Vec::new();
        for (j, path) in self.keys.iter().enumerate() {
            let key = format!("{at}.keys[{j}]");
            let pem = read(key.clone(), path)?;
            if SubjectPublicKeyInfoDer::from_pem_slice(&pem).is_err() {
                return Err((key, format!("{}: not a PEM public key", path.display())));
            }
            keys.push((path.display().to_string(), pem));
        }
        let trust_root = match self.trust_root {
            Some(root) => {
                let mut fulcio_certs = Vec::new();
                for (j, path) in root.fulcio_certs.iter().enumerate() {
                    let key = format!("{at}.trustRoot.fulcioCerts[{j}]");
                    let pem = read(key.clone(), path)?;
                    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
                        .collect::<Result<_, _>>()
                        .map_err(|e| (key.clone(), format!("{}: {e}", path.display())))?;
                    if certs.is_empty() {
                        return Err((key, format!("{}: no PEM certificate", path.display())));
                    }
                    fulcio_certs.extend(certs.into_iter().map(|c| c.to_vec()));
                }
                let mut rekor_keys = Vec::new();
                for (j, path) in root.rekor_keys.iter().enumerate() {
                    let key = format!("{at}.trustRoot.rekorKeys[{j}]");
                    let pem = read(key.clone(), path)?;
                    let der = SubjectPublicKeyInfoDer::from_pem_slice(&pem)
                        .map_err(|_| (key, format!("{}: not a PEM public key", path.display())))?;
                    rekor_keys.push(der.to_vec());
                }
                Some(TrustRoot {
                    fulcio_certs,
                    rekor_keys,
                })
            }
            None if !self.keyless.is_empty() => {
                return Err((
                    format!("{at}.trustRoot"),
                    "keyless identities need a trust root (Fulcio certificates and Rekor keys, as files: verification is offline)".into(),
                ));
            }
            None => None,
        };
        Ok(Rule {
            references: self.references,
            keys,
            keyless: self
                .keyless
                .into_iter()
                .map(|k| Identity {
                    issuer: k.issuer,
                    subject: k.subject,
                })
                .collect(),
            trust_root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Config, (String, String)> {
        serde_norway::from_str::<OciFile>(yaml).unwrap().resolve()
    }

    #[test]
    fn defaults_and_values() {
        let c = parse("{}").unwrap();
        assert_eq!(c.max_bytes, 64 << 20);
        let c = parse(
            "insecureRegistries: ['127.0.0.1:5000']\nmaxSizeMib: 8\nresolveIntervalSeconds: 2\n",
        )
        .unwrap();
        assert_eq!(c.insecure_registries, ["127.0.0.1:5000"]);
        assert_eq!(c.max_bytes, 8 << 20);
        assert_eq!(c.resolve_interval, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = parse("maxSizeMib: 0").unwrap_err();
        assert_eq!(err.0, "oci.maxSizeMib");
        let err = parse("insecureRegistries: ['http://x/']").unwrap_err();
        assert_eq!(err.0, "oci.insecureRegistries[0]");
        let err = parse("signatures: [{references: [a/b], keys: [/nonexistent/cosign.pub]}]")
            .unwrap_err();
        assert_eq!(err.0, "oci.signatures[0].keys[0]");
        assert!(err.1.contains("/nonexistent/cosign.pub"), "{err:?}");
        let err = parse("signatures: [{references: [a/b]}]").unwrap_err();
        assert!(err.1.contains("names no signer"), "{err:?}");
        let err = parse("signatures: [{references: [a/b], keyless: [{issuer: i, subject: s}]}]")
            .unwrap_err();
        assert_eq!(err.0, "oci.signatures[0].trustRoot");
    }

    #[test]
    fn a_key_file_must_be_a_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pub");
        std::fs::write(&path, "not a key").unwrap();
        let err = parse(&format!(
            "signatures: [{{references: [a/b], keys: ['{}']}}]",
            path.display()
        ))
        .unwrap_err();
        assert!(err.1.contains("not a PEM public key"), "{err:?}");
        let (_, public) = super::super::generate_key_pair().unwrap();
        std::fs::write(&path, public).unwrap();
        let c = parse(&format!(
            "signatures: [{{references: [a/b], keys: ['{}']}}]",
            path.display()
        ))
        .unwrap();
        assert_eq!(c.signatures.rules[0].keys.len(), 1);
    }
}
