//! End to end: how objects are written to S3 - server-side encryption (SSE-KMS with a key id),
//! storage class and tags of the data objects, path-style addressing - checked on the objects
//! themselves. The shared test server (s3s-fs) neither keeps these nor accepts a storage class
//! other than STANDARD, so this test runs its own moto server, which records them as S3 does.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// What the script prints per object: key, storage class, encryption, KMS key, tags.
type Head = (String, Option<String>, Option<String>, Option<String>, Vec<(String, String)>);

/// A moto S3 server on a free port, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start(python: &str) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto (scripts/install-deps.sh installs it)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a boto3 script against the server; its stdout.
fn boto3(python: &str, endpoint: &str, script: &str) -> String {
    let program = format!(
        "import boto3, json\ns3 = boto3.client('s3', endpoint_url='{endpoint}', aws_access_key_id='AK', \
         aws_secret_access_key='SK', region_name='us-east-1')\n{script}"
    );
    let out = Command::new(python).args(["-c", &program]).output().expect("python");
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_objects_carry_the_configured_encryption_storage_class_and_tags_and_claims_stay_standard() {
    let env = env();
    let python = std::env::var("KAFKATOS3_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let moto = Moto::start(&python);
    boto3(&python, &moto.endpoint, "s3.create_bucket(Bucket='options')");
    let topic = unique("e2e-s3-options");
    create_topic(&env, &topic, 2).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, 2, 0, 100, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let config = DaemonConfig::new(&env, &dir.path().join("work"), &unique("g"), &[&topic], "unused");
    let path = dir.path().join("k.cfg");
    config.write(&env, &path);
    // The shared server's bucket and keys replaced by moto's, and the options added.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with("s3_bucket_name") && !line.starts_with("s3_endpoint"))
        .filter(|line| !line.starts_with("s3_access_key") && !line.starts_with("s3_secret_key"))
        .map(str::to_owned)
        .collect();
    let s3 = lines.iter().position(|line| line == "[s3]").unwrap();
    let options = [
        "s3_bucket_name = options".to_string(),
        format!("s3_endpoint = {}", moto.endpoint),
        "s3_access_key = AK".into(),
        "s3_secret_key = SK".into(),
        "s3_sse = aws:kms".into(),
        "s3_sse_kms_key_id = arn:aws:kms:us-east-1:123456789012:key/archive".into(),
        "s3_addressing = path".into(),
    ];
    lines.splice(s3 + 1..s3 + 1, options);
    lines.push("[store]\nstorage_class = STANDARD_IA\nobject_tags = team=data, retention=7y".into());
    std::fs::write(&path, lines.join("\n")).unwrap();

    let daemon = Daemon::start(&path, &dir.path().join("k.log"));
    let listing =
        "keys = [o['Key'] for o in s3.list_objects_v2(Bucket='options').get('Contents', [])]\nprint(json.dumps(keys))";
    let deadline = Instant::now() + Duration::from_secs(90);
    let keys: Vec<String> = loop {
        let keys: Vec<String> = serde_json::from_str(&boto3(&python, &moto.endpoint, listing)).unwrap();
        // Both partitions' objects, each with its claim (written after its object).
        let count = |part: &str| keys.iter().filter(|k| k.contains(part)).count();
        if (count(".mak") >= 2 && count(".claim") >= 2) || Instant::now() > deadline {
            break keys;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let log = daemon.log_tail();
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    assert!(status.success(), "{log}");

    let (data, claims): (Vec<&String>, Vec<&String>) =
        keys.iter().filter(|k| !k.contains("_kafkatos3/")).partition(|k| k.contains(".mak"));
    assert!(data.len() >= 2 && claims.len() >= 2, "{keys:?}\n{log}");
    let heads = boto3(
        &python,
        &moto.endpoint,
        &format!(
            "for key in {keys:?}:\n    h = s3.head_object(Bucket='options', Key=key)\n    \
             t = s3.get_object_tagging(Bucket='options', Key=key)['TagSet']\n    \
             print(json.dumps([key, h.get('StorageClass'), h.get('ServerSideEncryption'), h.get('SSEKMSKeyId'), sorted((x['Key'], x['Value']) for x in t)]))",
            keys = data.iter().chain(&claims).collect::<Vec<_>>()
        ),
    );
    for line in heads.lines() {
        let (key, class, sse, kms, tags): Head = serde_json::from_str(line).unwrap();
        assert_eq!(sse.as_deref(), Some("aws:kms"), "{key}: every object is encrypted with the key");
        assert_eq!(kms.as_deref(), Some("arn:aws:kms:us-east-1:123456789012:key/archive"), "{key}");
        if key.contains(".mak") {
            assert_eq!(class.as_deref(), Some("STANDARD_IA"), "{key}: data objects in the configured class");
            let expected = [("retention".to_string(), "7y".to_string()), ("team".into(), "data".into())];
            assert_eq!(tags, expected, "{key}: data objects tagged");
        } else {
            assert!(
                class.is_none() || class.as_deref() == Some("STANDARD"),
                "{key}: claims stay STANDARD, got {class:?}"
            );
            assert!(tags.is_empty(), "{key}: claims untagged");
        }
    }
    assert_eq!(heads.lines().count(), data.len() + claims.len());
}
