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
        config.write(&env, &dir.path().join("kafkatos3.cfg"));
        let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join(format!("daemon-{codec}.log")));
        produce(&env, &topic, 2, round as u64 * 100, 100, &mut produced).await;
        let archive = wait_for_archive(s3.as_ref(), &prefix, (round + 1) * 100, Duration::from_secs(60)).await;
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
