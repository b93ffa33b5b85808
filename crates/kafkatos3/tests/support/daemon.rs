//! The daemon under test: its config file, its process, and a daemon whose uploads S3 refuses.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// Settings of one daemon under test.
pub struct DaemonConfig {
    pub workdir: PathBuf,
    pub group: String,
    pub topics: Vec<String>,
    pub prefix: String,
    pub endpoint: String,
    pub consumer_processes: usize,
    pub max_age_seconds: u64,
    pub extra_main: String,
    pub extra_consumer: String,
    pub extra_compression: String,
    pub extra_s3: String,
    /// Lines of `[kafka]` (librdkafka properties).
    pub extra_kafka: String,
    /// Whole sections after `[kafka]` (`[groups]`, ...).
    pub extra_sections: String,
    /// `[store] url`: the archive elsewhere than the test S3 server (`[s3]` then names no bucket).
    pub store_url: Option<String>,
}

impl DaemonConfig {
    pub fn new(env: &TestEnv, workdir: &Path, group: &str, topics: &[&str], prefix: &str) -> Self {
        DaemonConfig {
            workdir: workdir.to_path_buf(),
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            prefix: prefix.to_string(),
            endpoint: env.s3_endpoint.clone(),
            consumer_processes: 1,
            max_age_seconds: 2,
            extra_main: String::new(),
            extra_consumer: String::new(),
            extra_compression: String::new(),
            extra_s3: String::new(),
            extra_kafka: String::new(),
            extra_sections: String::new(),
            store_url: None,
        }
    }

    /// The original's four sections plus the new keys; session.timeout.ms is low because the
    /// test broker makes every join wait half of it.
    pub fn write(&self, env: &TestEnv, path: &Path) {
        let topics = self.topics.join(",");
        let archive = match &self.store_url {
            None => format!(
                "s3_bucket_name = {bucket}\ns3_access_key = {ak}\ns3_secret_key = {sk}\ns3_endpoint = {endpoint}\n\
                 s3_region = us-east-1\ns3_key_prefix = {prefix}",
                bucket = env.bucket,
                ak = env.access_key,
                sk = env.secret_key,
                endpoint = self.endpoint,
                prefix = self.prefix,
            ),
            Some(_) => String::new(),
        };
        let store = self.store_url.as_ref().map(|url| format!("[store]\nurl = {url}\n")).unwrap_or_default();
        let text = format!(
            "[main]\nlog.level = INFO\nworking_directory = {workdir}\nshutdown_timeout_seconds = 30\n{extra_main}\n\
             [consumer]\nconsumer_processes = {processes}\nkafka_bootstrap = {bootstrap}\nkafka_consumer_group = {group}\n\
             kafka_auto_offset_reset = earliest\nconsumer_nice_level = 5\ntopic_whitelist = {topics}\nmax_age_seconds = {max_age}\n\
             consumer_class = KafkaConfluentConsumer\nrebalance_timeout_seconds = 20\nflush_interval_ms = 200\n{extra_consumer}\n\n\
             [compression]\ncompression_check_interval = 2\ncompressor_workers = 2\ncompression_nice_level = 10\n{extra_compression}\n\n\
             [s3]\ns3upload_check_interval = 2\ns3uploader_workers = 2\n{archive}\ntopic_whitelist = {topics}\n{extra_s3}\n\n\
             [kafka]\nsession.timeout.ms = 6000\nheartbeat.interval.ms = 500\n{env_kafka}{extra_kafka}\n\n{store}{extra_sections}",
            workdir = self.workdir.display(),
            extra_main = self.extra_main,
            extra_consumer = self.extra_consumer,
            extra_compression = self.extra_compression,
            processes = self.consumer_processes,
            bootstrap = env.bootstrap,
            group = self.group,
            max_age = self.max_age_seconds,
            extra_s3 = self.extra_s3,
            extra_kafka = self.extra_kafka,
            env_kafka = env.kafka.iter().map(|(key, value)| format!("{key} = {value}\n")).collect::<String>(),
            extra_sections = self.extra_sections,
        );
        std::fs::write(path, text).expect("write config");
    }
}

/// A running `kafkatos3` process; killed with SIGKILL if the test drops it still running.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, log: &Path) -> Daemon {
        Daemon::start_args(&[config.as_os_str()], log)
    }

    /// `kafkatos3 ARGS...` (a subcommand such as `snapshot --config F`), logging into `log`.
    pub fn start_args(args: &[&std::ffi::OsStr], log: &Path) -> Daemon {
        Daemon::start_args_env(args, log, &[])
    }

    /// As [`Daemon::start_args`], with `vars` in its environment (an empty value: removed).
    pub fn start_args_env(args: &[&std::ffi::OsStr], log: &Path, vars: &[(&str, &str)]) -> Daemon {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_kafkatos3"));
        for (name, value) in vars {
            if value.is_empty() {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        let child = command
            .args(args)
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start kafkatos3");
        Daemon { child: Some(child), log: log.to_path_buf() }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().expect("wait").is_none())
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("pid");
        rustix::process::kill_process(pid, signal).expect("signal the daemon");
    }

    /// SIGTERM, then wait for the exit; the status and how long it took.
    pub fn terminate(mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        self.signal(rustix::process::Signal::TERM);
        let mut child = self.child.take().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                panic!("daemon did not exit within {timeout:?} of SIGTERM; log: {}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit by itself (a one-shot command).
    pub fn wait(mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        let mut child = self.child.take().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                panic!("kafkatos3 did not exit within {timeout:?}; log: {}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// kill -9: no chance to flush, seal or commit.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A daemon whose uploads S3 refuses (a wrong secret), so that what it consumes stays local.
pub struct RefusedUploads {
    pub dir: tempfile::TempDir,
    pub group: String,
    pub prefix: String,
    pub config: DaemonConfig,
}

impl RefusedUploads {
    pub fn start(env: &TestEnv, topic: &str, tune: impl FnOnce(&mut DaemonConfig)) -> (RefusedUploads, Daemon) {
        let dir = tempfile::tempdir().unwrap();
        let (group, prefix) = (unique("g"), unique("archive"));
        let mut config = DaemonConfig::new(env, &dir.path().join("work"), &group, &[topic], &prefix);
        config.max_age_seconds = 1;
        tune(&mut config);
        let wrong = TestEnv { secret_key: "not-the-secret".into(), ..env.clone() };
        config.write(&wrong, &dir.path().join("kafkatos3.cfg"));
        let daemon = Daemon::start(&dir.path().join("kafkatos3.cfg"), &dir.path().join("daemon.log"));
        (RefusedUploads { dir, group, prefix, config }, daemon)
    }

    /// Restarts on the same working directory with the right secret: every record produced is
    /// archived once and committed.
    pub async fn fix_and_check_all_archived(self, env: &TestEnv, produced: &ByPartition, records: usize) {
        let config_path = self.dir.path().join("kafkatos3.cfg");
        self.config.write(env, &config_path);
        let daemon = Daemon::start(&config_path, &self.dir.path().join("daemon.log"));
        let s3 = store(env, &env.s3_endpoint);
        let archive = wait_for_archive(s3.clone(), &self.prefix, records, Duration::from_secs(90)).await;
        assert_exactly_once(produced, &archive);
        let commits = wait_for_commits(env, &self.group, &expected_commits(produced), Duration::from_secs(20)).await;
        assert_eq!(commits, expected_commits(produced), "log:\n{}", daemon.log_tail());
        let (status, _) = daemon.terminate(Duration::from_secs(40));
        assert!(status.success());
    }
}
