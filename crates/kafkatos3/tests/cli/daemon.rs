//! `kafkatos3` (the daemon): start-up checks that need no broker, and the binaries' own names.

use super::*;

/// A valid configuration (never started: every test breaks it). Lines: [main] 1,
/// working_directory 2, [consumer] 3, kafka_bootstrap 4, kafka_consumer_group 5,
/// topic_whitelist 6, [s3] 7, s3_bucket_name 8.
fn config_text(dir: &Path) -> String {
    format!(
        "[main]\n\
         working_directory = {}\n\
         [consumer]\n\
         kafka_bootstrap = 127.0.0.1:9\n\
         kafka_consumer_group = group\n\
         topic_whitelist = events\n\
         [s3]\n\
         s3_bucket_name = bucket\n",
        dir.join("work").display()
    )
}

/// Writes `text` to `<dir>/kafkatos3.cfg` and runs the daemon on it.
fn run_daemon_with(dir: &Path, text: &str) -> (PathBuf, Run) {
    let path = dir.join("kafkatos3.cfg");
    fs::write(&path, text).unwrap();
    let out = run(DAEMON, [&path]);
    (path, out)
}

#[test]
fn daemon_unknown_key_exits_2_naming_file_line_and_nearest_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path()).replace("kafka_bootstrap =", "kafka_bootstrapp =");
    let (path, out) = run_daemon_with(dir.path(), &text);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr_line(),
        format!(
            "kafkatos3: {}:4: unknown key 'kafka_bootstrapp' in [consumer]; did you mean 'kafka_bootstrap'?",
            path.display()
        )
    );
}

#[test]
fn daemon_missing_required_key_exits_2_naming_section_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path()).replace("kafka_consumer_group = group\n", "");
    let (path, out) = run_daemon_with(dir.path(), &text);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert_eq!(
        out.stderr_line(),
        format!("kafkatos3: {}: missing required key 'kafka_consumer_group' in [consumer]", path.display())
    );
}

#[test]
fn daemon_bad_value_exits_2_naming_line_key_value_and_what_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path()).replace("[consumer]\n", "[consumer]\nconsumer_processes = many\n");
    let (path, out) = run_daemon_with(dir.path(), &text);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert_eq!(
        out.stderr_line(),
        format!(
            "kafkatos3: {}:4: [consumer] consumer_processes = 'many': expected a whole number >= 1",
            path.display()
        )
    );
}

#[test]
fn daemon_never_prints_the_s3_secret_key_in_config_errors() {
    const SECRET: &str = "cli-secret-value-must-not-print";
    let dir = tempfile::tempdir().unwrap();
    let base = config_text(dir.path());
    let cases = [
        // Secret without access key: incomplete credentials.
        (
            base.replace("[s3]\n", &format!("[s3]\ns3_secret_key = {SECRET}\n")),
            "s3_secret_key is set but s3_access_key is not",
        ),
        // The `=` forgotten: the whole line is malformed.
        (
            base.replace("[s3]\n", &format!("[s3]\ns3_access_key = AK\ns3_secret_key {SECRET}\n")),
            "expected '[section]', 'key = value' or 'key: value'",
        ),
        // Continued on the next line: an invalid secret value.
        (
            base.replace("[s3]\n", &format!("[s3]\ns3_access_key = AK\ns3_secret_key = {SECRET}\n  {SECRET}\n")),
            "s3_secret_key = <redacted>",
        ),
        // Valid credentials in a file that fails later.
        (
            format!("{base}s3_access_key = AK\ns3_secret_key = {SECRET}\ns3uploader_workers = 0\n"),
            "s3uploader_workers = '0'",
        ),
        // Set twice.
        (
            format!("{base}s3_access_key = AK\ns3_secret_key = {SECRET}\ns3_secret_key = {SECRET}\n"),
            "duplicate key 's3_secret_key'",
        ),
    ];
    for (text, expected) in cases {
        let (_, out) = run_daemon_with(dir.path(), &text);
        assert_eq!(out.code(), Some(2), "{text}\n{out:?}");
        let line = out.stderr_line();
        assert!(line.contains(expected), "{text}\n{line}");
        assert!(!out.stderr.contains(SECRET), "secret leaked: {line}");
        assert!(!out.stdout.contains(SECRET), "secret leaked: {}", out.stdout);
    }
}

#[test]
fn daemon_missing_config_file_exits_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.cfg");
    let out = run(DAEMON, [&path]);
    assert_eq!(out.code(), Some(2), "{out:?}");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3: {}: cannot read config file: ", path.display())), "{line}");
}

#[test]
fn daemon_prints_its_version() {
    let out = run(DAEMON, ["--version"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("kafkatos3 {}\n", env!("CARGO_PKG_VERSION")));
}

/// Like their usage line, `--version` names the tool that was run.
#[test]
fn parse_and_rotate_print_their_own_name_and_version() {
    for (program, name) in [(PARSE, "kafkatos3_parse"), (ROTATE, "kafkatos3_rotate")] {
        let out = run(program, ["--version"]);
        assert_eq!(out.code(), Some(0), "{out:?}");
        assert_eq!(out.stdout, format!("{name} {}\n", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn every_tool_without_arguments_fails_with_usage() {
    for (program, usage) in [
        (DAEMON, "Usage: kafkatos3 [CONFIGFILE]"),
        (PARSE, "Usage: kafkatos3_parse <FILE>"),
        (ROTATE, "Usage: kafkatos3_rotate <WORKINGDIR>"),
    ] {
        let out = run(program, std::iter::empty::<&str>());
        assert_ne!(out.code(), Some(0), "{out:?}");
        assert_eq!(out.stdout, "");
        assert!(out.stderr.contains(usage), "{program}: {}", out.stderr);
    }
}

#[test]
fn daemon_raises_a_low_soft_open_files_limit_to_the_hard_limit_at_start() {
    use rustix::process::{getrlimit, Resource};
    let hard = getrlimit(Resource::Nofile).maximum;
    if hard.is_some_and(|hard| hard <= 256) {
        eprintln!("skipped: the hard open-files limit here is {hard:?}, no room above a soft limit of 256");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kafkatos3.cfg");
    fs::write(&config, config_text(dir.path())).unwrap();
    let log = dir.path().join("daemon.log");
    // prlimit lowers only the soft limit, then execs the daemon in the same process.
    let mut child = Command::new("prlimit")
        .arg("--nofile=256:")
        .arg("--")
        .arg(DAEMON)
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .expect("prlimit (util-linux) runs the daemon");
    let started = Instant::now();
    let line = loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("open files limit")) {
            break line.to_string();
        }
        assert!(started.elapsed() < DEADLINE, "no open files line in the daemon's log: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let now = hard.map_or_else(|| "unlimited".to_string(), |hard| hard.to_string());
    assert!(line.contains("raised to the hard limit"), "{line}");
    assert!(line.contains("before=256") && line.contains(&format!("now={now}")), "{line}");
}

#[test]
fn daemon_with_its_metrics_port_taken_stops_at_start_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let text = format!("{}[metrics]\nlisten = {addr}\n", config_text(dir.path()));
    let (_, out) = run_daemon_with(dir.path(), &text);
    assert!(!out.status.success());
    assert!(out.stderr.contains(&format!("[metrics] listen = {addr}: ")), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("address already in use"), "{}", out.stderr);
}
