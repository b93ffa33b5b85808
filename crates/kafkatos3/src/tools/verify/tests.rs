use std::collections::HashMap;

use super::*;

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

mod against_a_store {
    use object_store::path::Path as ObjectPath;
    use object_store::ObjectStoreExt;

    use super::*;
    use crate::archive::testing::{memory_archive, object_bytes, put_claimed};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
    }

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn verified(archive: &Archive, deep: bool, runtime: &tokio::runtime::Runtime) -> Report {
        verify(archive, &Options { deep, decryption: None, progress_every: None }, runtime).unwrap()
    }

    #[test]
    fn a_sound_archive_is_clean_by_its_headers_and_record_by_record() {
        let runtime = runtime();
        let archive = memory_archive();
        for start in [0, 10, 20] {
            runtime.block_on(put_claimed(&archive, &tp(), start, start + 9));
        }
        let shallow = verified(&archive, false, &runtime);
        assert!(shallow.is_clean(), "{}", shallow.render());
        assert!(shallow.render().starts_with("t:0: offsets 0-29 in 3 objects, clean\n"), "{}", shallow.render());
        let deep = verified(&archive, true, &runtime);
        assert!(deep.render().starts_with("t:0: offsets 0-29 in 3 objects, 30 records, clean\n"), "{}", deep.render());
    }

    #[test]
    fn a_damaged_object_a_lying_header_and_an_unsound_claim_are_each_reported() {
        let runtime = runtime();
        let archive = memory_archive();
        let first = runtime.block_on(put_claimed(&archive, &tp(), 0, 9));
        let second = runtime.block_on(put_claimed(&archive, &tp(), 10, 19));
        runtime.block_on(put_claimed(&archive, &tp(), 20, 29));
        let store = archive.store();
        runtime.block_on(store.put(&first, b"not gzip at all".to_vec().into())).unwrap();
        // Offsets 10-18 under the name and claim of 10-19.
        runtime.block_on(store.put(&second, object_bytes(&tp(), 10, 18).into())).unwrap();
        let claim = ObjectPath::from("p/t/0/t-0_00000000000000000030.claim");
        runtime.block_on(store.put(&claim, b"{}".to_vec().into())).unwrap();
        for deep in [false, true] {
            let report = verified(&archive, deep, &runtime);
            assert!(!report.is_clean());
            let text = report.render();
            assert!(text.contains(&format!("  UNREADABLE {first}: ")), "deep {deep}: {text}");
            assert!(
                text.contains(&format!("  UNREADABLE {second}: header's last offset 18 differs from the key's 19")),
                "deep {deep}: {text}"
            );
            assert!(text.contains(&format!("  UNREADABLE {claim}: not a claim")), "deep {deep}: {text}");
        }
    }
}
