//! A secured broker of the test's own: `scripts/infra/start-kafka-secure.sh` (a Tansu broker
//! behind a listener that speaks TLS and Kafka's SASL exchange), stopped when dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use super::TestEnv;

pub struct SecureBroker {
    /// What start-kafka-secure.sh printed: KAFKA_BOOTSTRAP, KAFKA_CA, KAFKA_SASL_PASSWORD, ...
    pub vars: HashMap<String, String>,
    state: tempfile::TempDir,
    scripts: PathBuf,
}

impl SecureBroker {
    /// `security` is ssl, sasl_plaintext or sasl_ssl; `client_auth` none or required.
    pub fn start(security: &str, client_auth: &str) -> SecureBroker {
        let scripts = PathBuf::from(super::required("KAFKATOS3_TEST_SCRIPTS"));
        let state = tempfile::tempdir().expect("state dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let out = Command::new(scripts.join("start-kafka-secure.sh"))
            .env("KAFKATOS3_INFRA_DIR", state.path())
            .env("KAFKA_SECURITY", security)
            .env("KAFKA_TLS_CLIENT_AUTH", client_auth)
            .env("KAFKA_PORT", port.to_string())
            .output()
            .expect("run start-kafka-secure.sh");
        assert!(out.status.success(), "start-kafka-secure.sh: {}", String::from_utf8_lossy(&out.stderr));
        let vars = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SecureBroker { vars, state, scripts }
    }

    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name).unwrap_or_else(|| panic!("start-kafka-secure.sh printed no {name}"))
    }

    /// `base` pointed at this broker with `kafka` as every client's security settings.
    pub fn env(&self, base: &TestEnv, kafka: &[(&str, &str)]) -> TestEnv {
        TestEnv {
            bootstrap: self.var("KAFKA_BOOTSTRAP").to_string(),
            kafka: kafka.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..base.clone()
        }
    }

    /// The proxy's log: one line per connection (handshakes, authentications).
    pub fn proxy_log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("kafka-proxy.log")).unwrap_or_default()
    }
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        let _ = Command::new(self.scripts.join("stop-kafka.sh")).env("KAFKATOS3_INFRA_DIR", self.state.path()).output();
    }
}
