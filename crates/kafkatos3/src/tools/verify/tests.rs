//! Unit tests of [`super`] (crate::tools::verify).

use super::*;

#[test]
fn contiguous_objects_have_no_gaps_or_overlaps() {
    assert_eq!(coverage([(0, 9), (10, 19), (20, 20)].into_iter()), (vec![], vec![]));
}

#[test]
fn gaps_below_kafkas_log_start_are_expired_and_only_the_rest_is_lost() {
    let tp = TopicPartition::new("t", 0);
    let object =
        |start, end| CheckedObject { key: String::new(), tp: tp.clone(), start, end, records: None, problem: None };
    let mut report = Report::default();
    let partition = report.partitions.entry(tp.clone()).or_default();
    partition.objects = vec![object(0, 9), object(20, 29), object(60, 69)];
    partition.gaps = vec![(10, 19), (30, 59)];
    report.apply_kafka(&HashMap::from([(tp.clone(), (40, 80))]));
    let partition = &report.partitions[&tp];
    assert_eq!(partition.expired, vec![(10, 19), (30, 39)]);
    assert_eq!(partition.gaps, vec![(40, 59)], "still in Kafka's log: a real gap");
    assert!(!report.is_clean());
    let text = report.render();
    assert!(text.contains("t:0: EXPIRED offsets 30-39"), "{text}");
    assert!(text.contains("t:0: kafka holds offsets 40-79: 10 not archived yet"), "{text}");
}

#[test]
fn holes_and_double_coverage_are_reported_as_offset_ranges() {
    let (gaps, overlaps) = coverage([(0, 9), (15, 19), (18, 30), (25, 26)].into_iter());
    assert_eq!(gaps, vec![(10, 14)]);
    assert_eq!(overlaps, vec![(18, 19), (25, 26)]);
}
