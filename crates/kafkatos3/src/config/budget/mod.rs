//! The memory budget: `[main] memory_limit_bytes` split into fixed shares, one per stage that
//! buffers data, each enforced where the buffering happens. Nothing here is measured at run time:
//! every share is a bound set at start-up, so the daemon never has to choose between exceeding
//! the budget and stalling its poll loop.
//!
//! | share | of the limit | enforced by |
//! |---|---|---|
//! | fetch queue | 40% | librdkafka's `queued.max.messages.kbytes`, a quarter of the share per consumer, and `queued.min.messages`, one message per 512 bytes of it (at most librdkafka's 100 000): librdkafka stops fetching while its queue is full and may hold one fetch response on top (at most the bound), and the consumer thread serves a whole queue's worth at a time, during which librdkafka fills the queue again |
//! | write buffers | 10% | each consumer's two hand-over batches between its consumer and writer threads (an eighth of its part each, 64 KiB to 1 MiB; a record larger than a batch is taken whole), and each open file's append buffer is sized share / partitions (4 KiB to 1 MiB), allocated on a record and freed at each flush interval, so an idle partition holds none (MAK v3: the buffer is the open block, 7/8 of it for keys and values and the rest for its other columns' growth) |
//! | compression | 20% | per worker: I/O buffers and the codec's state; a codec level that does not fit is refused at load time |
//! | uploads | 30% | per worker: a file is sent in one PUT only below the worker's share, else in parts of share/3 with at most 2 in flight |
//!
//! What is outside the budget: the process's fixed base (code, thread stacks, the tokio and
//! librdkafka runtimes, per-partition bookkeeping), and the kernel's page cache of the files
//! written (not part of the process's RSS).

use crate::config::KafkaValue;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// The largest append buffer of one open file. MAK v3 writes a block when its buffer is full, and
/// bigger blocks compress better: on the size benchmark's repetitive records zstd stores 4.3
/// bytes per record from 1 MiB blocks against 6.2 from 64 KiB ones (docs/benchmarks.md, "Archive
/// size"). The spool makes a durability point, which ends a block, every MiB anyway.
pub const MAX_WRITE_BUFFER: usize = 1 << 20;

/// A hand-over batch between a consumer's threads: large enough that handing one over (a
/// thread wake-up) costs nothing per record, small enough to stay a fraction of the write share.
const MIN_HANDOFF_BATCH: u64 = 64 * KIB;
const MAX_HANDOFF_BATCH: u64 = MIB;

/// Percent of the limit per share; they sum to 100.
const FETCH_PERCENT: u64 = 40;
const WRITE_PERCENT: u64 = 10;
const COMPRESSION_PERCENT: u64 = 20;
const UPLOAD_PERCENT: u64 = 30;

/// The compressor's read and write buffers (compress.rs's `IO_BUFFER`, twice).
const COMPRESSOR_IO_BYTES: u64 = 512 * KIB;
/// age's STREAM chunks in and out, with room to spare.
const ENCRYPTION_BYTES: u64 = 256 * KIB;
/// S3 refuses parts below 5 MiB (except the last).
const MIN_PART_BYTES: u64 = 5 * MIB;
/// Larger parts only mean fewer requests, no gain beyond this.
const MAX_PART_BYTES: u64 = 16 * MIB;
/// Parts per upload held at once: one being filled, two in flight.
const PARTS_HELD: u64 = 3;
/// The read buffer of a multipart upload (the parts are assembled by the S3 client).
pub const UPLOAD_READ_BYTES: usize = 256 * 1024;
/// librdkafka's queue never gets less than this, whatever the share: below `message.max.bytes`
/// (1 MB by default) a single large record could not be fetched.
const MIN_QUEUE_KBYTES: u64 = 1024;
/// librdkafka's default `queued.min.messages`.
const LIBRDKAFKA_QUEUED_MIN_MESSAGES: u64 = 100_000;

/// Why a memory limit cannot hold the configured workers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    #[error(
        "the compression share ({COMPRESSION_PERCENT}% = {share} bytes) cannot hold {workers} compressor worker(s) at about {per_worker} bytes each ({codec}); raise memory_limit_bytes to at least {needed}, or lower compression_level or compressor_workers"
    )]
    Compression { share: u64, workers: u64, per_worker: u64, codec: String, needed: u64 },
    #[error(
        "the upload share ({UPLOAD_PERCENT}% = {share} bytes) cannot hold {workers} uploader worker(s) at {per_worker} bytes each (3 parts of 5MiB, S3's smallest, plus a read buffer); raise memory_limit_bytes to at least {needed}, or lower s3uploader_workers"
    )]
    Uploads { share: u64, workers: u64, per_worker: u64, needed: u64 },
}

/// What the budget is split across.
#[derive(Debug, Clone, Copy)]
pub struct Workers<'a> {
    pub consumers: usize,
    pub compressors: usize,
    pub uploaders: usize,
    pub compression: &'a mak::codec::Compression,
    pub encrypted: bool,
}

/// The limit and its shares, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// `memory_limit_bytes`.
    pub limit: u64,
    /// librdkafka's queues, all consumers together.
    pub fetch: u64,
    /// The append buffers of the open files, all consumers together.
    pub write_buffers: u64,
    /// The compressor workers together.
    pub compression: u64,
    /// The uploader workers together.
    pub uploads: u64,
    consumers: u64,
    uploaders: u64,
}

impl MemoryBudget {
    /// The same shares for another number of consumers (`kafkatos3 snapshot --consumers`): the
    /// fetch share is split among them instead.
    pub fn with_consumers(self, consumers: usize) -> Self {
        MemoryBudget { consumers: consumers.max(1) as u64, ..self }
    }

    /// Splits `limit` across `workers`, or says which share is too small and what would fit.
    pub fn split(limit: u64, workers: &Workers<'_>) -> Result<MemoryBudget, BudgetError> {
        let share = |percent: u64| limit / 100 * percent + limit % 100 * percent / 100;
        let budget = MemoryBudget {
            limit,
            fetch: share(FETCH_PERCENT),
            write_buffers: share(WRITE_PERCENT),
            compression: share(COMPRESSION_PERCENT),
            uploads: share(UPLOAD_PERCENT),
            consumers: workers.consumers.max(1) as u64,
            uploaders: workers.uploaders.max(1) as u64,
        };
        let compressors = workers.compressors.max(1) as u64;
        let per_compressor = compressor_bytes(workers.compression, workers.encrypted);
        if per_compressor * compressors > budget.compression {
            return Err(BudgetError::Compression {
                share: budget.compression,
                workers: compressors,
                per_worker: per_compressor,
                codec: format!("{} level {}", workers.compression.codec(), workers.compression.level()),
                needed: (per_compressor * compressors).div_ceil(COMPRESSION_PERCENT) * 100,
            });
        }
        let min_upload = PARTS_HELD * MIN_PART_BYTES + UPLOAD_READ_BYTES as u64;
        if budget.upload_per_worker() < min_upload {
            return Err(BudgetError::Uploads {
                share: budget.uploads,
                workers: budget.uploaders,
                per_worker: min_upload,
                needed: (min_upload * budget.uploaders).div_ceil(UPLOAD_PERCENT) * 100,
            });
        }
        Ok(budget)
    }

    /// librdkafka's `queued.max.messages.kbytes` for each consumer: a quarter of its part of the
    /// fetch share. A fetch response (librdkafka caps it at this bound) may arrive on top of a
    /// full queue, and a take (`kafka::fetch_queue`) holds a whole queue's worth out of the
    /// queue while librdkafka fills it again: twice a full queue with a response on top.
    /// Not counted: with several brokers each broker's fetcher may land a response on a full
    /// queue (up to the bound each, `fetch.max.bytes` permitting), and the 1 MiB floor is more
    /// than the quarter when a consumer's part of the fetch share is under 4 MiB (a limit under
    /// 10 MiB per consumer).
    pub fn queued_max_messages_kbytes(&self) -> u64 {
        (self.fetch / self.consumers / 4 / KIB).max(MIN_QUEUE_KBYTES)
    }

    /// librdkafka's `queued.min.messages` for each consumer: the queue's byte bound counts
    /// payloads only, while every queued message also costs librdkafka about 300 bytes of its
    /// own (the op and message structs). With one message per 512 bytes of the bound, records
    /// up to about 200 bytes stay within it structs included; the structs add at most 60 % on
    /// top (records of about 500 bytes, where count and bytes bind together; 30 % at 1 KiB with
    /// one per KiB) and less the larger the records. librdkafka's default of 100 000 is kept when
    /// the bound is larger. One per KiB starved the consumer on 100-byte records: the fetcher
    /// stops at the count and backs off (benchmarks.md, "The fetch queue's message count").
    pub fn queued_min_messages(&self) -> u64 {
        (self.queued_max_messages_kbytes() * 2).min(LIBRDKAFKA_QUEUED_MIN_MESSAGES)
    }

    /// The librdkafka properties the budget sets, except those the user set in `[kafka]`.
    pub fn librdkafka_properties(&self, kafka: &[(String, KafkaValue)]) -> Vec<(&'static str, String)> {
        let user_set = |key: &str| kafka.iter().any(|(set, _)| set == key);
        [
            ("queued.max.messages.kbytes", self.queued_max_messages_kbytes().to_string()),
            ("queued.min.messages", self.queued_min_messages().to_string()),
        ]
        .into_iter()
        .filter(|(key, _)| !user_set(key))
        .collect()
    }

    /// The bytes one hand-over batch between a consumer's threads collects before its writer
    /// takes it; each consumer has two.
    pub fn handoff_batch_bytes(&self) -> usize {
        (self.write_buffers / self.consumers / 8).clamp(MIN_HANDOFF_BATCH, MAX_HANDOFF_BATCH) as usize
    }

    /// The append buffer of each open file of a consumer holding `partitions` partitions: what
    /// its part of the write share leaves after its two hand-over batches.
    pub fn write_buffer_per_partition(&self, partitions: usize) -> usize {
        let per_consumer = (self.write_buffers / self.consumers).saturating_sub(2 * self.handoff_batch_bytes() as u64);
        let each = per_consumer / partitions.max(1) as u64;
        (each as usize).clamp(mak::MIN_BUFFER_CAPACITY, MAX_WRITE_BUFFER)
    }

    /// What one uploader worker may hold.
    pub fn upload_per_worker(&self) -> u64 {
        self.uploads / self.uploaders
    }

    /// The largest file sent in one PUT (read whole into memory): the worker's share, or the
    /// configured multipart threshold when lower.
    pub fn single_put_max(&self, multipart_threshold: u64) -> u64 {
        self.upload_per_worker().min(multipart_threshold)
    }

    /// The part size of multipart uploads: `PARTS_HELD` of them fit in a worker's share.
    pub fn part_bytes(&self) -> usize {
        let fitting = (self.upload_per_worker() - UPLOAD_READ_BYTES as u64) / PARTS_HELD;
        (fitting / MIB * MIB).clamp(MIN_PART_BYTES, MAX_PART_BYTES) as usize
    }
}

/// What one compressor worker holds: its I/O buffers, the encoder's state, and age's chunks.
pub fn compressor_bytes(compression: &mak::codec::Compression, encrypted: bool) -> u64 {
    use mak::codec::Codec;
    let codec = match compression.codec() {
        Codec::None => 0,
        // zlib's deflate state at memLevel 8 with its 32 KiB window: about 270 KiB.
        Codec::Gzip => 512 * KIB,
        // liblz4's frame context, its HC tables and 64 KiB blocks.
        Codec::Lz4 => MIB,
        Codec::Zstd => zstd_bytes(compression.level(), compression.threads()),
    };
    COMPRESSOR_IO_BYTES + codec + if encrypted { ENCRYPTION_BYTES } else { 0 }
}

/// zstd's streaming compressor for inputs of unknown size: its window, hash and chain tables
/// (4 bytes an entry), sized by log2 from zstd's own level table (lib/compress/clevels.h), plus
/// 1 MiB of block and sequence buffers. Levels 20-22 are refused by the codec itself. On several
/// threads (`compression_threads`) each thread has its own tables, and each of zstd's jobs in flight
/// holds its input and output, a job being 4 windows: counted as two jobs per thread.
fn zstd_bytes(level: i32, threads: u32) -> u64 {
    // (windowLog, chainLog, hashLog) for levels 1..=19.
    const LOGS: [(u32, u32, u32); 19] = [
        (19, 13, 14),
        (20, 15, 16),
        (21, 16, 17),
        (21, 18, 18),
        (21, 18, 19),
        (21, 18, 19),
        (21, 19, 20),
        (21, 19, 20),
        (22, 20, 21),
        (22, 21, 22),
        (22, 21, 22),
        (22, 22, 23),
        (22, 22, 22),
        (22, 22, 23),
        (22, 23, 23),
        (22, 22, 22),
        (23, 23, 22),
        (23, 23, 22),
        (23, 24, 22),
    ];
    let (window, chain, hash) = LOGS[(level.clamp(1, 19) - 1) as usize];
    let single = (1 << window) + (4 << chain) + (4 << hash) + MIB;
    match u64::from(threads) {
        0 | 1 => single,
        threads => threads * (single + 2 * (4 << window)),
    }
}

#[cfg(test)]
mod tests;
