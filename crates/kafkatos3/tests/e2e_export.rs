//! End to end for `kafkatos3 export`: records archived by the real daemon from the real broker
//! into the real S3 server, exported by the real binary to Parquet (in S3 and in a directory),
//! and read back by DuckDB and pyarrow (PyPI `duckdb`, `pyarrow`), field by field.

mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;
use support::*;

const PARTITIONS: i32 = 3;

fn export(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kafkatos3")).args(["export", "--config"]).arg(config).args(args).output().unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).to_string()
}

fn hex(bytes: &Option<Vec<u8>>) -> Value {
    bytes.as_ref().map_or(Value::Null, |b| Value::String(b.iter().map(|x| format!("{x:02x}")).collect()))
}

/// `2020-09-13` and `12` of a timestamp (UTC).
fn date_hour(ms: i64) -> (String, i64) {
    let at = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap();
    (format!("{:04}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day()), i64::from(at.hour()))
}

/// The row the export must hold for a produced record, as read_export.py prints it.
fn expected_row(topic: &str, partition: i32, r: &Full) -> Value {
    let headers: Vec<Value> = r.headers.iter().map(|(k, v)| serde_json::json!([k, hex(v)])).collect();
    let text = r.value.as_ref().and_then(|v| String::from_utf8(v.clone()).ok());
    let (date, hour) = date_hour(r.timestamp);
    serde_json::json!([
        topic,
        partition,
        r.offset,
        r.timestamp,
        "CreateTime",
        hex(&r.key),
        hex(&r.value),
        headers,
        text,
        date,
        hour
    ])
}

/// Reads the export under `root` with pyarrow and DuckDB (and DuckDB's plan for one `date`).
fn read_with_engines(root: &Path, date: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/read_export.py");
    let out = Command::new("python3").arg(script).arg(root).arg(date).output().unwrap();
    assert!(out.status.success(), "read_export.py failed:\n{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sorted_rows(rows: &Value) -> Vec<Value> {
    let mut rows = rows.as_array().unwrap().clone();
    rows.sort_by_key(|r| (r[1].as_i64().unwrap(), r[2].as_i64().unwrap()));
    rows
}

/// Every object under `prefix` in `store`, copied below `dir` (its key minus the prefix).
async fn download(store: &dyn ObjectStore, prefix: &str, dir: &Path) -> usize {
    let listed: Vec<_> = store.list(Some(&prefix.into())).try_collect().await.unwrap();
    for meta in &listed {
        let rel = meta.location.as_ref().strip_prefix(prefix).unwrap().trim_start_matches('/');
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, store.get(&meta.location).await.unwrap().bytes().await.unwrap()).unwrap();
    }
    listed.len()
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        walk_files(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect();
    files.sort();
    files
}

/// (partition, offset) of every row of every Parquet file below `dir`, sorted, duplicates kept.
fn exported_offsets(dir: &Path) -> Vec<(i32, i64)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type};
    let mut all = Vec::new();
    for file in parquet_files(dir) {
        let bytes = bytes::Bytes::from(std::fs::read(&file).unwrap());
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            let partitions = batch.column_by_name("partition").unwrap().as_primitive::<Int32Type>();
            let offsets = batch.column_by_name("offset").unwrap().as_primitive::<Int64Type>();
            all.extend(partitions.values().iter().copied().zip(offsets.values().iter().copied()));
        }
    }
    all.sort_unstable();
    all
}

/// Archives `records[p]` into partition p of a new topic and stops the daemon once all are in
/// S3: the temp dir (keep it alive), the config, the topic.
async fn archived(env: &TestEnv, records: &mut [Vec<Full>]) -> (tempfile::TempDir, PathBuf, String) {
    let topic = unique("e2e-export");
    create_topic(env, &topic, records.len() as i32).await;
    for (partition, records) in records.iter_mut().enumerate() {
        produce_full(env, &topic, partition as i32, records).await;
    }
    let total = records.iter().map(Vec::len).sum();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kafkatos3.cfg");
    let (group, prefix) = (unique("g"), unique("archive"));
    DaemonConfig::new(env, &dir.path().join("work"), &group, &[&topic], &prefix).write(env, &config);
    let daemon = Daemon::start(&config, &dir.path().join("daemon.log"));
    wait_for_archive(store(env, &env.s3_endpoint), &prefix, total, Duration::from_secs(90)).await;
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success(), "{}", std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default());
    (dir, config, topic)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_and_pyarrow_read_every_field_of_every_record_once_and_a_date_query_reads_only_that_days_files() {
    let env = env();
    let all = varied(60 * PARTITIONS as usize);
    let mut records: Vec<Vec<Full>> = all.chunks(60).map(<[Full]>::to_vec).collect();
    let (dir, config, topic) = archived(&env, &mut records).await;

    // Into S3 (the archive's bucket, another prefix) and into a directory: the same files.
    let lake = unique("lake");
    let to_s3 = format!("s3://{}/{lake}", env.bucket);
    let out = export(&config, &["--to", &to_s3, "--value-format", "json", "--topics", "e2e-export-*"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("exported {} records into", all.len())), "{}", text(&out.stdout));
    let local = dir.path().join("lake");
    let to_dir = format!("file://{}", local.display());
    let out = export(&config, &["--to", &to_dir, "--value-format", "json", "--topics", &topic]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let from_s3 = dir.path().join("from-s3");
    download(store(&env, &env.s3_endpoint).as_ref(), &lake, &from_s3).await;
    let names = |root: &Path| -> Vec<PathBuf> {
        parquet_files(root).iter().map(|p| p.strip_prefix(root).unwrap().to_path_buf()).collect()
    };
    assert_eq!(names(&from_s3), names(&local), "the same files in S3 and in the directory");
    for name in names(&local) {
        assert_eq!(std::fs::read(from_s3.join(&name)).unwrap(), std::fs::read(local.join(&name)).unwrap(), "{name:?}");
    }

    // varied() stamps records in 2020-09-13, 2017-07-14 and 1970-01-01.
    let read = read_with_engines(&from_s3, "2020-09-13");
    let mut expected = Vec::new();
    for (partition, records) in records.iter().enumerate() {
        expected.extend(records.iter().map(|r| expected_row(&topic, partition as i32, r)));
    }
    expected.sort_by_key(|r| (r[1].as_i64().unwrap(), r[2].as_i64().unwrap()));
    assert_eq!(sorted_rows(&read["pyarrow"]), expected, "pyarrow");
    assert_eq!(sorted_rows(&read["duckdb"]), expected, "duckdb");
    let columns = &read["columns"];
    assert_eq!(columns["timestamp"], "timestamp[ms, tz=UTC]");
    assert_eq!(columns["headers"], "list<element: struct<key: string not null, value: binary> not null>");

    // A day's query opens that day's files only: the plan says so, and a damaged file of
    // another day does not disturb it.
    let query = &read["date_query"];
    let day_files: Vec<PathBuf> =
        names(&from_s3).into_iter().filter(|n| n.to_str().unwrap().contains("date=2020-09-13/")).collect();
    let day_rows = expected.iter().filter(|r| r[9] == "2020-09-13").count();
    assert_eq!(query["rows"], day_rows as u64);
    assert_eq!(query["files_read"], day_files.len() as u64, "{}", query["plan"]);
    assert!(query["files"].as_u64().unwrap() > day_files.len() as u64, "{}", query["plan"]);
    // (Not the first file: DuckDB takes the schema from it.)
    let other_day = names(&from_s3).into_iter().find(|n| n.to_str().unwrap().contains("date=2017-07-14/")).unwrap();
    std::fs::write(from_s3.join(other_day), b"not parquet").unwrap();
    let damaged = read_with_engines_day_only(&from_s3, "2020-09-13");
    assert_eq!(damaged, day_rows as u64);
}

/// Only DuckDB's count of one day's rows (the rest of the dataset may be unreadable).
fn read_with_engines_day_only(root: &Path, date: &str) -> u64 {
    let query = format!(
        "import duckdb; print(duckdb.sql(\"SELECT count(*) FROM read_parquet('{}/**/*.parquet', hive_partitioning = true) WHERE date = DATE '{date}'\").fetchall()[0][0])",
        root.display()
    );
    let out = Command::new("python3").args(["-c", &query]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().parse().unwrap()
}

/// (partition, offset) of every produced record, sorted.
fn once(produced: &BTreeMap<i32, Vec<Full>>) -> Vec<(i32, i64)> {
    let mut all: Vec<(i32, i64)> =
        produced.iter().flat_map(|(p, records)| records.iter().map(move |r| (*p, r.offset))).collect();
    all.sort_unstable();
    all
}

/// Records stamped an hour apart: each gets a file (and an hour folder) of its own, so an
/// export writes many files and can be killed between them.
fn hourly(count: usize, first_hour: i64) -> Vec<Full> {
    (0..count)
        .map(|i| Full {
            offset: -1,
            timestamp: (first_hour + i as i64) * 3_600_000,
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("v{i}").into_bytes()),
            headers: vec![],
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_killed_again_and_again_ends_with_every_record_once_and_follow_exports_what_arrives_later() {
    let env = env();
    let topic = unique("e2e-export-kill");
    create_topic(&env, &topic, 2).await;
    let mut produced: BTreeMap<i32, Vec<Full>> = BTreeMap::new();
    for partition in 0..2 {
        let mut records = hourly(60, 480_000 + i64::from(partition) * 1000);
        produce_full(&env, &topic, partition, &mut records).await;
        produced.insert(partition, records);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kafkatos3.cfg");
    let (group, prefix) = (unique("g"), unique("archive"));
    DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix).write(&env, &config);
    let daemon = Daemon::start(&config, &dir.path().join("daemon.log"));
    wait_for_archive(store(&env, &env.s3_endpoint), &prefix, 120, Duration::from_secs(90)).await;

    // 120 files to write: killed (SIGKILL) as soon as a few more files are there, each time.
    let lake = dir.path().join("lake");
    let to = format!("file://{}", lake.display());
    let mut kills = 0;
    loop {
        let before = parquet_files(&lake).len();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
            .args(["export", "--config"])
            .arg(&config)
            .args(["--to", &to, "--parallel", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "export failed after {kills} kills");
                break true;
            }
            if parquet_files(&lake).len() >= before + 7 {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                break false;
            }
            assert!(Instant::now() < deadline, "the export made no progress");
            std::thread::sleep(Duration::from_millis(2));
        };
        if finished {
            break;
        }
    }
    assert!(kills >= 3, "killed only {kills} times");
    assert_eq!(exported_offsets(&lake), once(&produced), "every record once after {kills} kills");

    // --follow: records produced while it runs are exported once the daemon archives them.
    let log = dir.path().join("follow.log");
    let args: Vec<&OsStr> = vec![
        OsStr::new("export"),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--to"),
        OsStr::new(&to),
        OsStr::new("--follow"),
        OsStr::new("--interval"),
        OsStr::new("1"),
        OsStr::new("--metrics-listen"),
        OsStr::new("127.0.0.1:0"),
    ];
    let follow = Daemon::start_args(&args, &log);
    assert!(wait_for_log(&log, "serving /metrics", Duration::from_secs(20)).await, "{}", follow.log_tail());
    let tail = follow.log_tail();
    let port: u16 = tail
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok())
        .unwrap_or_else(|| panic!("no port in {tail}"));
    for partition in 0..2 {
        let mut more = hourly(20, 490_000 + i64::from(partition) * 1000);
        produce_full(&env, &topic, partition, &mut more).await;
        produced.get_mut(&partition).unwrap().extend(more);
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while exported_offsets(&lake).len() < 160 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // As Prometheus sees it: the records of this process, nothing behind, ready. (Another pass
    // may be needed for the page to catch up with the files.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = http_get(port, "/metrics").map(|(_, body)| body).unwrap_or_default();
        if page.contains("kafkatos3_export_records_total 40") || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(page.contains("kafkatos3_export_records_total 40"), "{page}");
    assert!(
        page.contains(&format!("kafkatos3_export_behind_offsets{{topic=\"{topic}\",partition=\"1\"}} 0")),
        "{page}"
    );
    assert_eq!(http_get(port, "/readyz").map(|(status, _)| status), Some(200));
    let (status, took) = follow.terminate(Duration::from_secs(20));
    assert!(
        status.success() && took < Duration::from_secs(5),
        "{status:?} after {took:?}: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(exported_offsets(&lake), once(&produced), "{}", std::fs::read_to_string(&log).unwrap());
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success());
}
