//! The process's TLS crypto provider. rustls is built with two (ring, and
//! aws-lc for the `sigstore` crate), and then has no default: every client
//! or server config built without an explicit provider (kube's, the
//! registry client's) would panic. So the host installs ring, the one kube
//! uses, before it builds any; installing again is harmless.

/// Install ring as the process's default rustls crypto provider, once.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means a provider is installed already: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
