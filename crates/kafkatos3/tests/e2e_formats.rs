//! End to end for the MAK format versions: the real daemon against the real broker and S3
//! server, read back with the real `kafkatos3_parse` binary (version 3, the default, and version
//! 2 on request) and with the original Python reader (`mak_format_version = 1`).

mod support;

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use support::*;

/// Decodes a JSON Lines record printed with `--bytes base64` back into a [`Full`].
fn from_json(line: &serde_json::Value) -> Full {
    let bytes = |value: &serde_json::Value| -> Option<Vec<u8>> {
        value.as_str().map(|text| base64::engine::general_purpose::STANDARD.decode(text).expect("base64"))
    };
    assert_eq!(line["timestamp_type"], "CreateTime", "{line}");
    Full {
        offset: line["offset"].as_i64().expect("offset"),
        timestamp: line["timestamp"].as_i64().expect("timestamp"),
        key: bytes(&line["key"]),
        value: bytes(&line["value"]),
        headers: line["headers"]
            .as_array()
            .expect("headers list")
            .iter()
            .map(|h| (h["key"].as_str().expect("header key").to_string(), bytes(&h["value"])))
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_3_archive_the_default_read_by_kafkatos3_parse_from_s3_gives_back_every_field_of_every_record_in_order()
{
    // No mak_format_version: the default, version 3.
    archive_and_read_back_every_field(None, mak::Version::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_archive_on_request_read_by_kafkatos3_parse_from_s3_gives_back_every_field_of_every_record_in_order()
{
    archive_and_read_back_every_field(Some(2), mak::Version::V2).await;
}

/// Archives varied records with `mak_format_version = setting` (absent: the default), checks every
/// object is `expected`, and reads them back through `kafkatos3_parse --json` straight from S3.
async fn archive_and_read_back_every_field(setting: Option<u8>, expected: mak::Version) {
    let env = env();
    let topic = unique("e2e-formats");
    create_topic(&env, &topic, 1).await;
    let mut produced = varied(120);
    produce_full(&env, &topic, 0, &mut produced).await;
    let from_broker = consume_plain(&env, &topic, produced.len());
    assert_eq!(from_broker, produced, "the broker itself returns every field as produced");

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let config = dir.path().join("kafkatos3.cfg");
    let mut daemon_config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    if let Some(version) = setting {
        daemon_config.extra_main = format!("mak_format_version = {version}");
    }
    daemon_config.write(&env, &config);
    let daemon = Daemon::start(&config, &dir.path().join("daemon.log"));
    let s3 = store(&env, &env.s3_endpoint);
    let archive = wait_for_archive(s3.clone(), &prefix, produced.len(), Duration::from_secs(90)).await;
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
    assert!(archive.versions.values().all(|v| *v == expected), "{:?}", archive.versions);

    let mut parsed = Vec::new();
    for key in &archive.keys {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3_parse"))
            .args(["--json", "--bytes", "base64", "--config"])
            .arg(&config)
            .arg(format!("s3://{}/{key}", env.bucket))
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{key}: {}", String::from_utf8_lossy(&out.stderr));
        for line in stdout.lines() {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!((line["topic"].as_str(), line["partition"].as_i64()), (Some(topic.as_str()), Some(0)));
            parsed.push(from_json(&line));
        }
    }
    assert_eq!(parsed.len(), produced.len());
    for (got, expected) in parsed.iter().zip(&produced) {
        assert_eq!(got, expected, "record at offset {}", expected.offset);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mak_format_version_1_writes_objects_the_original_python_reader_reads() {
    let env = env();
    let topic = unique("e2e-v1");
    create_topic(&env, &topic, 2).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, 2, 0, 200, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("archive"));
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
    config.extra_main = "mak_format_version = 1".into();
    config.write(&env, &dir.path().join("kafkatos3.cfg"));
    let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));
    let s3 = store(&env, &env.s3_endpoint);
    let archive = wait_for_archive(s3.clone(), &prefix, 200, Duration::from_secs(90)).await;
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
    assert_exactly_once(&produced, &archive);
    assert!(archive.versions.values().all(|v| *v == mak::Version::V1), "{:?}", archive.versions);

    // Every object, gunzipped, through the original's reader: `offset<TAB>hex(key)<TAB>hex(value)`.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mak/tests/golden/read_with_original.py");
    let python = std::env::var("KAFKATOS3_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut read = ByPartition::new();
    for key in &archive.keys {
        let bytes = object_store::ObjectStoreExt::get(s3.as_ref(), &key.as_str().into()).await.unwrap();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&bytes.bytes().await.unwrap()[..]).read_to_end(&mut plain).unwrap();
        let path = dir.path().join("object.mak");
        std::fs::write(&path, &plain).unwrap();
        let out = std::process::Command::new(&python).arg(&script).arg(&path).output().unwrap();
        assert!(out.status.success(), "{key}: {}", String::from_utf8_lossy(&out.stderr));
        let partition: i32 = key.rsplit('/').nth(1).unwrap().parse().unwrap();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let unhex = |text: &str| {
                (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
            };
            read.entry((topic.clone(), partition)).or_default().push(Produced {
                offset: fields[0].parse().unwrap(),
                key: unhex(fields[1]),
                value: unhex(fields[2]),
            });
        }
    }
    assert_eq!(read, produced, "the original's reader reads every record");

    // Restored, a v1 archive gives back what it holds (null stored as empty) and says what it lacks.
    let copy = unique("e2e-v1-restored");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
        .args(["restore", "--config"])
        .arg(dir.path().join("kafkatos3.cfg"))
        .args(["--topic-map", &format!("{topic}={copy}"), "--create-topics", "--state"])
        .arg(dir.path().join("restore.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("MAK v1 objects hold no headers and no timestamps"), "{stderr}");
    for ((_, partition), records) in &produced {
        let restored = consume_partition(&env, &copy, *partition, records.len());
        let pairs =
            |k: &Option<Vec<u8>>, v: &Option<Vec<u8>>| (k.clone().unwrap_or_default(), v.clone().unwrap_or_default());
        let restored: Vec<_> = restored.iter().map(|r| pairs(&r.key, &r.value)).collect();
        let expected: Vec<_> = records.iter().map(|r| (r.key.clone(), r.value.clone())).collect();
        assert_eq!(restored, expected, "partition {partition}");
    }
}
