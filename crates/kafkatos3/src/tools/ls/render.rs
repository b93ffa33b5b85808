//! The text `kafkatos3 ls` prints: one line per partition in aligned columns, then under it
//! whatever does not add up, and with `--objects` each object.

use std::fmt::Write as _;

use super::{Listing, ObjectListing, PartitionListing};

const HEADINGS: [&str; 7] = ["TOPIC", "PARTITION", "OBJECTS", "OFFSETS", "TIME (UTC)", "BYTES", "STATE"];

impl Listing {
    /// The human listing.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let topics = self.partitions.iter().map(|p| &p.topic).collect::<std::collections::BTreeSet<_>>().len();
        let objects: usize = self.partitions.iter().map(|p| p.objects).sum();
        let bytes: u64 = self.partitions.iter().map(|p| p.bytes).sum();
        let _ = writeln!(
            out,
            "{}: {}, {}, {}, {}",
            self.archive,
            count(topics, "topic"),
            count(self.partitions.len(), "partition"),
            count(objects, "object"),
            human_bytes(bytes)
        );
        let rows: Vec<[String; 7]> = self.partitions.iter().map(row).collect();
        let mut widths = HEADINGS.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        if !rows.is_empty() {
            push_row(&mut out, &HEADINGS.map(String::from), &widths);
        }
        for (partition, row) in self.partitions.iter().zip(&rows) {
            push_row(&mut out, row, &widths);
            details(&mut out, partition);
        }
        if self.partitions.iter().any(|p| p.min_timestamp.is_some() && !p.time_range_exact) {
            let _ = writeln!(
                out,
                "~ not every record's time is known: MAK v1 and v2 objects state only their first and last record's, and unread headers none"
            );
        }
        for key in &self.unclaimed {
            let _ = writeln!(out, "ignored {key}: no claim names it (an interrupted or losing upload; safe to delete)");
        }
        for key in &self.foreign {
            let _ = writeln!(out, "ignored {key}: not an archive object name");
        }
        if let Some(snapshot) = &self.group_snapshot {
            let _ = writeln!(
                out,
                "consumer groups: newest snapshot taken {}, {} ({})",
                rfc3339_ms(snapshot.taken_ms),
                count(snapshot.groups.len(), "group"),
                snapshot.groups.join(", ")
            );
        }
        out
    }
}

/// `1 topic`, `2 topics`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn row(p: &PartitionListing) -> [String; 7] {
    let offsets = match (p.first_offset, p.last_offset) {
        (Some(first), Some(last)) => format!("{first}-{last}"),
        _ => "-".into(),
    };
    [
        p.topic.clone(),
        p.partition.to_string(),
        p.objects.to_string(),
        offsets,
        time_range(p.min_timestamp, p.max_timestamp, p.time_range_exact),
        human_bytes(p.bytes),
        state(p),
    ]
}

fn push_row(out: &mut String, cells: &[String; 7], widths: &[usize; 7]) {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        // Numbers align right, words left; the last column is not padded.
        let right = matches!(i, 1 | 2 | 5);
        let _ = match (i, right) {
            (6, _) => write!(line, "{cell}"),
            (_, true) => write!(line, "{cell:>width$}  "),
            (_, false) => write!(line, "{cell:<width$}  "),
        };
    }
    let _ = writeln!(out, "{}", line.trim_end());
}

fn state(p: &PartitionListing) -> String {
    let mut parts = Vec::new();
    let mut count = |n: usize, one: &str, many: &str| {
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    };
    count(p.gaps.len(), "gap", "gaps");
    count(p.overlaps.len(), "overlap", "overlaps");
    count(p.missing.len(), "missing object", "missing objects");
    count(p.bad_claims.len(), "bad claim", "bad claims");
    count(p.unread_headers.len(), "header unread", "headers unread");
    count(p.original, "original object", "original objects");
    if p.is_sound() {
        parts.insert(0, "ok".into());
    }
    parts.join(", ")
}

fn details(out: &mut String, p: &PartitionListing) {
    for [from, to] in &p.gaps {
        let _ = writeln!(out, "  GAP offsets {from}-{to}: in no object");
    }
    for [from, to] in &p.overlaps {
        let _ = writeln!(out, "  OVERLAP offsets {from}-{to}: in more than one object");
    }
    for m in &p.missing {
        let _ = writeln!(
            out,
            "  MISSING {}: {} claims it for offsets {}-{}, not in the store",
            m.object, m.claim, m.first_offset, m.last_offset
        );
    }
    for bad in &p.bad_claims {
        let _ = writeln!(out, "  BAD CLAIM {}: {}", bad.key, bad.problem);
    }
    for unread in &p.unread_headers {
        let _ = writeln!(out, "  HEADER UNREAD {}: {}", unread.key, unread.problem);
    }
    for object in p.object_list.iter().flatten() {
        object_line(out, object);
    }
}

fn object_line(out: &mut String, o: &ObjectListing) {
    let layers = format!("{}{}", o.codec, if o.encrypted { "+age" } else { "" });
    let _ = writeln!(
        out,
        "  {:>10}-{:<10} {:>10}  {:<3} {:<9} {:<51}  {}{}",
        o.first_offset,
        o.last_offset,
        human_bytes(o.bytes),
        o.version.as_deref().unwrap_or("?"),
        layers,
        time_range(o.min_timestamp, o.max_timestamp, o.time_range_exact),
        o.key,
        if o.claim.is_none() { " (original, no claim)" } else { "" }
    );
}

/// `FIRST .. LAST` in RFC 3339 UTC to the millisecond, `~` in front when not exact, `-` when
/// no header said.
fn time_range(min: Option<i64>, max: Option<i64>, exact: bool) -> String {
    match (min, max) {
        (Some(min), Some(max)) => {
            format!("{}{} .. {}", if exact { "" } else { "~" }, rfc3339_ms(min), rfc3339_ms(max))
        }
        _ => "-".into(),
    }
}

/// A timestamp in ms since the epoch as `2026-12-06T07:28:41.123Z`; the number itself when it is
/// outside what a date can say.
pub fn rfc3339_ms(ms: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Bytes in binary units with one decimal (`1.5 MiB`), whole bytes below a KiB.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
