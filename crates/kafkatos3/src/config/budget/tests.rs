use super::*;
use crate::config::{KafkaValue, Secret};
use mak::codec::{Codec, Compression};

fn workers(compression: &Compression) -> Workers<'_> {
    Workers { consumers: 1, compressors: 1, uploaders: 1, compression, encrypted: false }
}

fn gzip() -> Compression {
    Compression::new(Codec::Gzip, None).unwrap()
}

#[test]
fn shares_add_up_to_the_limit() {
    let gzip = gzip();
    for limit in [64 * MIB, 256 * MIB + 7, 3 * (1 << 30) + 99] {
        let budget = MemoryBudget::split(limit, &workers(&gzip)).unwrap();
        let sum = budget.fetch + budget.write_buffers + budget.compression + budget.uploads;
        assert!(sum <= limit && limit - sum < 4, "limit {limit}: shares sum to {sum}");
        assert_eq!(budget.fetch, limit * 40 / 100);
    }
}

#[test]
fn fetch_queue_is_a_quarter_of_the_fetch_share_per_consumer_with_a_floor() {
    let gzip = gzip();
    let budget = MemoryBudget::split(256 * MIB, &workers(&gzip)).unwrap();
    assert_eq!(budget.queued_max_messages_kbytes(), 256 * 1024 * 40 / 100 / 4);
    let two = MemoryBudget::split(256 * MIB, &Workers { consumers: 2, ..workers(&gzip) }).unwrap();
    assert_eq!(two.queued_max_messages_kbytes(), budget.queued_max_messages_kbytes() / 2);
    let many = MemoryBudget::split(64 * MIB, &Workers { consumers: 64, ..workers(&gzip) }).unwrap();
    assert_eq!(many.queued_max_messages_kbytes(), MIN_QUEUE_KBYTES, "never below one large record");
}

#[test]
fn librdkafka_properties_set_by_the_user_are_left_alone() {
    let gzip = gzip();
    let budget = MemoryBudget::split(256 * MIB, &workers(&gzip)).unwrap();
    let set = budget.librdkafka_properties(&[]);
    assert_eq!(
        set,
        vec![("queued.max.messages.kbytes", "26214".to_string()), ("queued.min.messages", "52428".to_string())]
    );
    let user = vec![("queued.max.messages.kbytes".to_string(), KafkaValue::Plain("1000".into()))];
    assert_eq!(budget.librdkafka_properties(&user), vec![("queued.min.messages", "52428".to_string())]);
    let unrelated = vec![("sasl.password".to_string(), KafkaValue::Secret(Secret::new("x")))];
    assert_eq!(budget.librdkafka_properties(&unrelated).len(), 2);
    let large = MemoryBudget::split(4 << 30, &workers(&gzip)).unwrap();
    assert_eq!(large.queued_min_messages(), 100_000, "librdkafka's default when the bound is larger");
    let small = MemoryBudget::split(128 * MIB, &workers(&gzip)).unwrap();
    assert_eq!(small.queued_min_messages(), small.queued_max_messages_kbytes() * 2, "one message per 512 bytes");
}

#[test]
fn write_buffers_shrink_with_partition_count_within_bounds() {
    let gzip = gzip();
    let budget = MemoryBudget::split(256 * MIB, &workers(&gzip)).unwrap();
    assert_eq!(budget.write_buffer_per_partition(8), MAX_WRITE_BUFFER, "few partitions: full size");
    let at_2000 = budget.write_buffer_per_partition(2000);
    assert!(at_2000 < mak::DEFAULT_BUFFER_CAPACITY);
    let handoff = 2 * budget.handoff_batch_bytes() as u64;
    assert!(
        at_2000 as u64 * 2000 + handoff <= budget.write_buffers,
        "2000 busy partitions and the hand-over fit the share"
    );
    assert_eq!(budget.write_buffer_per_partition(1_000_000), mak::MIN_BUFFER_CAPACITY);
    assert_eq!(budget.write_buffer_per_partition(0), MAX_WRITE_BUFFER);
}

#[test]
fn handoff_batches_are_an_eighth_of_a_consumers_write_share_within_bounds() {
    let gzip = gzip();
    let budget = MemoryBudget::split(256 * MIB, &workers(&gzip)).unwrap();
    assert_eq!(budget.handoff_batch_bytes() as u64, MAX_HANDOFF_BATCH, "25.6 MiB of write share: 1 MiB batches");
    let small = MemoryBudget::split(64 * MIB, &workers(&gzip)).unwrap().with_consumers(8);
    assert_eq!(small.handoff_batch_bytes() as u64, small.write_buffers / 8 / 8);
    let tiny = MemoryBudget::split(64 * MIB, &workers(&gzip)).unwrap().with_consumers(64);
    assert_eq!(tiny.handoff_batch_bytes() as u64, MIN_HANDOFF_BATCH);
}

#[test]
fn uploads_fit_the_worker_share() {
    let gzip = gzip();
    for (limit, uploaders) in [(64 * MIB, 1), (256 * MIB, 1), (256 * MIB, 4), (4 << 30, 2)] {
        let budget = MemoryBudget::split(limit, &Workers { uploaders, ..workers(&gzip) }).unwrap();
        let part = budget.part_bytes() as u64;
        assert!((MIN_PART_BYTES..=MAX_PART_BYTES).contains(&part));
        assert!(part * PARTS_HELD + UPLOAD_READ_BYTES as u64 <= budget.upload_per_worker());
        assert!(budget.single_put_max(64 * MIB) <= budget.upload_per_worker());
        assert!(budget.single_put_max(u64::MAX) * uploaders as u64 <= budget.uploads);
    }
}

#[test]
fn too_many_uploaders_for_the_limit_is_refused_with_what_would_fit() {
    let gzip = gzip();
    let error = MemoryBudget::split(64 * MIB, &Workers { uploaders: 4, ..workers(&gzip) }).unwrap_err();
    let BudgetError::Uploads { needed, .. } = error else { panic!("{error}") };
    assert!(MemoryBudget::split(needed, &Workers { uploaders: 4, ..workers(&gzip) }).is_ok());
    assert!(MemoryBudget::split(needed - MIB, &Workers { uploaders: 4, ..workers(&gzip) }).is_err());
}

#[test]
fn zstd_19_is_refused_under_a_small_limit_and_accepted_under_a_larger_one() {
    let zstd19 = Compression::new(Codec::Zstd, Some(19)).unwrap();
    let error = MemoryBudget::split(256 * MIB, &workers(&zstd19)).unwrap_err();
    assert!(error.to_string().contains("zstd level 19"), "{error}");
    let BudgetError::Compression { needed, per_worker, .. } = error else { panic!("{error}") };
    assert!(per_worker > 64 * MIB, "level 19's tables are large: {per_worker}");
    assert!(MemoryBudget::split(needed, &workers(&zstd19)).is_ok());
    let zstd3 = Compression::new(Codec::Zstd, Some(3)).unwrap();
    assert!(MemoryBudget::split(64 * MIB, &Workers { compressors: 2, ..workers(&zstd3) }).is_ok());
}

#[test]
fn compressor_estimate_follows_zstd_tables_and_counts_encryption() {
    let level = |l| compressor_bytes(&Compression::new(Codec::Zstd, Some(l)).unwrap(), false);
    // Level 3: 2 MiB window, 256 KiB chain and 512 KiB hash tables, 1 MiB of buffers, 512 KiB I/O.
    assert_eq!(level(3), (2048 + 256 + 512 + 1024 + 512) * KIB);
    assert!(level(19) > 4 * level(9), "the top levels' tables dominate");
    assert!(compressor_bytes(&gzip(), true) > compressor_bytes(&gzip(), false));
    // On 2 threads: each its own tables and buffers, plus two jobs of 4 windows (8 MiB) in flight.
    let threaded = compressor_bytes(&Compression::new(Codec::Zstd, Some(3)).unwrap().with_threads(2), false);
    assert_eq!(threaded, 2 * ((2048 + 256 + 512 + 1024) * KIB + 16 * MIB) + 512 * KIB);
}
