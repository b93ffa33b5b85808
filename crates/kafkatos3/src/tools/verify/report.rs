//! What `verify` found, and the text `kafkatos3 verify` prints of it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::Problem;
use crate::archive::catalog::OffsetRange;
use crate::names::TopicPartition;

/// One archived object, as far as it could be checked.
#[derive(Debug)]
pub struct CheckedObject {
    pub key: String,
    pub tp: TopicPartition,
    pub start: i64,
    /// Last offset, from the key.
    pub end: i64,
    /// Records decoded (`--deep` only).
    pub records: Option<u64>,
    /// Why the object cannot be trusted, if it cannot.
    pub problem: Option<Problem>,
}

/// What was found for one partition.
#[derive(Debug, Default)]
pub struct PartitionReport {
    pub objects: Vec<CheckedObject>,
    /// Offset ranges (inclusive) between objects that no object covers.
    pub gaps: Vec<OffsetRange>,
    /// Offset ranges (inclusive) covered by more than one object.
    pub overlaps: Vec<OffsetRange>,
    /// Gaps, or their parts, below Kafka's log start: gone from Kafka (retention) before they
    /// were archived. Reported, not failing: no archiver could have stored them.
    pub expired: Vec<OffsetRange>,
    /// Kafka's log start and high watermark, when the broker was asked.
    pub kafka: Option<(i64, i64)>,
    /// Claims naming a data object that is not in the bucket: (claim key, object, first, last).
    /// Their offsets are gaps.
    pub missing: Vec<(String, String, i64, i64)>,
}

impl PartitionReport {
    pub fn first_offset(&self) -> Option<i64> {
        self.objects.iter().map(|o| o.start).min()
    }

    pub fn last_offset(&self) -> Option<i64> {
        self.objects.iter().map(|o| o.end).max()
    }

    pub fn is_clean(&self) -> bool {
        self.gaps.is_empty()
            && self.overlaps.is_empty()
            && self.missing.is_empty()
            && self.objects.iter().all(|o| o.problem.is_none())
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub partitions: BTreeMap<TopicPartition, PartitionReport>,
    /// Keys under the prefix that are not archive objects (left alone, reported).
    pub foreign: Vec<String>,
    /// Encrypted objects not read (no identity or passphrase given): checked by claim and name only.
    pub encrypted_unread: usize,
    /// Data objects no claim names: a crash between writing an object and claiming it, or an
    /// instance that lost the claim and could not delete its object. Not part of the archive.
    pub unclaimed: Vec<String>,
    /// Partitions Kafka was asked about and could not tell the offsets of, with why.
    pub kafka_unknown: Vec<(TopicPartition, rdkafka::error::KafkaError)>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.partitions.values().all(PartitionReport::is_clean)
    }

    /// The human summary `kafkatos3 verify` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (tp, partition) in &self.partitions {
            let (first, last) = (partition.first_offset().unwrap_or(0), partition.last_offset().unwrap_or(0));
            let records: Option<u64> = partition.objects.iter().map(|o| o.records).sum();
            let _ = write!(out, "{tp}: offsets {first}-{last} in {} objects", partition.objects.len());
            if let Some(records) = records {
                let _ = write!(out, ", {records} records");
            }
            let _ = writeln!(out, "{}", if partition.is_clean() { ", clean" } else { "" });
            for (from, to) in &partition.gaps {
                let _ = writeln!(out, "  GAP offsets {from}-{to}: in no object");
            }
            for (from, to) in &partition.overlaps {
                let _ = writeln!(out, "  OVERLAP offsets {from}-{to}: in more than one object");
            }
            for (claim, object, first, last) in &partition.missing {
                let _ = writeln!(
                    out,
                    "  MISSING {object}: {claim} claims it for offsets {first}-{last}, not in the bucket"
                );
            }
            for object in &partition.objects {
                if let Some(problem) = &object.problem {
                    let _ = writeln!(out, "  UNREADABLE {}: {problem}", object.key);
                }
            }
        }
        let _ = self.render_kafka(&mut out);
        for key in &self.foreign {
            let _ = writeln!(out, "ignored {key}: not an archive object name");
        }
        if self.encrypted_unread > 0 {
            let _ = writeln!(
                out,
                "{} encrypted objects checked by claim and name only (give --identity or --passphrase to read them)",
                self.encrypted_unread
            );
        }
        for key in &self.unclaimed {
            let _ = writeln!(out, "ignored {key}: no claim names it (an interrupted or losing upload; safe to delete)");
        }
        let bad = self.partitions.values().filter(|p| !p.is_clean()).count();
        let _ = writeln!(
            out,
            "{} partitions, {} objects: {}",
            self.partitions.len(),
            self.partitions.values().map(|p| p.objects.len()).sum::<usize>(),
            if bad == 0 { "clean".to_string() } else { format!("{bad} partitions with problems") }
        );
        out
    }

    /// Splits each gap at Kafka's log start: the part below it is expired, not lost.
    pub fn apply_kafka(&mut self, watermarks: &HashMap<TopicPartition, (i64, i64)>) {
        for (tp, partition) in &mut self.partitions {
            let Some(&(low, high)) = watermarks.get(tp) else {
                continue;
            };
            partition.kafka = Some((low, high));
            let mut lost = Vec::new();
            for &(from, to) in &partition.gaps {
                if to < low {
                    partition.expired.push((from, to));
                } else if from < low {
                    partition.expired.push((from, low - 1));
                    lost.push((low, to));
                } else {
                    lost.push((from, to));
                }
            }
            partition.gaps = lost;
        }
    }

    fn render_kafka(&self, out: &mut String) -> std::fmt::Result {
        let mut first = true;
        for (tp, partition) in &self.partitions {
            let Some((low, high)) = partition.kafka else {
                continue;
            };
            if first {
                writeln!(out, "compared with kafka's log start and end:")?;
                first = false;
            }
            for (from, to) in &partition.expired {
                writeln!(out, "  {tp}: EXPIRED offsets {from}-{to}: removed from Kafka before they were archived (not counted as loss)")?;
            }
            let archived_to = partition.last_offset().unwrap_or(-1);
            if high - 1 < archived_to {
                // Real Kafka never reports an end before records it served; a broker that
                // under-reports (the test broker), or lost records after they were archived.
                writeln!(out, "  {tp}: kafka's log starts at {low}; it reports its end at {high}, before the archive's last offset {archived_to}")?;
            } else {
                let pending = high - 1 - archived_to;
                writeln!(out, "  {tp}: kafka holds offsets {low}-{}: {pending} not archived yet", high - 1)?;
            }
        }
        for (tp, error) in &self.kafka_unknown {
            writeln!(out, "  {tp}: kafka cannot tell its offsets: {error}")?;
        }
        Ok(())
    }
}
