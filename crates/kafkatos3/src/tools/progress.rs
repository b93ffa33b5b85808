//! How far `verify` or `ls` is through an archive: a progress bar on a terminal (objects, MB,
//! rate, ETA), a line every `--progress` interval otherwise (logs, CI, systemd), both on stderr,
//! so the report (or `--json`) on stdout stays as it is.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::archive::catalog::{CatalogObject, CatalogProgress};

/// What has been done so far; updated by the tool, read by [`run`].
#[derive(Debug)]
pub struct Progress {
    /// The tool's name, which starts each line.
    tool: &'static str,
    /// What the count counts: "objects checked", "object headers read".
    counting: &'static str,
    /// Set once the listing and the claims are read.
    listed: AtomicBool,
    objects: AtomicU64,
    bytes: AtomicU64,
    checked_objects: AtomicU64,
    checked_bytes: AtomicU64,
}

impl Progress {
    pub fn new(tool: &'static str, counting: &'static str) -> Self {
        Progress {
            tool,
            counting,
            listed: AtomicBool::new(false),
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            checked_objects: AtomicU64::new(0),
            checked_bytes: AtomicU64::new(0),
        }
    }

    /// The archive is listed: `objects` of `bytes` in all are to be checked.
    pub fn listed(&self, objects: u64, bytes: u64) {
        self.objects.store(objects, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
        self.listed.store(true, Ordering::Release);
    }

    /// One more object of `bytes` is done.
    pub fn checked(&self, bytes: u64) {
        self.checked_objects.fetch_add(1, Ordering::Relaxed);
        self.checked_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The line printed when stderr is not a terminal.
    fn line(&self, elapsed: Duration) -> String {
        let seconds = elapsed.as_secs_f64();
        if !self.listed.load(Ordering::Acquire) {
            return format!("{}: listing the archive and reading its claims ({seconds:.0} s)", self.tool);
        }
        let (done, total) = (self.checked_objects.load(Ordering::Relaxed), self.objects.load(Ordering::Relaxed));
        let megabytes = self.checked_bytes.load(Ordering::Relaxed) as f64 / 1e6;
        let total_megabytes = self.bytes.load(Ordering::Relaxed) as f64 / 1e6;
        let rate = done as f64 / seconds.max(0.001);
        format!(
            "{}: {done} of {total} {} ({megabytes:.1} of {total_megabytes:.1} MB), {rate:.0} objects/s, {seconds:.0} s",
            self.tool, self.counting
        )
    }
}

/// The catalog tells how far it is while it lists and reads headers.
impl CatalogProgress for Progress {
    fn listed(&self, objects: u64, bytes: u64) {
        Progress::listed(self, objects, bytes);
    }

    fn header_read(&self, object: &CatalogObject) {
        self.checked(object.size);
    }
}

/// Runs `work`, reporting `progress` on stderr meanwhile (see [`run`]); silently when `every` is
/// None.
pub fn reporting<T>(progress: &Progress, every: Option<Duration>, work: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    let done = &done;
    std::thread::scope(|scope| {
        if let Some(every) = every {
            scope.spawn(move || run(progress, done, every));
        }
        let result = work();
        done.store(true, Ordering::Relaxed);
        result
    })
}

/// Reports on stderr until `done`: a bar when it is a terminal, else a line every `every`.
pub fn run(progress: &Progress, done: &AtomicBool, every: Duration) {
    let template = format!("{} {{bar:30}} {{pos}}/{{len}} objects {{msg}} {{per_sec}} eta {{eta}}", progress.tool);
    let bar = crate::observe::progress::terminal_bar(0, &template);
    report(progress, done, every, bar, |line| eprintln!("{line}"));
}

/// Reports until `done` on `bar`, or without one a line to `line_out` every `every`.
fn report(
    progress: &Progress,
    done: &AtomicBool,
    every: Duration,
    bar: Option<indicatif::ProgressBar>,
    mut line_out: impl FnMut(String),
) {
    let started = Instant::now();
    let mut last_line = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(bar) = &bar {
            if progress.listed.load(Ordering::Acquire) {
                bar.set_length(progress.objects.load(Ordering::Relaxed));
                bar.set_position(progress.checked_objects.load(Ordering::Relaxed));
                bar.set_message(format!("{:.1} MB", progress.checked_bytes.load(Ordering::Relaxed) as f64 / 1e6));
            } else {
                bar.set_message("listing");
            }
            continue;
        }
        if last_line.elapsed() >= every {
            last_line = Instant::now();
            line_out(progress.line(started.elapsed()));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn lines_say_listing_then_how_many_objects_and_bytes_of_the_total_are_checked() {
        let progress = Progress::new("verify", "objects checked");
        assert!(progress.line(Duration::from_secs(3)).starts_with("verify: listing the archive"));
        progress.listed(10, 5_000_000);
        progress.checked(1_000_000);
        progress.checked(500_000);
        let line = progress.line(Duration::from_secs(2));
        assert_eq!(line, "verify: 2 of 10 objects checked (1.5 of 5.0 MB), 1 objects/s, 2 s");
    }

    #[test]
    fn without_a_terminal_report_prints_a_line_at_each_interval_until_done() {
        let (progress, done, lines) =
            (Progress::new("ls", "object headers read"), AtomicBool::new(false), Mutex::new(Vec::new()));
        progress.listed(4, 400);
        std::thread::scope(|scope| {
            scope.spawn(|| report(&progress, &done, Duration::ZERO, None, |line| lines.lock().unwrap().push(line)));
            std::thread::sleep(Duration::from_millis(250));
            progress.checked(100);
            std::thread::sleep(Duration::from_millis(250));
            done.store(true, Ordering::Relaxed);
        });
        let lines = lines.into_inner().unwrap();
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines[0].starts_with("ls: 0 of 4 object headers read"), "{lines:?}");
        assert!(lines.last().unwrap().starts_with("ls: 1 of 4 object headers read (0.0 of 0.0 MB)"), "{lines:?}");
    }
}
