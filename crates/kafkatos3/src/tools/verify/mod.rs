//! `kafkatos3 verify`: checks an archive on its own, without the daemon or its working
//! directory. The archive's [`Catalog`] (one listing, every claim) gives per partition the
//! objects and what does not add up - gaps, overlaps, claims naming missing objects, unsound
//! claims, objects no claim names. Each object's header is then checked against its name (one
//! ranged GET), or with `--deep` every record of it is decoded and its end checked, streamed in
//! bounded memory. Kafka's log start, when asked, tells expired offsets from lost ones.

mod json;
mod report;

use std::collections::HashMap;
use std::time::Duration;

use crate::archive::catalog::{BadClaim, CatalogObject, HeaderState};
use crate::archive::{Archive, ArchiveError, Catalog, ClaimProblem, Headers, ObjectError, ObjectHeader};
use crate::archive::{ObjectProblem, ObjectReader, Selection};
use crate::names::TopicPartition;
use crate::tools::progress::Progress;

pub use report::{CheckedObject, PartitionReport, Report};

/// Why an object (or the claim that should name one) cannot be trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// Something at a claim key that is not a sound claim.
    #[error("{0}")]
    Claim(ClaimProblem),
    /// The store would not give the claim or the object.
    #[error("cannot be read: {0}")]
    Fetch(object_store::Error),
    /// Its bytes are damaged or contradict themselves.
    #[error("{0}")]
    Object(ObjectProblem),
    #[error("header says {header_tp} from offset {header_start}, the key says {tp} from offset {start}")]
    HeaderNotKey { header_tp: TopicPartition, header_start: i64, tp: TopicPartition, start: i64 },
    #[error("header's last offset {header_end} differs from the key's {end}")]
    EndNotKey { header_end: i64, end: i64 },
}

impl From<ArchiveError> for Problem {
    fn from(error: ArchiveError) -> Self {
        match error {
            ArchiveError::Claim { problem, .. } => Problem::Claim(problem),
            ArchiveError::Store { source, .. } | ArchiveError::List { source, .. } => Problem::Fetch(source),
        }
    }
}

impl From<ObjectError> for Problem {
    fn from(error: ObjectError) -> Self {
        Problem::Object(error.problem)
    }
}

/// What to check and with which keys.
pub struct Options<'a> {
    /// Decode every record (default: headers only).
    pub deep: bool,
    /// Encrypted objects are read only with it; without it their claims and names are all that
    /// is checked (counted in [`Report::encrypted_unread`]).
    pub decryption: Option<&'a mak::crypt::Decryption>,
    /// Progress on stderr: a bar on a terminal, else a line at this interval. None: silent.
    pub progress_every: Option<Duration>,
}

/// Verifies `archive`. Runs the archive's requests on `runtime` (a multi-threaded one: with
/// `--deep`, objects are streamed into this thread while the runtime fetches them).
pub fn verify(
    archive: &Archive,
    options: &Options<'_>,
    runtime: &tokio::runtime::Runtime,
) -> Result<Report, ArchiveError> {
    let progress = Progress::new("verify", "objects checked");
    crate::tools::progress::reporting(&progress, options.progress_every, || {
        check_archive(archive, options, runtime, &progress)
    })
}

fn check_archive(
    archive: &Archive,
    options: &Options<'_>,
    runtime: &tokio::runtime::Runtime,
    progress: &Progress,
) -> Result<Report, ArchiveError> {
    // Without --deep, the header reads (one ranged GET per object) are what takes the time.
    let headers = if options.deep { Headers::Skip } else { Headers::Read { decryption: options.decryption } };
    let catalog = runtime.block_on(archive.catalog_telling(&Selection::default(), headers, progress))?;
    let mut report = Report {
        foreign: catalog.foreign.clone(),
        unclaimed: catalog.unclaimed.iter().map(|key| key.to_string()).collect(),
        encrypted_unread: catalog.objects().filter(|o| o.name.encrypted && options.decryption.is_none()).count(),
        ..Report::default()
    };
    report.unclaimed.sort();
    let Catalog { partitions, .. } = catalog;
    for (tp, partition) in partitions {
        let mut objects: Vec<CheckedObject> = partition
            .objects
            .into_iter()
            .map(|object| {
                let size = object.size;
                let checked = check(archive, object, options, runtime.handle());
                if options.deep {
                    progress.checked(size);
                }
                checked
            })
            .collect();
        objects.extend(partition.bad_claims.into_iter().map(|bad| unsound_claim(&tp, bad)));
        objects.sort_by_key(|o| (o.start, o.end));
        let missing = partition.missing.into_iter().map(|m| (m.claim.to_string(), m.object, m.first, m.last)).collect();
        let checked = PartitionReport {
            objects,
            gaps: partition.gaps,
            overlaps: partition.overlaps,
            missing,
            ..PartitionReport::default()
        };
        report.partitions.insert(tp, checked);
    }
    Ok(report)
}

/// A claim that cannot be trusted is listed as an object at its offset, with what is wrong.
fn unsound_claim(tp: &TopicPartition, bad: BadClaim) -> CheckedObject {
    CheckedObject {
        key: bad.key.to_string(),
        tp: tp.clone(),
        start: bad.start,
        end: bad.start,
        records: None,
        problem: Some(bad.error.into()),
    }
}

fn check(
    archive: &Archive,
    mut object: CatalogObject,
    options: &Options<'_>,
    runtime: &tokio::runtime::Handle,
) -> CheckedObject {
    let checked = if object.name.encrypted && options.decryption.is_none() {
        // Its claim and name are all that can be checked without a key.
        Ok(None)
    } else if options.deep {
        read_whole(archive, &object, options.decryption, runtime).map(Some)
    } else {
        match std::mem::take(&mut object.header) {
            HeaderState::Read(header) => agrees(&header, &object).map(|()| None),
            HeaderState::Unreadable(error) => Err(error.into()),
            HeaderState::Damaged(error) => Err(error.into()),
            HeaderState::NotRead | HeaderState::NeedsKey => Ok(None),
        }
    };
    let (records, problem) = match checked {
        Ok(records) => (records, None),
        Err(problem) => (None, Some(problem)),
    };
    let name = object.name;
    CheckedObject { key: object.key.to_string(), tp: name.tp, start: name.start, end: name.end, records, problem }
}

/// Reads every record of the object, streamed, and checks its header against its name and its
/// end (records in order, the last where the header says, the codec's checksum). The record count.
fn read_whole(
    archive: &Archive,
    object: &CatalogObject,
    decryption: Option<&mak::crypt::Decryption>,
    runtime: &tokio::runtime::Handle,
) -> Result<u64, Problem> {
    let stream = archive.stream(runtime, &object.key);
    let reader = ObjectReader::open(archive.url(object.key.as_ref()), stream, decryption)?;
    agrees(&reader.header()?, object)?;
    Ok(reader.finish_sealed()?.records)
}

/// The header must state the partition and offsets the object's key names.
fn agrees(header: &ObjectHeader, object: &CatalogObject) -> Result<(), Problem> {
    let name = &object.name;
    if header.tp != name.tp || header.start != name.start {
        return Err(Problem::HeaderNotKey {
            header_tp: header.tp.clone(),
            header_start: header.start,
            tp: name.tp.clone(),
            start: name.start,
        });
    }
    if header.end != name.end {
        return Err(Problem::EndNotKey { header_end: header.end, end: name.end });
    }
    Ok(())
}

/// Kafka's log start and high watermark of each partition, asked with `client` (bootstrap and
/// security settings); the partitions the broker cannot tell about, with why.
#[allow(clippy::type_complexity)]
pub fn kafka_watermarks<'a>(
    client: &rdkafka::ClientConfig,
    partitions: impl Iterator<Item = &'a TopicPartition>,
) -> Result<
    (HashMap<TopicPartition, (i64, i64)>, Vec<(TopicPartition, rdkafka::error::KafkaError)>),
    rdkafka::error::KafkaError,
> {
    use rdkafka::consumer::Consumer;
    let consumer = crate::kafka::consumer(client)?;
    let (mut marks, mut unknown) = (HashMap::new(), Vec::new());
    for tp in partitions {
        match consumer.fetch_watermarks(&tp.topic, tp.partition, std::time::Duration::from_secs(10)) {
            Ok(range) => {
                marks.insert(tp.clone(), range);
            }
            Err(error) => unknown.push((tp.clone(), error)),
        }
    }
    Ok((marks, unknown))
}

#[cfg(test)]
mod tests;
