//! End to end with the archive in Azure Blob Storage (`[store] url = az://container/prefix`),
//! against Azurite, Microsoft's emulator of the Blob REST API (Shared Key authentication,
//! `If-None-Match: *` on Put Blob): two daemons of one group, one of them killed -9 and restarted,
//! every record once, and the tools reading the archive by its URL.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

/// Azurite's development account and its published key (every Azurite has them).
const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An in-memory Azurite blob server on a free port, killed when dropped.
struct Azurite {
    child: Child,
    endpoint: String,
}

impl Azurite {
    fn start() -> Azurite {
        let bin = std::env::var("KAFKATOS3_TEST_AZURITE").expect("KAFKATOS3_TEST_AZURITE (scripts/test.sh sets it)");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite-blob");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "azurite did not listen on {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Azurite { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    fn create_container(&self, name: &str) {
        let scripts = std::path::PathBuf::from(required("KAFKATOS3_TEST_SCRIPTS"));
        let python = std::env::var("KAFKATOS3_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(python)
            .arg(scripts.join("azurite-mkcontainer.py"))
            .args([&self.endpoint, name])
            .output()
            .expect("azurite-mkcontainer.py");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// How a user points kafkatos3 at Azurite: object_store's emulator switch and its address.
    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![("AZURE_STORAGE_USE_EMULATOR", "true".into()), ("AZURITE_BLOB_STORAGE_URL", self.endpoint.clone())]
    }

    /// The test's own view of the container (explicit settings: the emulator's address is read
    /// from the environment only, and the test's environment is shared).
    fn store(&self, container: &str) -> Arc<dyn object_store::ObjectStore> {
        Arc::new(
            object_store::azure::MicrosoftAzureBuilder::new()
                .with_account(ACCOUNT)
                .with_access_key(KEY)
                .with_endpoint(format!("{}/{ACCOUNT}", self.endpoint))
                .with_allow_http(true)
                .with_container_name(container)
                .build()
                .unwrap(),
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_archive_into_an_azure_container_exactly_once_through_a_kill_and_the_tools_read_it() {
    let azurite = Azurite::start();
    azurite.create_container("archive");
    let vars = azurite.vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = env();
    let dir = tempfile::tempdir().unwrap();
    let url = "az://archive/nightly";
    let store = azurite.store("archive");
    let under = StoreUnderTest { url, store: store.clone(), prefix: "nightly", vars: &vars };
    let done = two_daemons_and_a_kill(&env, dir.path(), &under, 400).await;
    tools_read(&under, "az://archive", &done.topic);

    // Exported into the same container (files created if absent: Azure's If-None-Match), and
    // once only: a second run finds nothing new.
    let export = || {
        let out = Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
            .args(["export", "--store", url, "--to", "az://archive/lake", "--json"])
            .envs(vars.clone())
            .output()
            .unwrap();
        assert!(out.status.success(), "export: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(export()["records"], 800);
    assert_eq!(export()["records"], 0);
    let listed: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(store.list(Some(&"lake".into()))).await.unwrap();
    let files = listed.iter().filter(|m| m.location.as_ref().ends_with(".parquet")).count();
    assert!(files >= 4, "one file per partition and object at least: {files}");
}
