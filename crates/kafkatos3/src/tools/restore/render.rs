//! The text `kafkatos3 restore` prints: the plan (with `--dry-run`) or what was restored, one
//! line per partition.

use std::fmt::Write as _;

use super::Report;
use crate::tools::ls::render::{human_bytes, rfc3339_ms};

impl Report {
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.already_complete {
            let _ = writeln!(
                out,
                "already complete: a previous run of this command restored every record (its state file says so)"
            );
            self.render_groups(&mut out);
            return out;
        }
        for p in &self.partitions {
            let times = match (p.plan.min_timestamp, p.plan.max_timestamp) {
                (Some(min), Some(max)) => format!(", records stamped {} .. {}", rfc3339_ms(min), rfc3339_ms(max)),
                _ => String::new(),
            };
            if self.dry_run {
                let _ = writeln!(
                    out,
                    "{} -> {}: {} objects, offsets {}-{}{}, {} to download",
                    p.source,
                    p.target,
                    p.plan.objects,
                    p.plan.archived_first_offset,
                    p.plan.archived_last_offset,
                    times,
                    human_bytes(p.plan.bytes_to_download)
                );
                continue;
            }
            let (Some(first), Some(last)) = (p.outcome.first_source_offset, p.outcome.last_source_offset) else {
                let _ = writeln!(out, "{} -> {}: no records in the selection", p.source, p.target);
                continue;
            };
            let span = format!("offsets {first}-{last}");
            if let Some(how) = self.repartition {
                let how =
                    serde_json::to_value(how).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                let _ = write!(out, "{} -> {} ({how}): {} records ({span})", p.source, p.target, p.outcome.records);
                if p.outcome.already_there > 0 {
                    let _ = write!(out, ", {} of them by an earlier run", p.outcome.already_there);
                }
                let _ = writeln!(out);
                continue;
            }
            let base = p.target_base.unwrap_or(0);
            let _ = write!(
                out,
                "{} -> {}: {} records ({span}) at target offsets {}-{}",
                p.source,
                p.target,
                p.outcome.records,
                base,
                base + p.outcome.records as i64 - 1
            );
            if p.outcome.already_there > 0 {
                let _ = write!(out, ", {} of them by an earlier run", p.outcome.already_there);
                if p.outcome.objects_skipped > 0 {
                    let _ = write!(out, " ({} objects not read again)", p.outcome.objects_skipped);
                }
            }
            let _ = writeln!(out);
        }
        for t in &self.targets {
            let _ = write!(out, "{}: {} records", t.target, t.records);
            if t.records > 0 {
                let _ = write!(out, " at offsets {}-{}", t.base, t.base + t.records as i64 - 1);
            }
            let _ = writeln!(out);
        }
        if !self.dry_run {
            let rate = self.produced as f64 / self.seconds.max(0.001);
            let _ = writeln!(
                out,
                "restored {} records into {} partitions ({} produced now) in {:.1} s, {:.0} records/s",
                self.records,
                if self.targets.is_empty() { self.partitions.len() } else { self.targets.len() },
                self.produced,
                self.seconds,
                rate
            );
        }
        self.render_groups(&mut out);
        out
    }

    fn render_groups(&self, out: &mut String) {
        let how = if self.groups_committed { "committed" } else { "to commit (plan only)" };
        if let Some(from) = self.group_offsets_from.as_ref().filter(|_| !self.translations.is_empty()) {
            let _ = writeln!(out, "group offsets from {from}");
        }
        for t in &self.translations {
            let _ = writeln!(
                out,
                "group {}: {} at {} -> {}:{} at {} ({how})",
                t.group, t.source, t.committed, t.target_topic, t.target_partition, t.target_offset
            );
        }
    }
}
