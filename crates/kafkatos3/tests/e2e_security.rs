//! End to end against a secured broker (`[kafka]` security settings): TLS with server
//! verification and client certificates, SASL PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER, and
//! what a wrong password or an untrusted certificate looks like: one clear error line, retried,
//! never a hang or a crash.
//!
//! The test broker (Tansu 0.6.0) cannot serve TLS or a SASL login itself, so
//! `scripts/infra/start-kafka-secure.sh` puts a listener in front of it that terminates TLS and
//! does Kafka's SASL exchange (`scripts/infra/kafka-secure-proxy.py`); librdkafka talks to it as to
//! any secured broker.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use support::*;

use support::secure::SecureBroker;

/// librdkafka properties of a login.
type Settings = Vec<(&'static str, String)>;

fn directory_store(dir: &Path) -> Arc<dyn object_store::ObjectStore> {
    Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_archives_through_sasl_ssl_with_scram_and_a_client_certificate() {
    let broker = SecureBroker::start("sasl_ssl", "required");
    let password = broker.var("KAFKA_SASL_PASSWORD").to_string();
    let env = broker.env(
        &env(),
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", broker.var("KAFKA_SASL_USERNAME")),
            ("sasl.password", &password),
            ("ssl.ca.location", broker.var("KAFKA_CA")),
            ("ssl.certificate.location", broker.var("KAFKA_CLIENT_CERT")),
            ("ssl.key.location", broker.var("KAFKA_CLIENT_KEY")),
        ],
    );
    let topic = unique("e2e-sasl-ssl");
    create_topic(&env, &topic, 2).await;
    let mut produced = ByPartition::new();
    produce(&env, &topic, 2, 0, 200, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &unique("g"), &[&topic], "unused");
    config.store_url = Some(format!("file://{}", dir.path().join("archive").display()));
    let path = dir.path().join("k.cfg");
    config.write(&env, &path);
    let log = dir.path().join("k.log");
    let daemon = Daemon::start(&path, &log);
    let archive = wait_for_archive(directory_store(dir.path()), "archive", 200, Duration::from_secs(90)).await;
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert_exactly_once(&produced, &archive);
    assert!(!text.contains(&password), "the SASL password is never logged:\n{text}");
    assert!(broker.proxy_log().contains("authenticated as 'kafkatos3'"), "{}", broker.proxy_log());
}

/// A snapshot (no group join) per mechanism: each one's login works end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sasl_mechanism_and_tls_alone_carry_a_snapshot() {
    let sasl = SecureBroker::start("sasl_plaintext", "none");
    let tls = SecureBroker::start("ssl", "none");
    let user = sasl.var("KAFKA_SASL_USERNAME").to_string();
    let password = sasl.var("KAFKA_SASL_PASSWORD").to_string();
    let principal = format!("principal={user}");
    let login = |mechanism: &'static str| -> Settings {
        let mut settings =
            vec![("security.protocol", "SASL_PLAINTEXT".to_string()), ("sasl.mechanism", mechanism.into())];
        if mechanism == "OAUTHBEARER" {
            settings.push(("enable.sasl.oauthbearer.unsecure.jwt", "true".into()));
            settings.push(("sasl.oauthbearer.config", principal.clone()));
        } else {
            settings.push(("sasl.username", user.clone()));
            settings.push(("sasl.password", password.clone()));
        }
        settings
    };
    let cases: Vec<(&str, &SecureBroker, Settings)> = vec![
        ("PLAIN", &sasl, login("PLAIN")),
        ("SCRAM-SHA-256", &sasl, login("SCRAM-SHA-256")),
        ("OAUTHBEARER", &sasl, login("OAUTHBEARER")),
        ("TLS", &tls, vec![("security.protocol", "SSL".into()), ("ssl.ca.location", tls.var("KAFKA_CA").to_string())]),
    ];
    for (name, broker, settings) in cases {
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let env = broker.env(&env(), &settings);
        let topic = unique("e2e-login");
        create_topic(&env, &topic, 1).await;
        let mut produced = ByPartition::new();
        produce(&env, &topic, 1, 0, 30, &mut produced).await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = DaemonConfig::new(&env, &dir.path().join("work"), &unique("g"), &[&topic], "unused");
        config.store_url = Some(format!("file://{}", dir.path().join("archive").display()));
        let path = dir.path().join("k.cfg");
        config.write(&env, &path);
        let log = dir.path().join("snapshot.log");
        let args = [OsStr::new("snapshot"), OsStr::new("--config"), path.as_os_str()];
        let status = Daemon::start_args(&args, &log).wait(Duration::from_secs(60));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(status.success(), "{name}: {text}");
        let archive = wait_for_archive(directory_store(dir.path()), "archive", 30, Duration::from_secs(5)).await;
        assert_exactly_once(&produced, &archive);
    }
}

/// SIGTERM to a daemon that has been failing to log in: it stops cleanly and at once, and its log
/// has exactly one error line, naming `expected` and the retry. The log's text.
fn stop_with_one_error_line(name: &str, daemon: Daemon, log: &Path, expected: &str) -> String {
    let (status, took) = daemon.terminate(Duration::from_secs(20));
    let text = std::fs::read_to_string(log).unwrap();
    assert!(status.success(), "{name}: still running and stopping cleanly on SIGTERM, got {status}:\n{text}");
    assert!(took < Duration::from_secs(5), "{name}: stopped in {took:?}, no hang:\n{text}");
    let errors: Vec<&str> = text.lines().filter(|line| line.contains(" ERROR ")).collect();
    assert_eq!(errors.len(), 1, "{name}: one error line, not one per attempt:\n{text}");
    assert!(errors[0].contains(expected) && errors[0].contains("retrying"), "{name}: {}", errors[0]);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_an_untrusted_ca_is_one_clear_error_line_retried_until_stopped() {
    let broker = SecureBroker::start("sasl_ssl", "none");
    let user = broker.var("KAFKA_SASL_USERNAME");
    let cases = [
        ("wrong password", "not-the-password", broker.var("KAFKA_CA"), "kafka: the brokers refused the credentials"),
        (
            "untrusted CA",
            broker.var("KAFKA_SASL_PASSWORD"),
            broker.var("KAFKA_UNTRUSTED_CA"),
            "kafka: the TLS handshake failed",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut running = Vec::new();
    for (name, password, ca, expected) in cases {
        let env = broker.env(
            &env(),
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.username", user),
                ("sasl.password", password),
                ("ssl.ca.location", ca),
            ],
        );
        let work = dir.path().join(name.replace(' ', "-"));
        let mut config = DaemonConfig::new(&env, &work, &unique("g"), &["never-reached"], "unused");
        config.store_url = Some(format!("file://{}", work.join("archive").display()));
        let path = work.with_extension("cfg");
        config.write(&env, &path);
        let log = work.with_extension("log");
        running.push((name, expected, log.clone(), Daemon::start(&path, &log)));
    }
    // Long enough for several attempts; with the stop, well inside the 10 s between repeated
    // reports, so exactly one line is expected.
    std::thread::sleep(Duration::from_secs(4));
    for (name, expected, log, daemon) in running {
        let text = stop_with_one_error_line(name, daemon, &log, expected);
        let about_kafka = ["librdkafka", "client error", "consumer error"];
        let about_kafka =
            text.lines().filter(|l| l.contains(" WARN ") && about_kafka.iter().any(|what| l.contains(what))).count();
        assert_eq!(about_kafka, 0, "{name}: nothing else about it:\n{text}");
    }
    assert!(
        broker.proxy_log().matches("authentication FAILED").count() >= 2,
        "it kept retrying: {}",
        broker.proxy_log()
    );
}

/// Amazon MSK's IAM login (`sasl.mechanism = AWS_MSK_IAM`): OAUTHBEARER tokens SigV4-signed with
/// the process's AWS credentials. The test listener checks each token as MSK does, with the SASL
/// user as the access key id and its password as the secret key. The daemon archives through it,
/// `verify` asks the broker through it; a wrong secret key, and no credentials at all, are each
/// one error line naming the cause, retried until stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msk_iam_tokens_carry_the_daemon_and_verify_and_bad_aws_credentials_are_one_clear_line() {
    let broker = SecureBroker::start("sasl_ssl", "none");
    let (key_id, secret) =
        (broker.var("KAFKA_SASL_USERNAME").to_string(), broker.var("KAFKA_SASL_PASSWORD").to_string());
    let ca = broker.var("KAFKA_CA").to_string();
    // The test's own producer logs in with SCRAM: only kafkatos3 speaks AWS_MSK_IAM.
    let setup = broker.env(
        &env(),
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", &key_id),
            ("sasl.password", &secret),
            ("ssl.ca.location", &ca),
        ],
    );
    let iam = broker
        .env(&env(), &[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "AWS_MSK_IAM"), ("ssl.ca.location", &ca)]);
    let topic = unique("e2e-msk-iam");
    create_topic(&setup, &topic, 2).await;
    let mut produced = ByPartition::new();
    produce(&setup, &topic, 2, 0, 150, &mut produced).await;

    let dir = tempfile::tempdir().unwrap();
    let write_config = |name: &str, topics: &[&str]| {
        let work = dir.path().join(name);
        std::fs::create_dir_all(&work).unwrap();
        let mut config = DaemonConfig::new(&iam, &work, &unique("g"), topics, "unused");
        config.store_url = Some(format!("file://{}", work.join("archive").display()));
        let path = work.with_extension("cfg");
        config.write(&iam, &path);
        path
    };
    // 127.0.0.1 is not an MSK address: the region comes from the environment.
    let aws = |secret: &str| vec![("AWS_ACCESS_KEY_ID", key_id.clone()), ("AWS_SECRET_ACCESS_KEY", secret.to_string())];
    let run = |path: &Path, log: &Path, args: &[&str], vars: &[(&str, String)]| {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.push(path.as_os_str());
        let mut vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        vars.push(("AWS_REGION", "eu-west-1"));
        Daemon::start_args_env(&all, log, &vars)
    };

    let path = write_config("archived", &[&topic]);
    let log = dir.path().join("archived.log");
    let daemon = run(&path, &log, &[], &aws(&secret));
    let archive =
        wait_for_archive(directory_store(&dir.path().join("archived")), "archive", 150, Duration::from_secs(90)).await;
    let (status, _) = daemon.terminate(Duration::from_secs(40));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert_exactly_once(&produced, &archive);
    assert!(!text.contains(" ERROR "), "{text}");
    assert!(
        broker.proxy_log().contains(&format!("authenticated as '{key_id}' with OAUTHBEARER (MSK IAM)")),
        "{}",
        broker.proxy_log()
    );

    // verify asks the broker for its log ends with the same login (a tool's client, no poll loop).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kafkatos3"))
        .args(["verify", "--config"])
        .arg(&path)
        .envs(aws(&secret))
        .env("AWS_REGION", "eu-west-1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}{}", String::from_utf8_lossy(&out.stderr));
    for partition in 0..2 {
        let kafka = format!("  {topic}:{partition}: kafka");
        assert!(report.lines().any(|l| l.starts_with(&kafka)), "the broker's log ends, asked through IAM:\n{report}");
    }

    // A snapshot plans (metadata, log ends) and reads with the same login; the daemon archived
    // everything, so it finds nothing left to do.
    let log = dir.path().join("snapshot.log");
    let status = run(&path, &log, &["snapshot", "--config"], &aws(&secret)).wait(Duration::from_secs(60));
    assert!(status.success(), "{}", std::fs::read_to_string(&log).unwrap());

    let cases = [
        ("wrong secret", aws("not-the-secret-key"), "kafka: the brokers refused the OAUTHBEARER token"),
        (
            "no credentials",
            // Nothing names credentials, and the instance metadata service is a port nothing
            // listens on (as off AWS).
            vec![
                ("AWS_ACCESS_KEY_ID", String::new()),
                ("AWS_SECRET_ACCESS_KEY", String::new()),
                ("AWS_SESSION_TOKEN", String::new()),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", String::new()),
                ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", String::new()),
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", String::new()),
                ("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none").display().to_string()),
                ("AWS_METADATA_ENDPOINT", "http://127.0.0.1:1".to_string()),
            ],
            "no AWS credentials found in the environment",
        ),
    ];
    let mut running = Vec::new();
    for (name, vars, expected) in cases {
        let path = write_config(&name.replace(' ', "-"), &["never-reached"]);
        let log = dir.path().join(format!("{}.log", name.replace(' ', "-")));
        running.push((name, expected, log.clone(), run(&path, &log, &[], &vars)));
    }
    std::thread::sleep(Duration::from_secs(6));
    for (name, expected, log, daemon) in running {
        stop_with_one_error_line(name, daemon, &log, expected);
    }
}
