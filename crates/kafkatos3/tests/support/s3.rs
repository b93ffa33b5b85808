//! A private S3 server (s3s-fs) a test may stop and start without disturbing the others.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestEnv;

/// A private s3s-fs server, for tests that take S3 away: stopping the shared one would break the
/// tests running beside them. The port and data survive a stop/start.
pub struct PrivateS3 {
    child: Option<Child>,
    pub port: u16,
    pub data: PathBuf,
    env: TestEnv,
}

fn s3s_fs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KAFKATOS3_TEST_S3S_FS") {
        return PathBuf::from(path);
    }
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("s3s-fs")).collect::<Vec<_>>())
        .unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"));
    candidates
        .into_iter()
        .chain(home)
        .find(|p| p.is_file())
        .expect("s3s-fs not found: run scripts/install-deps.sh (or set KAFKATOS3_TEST_S3S_FS)")
}

impl PrivateS3 {
    pub fn start(env: &TestEnv, data: &Path) -> PrivateS3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // s3s-fs keeps a bucket as a directory of its root.
        std::fs::create_dir_all(data.join(&env.bucket)).unwrap();
        let mut s3 = PrivateS3 { child: None, port, data: data.to_path_buf(), env: env.clone() };
        s3.up();
        s3
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn up(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(s3s_fs_binary())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                &self.env.access_key,
                "--secret-key",
                &self.env.secret_key,
            ])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateS3 {
    fn drop(&mut self) {
        self.down();
    }
}
