//! Registry credentials from a docker config (`config.json`, or the
//! `.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` pull Secret,
//! which is the same document): `auths` by registry host, each with
//! `auth` (base64 `user:password`) or `username` and `password`.
//!
//! Written here rather than with `docker_credential`: that crate runs the
//! credential helpers a config names (`credsStore`, `credHelpers`), and a
//! pull Secret's content comes from the cluster, where running a program
//! it names would be wrong. Helpers are not supported; the error says so.

use std::collections::HashMap;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use super::Error;

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

/// The host part of a key of `auths`: `https://ghcr.io/v2/` is `ghcr.io`.
fn host_of(key: &str) -> String {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "index.docker.io".into(),
        other => other.to_string(),
    }
}

/// The credentials `config` (a docker config document, from `source`) holds
/// for `registry`, or anonymous access if it holds none.
///
/// # Errors
/// [`Error::Credentials`] if the document is not a docker config, or its
/// entry for the registry cannot be used.
pub fn from_docker_config(
    config: &[u8],
    source: &str,
    registry: &str,
) -> Result<RegistryAuth, Error> {
    let bad = |message: String| Error::Credentials {
        origin: source.to_string(),
        message,
    };
    let parsed: DockerConfig = serde_json::from_slice(config)
        .map_err(|e| bad(format!("not a docker config (config.json): {e}")))?;
    let wanted = host_of(registry);
    let Some(entry) = parsed
        .auths
        .iter()
        .find(|(key, _)| host_of(key) == wanted)
        .map(|(_, e)| e)
    else {
        return Ok(RegistryAuth::Anonymous);
    };
    if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
        return Ok(RegistryAuth::Basic(user.clone(), password.clone()));
    }
    if let Some(auth) = &entry.auth {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| bad(format!("auths.{registry}.auth is not base64: {e}")))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| bad(format!("auths.{registry}.auth is not text")))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| bad(format!("auths.{registry}.auth is not user:password")))?;
        return Ok(RegistryAuth::Basic(user.into(), password.into()));
    }
    if let Some(token) = entry
        .registrytoken
        .as_ref()
        .or(entry.identitytoken.as_ref())
    {
        return Ok(RegistryAuth::Bearer(token.clone()));
    }
    Err(bad(format!(
        "auths.{registry} has neither auth nor username and password"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_and_username_password_entries_give_basic_credentials() {
        let config = br#"{"auths": {"https://ghcr.io/v2/": {"auth": "dXNlcjpwYXNz"}, "reg:5000": {"username": "a", "password": "b"}}}"#;
        match from_docker_config(config, "f", "ghcr.io").unwrap() {
            RegistryAuth::Basic(u, p) => assert_eq!((u.as_str(), p.as_str()), ("user", "pass")),
            other => panic!("{other:?}"),
        }
        match from_docker_config(config, "f", "reg:5000").unwrap() {
            RegistryAuth::Basic(u, p) => assert_eq!((u.as_str(), p.as_str()), ("a", "b")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_docker_config(config, "f", "quay.io").unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn docker_hub_has_several_names() {
        let config = br#"{"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"}}}"#;
        assert!(matches!(
            from_docker_config(config, "f", "docker.io").unwrap(),
            RegistryAuth::Basic(..)
        ));
    }

    #[test]
    fn a_broken_entry_is_an_error_naming_its_source() {
        let err = from_docker_config(
            br#"{"auths": {"r": {"auth": "%%%"}}}"#,
            "secret ns/regcred",
            "r",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("secret ns/regcred") && err.contains("base64"),
            "{err}"
        );
        let err = from_docker_config(b"not json", "config.json", "r")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a docker config"), "{err}");
    }
}
