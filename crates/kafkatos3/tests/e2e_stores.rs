//! End to end with the archive outside S3: a local directory (`[store] url = file:///...`), shared
//! by two daemons of one group, read back by the tools.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_archive_into_one_directory_exactly_once_and_the_tools_read_it() {
    let env = env();
    let dir = tempfile::tempdir().unwrap();
    let root = format!("file://{}", dir.path().join("archive").display());
    let url = format!("{root}/nightly");
    // The directory is created by the daemon; the claims are hard links it refuses to replace.
    let store: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let under = StoreUnderTest { url: &url, store, prefix: "archive/nightly", vars: &[] };
    let done = two_daemons_and_a_kill(&env, dir.path(), &under, 600).await;
    tools_read(&under, &root, &done.topic);

    // An object of the directory archive is a file: parse reads it as it is.
    let object = dir.path().join(&done.archive.keys[0]);
    let parse = Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
        .args(["parse", "--json", "--bytes", "base64"])
        .arg(&object)
        .output()
        .unwrap();
    assert!(parse.status.success(), "{}: {}", object.display(), String::from_utf8_lossy(&parse.stderr));
    let printed = String::from_utf8_lossy(&parse.stdout);
    let records = printed.lines().filter(|line| line.contains(&format!("\"topic\":\"{}\"", done.topic))).count();
    assert!(records > 0 && records == printed.lines().count(), "{}: {printed}", object.display());
}

/// Topics by pattern: `^` entries are regular expressions, and a topic created after the daemon
/// started that matches is archived too; one that does not match is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_whitelist_archives_matching_topics_including_one_created_later_and_no_other() {
    let env = env();
    let base = unique("e2e-pat");
    let (early, late, other) = (format!("{base}-a"), format!("{base}-b"), format!("{base}-other"));
    create_topic(&env, &early, 2).await;
    create_topic(&env, &other, 1).await;
    let mut produced = ByPartition::new();
    produce(&env, &early, 2, 0, 100, &mut produced).await;
    produce(&env, &other, 1, 0, 50, &mut ByPartition::new()).await;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("archive").display());
    let pattern = format!("^{}-[ab]$", regex_escape(&base));
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &unique("g"), &[&pattern], "unused");
    config.store_url = Some(url);
    // librdkafka matches the pattern at each metadata refresh (5 minutes by default).
    config.extra_kafka = "topic.metadata.refresh.interval.ms = 1000".into();
    let path = dir.path().join("k.cfg");
    config.write(&env, &path);
    let daemon = Daemon::start(&path, &dir.path().join("k.log"));

    let store: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let archive = wait_for_archive(store.clone(), "archive", 100, Duration::from_secs(90)).await;
    assert_eq!(archive.total(), 100, "{}", daemon.log_tail());
    create_topic(&env, &late, 3).await;
    produce(&env, &late, 3, 0, 90, &mut produced).await;
    let archive = wait_for_archive(store.clone(), "archive", 190, Duration::from_secs(90)).await;
    let log = daemon.log_tail();
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success(), "{log}");
    assert_exactly_once(&produced, &archive);
}

/// `base` as a regular expression matching itself.
fn regex_escape(base: &str) -> String {
    base.chars().flat_map(|c| if c.is_ascii_alphanumeric() { vec![c] } else { vec!['\\', c] }).collect()
}

#[test]
fn a_tool_given_a_bad_store_url_says_what_it_expects() {
    let out = Command::new(env!("CARGO_BIN_EXE_kafkatos3")).args(["verify", "--store", "ftp://x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--store ftp://x: expected s3://BUCKET[/PREFIX]"), "{stderr}");
}
