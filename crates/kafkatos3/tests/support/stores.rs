//! The scenario every store outside S3 is tested with: two daemons of one group archive into the
//! store by its URL, one is killed -9 and restarted, and the tools read the archive by the URL.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// Where the archive is, as the daemons and the tools name it and as the test reads it.
pub struct StoreUnderTest<'a> {
    /// `[store] url` and `--store`: `file:///.../nightly`, `az://archive/nightly`.
    pub url: &'a str,
    /// The same archive read directly: the store and the archive's prefix in it.
    pub store: Arc<dyn object_store::ObjectStore>,
    pub prefix: &'a str,
    /// Environment of the daemons and the tools (an emulator's endpoint).
    pub vars: &'a [(&'a str, &'a str)],
}

/// What the scenario leaves for a test's own checks.
pub struct TwoDaemons {
    pub topic: String,
    pub produced: ByPartition,
    /// The archive once every record is in it.
    pub archive: Archive,
}

/// Two daemons of one group archive `first_batch` records of a new 4-partition topic into
/// `under`; one is killed -9, 200 more records are produced, it is restarted on its working
/// directory, 200 more: every record exactly once, both stop cleanly (SIGTERM), the first one's
/// log says the fence was checked and holds no ERROR. `dir` keeps the configs, working
/// directories and logs.
pub async fn two_daemons_and_a_kill(
    env: &TestEnv,
    dir: &Path,
    under: &StoreUnderTest<'_>,
    first_batch: u64,
) -> TwoDaemons {
    let topic = unique("e2e-store");
    create_topic(env, &topic, 4).await;
    let mut produced = ByPartition::new();
    produce(env, &topic, 4, 0, first_batch, &mut produced).await;
    let group = unique("g");
    let start = |name: &str| {
        let path = dir.join(format!("{name}.cfg"));
        if !path.exists() {
            let mut config = DaemonConfig::new(env, &dir.join(name), &group, &[&topic], "unused");
            config.store_url = Some(under.url.to_string());
            config.write(env, &path);
        }
        Daemon::start_args_env(&[path.as_os_str()], &dir.join(format!("{name}.log")), under.vars)
    };
    let mut daemons = vec![start("first"), start("second")];
    let wait = |count| wait_for_archive(under.store.clone(), under.prefix, count, Duration::from_secs(90));
    assert!(wait(first_batch as usize).await.total() >= first_batch as usize);
    daemons.remove(0).kill9();
    produce(env, &topic, 4, first_batch, 200, &mut produced).await;
    daemons.insert(0, start("first"));
    produce(env, &topic, 4, first_batch + 200, 200, &mut produced).await;
    let archive = wait(first_batch as usize + 400).await;
    assert_exactly_once(&produced, &archive);
    let logs: Vec<String> = daemons.iter().map(|d| d.log_tail()).collect();
    for daemon in daemons {
        let (status, _) = daemon.terminate(Duration::from_secs(40));
        assert!(status.success(), "logs:\n{}", logs.join("\n"));
    }
    let log = std::fs::read_to_string(dir.join("first.log")).unwrap();
    assert!(log.contains("the store refuses to overwrite a claim"), "the fence was checked: {log}");
    assert!(!log.contains(" ERROR "), "{log}");
    TwoDaemons { topic, produced, archive }
}

/// `kafkatos3 verify --deep` and `kafkatos3 ls` name the archive by its URL (ls as a root and a
/// `--prefix`) and find `topic`'s four partitions, clean.
pub fn tools_read(under: &StoreUnderTest<'_>, root: &str, topic: &str) {
    let verify = Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
        .args(["verify", "--store", under.url, "--deep"])
        .envs(under.vars.iter().copied())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "verify: {out}\n{}", String::from_utf8_lossy(&verify.stderr));
    for partition in 0..4 {
        assert!(out.contains(&format!("{topic}:{partition}")), "{out}");
    }
    assert!(out.contains("clean"), "{out}");
    let ls = Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
        .args(["ls", "--store", root, "--prefix", "nightly", "--json"])
        .envs(under.vars.iter().copied())
        .output()
        .unwrap();
    assert!(ls.status.success(), "{}", String::from_utf8_lossy(&ls.stderr));
    let listed = String::from_utf8_lossy(&ls.stdout);
    assert!(listed.contains(topic), "{listed}");
}
