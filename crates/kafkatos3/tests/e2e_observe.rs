//! End to end, as an operator's Prometheus sees the daemon: `/metrics`, `/healthz` and `/readyz`
//! while it archives, while S3 is away, once S3 is back, and when a second instance joins the group.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get(port, path)
}

/// The samples of metric `name` whose labels contain `filter`: (labels, value).
fn samples(text: &str, name: &str, filter: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = series.split_once('{').map_or((series, ""), |(m, l)| (m, l));
            if metric != name || !labels.contains(filter) {
                return None;
            }
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn sum(text: &str, name: &str, filter: &str) -> f64 {
    samples(text, name, filter).iter().map(|(_, v)| v).sum()
}

/// Scrapes until `done` holds for the page, or panics with the last page after `timeout`.
async fn scrape_until(port: u16, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < timeout {
        if let Some((200, text)) = tokio::task::spawn_blocking(move || get(port, "/metrics")).await.unwrap() {
            if done(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("/metrics never showed {what} within {timeout:?}; last page:\n{last}");
}

async fn probe_until(port: u16, path: &'static str, status: u16, timeout: Duration) -> String {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < timeout {
        last = tokio::task::spawn_blocking(move || get(port, path)).await.unwrap();
        if let Some((code, body)) = &last {
            if *code == status {
                return body.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{path} never answered {status} within {timeout:?}; last: {last:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_config(env: &TestEnv, config: &mut DaemonConfig, port: u16, path: &Path) {
    config.extra_sections = format!("[metrics]\nlisten = 127.0.0.1:{port}\n");
    config.write(env, path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_follow_the_archive_through_an_s3_outage_and_a_rebalance() {
    let env = env();
    let topic = unique("e2e-metrics");
    create_topic(&env, &topic, 2).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, 2, 0, 400, &mut produced).await;
    let payload = |produced: &ByPartition| -> f64 {
        produced.values().flatten().map(|r| (r.key.len() + r.value.len()) as f64).sum()
    };

    let dir = tempfile::tempdir().unwrap();
    let mut s3_server = PrivateS3::start(&env, &dir.path().join("s3"));
    let s3 = store(&env, &s3_server.endpoint());
    let (group, prefix) = (unique("g"), unique("archive"));
    let port = free_port();
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    config.endpoint = s3_server.endpoint();
    write_config(&env, &mut config, port, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));

    // Archiving: the counters move by exactly what was produced, lag and age settle at 0.
    wait_for_archive(s3.clone(), &prefix, 400, Duration::from_secs(60)).await;
    let bytes = payload(&produced);
    // The commit follows the upload at the consumer's next tick: both partitions committed to their ends.
    let text = scrape_until(port, "400 records archived, committed, and no lag", Duration::from_secs(60), |text| {
        sum(text, "kafkatos3_records_archived_total", &topic) == 400.0
            && samples(text, "kafkatos3_consumer_lag_records", &topic).len() == 2
            && sum(text, "kafkatos3_consumer_lag_records", &topic) == 0.0
            && sum(text, "kafkatos3_committed_offset", &topic) == 400.0
    })
    .await;
    assert_eq!(sum(&text, "kafkatos3_records_consumed_total", &topic), 400.0, "{text}");
    assert_eq!(sum(&text, "kafkatos3_bytes_consumed_total", &topic), bytes, "key and value bytes; {text}");
    assert!(sum(&text, "kafkatos3_bytes_uploaded_total", &topic) > 0.0, "{text}");
    assert_eq!(sum(&text, "kafkatos3_oldest_unarchived_record_age_seconds", &topic), 0.0, "{text}");
    assert_eq!(sum(&text, "kafkatos3_assigned_partitions", ""), 2.0, "{text}");
    assert!(sum(&text, "kafkatos3_rebalances_total", "") >= 1.0, "{text}");
    assert!(sum(&text, "kafkatos3_upload_duration_seconds_count", "") >= 2.0, "{text}");
    assert!(sum(&text, "kafkatos3_compression_input_bytes_total", "codec=\"zstd\"") > 0.0, "{text}");
    assert_eq!(samples(&text, "kafkatos3_build_info", env!("CARGO_PKG_VERSION")).len(), 1, "{text}");
    assert_eq!(samples(&text, "kafkatos3_files", "stage=").len(), 3, "{text}");
    assert!(sum(&text, "kafkatos3_memory_budget_bytes", "share=\"limit\"") > 0.0, "{text}");
    assert!(sum(&text, "kafkatos3_resident_memory_bytes", "") > 0.0, "{text}");
    probe_until(port, "/readyz", 200, Duration::from_secs(20)).await;
    let health = probe_until(port, "/healthz", 200, Duration::from_secs(5)).await;
    assert!(health.starts_with("ok"), "{health}");

    // S3 goes away while records keep coming: failures count, lag and the recovery point age
    // grow, readiness turns false and says why.
    s3_server.down();
    produce(&env, &topic, 2, 400, 400, &mut produced).await;
    let text = scrape_until(port, "failed uploads, lag and an unarchived age", Duration::from_secs(60), |text| {
        sum(text, "kafkatos3_upload_failures_total", "") > 0.0
            && sum(text, "kafkatos3_consumer_lag_records", &topic) > 0.0
            && sum(text, "kafkatos3_oldest_unarchived_record_age_seconds", &topic) > 0.0
    })
    .await;
    assert_eq!(sum(&text, "kafkatos3_records_archived_total", &topic), 400.0, "nothing more is archived: {text}");
    let why = probe_until(port, "/readyz", 503, Duration::from_secs(30)).await;
    assert!(why.contains("the last upload failed"), "{why}");
    let age_then = sum(&text, "kafkatos3_oldest_unarchived_record_age_seconds", &topic);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = scrape_until(port, "a growing age", Duration::from_secs(10), |_| true).await;
    assert!(sum(&text, "kafkatos3_oldest_unarchived_record_age_seconds", &topic) > age_then, "{text}");
    assert!(sum(&text, "kafkatos3_upload_retries_total", "") > 0.0, "failed files are retried: {text}");

    // S3 returns: everything is archived, lag and age fall back to 0, ready again.
    s3_server.up();
    let archive = wait_for_archive(s3.clone(), &prefix, 800, Duration::from_secs(120)).await;
    assert_exactly_once(&produced, &archive);
    let text = scrape_until(port, "800 archived, lag and age back to 0", Duration::from_secs(60), |text| {
        sum(text, "kafkatos3_records_archived_total", &topic) == 800.0
            && sum(text, "kafkatos3_consumer_lag_records", &topic) == 0.0
            && sum(text, "kafkatos3_oldest_unarchived_record_age_seconds", &topic) == 0.0
    })
    .await;
    assert_eq!(sum(&text, "kafkatos3_records_consumed_total", &topic), 800.0, "{text}");
    probe_until(port, "/readyz", 200, Duration::from_secs(30)).await;

    // A second instance joins the group: each keeps the series of its own partition only.
    let second_port = free_port();
    let mut second = DaemonConfig::new(&env, &dir.path().join("work2"), &group, &[&topic], &prefix);
    second.endpoint = s3_server.endpoint();
    second.extra_main = "log.format = json".into();
    write_config(&env, &mut second, second_port, &dir.path().join("second.cfg"));
    let other = Daemon::start(&dir.path().join("second.cfg"), &dir.path().join("second.log"));
    let text = scrape_until(port, "one partition left", Duration::from_secs(90), |text| {
        samples(text, "kafkatos3_committed_offset", &topic).len() == 1
            && samples(text, "kafkatos3_consumer_lag_records", &topic).len() == 1
            && sum(text, "kafkatos3_assigned_partitions", "") == 1.0
    })
    .await;
    let kept = &samples(&text, "kafkatos3_consumer_lag_records", &topic);
    assert_eq!(
        samples(&text, "kafkatos3_records_consumed_total", &topic).len(),
        1,
        "the revoked partition's series are gone: {text}"
    );
    let theirs = scrape_until(second_port, "the other partition", Duration::from_secs(60), |text| {
        samples(text, "kafkatos3_consumer_lag_records", &topic).len() == 1
    })
    .await;
    let moved = &samples(&theirs, "kafkatos3_consumer_lag_records", &topic)[0].0;
    assert_ne!(moved, &kept[0].0, "each instance reports its own partition");

    // No secret in any log line or on the metrics page.
    let (status, _) = other.terminate(Duration::from_secs(40));
    assert!(status.success());
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
    let logs = ["daemon.log", "second.log"].map(|log| std::fs::read_to_string(dir.path().join(log)).unwrap());
    for text in logs.iter().chain([&text, &theirs]) {
        assert!(!text.contains(&env.secret_key), "the S3 secret key leaked");
    }
    // The second instance logs JSON: one object per line, topic and partition as fields of every
    // line about a partition.
    let mut about_a_partition = 0;
    for line in logs[1].lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(event["timestamp"].is_string() && event["level"].is_string() && event["message"].is_string(), "{line}");
        if event["message"] == "adopted partition" {
            assert_eq!(event["topic"], topic.as_str(), "{line}");
            assert!(event["partition"].is_i64(), "{line}");
            about_a_partition += 1;
        }
    }
    assert!(about_a_partition >= 1, "the second instance adopted a partition:\n{}", logs[1]);
}
