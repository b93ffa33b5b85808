//! Every codec through the daemon, against the real broker and S3 server: objects carry the
//! codec's suffix, the codec's own command-line tool reads them, and changing the codec between
//! runs continues the same archive (the claims do not depend on the codec).

mod support;

use std::io::Read;
use std::time::Duration;

use support::*;

/// The command-line tool that decompresses a suffix to stdout, and the bytes it printed.
fn decompress_with_cli(suffix: &str, data: &[u8]) -> Vec<u8> {
    let tool = match suffix {
        ".mak.gz" => "gzip",
        ".mak.zst" => "zstd",
        ".mak.lz4" => "lz4",
        other => panic!("no tool for {other}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("object{suffix}"));
    std::fs::write(&file, data).unwrap();
    let out = std::process::Command::new(tool)
        .args(["-d", "-c"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("running {tool} (scripts/install-deps.sh installs it): {e}"));
    assert!(out.status.success(), "{tool} -d -c {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_codec_archives_under_its_suffix_readable_by_its_tool_and_a_codec_change_continues_the_archive() {
    let env = env();
    let topic = unique("codecs");
    create_topic(&env, &topic, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("codecs"));
    let s3 = store(&env, &env.s3_endpoint);
    let mut produced = ByPartition::new();
    let runs = [("gzip", "compression_level = 1", ".mak.gz"), ("zstd", "compression_level = 19", ".mak.zst")];
    let runs = runs.into_iter().chain([("lz4", "compression_level = 9", ".mak.lz4"), ("none", "", ".mak")]);
    for (round, (codec, level, suffix)) in runs.enumerate() {
        let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
        config.extra_compression = format!("compression = {codec}\n{level}");
        // zstd 19's tables (about 90 MiB per compressor worker) need a larger memory budget.
        config.extra_main = "memory_limit_bytes = 1GiB".into();
        config.write(&env, &dir.path().join("kafkatos3.cfg"));
        let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join(format!("daemon-{codec}.log")));
        produce(&env, &topic, 2, round as u64 * 100, 100, &mut produced).await;
        let archive = wait_for_archive(s3.clone(), &prefix, (round + 1) * 100, Duration::from_secs(60)).await;
        let (status, _) = daemon.terminate(Duration::from_secs(40));
        assert!(status.success(), "{codec} run exits cleanly");
        assert_exactly_once(&produced, &archive);
        let new: Vec<&String> = archive.keys.iter().filter(|k| k.ends_with(suffix)).collect();
        assert!(!new.is_empty(), "{codec}: objects named {suffix}: {:?}", archive.keys);
        if codec != "none" {
            for key in new {
                let bytes = object_store::ObjectStoreExt::get(s3.as_ref(), &key.as_str().into())
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let mut ours = Vec::new();
                mak::codec::Decoder::detect(&bytes[..]).unwrap().read_to_end(&mut ours).unwrap();
                assert!(decompress_with_cli(suffix, &bytes) == ours, "{key}: the tool reads what we read");
            }
        }
        assert!(archive.unclaimed.is_empty(), "no unclaimed objects: {:?}", archive.unclaimed);
    }
}

/// Runs `command`, asserting success, and returns its stdout.
fn run(command: &mut std::process::Command) -> Vec<u8> {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_archives_are_read_with_the_key_by_parse_and_by_the_age_tool_and_never_without_it() {
    let env = env();
    let topic = unique("age");
    create_topic(&env, &topic, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let (group, prefix) = (unique("g"), unique("age"));
    let s3 = store(&env, &env.s3_endpoint);
    // A fresh key pair from the real age-keygen: the daemon gets the public key only.
    let identity = dir.path().join("identity.txt");
    run(std::process::Command::new("age-keygen").arg("-o").arg(&identity));
    let public = run(std::process::Command::new("age-keygen").arg("-y").arg(&identity));
    let public = String::from_utf8(public).unwrap().trim().to_string();
    let passphrase = dir.path().join("passphrase.txt");
    std::fs::write(&passphrase, "correct horse battery staple\n").unwrap();
    let decryption = mak::crypt::Decryption::new(&mak::crypt::DecryptionSpec {
        identities: vec![mak::crypt::SecretSource::identity(identity.to_str().unwrap()).unwrap()],
        passphrase: Some(mak::crypt::SecretSource::passphrase(&format!("file:{}", passphrase.display())).unwrap()),
    })
    .unwrap();
    let mut produced = ByPartition::new();
    let runs = [
        ("compression = zstd".to_string(), format!("age_recipients = {public}"), ".mak.zst.age"),
        ("compression = gzip".to_string(), format!("age_passphrase = file:{}", passphrase.display()), ".mak.gz.age"),
    ];
    for (round, (compression, encryption, suffix)) in runs.into_iter().enumerate() {
        let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &group, &[&topic], &prefix);
        config.extra_compression = format!("{compression}\n\n[encryption]\n{encryption}");
        config.write(&env, &dir.path().join("kafkatos3.cfg"));
        let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join(format!("daemon-{round}.log")));
        produce(&env, &topic, 1, round as u64 * 50, 50, &mut produced).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let archive = loop {
            let archive = read_archive_with(s3.clone(), &prefix, Some(&decryption)).await;
            if archive.total() >= (round + 1) * 50 || std::time::Instant::now() > deadline {
                break archive;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let (status, _) = daemon.terminate(Duration::from_secs(40));
        assert!(status.success(), "run {round} exits cleanly");
        assert_exactly_once(&produced, &archive);
        let key = archive.keys.iter().rev().find(|k| k.ends_with(suffix)).expect("an object of this run").clone();
        let url = format!("s3://{}/{key}", env.bucket);
        let parse = |extra: &[&str]| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3_parse"));
            command.args([
                &url,
                "--json",
                "--bytes",
                "base64",
                "--endpoint",
                &env.s3_endpoint,
                "--region",
                "us-east-1",
            ]);
            command.args(extra);
            command.env("AWS_ACCESS_KEY_ID", &env.access_key).env("AWS_SECRET_ACCESS_KEY", &env.secret_key);
            command.output().unwrap()
        };
        let refused = parse(&[]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success() && stderr.contains(&url), "no key, no records: {stderr}");
        assert!(stderr.contains("--identity") && stderr.lines().count() == 1, "one line saying what to give: {stderr}");
        let key_flag = if round == 0 {
            ["--identity".to_string(), identity.display().to_string()]
        } else {
            ["--passphrase".to_string(), format!("file:{}", passphrase.display())]
        };
        let read = parse(&[&key_flag[0], &key_flag[1]]);
        assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
        let offsets: Vec<i64> = String::from_utf8(read.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"].as_i64().unwrap())
            .collect();
        assert!(!offsets.is_empty() && offsets.windows(2).all(|w| w[1] == w[0] + 1), "{key}: {offsets:?}");
        if round == 0 {
            // Without kafkatos3: `age -d -i identity | zstd -d` gives the MAK file back.
            let bytes = object_store::ObjectStoreExt::get(s3.as_ref(), &key.as_str().into()).await.unwrap();
            let bytes = bytes.bytes().await.unwrap();
            let object = dir.path().join("object.mak.zst.age");
            std::fs::write(&object, &bytes).unwrap();
            let zst = dir.path().join("object.mak.zst");
            run(std::process::Command::new("age").arg("-d").arg("-i").arg(&identity).arg("-o").arg(&zst).arg(&object));
            let plain = decompress_with_cli(".mak.zst", &std::fs::read(&zst).unwrap());
            let mut ours = Vec::new();
            mak::layers::archive_reader(&bytes[..], Some(&decryption)).unwrap().read_to_end(&mut ours).unwrap();
            assert!(plain == ours, "the age and zstd tools read what we read");
        }
    }
    let verify = |extra: &[String]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3"));
        command.args(["verify", "--deep", "--offline", "--config"]).arg(dir.path().join("kafkatos3.cfg")).args(extra);
        let out = command.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (code, out) = verify(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("encrypted objects checked by claim and name only"), "{out}");
    let keys = ["--identity".into(), identity.display().to_string()];
    let keys = [keys, ["--passphrase".into(), format!("file:{}", passphrase.display())]].concat();
    let (code, out) = verify(&keys);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("{topic}:0: offsets 0-99 in ")) && out.contains("100 records, clean"), "{out}");

    // Restore reads both runs' objects with the keys; without them it refuses, naming an object.
    let copy = unique("age-restored");
    let restore = |extra: &[String], state: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3"));
        command.args(["restore", "--config"]).arg(dir.path().join("kafkatos3.cfg"));
        command.args(["--topic-map", &format!("{topic}={copy}"), "--create-topics", "--state"]);
        command.arg(dir.path().join(state)).args(extra).output().unwrap()
    };
    let refused = restore(&[], "without-keys.json");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("s3://{}/{prefix}/{topic}/0/", env.bucket)), "{stderr}");
    let restored = restore(&keys, "with-keys.json");
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    let records = &produced[&(topic.clone(), 0)];
    let back = consume_partition(&env, &copy, 0, records.len());
    let back: Vec<_> =
        back.iter().map(|r| (r.key.clone().unwrap_or_default(), r.value.clone().unwrap_or_default())).collect();
    let expected: Vec<_> = records.iter().map(|r| (r.key.clone(), r.value.clone())).collect();
    assert_eq!(back, expected);
}
