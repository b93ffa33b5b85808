//! The text `kafkatos3 export` prints: one line per partition, then the totals.

use std::fmt::Write as _;

use super::Report;
use crate::tools::ls::render::human_bytes;

impl Report {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (tp, p) in &self.partitions {
            let holds: Vec<String> = p.exported.iter().map(|(first, last)| format!("{first}-{last}")).collect();
            let holds = if holds.is_empty() { "none".to_string() } else { holds.join(", ") };
            if p.records == 0 {
                let _ = write!(out, "{tp}: nothing new");
            } else {
                let files = p.files_written + p.files_found;
                let _ = write!(out, "{tp}: {} records into {}", p.records, count(files, "file"));
                if p.files_found > 0 {
                    let _ = write!(out, " ({} of them written by an earlier run)", p.files_found);
                }
            }
            let _ = writeln!(
                out,
                "; {} read, {} skipped; the export holds offsets {holds}",
                count(p.objects_read, "object"),
                p.objects_skipped
            );
        }
        for (tp, error) in &self.failed {
            let _ = writeln!(out, "{tp}: FAILED: {error}");
        }
        let rate = self.records as f64 / self.seconds.max(0.001);
        let _ = writeln!(
            out,
            "exported {} into {} in {} ({} of archive read, {} written) in {:.1} s, {rate:.0} records/s{}",
            count(self.records, "record"),
            count(self.files_written + self.files_found, "file"),
            self.destination,
            human_bytes(self.bytes_read),
            human_bytes(self.bytes_written),
            self.seconds,
            if self.interrupted { "; interrupted: run the same command again to continue" } else { "" }
        );
        out
    }
}

/// `1 file`, `2 files`.
fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
