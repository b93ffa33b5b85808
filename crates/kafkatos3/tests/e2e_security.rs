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
        let (status, took) = daemon.terminate(Duration::from_secs(20));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(status.success(), "{name}: still running and stopping cleanly on SIGTERM, got {status}:\n{text}");
        assert!(took < Duration::from_secs(5), "{name}: stopped in {took:?}, no hang:\n{text}");
        let errors: Vec<&str> = text.lines().filter(|line| line.contains(" ERROR ")).collect();
        assert_eq!(errors.len(), 1, "{name}: one error line, not one per attempt:\n{text}");
        assert!(errors[0].contains(expected) && errors[0].contains("retrying"), "{name}: {}", errors[0]);
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
