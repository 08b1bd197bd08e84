//! `informant dev` as a user runs it: the real binary, its kubeconfig, its
//! manifests directory, and the opt-in fault endpoint.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

struct Dev {
    child: Child,
    url: String,
    kubeconfig: String,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `informant dev` on a free port and read the two lines it prints.
fn start(args: &[&str], kubeconfig: &Path) -> Dev {
    let mut child = Command::new(env!("CARGO_BIN_EXE_informant"))
        .args(["dev", "--server-only", "--port", "0", "--kubeconfig"])
        .arg(kubeconfig)
        .args(args)
        .env_remove("INFORMANT_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let hint = lines.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    assert_eq!(
        hint,
        format!("KUBECONFIG={} kubectl get ns", kubeconfig.display())
    );
    Dev {
        child,
        url,
        kubeconfig: kubeconfig.display().to_string(),
    }
}

fn client(dev: &Dev) -> kube::Client {
    informant::tls::install_crypto_provider();
    kube::Client::try_from(kube::Config::new(dev.url.parse().unwrap())).unwrap()
}

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn dev_keeps_the_server_in_sync_with_the_manifests_directory() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let file = manifests.join("app.yaml");
    let cm = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  color: {value}\n"
        )
    };
    std::fs::write(&file, cm("blue")).unwrap();
    let dev = start(
        &["--manifests", manifests.to_str().unwrap()],
        &dir.path().join("kubeconfig"),
    );
    assert!(
        std::fs::read_to_string(&dev.kubeconfig)
            .unwrap()
            .contains(&dev.url)
    );
    let api: Api<ConfigMap> = Api::namespaced(client(&dev), "default");
    let color = async |api: &Api<ConfigMap>| {
        api.get_opt("app")
            .await
            .unwrap()
            .and_then(|c| c.data)
            .map(|d| d["color"].clone())
    };

    assert_eq!(
        color(&api).await.as_deref(),
        Some("blue"),
        "seeded at start"
    );
    std::fs::write(&file, cm("green")).unwrap();
    eventually("the edit", async || {
        (color(&api).await.as_deref() == Some("green")).then_some(())
    })
    .await;

    // A broken file changes nothing; a fixed one applies again.
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(color(&api).await.as_deref(), Some("green"));
    std::fs::write(&file, cm("red")).unwrap();
    eventually("the fix", async || {
        (color(&api).await.as_deref() == Some("red")).then_some(())
    })
    .await;

    std::fs::remove_file(&file).unwrap();
    eventually("the delete", async || {
        api.get_opt("app").await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn dev_seeds_samples_and_serves_faults_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(&[], &dir.path().join("kubeconfig"));
    let client = client(&dev);
    let settings: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    assert!(
        settings.get_opt("settings").await.unwrap().is_some(),
        "the sample objects are seeded"
    );
    let post = |client: kube::Client, body: &'static str| async move {
        let request = http::Request::post("/informant/faults")
            .body(body.as_bytes().to_vec())
            .unwrap();
        client
            .send(request.map(kube::client::Body::from))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        post(client, r#"{"action":"compact"}"#).await,
        404,
        "the fault endpoint is off by default"
    );
    drop(dev);

    let dev = start(&["--faults"], &dir.path().join("kubeconfig2"));
    let client = self::client(&dev);
    for body in [
        r#"{"action":"compact"}"#,
        r#"{"action":"staleCache","enabled":true}"#,
        r#"{"action":"reset"}"#,
    ] {
        assert_eq!(post(client.clone(), body).await, 200, "{body}");
    }
    assert_eq!(
        post(client, r#"{"action":"unheardOf"}"#).await,
        400,
        "an unknown fault is refused"
    );
}
