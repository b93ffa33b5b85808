//! `verify --json`: the report as one JSON document, for scripts and monitoring (the same facts
//! as the text, with the exit status's verdict as `clean`).

use serde::Serialize;

use super::report::Report;

#[derive(Serialize)]
struct JsonReport<'a> {
    clean: bool,
    partitions: Vec<JsonPartition>,
    foreign: &'a [String],
    unclaimed: &'a [String],
    encrypted_unread: usize,
    /// Partitions Kafka could not tell the offsets of, with why.
    kafka_unknown: Vec<[String; 2]>,
}

#[derive(Serialize)]
struct JsonPartition {
    topic: String,
    partition: i32,
    objects: usize,
    first_offset: Option<i64>,
    last_offset: Option<i64>,
    /// Records decoded, with `--deep`.
    records: Option<u64>,
    clean: bool,
    gaps: Vec<[i64; 2]>,
    overlaps: Vec<[i64; 2]>,
    expired: Vec<[i64; 2]>,
    missing: Vec<JsonMissing>,
    unreadable: Vec<JsonProblem>,
    /// Kafka's log start and end (high watermark), when it was asked.
    kafka_log_start: Option<i64>,
    kafka_log_end: Option<i64>,
}

#[derive(Serialize)]
struct JsonMissing {
    claim: String,
    object: String,
    first_offset: i64,
    last_offset: i64,
}

#[derive(Serialize)]
struct JsonProblem {
    key: String,
    problem: String,
}

impl Report {
    /// The report as JSON (pretty-printed).
    pub fn to_json(&self) -> String {
        let ranges = |ranges: &[(i64, i64)]| ranges.iter().map(|&(from, to)| [from, to]).collect::<Vec<_>>();
        let partitions = self
            .partitions
            .iter()
            .map(|(tp, p)| JsonPartition {
                topic: tp.topic.clone(),
                partition: tp.partition,
                objects: p.objects.len(),
                first_offset: p.first_offset(),
                last_offset: p.last_offset(),
                records: p.objects.iter().map(|o| o.records).sum(),
                clean: p.is_clean(),
                gaps: ranges(&p.gaps),
                overlaps: ranges(&p.overlaps),
                expired: ranges(&p.expired),
                missing: p
                    .missing
                    .iter()
                    .map(|(claim, object, first, last)| JsonMissing {
                        claim: claim.clone(),
                        object: object.clone(),
                        first_offset: *first,
                        last_offset: *last,
                    })
                    .collect(),
                unreadable: p
                    .objects
                    .iter()
                    .filter_map(|o| {
                        let problem = o.problem.as_ref()?.to_string();
                        Some(JsonProblem { key: o.key.clone(), problem })
                    })
                    .collect(),
                kafka_log_start: p.kafka.map(|(low, _)| low),
                kafka_log_end: p.kafka.map(|(_, high)| high),
            })
            .collect();
        let report = JsonReport {
            clean: self.is_clean(),
            partitions,
            foreign: &self.foreign,
            unclaimed: &self.unclaimed,
            encrypted_unread: self.encrypted_unread,
            kafka_unknown: self.kafka_unknown.iter().map(|(tp, e)| [tp.to_string(), e.to_string()]).collect(),
        };
        serde_json::to_string_pretty(&report).expect("a report is plain data")
    }
}
