use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;

use super::render::{human_bytes, rfc3339_ms};
use super::*;
use crate::archive::testing::{memory_archive, object_bytes, put_claimed};
use crate::names::TopicPartition;

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("t", partition)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

#[test]
fn each_partition_shows_its_objects_offsets_bytes_and_exact_time_range() {
    let (archive, runtime) = (memory_archive(), runtime());
    runtime.block_on(async {
        put_claimed(&archive, &tp(0), 10, 19).await;
        put_claimed(&archive, &tp(0), 0, 9).await;
        put_claimed(&archive, &tp(1), 0, 4).await;
    });
    let sizes: u64 = (object_bytes(&tp(0), 0, 9).len() + object_bytes(&tp(0), 10, 19).len()) as u64;

    let listing = ls(&archive, &Options { objects: true, ..Options::default() }, &runtime).unwrap();

    assert_eq!(listing.archive, "memory://test/p");
    assert_eq!(listing.partitions.len(), 2);
    let p0 = &listing.partitions[0];
    assert_eq!((p0.topic.as_str(), p0.partition, p0.objects), ("t", 0, 2));
    assert_eq!((p0.first_offset, p0.last_offset), (Some(0), Some(19)));
    // The test objects stamp record o at 1000 * o ms; v3 headers state the smallest and largest.
    assert_eq!((p0.min_timestamp, p0.max_timestamp, p0.time_range_exact), (Some(0), Some(19_000), true));
    assert_eq!(p0.bytes, sizes);
    assert_eq!(p0.versions, BTreeMap::from([("v3".to_string(), 2)]));
    assert_eq!(p0.codecs, BTreeMap::from([("gzip".to_string(), 2)]));
    assert_eq!((p0.claimed, p0.original, p0.encrypted), (2, 0, 0));
    assert!(p0.is_sound());
    let objects = p0.object_list.as_ref().unwrap();
    assert_eq!(objects.iter().map(|o| (o.first_offset, o.last_offset)).collect::<Vec<_>>(), [(0, 9), (10, 19)]);
    assert_eq!((objects[1].min_timestamp, objects[1].max_timestamp), (Some(10_000), Some(19_000)));

    let text = listing.render();
    assert!(text.starts_with("memory://test/p: 1 topic, 2 partitions, 3 objects, "), "{text}");
    let line = text.lines().find(|l| l.starts_with("t ") && l.contains(" 0-19 ")).expect(&text);
    assert!(line.contains("1970-01-01T00:00:00.000Z .. 1970-01-01T00:00:19.000Z"), "{line}");
    assert!(line.ends_with(" ok"), "{line}");
    assert!(!text.contains('~'), "every range is exact: {text}");
}

#[test]
fn gaps_missing_objects_and_unclaimed_uploads_are_shown_where_they_are() {
    let (archive, runtime) = (memory_archive(), runtime());
    runtime.block_on(async {
        put_claimed(&archive, &tp(0), 0, 9).await;
        put_claimed(&archive, &tp(0), 20, 29).await;
        let lost = put_claimed(&archive, &tp(0), 30, 39).await;
        archive.store().delete(&lost).await.unwrap();
        let unclaimed = "p/t/0/t-0_00000000000000000040-00000000000000000049.mak.gz";
        archive.store().put(&ObjectPath::from(unclaimed), object_bytes(&tp(0), 40, 49).into()).await.unwrap();
    });

    let listing = ls(&archive, &Options::default(), &runtime).unwrap();

    let p0 = &listing.partitions[0];
    assert_eq!(p0.objects, 2);
    // The missing object was the last one: its offsets are missing, not between two objects.
    assert_eq!(p0.gaps, [[10, 19]]);
    assert_eq!(p0.missing.len(), 1);
    assert_eq!((p0.missing[0].first_offset, p0.missing[0].last_offset), (30, 39));
    assert!(p0.object_list.is_none(), "objects are listed only when asked");
    assert_eq!(listing.unclaimed, ["memory://test/p/t/0/t-0_00000000000000000040-00000000000000000049.mak.gz"]);
    let text = listing.render();
    assert!(text.contains(" 1 gap, 1 missing object"), "{text}");
    assert!(text.contains("  GAP offsets 10-19: in no object"), "{text}");
    assert!(text.contains("  MISSING t-0_"), "{text}");
    assert!(text.contains("ignored memory://test/p/t/0/t-0_00000000000000000040"), "{text}");
}

#[test]
fn a_partition_filter_lists_only_that_partition() {
    let (archive, runtime) = (memory_archive(), runtime());
    runtime.block_on(async {
        put_claimed(&archive, &tp(0), 0, 9).await;
        put_claimed(&archive, &tp(1), 0, 4).await;
    });
    let selection = Selection { topics: vec!["t".into()], partitions: vec![1], ..Selection::default() };

    let listing = ls(&archive, &Options { selection, ..Options::default() }, &runtime).unwrap();

    assert_eq!(listing.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(), [1]);
    assert_eq!(listing.partitions[0].last_offset, Some(4));
}

#[test]
fn the_json_listing_names_every_field_a_script_needs() {
    let (archive, runtime) = (memory_archive(), runtime());
    runtime.block_on(put_claimed(&archive, &tp(0), 0, 9));

    let listing = ls(&archive, &Options::default(), &runtime).unwrap();
    let json: serde_json::Value = serde_json::to_value(&listing).unwrap();

    let p0 = &json["partitions"][0];
    assert_eq!(p0["topic"], "t");
    assert_eq!(p0["first_offset"], 0);
    assert_eq!(p0["last_offset"], 9);
    assert_eq!(p0["max_timestamp"], 9_000);
    assert_eq!(p0["time_range_exact"], true);
    assert_eq!(p0["gaps"], serde_json::json!([]));
    assert!(p0.get("object_list").is_none());
}

#[test]
fn sizes_read_in_binary_units_and_times_in_utc_to_the_millisecond() {
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    assert_eq!(rfc3339_ms(1_764_504_000_123), "2025-11-30T12:00:00.123Z");
    assert_eq!(rfc3339_ms(i64::MAX), i64::MAX.to_string(), "beyond a date: the number");
}
