//! Cosign signatures on plugins, with the `sigstore` crate: which references
//! must be signed and by whom (the operator's policy), verification before a
//! plugin loads (fail closed: an unsigned or wrongly signed digest is an
//! error), signing with a key, and key pairs for signing.
//!
//! A policy rule names references (`registry/repository`, or a prefix ending
//! in `*`) and who may sign them: public keys (PEM), or keyless identities
//! (an issuer and a subject: a workflow URL or an e-mail address), checked
//! against a trust root given offline (Fulcio certificates and Rekor keys
//! as files); any one of them is enough. A reference no rule names needs no
//! signature.

use std::collections::BTreeMap;

use oci_client::{Reference, secrets::RegistryAuth};
use sigstore::{
    cosign::{
        ClientBuilder, Constraint, CosignCapabilities, SignatureLayer,
        constraint::PrivateKeySigner,
        verification_constraint::{
            CertSubjectEmailVerifier, CertSubjectUrlVerifier, PublicKeyVerifier,
            VerificationConstraint, cert_subject_email_verifier::StringVerifier,
        },
    },
    crypto::SigningScheme,
    registry::{Auth, ClientConfig, ClientProtocol, OciReference},
    trust::ManualTrustRoot,
};

use super::Error;

/// Who may sign the references a rule names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// `registry/repository`, or a prefix of one ending in `*`.
    pub references: Vec<String>,
    /// Public keys (PEM), each with where it came from.
    pub keys: Vec<(String, Vec<u8>)>,
    /// Keyless identities.
    pub keyless: Vec<Identity>,
    /// The trust root keyless signatures are checked against.
    pub trust_root: Option<TrustRoot>,
}

/// A keyless signer: the OIDC issuer and the certificate's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `https://token.actions.githubusercontent.com`.
    pub issuer: String,
    /// A workflow URL, or an e-mail address.
    pub subject: String,
}

/// A Sigstore trust root, given offline: Fulcio's certificates (DER) and
/// Rekor's public keys (DER), as read from files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustRoot {
    /// Fulcio's root and intermediate certificates.
    pub fulcio_certs: Vec<Vec<u8>>,
    /// Rekor's public keys.
    pub rekor_keys: Vec<Vec<u8>>,
}

/// The operator's signature policy: rules, first match wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The rules.
    pub rules: Vec<Rule>,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// No rule names the reference: no signature was needed.
    NotRequired,
    /// Signed by one of the keys or identities the rule names.
    Signed {
        /// Which one: the key's source, or the identity.
        by: String,
    },
}

impl Rule {
    fn names(&self, repository: &str) -> bool {
        self.references
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => repository.starts_with(prefix),
                None => repository == pattern,
            })
    }
}

impl Policy {
    /// The rule that governs `reference`, if any.
    pub fn rule_for(&self, reference: &Reference) -> Option<&Rule> {
        let repository = format!("{}/{}", reference.registry(), reference.repository());
        self.rules.iter().find(|r| r.names(&repository))
    }

    /// Verify that `digest`, which `reference` resolved to, is signed as
    /// the policy requires.
    ///
    /// # Errors
    /// [`Error::Unsigned`] if a rule names the reference and no signature is
    /// found, [`Error::BadSignature`] if none verifies, or why the
    /// signatures could not be read.
    pub async fn verify(
        &self,
        reference: &Reference,
        digest: &str,
        auth: &RegistryAuth,
        insecure: &[String],
    ) -> Result<Verified, Error> {
        let Some(rule) = self.rule_for(reference) else {
            return Ok(Verified::NotRequired);
        };
        crate::tls::install_crypto_provider();
        let pinned = format!(
            "{}/{}@{digest}",
            reference.registry(),
            reference.repository()
        );
        let image: OciReference = pinned.parse().map_err(|e| Error::Signature {
            reference: pinned.clone(),
            message: format!("{e}"),
        })?;
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure.to_vec()),
            ..ClientConfig::default()
        };
        let root = rule.trust_root.as_ref().map(|t| ManualTrustRoot {
            fulcio_certs: t.fulcio_certs.iter().map(|c| c.clone().into()).collect(),
            rekor_keys: t
                .rekor_keys
                .iter()
                .map(|k| (super::registry::sha256(k)[7..].to_string(), k.clone()))
                .collect(),
            ctfe_keys: BTreeMap::new(),
        });
        let mut builder = ClientBuilder::default().with_oci_client_config(config);
        if let Some(root) = &root {
            builder = builder
                .with_trust_repository(root)
                .map_err(|e| signature_error(&pinned, &e))?;
        }
        let mut client = builder.build().map_err(|e| signature_error(&pinned, &e))?;
        let layers = client
            .trusted_signature_layers(&auth_of(auth), &image)
            .await
            .map_err(|e| signature_error(&pinned, &e))?;
        if layers.is_empty() {
            return Err(Error::Unsigned {
                reference: reference.whole(),
                digest: digest.to_string(),
            });
        }
        let mut tried = Vec::new();
        for (source, pem) in &rule.keys {
            let verifier = PublicKeyVerifier::try_from(pem).map_err(|e| Error::Signature {
                reference: pinned.clone(),
                message: format!("the public key from {source} cannot be used: {e}"),
            })?;
            if satisfied(&verifier, &layers) {
                return Ok(Verified::Signed {
                    by: format!("key {source}"),
                });
            }
            tried.push(format!("key {source}"));
        }
        for identity in &rule.keyless {
            let verifier: Box<dyn VerificationConstraint> =
                if identity.subject.contains('@') && !identity.subject.contains("://") {
                    Box::new(CertSubjectEmailVerifier {
                        email: StringVerifier::ExactMatch(identity.subject.clone()),
                        issuer: Some(StringVerifier::ExactMatch(identity.issuer.clone())),
                    })
                } else {
                    Box::new(CertSubjectUrlVerifier {
                        url: identity.subject.clone(),
                        issuer: identity.issuer.clone(),
                    })
                };
            if satisfied(verifier.as_ref(), &layers) {
                return Ok(Verified::Signed {
                    by: format!("{} ({})", identity.subject, identity.issuer),
                });
            }
            tried.push(format!("{} ({})", identity.subject, identity.issuer));
        }
        Err(Error::BadSignature {
            reference: reference.whole(),
            digest: digest.to_string(),
            signatures: layers.len(),
            tried: tried.join(", "),
        })
    }
}

/// Whether any of the signatures satisfies `constraint`.
fn satisfied(constraint: &dyn VerificationConstraint, layers: &[SignatureLayer]) -> bool {
    layers
        .iter()
        .any(|layer| constraint.verify(layer).unwrap_or(false))
}

fn auth_of(auth: &RegistryAuth) -> Auth {
    match auth {
        RegistryAuth::Anonymous => Auth::Anonymous,
        RegistryAuth::Basic(u, p) => Auth::Basic(u.clone(), p.clone()),
        RegistryAuth::Bearer(t) => Auth::Bearer(t.clone()),
    }
}

fn signature_error(reference: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Signature {
        reference: reference.to_string(),
        message: e.to_string(),
    }
}

/// Sign `digest` (what `reference` resolved to) with an ECDSA P-256 private
/// key (PEM, PKCS#8, or cosign's encrypted key with its password), and push
/// the signature where cosign looks for it (`sha256-<hex>.sig` in the same
/// repository). Returns that tag.
///
/// # Errors
/// [`Error::Signature`] if the key cannot be used or the signature cannot
/// be pushed.
pub async fn sign(
    reference: &Reference,
    digest: &str,
    key: &[u8],
    password: &[u8],
    auth: &RegistryAuth,
    insecure: &[String],
) -> Result<String, Error> {
    crate::tls::install_crypto_provider();
    let pinned = format!(
        "{}/{}@{digest}",
        reference.registry(),
        reference.repository()
    );
    let fail = |e: &dyn std::fmt::Display| signature_error(&pinned, e);
    let image: OciReference = pinned.parse().map_err(|e| fail(&e))?;
    let config = ClientConfig {
        protocol: ClientProtocol::HttpsExcept(insecure.to_vec()),
        ..ClientConfig::default()
    };
    let mut client = ClientBuilder::default()
        .with_oci_client_config(config)
        .build()
        .map_err(|e| fail(&e))?;
    let auth = auth_of(auth);
    let (signature_ref, _) = client
        .triangulate(&image, &auth)
        .await
        .map_err(|e| fail(&e))?;
    let mut layer = SignatureLayer::new_unsigned(&image, digest).map_err(|e| fail(&e))?;
    let signer = PrivateKeySigner::new_with_raw(
        zeroize::Zeroizing::new(key.to_vec()),
        zeroize::Zeroizing::new(password.to_vec()),
        &SigningScheme::ECDSA_P256_SHA256_ASN1,
    )
    .map_err(|e| Error::Signature {
        reference: pinned.clone(),
        message: format!(
            "the private key cannot be used (an ECDSA P-256 key in PEM is needed): {e}"
        ),
    })?;
    signer.add_constraint(&mut layer).map_err(|e| fail(&e))?;
    client
        .push_signature(None, &auth, &signature_ref, vec![layer])
        .await
        .map_err(|e| fail(&e))?;
    Ok(signature_ref.to_string())
}

/// A new ECDSA P-256 key pair for signing: the private key (PKCS#8 PEM,
/// unencrypted) and the public key (PEM), as cosign reads them.
///
/// # Errors
/// [`Error::Signature`] if the key cannot be made.
pub fn generate_key_pair() -> Result<(zeroize::Zeroizing<String>, String), Error> {
    let fail = |e: &dyn std::fmt::Display| signature_error("(new key)", e);
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .map_err(|e| fail(&e))?;
    let pair = signer.to_sigstore_keypair().map_err(|e| fail(&e))?;
    let private = pair.private_key_to_pem().map_err(|e| fail(&e))?;
    let public = pair.public_key_to_pem().map_err(|e| fail(&e))?;
    Ok((private, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rule_naming_the_repository_governs_it() {
        let rule = |r: &str| Rule {
            references: vec![r.into()],
            ..Rule::default()
        };
        let policy = Policy {
            rules: vec![rule("reg:5000/signed/*"), rule("reg:5000/exact")],
        };
        let r = |s: &str| s.parse::<Reference>().unwrap();
        assert!(policy.rule_for(&r("reg:5000/signed/a:1")).is_some());
        assert!(policy.rule_for(&r("reg:5000/exact@sha256:0000000000000000000000000000000000000000000000000000000000000000")).is_some());
        assert!(policy.rule_for(&r("reg:5000/exactly:1")).is_none());
        assert!(policy.rule_for(&r("reg:5000/other:1")).is_none());
    }

    #[test]
    fn generated_keys_are_pem() {
        let (private, public) = generate_key_pair().unwrap();
        assert!(private.contains("PRIVATE KEY"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(PublicKeyVerifier::try_from(public.as_bytes()).is_ok());
    }
}
