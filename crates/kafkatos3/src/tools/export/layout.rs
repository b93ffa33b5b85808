//! Where exported records go: Hive-style folders by topic and hour of record time, and file names
//! that follow from the archive object alone, so that a re-run names the same files.
//!
//! `topic=orders/date=2026-12-07/hour=01/00003-00000000000000001000-00000000000000001999.parquet`
//! holds partition 3's records 1000..=1999 of that hour. Records without a timestamp (MAK v1
//! objects, producers that set none) go under Hive's default partition
//! (`date=__HIVE_DEFAULT_PARTITION__/hour=__HIVE_DEFAULT_PARTITION__`), which engines read as null.

use std::collections::btree_map::{BTreeMap, Entry};

use mak::v2::{Record, TimestampType};
use parquet::errors::ParquetError;

use super::parquet::{ParquetFile, ValueFormat};

/// Hive's name for a partition value that is null.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The hour a record is filed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hour {
    /// Hours since the Unix epoch, UTC.
    At(i64),
    /// No timestamp.
    Untimed,
}

impl Hour {
    pub fn of(record: &Record<'_>) -> Hour {
        match record.timestamp_type {
            TimestampType::NotAvailable => Hour::Untimed,
            _ if record.timestamp < 0 => Hour::Untimed,
            _ => Hour::At(record.timestamp.div_euclid(3_600_000)),
        }
    }

    /// `date=YYYY-MM-DD/hour=HH`.
    pub fn folder(&self) -> String {
        match self {
            Hour::Untimed => format!("date={NULL_PARTITION}/hour={NULL_PARTITION}"),
            Hour::At(hours) => match time::OffsetDateTime::from_unix_timestamp(hours * 3600) {
                Ok(at) => {
                    format!("date={:04}-{:02}-{:02}/hour={:02}", at.year(), u8::from(at.month()), at.day(), at.hour())
                }
                // Beyond year 9999: no engine files such a record by date either.
                Err(_) => format!("date={NULL_PARTITION}/hour={NULL_PARTITION}"),
            },
        }
    }
}

/// The key of the file holding `partition`'s records `first..=last` of `hour`, under the export's
/// root. Kafka topic names ([a-zA-Z0-9._-]) need no escaping in a path.
pub fn file_key(topic: &str, partition: i32, hour: Hour, first: i64, last: i64) -> String {
    format!("topic={topic}/{}/{partition:05}-{first:020}-{last:020}.parquet", hour.folder())
}

/// One file of an export: its key under the export's root, its bytes, its records.
#[derive(Debug)]
pub struct ExportFile {
    pub key: String,
    pub bytes: Vec<u8>,
    pub rows: usize,
}

/// A run of one archive object's records (consecutive in the object), split by hour into
/// Parquet files.
pub struct RunExport {
    topic: String,
    partition: i32,
    values: ValueFormat,
    /// The archive object's key, kept in each file's footer.
    source: String,
    /// Per hour: the file and its first and last offsets.
    hours: BTreeMap<Hour, (ParquetFile, i64, i64)>,
    /// Bytes in all the files' builders.
    buffered: usize,
}

/// Bytes all the hour files of a run may hold in their builders: records whose timestamps jump
/// between many hours would otherwise keep a row group's worth per hour.
const RUN_BUFFER_BYTES: usize = super::parquet::ROW_GROUP_BYTES;

impl RunExport {
    pub fn new(topic: &str, partition: i32, values: ValueFormat, source: &str) -> Self {
        let (topic, source) = (topic.to_string(), source.to_string());
        RunExport { topic, partition, values, source, hours: BTreeMap::new(), buffered: 0 }
    }

    pub fn push(&mut self, record: &Record<'_>) -> Result<(), ParquetError> {
        let (file, _, last) = match self.hours.entry(Hour::of(record)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let metadata = [("kafkatos3.source", self.source.clone())];
                entry.insert((ParquetFile::new(self.values, &metadata)?, record.offset, record.offset))
            }
        };
        let before = file.buffered();
        file.push(&self.topic, self.partition, record)?;
        *last = record.offset;
        // (A push that completes a row group empties the file's builders.)
        self.buffered = (self.buffered + file.buffered()).saturating_sub(before);
        if self.buffered > RUN_BUFFER_BYTES {
            // The fullest builders go first, as a row group of their own: the same records in the
            // same order always cut the same groups.
            if let Some((file, _, _)) = self.hours.values_mut().max_by_key(|(file, _, _)| file.buffered()) {
                self.buffered = self.buffered.saturating_sub(file.buffered());
                file.write_group()?;
            }
        }
        Ok(())
    }

    /// Bytes in the builders of all its files.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// The files, in key order.
    pub fn finish(self) -> Result<Vec<ExportFile>, ParquetError> {
        let mut files = Vec::with_capacity(self.hours.len());
        for (hour, (file, first, last)) in self.hours {
            let rows = file.rows();
            let key = file_key(&self.topic, self.partition, hour, first, last);
            files.push(ExportFile { key, bytes: file.finish()?, rows });
        }
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mak::v2::Headers;

    fn record(offset: i64, timestamp: i64, timestamp_type: TimestampType) -> Record<'static> {
        Record { offset, timestamp, timestamp_type, key: None, value: Some(b"v"), headers: Headers::EMPTY }
    }

    #[test]
    fn records_are_filed_by_their_utc_hour_and_untimed_ones_under_the_null_partition() {
        let at = |ms| Hour::of(&record(0, ms, TimestampType::CreateTime)).folder();
        // 2026-12-07T01:30:00Z and the last millisecond of that hour.
        assert_eq!(at(1_796_607_000_000), "date=2026-12-07/hour=01");
        assert_eq!(at(1_796_608_799_999), "date=2026-12-07/hour=01");
        assert_eq!(at(0), "date=1970-01-01/hour=00");
        let untimed = Hour::of(&record(0, -1, TimestampType::NotAvailable)).folder();
        assert_eq!(untimed, "date=__HIVE_DEFAULT_PARTITION__/hour=__HIVE_DEFAULT_PARTITION__");
        assert_eq!(Hour::of(&record(0, -5, TimestampType::LogAppendTime)), Hour::Untimed);
    }

    #[test]
    fn an_object_spanning_hours_gives_one_file_per_hour_named_by_its_offsets_there() {
        let hour = 3_600_000;
        let base = 1_796_605_200_000; // 2026-12-07T01:00:00Z
        let mut export = RunExport::new("orders", 3, ValueFormat::Raw, "orders/3/x");
        // Timestamps need not follow offsets: producers set them.
        for (offset, ms) in [(100, base), (101, base + hour), (102, base + 10), (103, base + hour + 5)] {
            export.push(&record(offset, ms, TimestampType::CreateTime)).unwrap();
        }
        export.push(&record(104, -1, TimestampType::NotAvailable)).unwrap();
        let files = export.finish().unwrap();
        let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "topic=orders/date=2026-12-07/hour=01/00003-00000000000000000100-00000000000000000102.parquet",
                "topic=orders/date=2026-12-07/hour=02/00003-00000000000000000101-00000000000000000103.parquet",
                "topic=orders/date=__HIVE_DEFAULT_PARTITION__/hour=__HIVE_DEFAULT_PARTITION__/00003-00000000000000000104-00000000000000000104.parquet",
            ]
        );
        assert_eq!(files.iter().map(|f| f.rows).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(files.iter().all(|f| f.bytes.starts_with(b"PAR1")));
    }
}
