//! How far a restore is: a progress bar on a terminal (records, MB, rate, ETA), a line every
//! `--progress` interval otherwise (logs, CI, systemd), both on stderr.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::producer::Producer as _;

use super::produce::Shared;

/// Reports until `done`; `expected` is an upper bound of the records to produce (offset spans:
/// compaction leaves fewer).
pub fn report(shared: &Shared<'_>, done: &AtomicBool, every: Duration, expected: u64) {
    let started = Instant::now();
    let bar = crate::observe::progress::terminal_bar(
        expected,
        "restore {bar:30} {human_pos}/~{human_len} records {msg} {per_sec} eta {eta}",
    );
    let mut last_line = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let sent = shared.sent.load(Ordering::Relaxed);
        let megabytes = shared.sent_bytes.load(Ordering::Relaxed) as f64 / 1e6;
        if let Some(bar) = &bar {
            bar.set_position(sent);
            bar.set_message(format!("{megabytes:.1} MB"));
            continue;
        }
        if last_line.elapsed() < every {
            continue;
        }
        last_line = Instant::now();
        let delivered = shared.producer.context().delivered.load(Ordering::Relaxed);
        let rate = sent as f64 / started.elapsed().as_secs_f64().max(0.001);
        let eta = (expected.saturating_sub(sent) as f64 / rate.max(1.0)).round();
        eprintln!(
            "restore: {sent} of ~{expected} records produced ({megabytes:.1} MB), {delivered} acknowledged, {rate:.0} records/s, eta {eta:.0} s"
        );
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
