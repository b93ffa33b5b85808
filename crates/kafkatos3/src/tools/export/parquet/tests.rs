use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::Array;
use bytes::Bytes;
use mak::v2::{Header, MakReader, MakWriter, OwnedRecord, TimestampType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::*;

fn record(offset: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[(&str, Option<&[u8]>)]) -> OwnedRecord {
    OwnedRecord {
        offset,
        timestamp: 1_796_600_000_000 + offset,
        timestamp_type: if offset % 2 == 0 { TimestampType::CreateTime } else { TimestampType::LogAppendTime },
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec))).collect(),
    }
}

/// The varied records of the issue: binary and UTF-8, null and empty keys and values, a
/// tombstone, headers with duplicate keys and null values, one record without a timestamp.
fn varied() -> Vec<OwnedRecord> {
    let mut records = vec![
        record(10, None, Some(b"{\"a\":1}"), &[]),
        record(11, Some(b""), Some(b""), &[("h", Some(b"1")), ("h", None), ("h", Some(b""))]),
        record(12, Some(&[0xff, 0x00, 0xfe]), None, &[("trace", Some(&[0x80, 0x81]))]),
        record(13, Some(b"k"), Some(&[0xc3, 0x28]), &[]),
    ];
    let mut untimed = record(14, Some(b"k2"), Some(b"plain"), &[]);
    untimed.timestamp = -1;
    untimed.timestamp_type = TimestampType::NotAvailable;
    records.push(untimed);
    records
}

/// The records as the archive reader gives them: written to a MAK v2 file, read back.
fn encoded(records: &[OwnedRecord], values: ValueFormat) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.mak");
    let header = Header { topic: "t".into(), partition: 3, start_offset: 10, created_ms: None, writer: None };
    let mut writer = MakWriter::create(&path, &header).unwrap();
    for r in records {
        writer.append(&r.as_record_ref()).unwrap();
    }
    writer.close().unwrap();
    let mut reader = MakReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut file = ParquetFile::new(values, &[("kafkatos3.source", "t/3/00000000000000000010".to_string())]).unwrap();
    while let Some(r) = reader.next_record().unwrap() {
        file.push("t", 3, &r).unwrap();
    }
    assert_eq!(file.rows(), records.len());
    file.finish().unwrap()
}

fn batch(bytes: &[u8]) -> RecordBatch {
    let mut reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes)).unwrap().build().unwrap();
    let batch = reader.next().unwrap().unwrap();
    assert!(reader.next().is_none());
    batch
}

#[test]
fn every_field_of_every_record_reads_back_as_archived_null_and_empty_apart() {
    let records = varied();
    let batch = batch(&encoded(&records, ValueFormat::Raw));
    assert_eq!(batch.schema(), schema(ValueFormat::Raw));
    assert_eq!(batch.num_rows(), records.len());
    let topic = batch.column(0).as_string::<i32>();
    let partition = batch.column(1).as_primitive::<Int32Type>();
    let offset = batch.column(2).as_primitive::<Int64Type>();
    let timestamp = batch.column(3).as_primitive::<TimestampMillisecondType>();
    let timestamp_type = batch.column(4).as_string::<i32>();
    let key = batch.column(5).as_binary::<i32>();
    let value = batch.column(6).as_binary::<i32>();
    let headers = batch.column(7).as_list::<i32>();
    for (row, expected) in records.iter().enumerate() {
        assert_eq!((topic.value(row), partition.value(row), offset.value(row)), ("t", 3, expected.offset));
        let (stamp, kind) = match expected.timestamp_type {
            TimestampType::NotAvailable => (None, None),
            TimestampType::CreateTime => (Some(expected.timestamp), Some("CreateTime")),
            TimestampType::LogAppendTime => (Some(expected.timestamp), Some("LogAppendTime")),
        };
        assert_eq!(timestamp.is_valid(row).then(|| timestamp.value(row)), stamp, "row {row}");
        assert_eq!(timestamp_type.is_valid(row).then(|| timestamp_type.value(row)), kind, "row {row}");
        assert_eq!(key.is_valid(row).then(|| key.value(row).to_vec()), expected.key, "row {row}");
        assert_eq!(value.is_valid(row).then(|| value.value(row).to_vec()), expected.value, "row {row}");
        let list = headers.value(row);
        let list = list.as_struct();
        let (names, values) = (list.column(0).as_string::<i32>(), list.column(1).as_binary::<i32>());
        let read: Vec<(String, Option<Vec<u8>>)> = (0..list.len())
            .map(|i| (names.value(i).to_string(), values.is_valid(i).then(|| values.value(i).to_vec())))
            .collect();
        assert_eq!(read, expected.headers, "row {row}: in order, duplicates and nulls kept");
    }
}

#[test]
fn json_values_add_the_text_column_null_where_the_value_is_not_utf8() {
    let batch = batch(&encoded(&varied(), ValueFormat::Json));
    let text = batch.column_by_name("value_text").unwrap().as_string::<i32>();
    let read: Vec<Option<&str>> = (0..text.len()).map(|i| text.is_valid(i).then(|| text.value(i))).collect();
    assert_eq!(read, vec![Some("{\"a\":1}"), Some(""), None, None, Some("plain")]);
}

#[test]
fn pages_are_zstd_with_statistics_on_what_engines_prune_by_and_the_footer_names_the_source() {
    let bytes = encoded(&varied(), ValueFormat::Raw);
    let reader = SerializedFileReader::new(Bytes::from(bytes.clone())).unwrap();
    let metadata = reader.metadata();
    let footer = metadata.file_metadata().key_value_metadata().unwrap();
    assert!(footer
        .iter()
        .any(|kv| kv.key == "kafkatos3.source" && kv.value.as_deref() == Some("t/3/00000000000000000010")));
    let group = metadata.row_group(0);
    // The level is the writer's business: a file records the codec only.
    for column in group.columns() {
        assert!(matches!(column.compression(), Compression::ZSTD(_)), "{:?}", column.compression());
    }
    let stats = |name: &str| {
        let column = group.columns().iter().find(|c| c.column_path().string() == name).unwrap();
        column.statistics().cloned()
    };
    match stats("offset") {
        Some(parquet::file::statistics::Statistics::Int64(s)) => {
            assert_eq!((s.min_opt(), s.max_opt()), (Some(&10), Some(&14)));
        }
        other => panic!("offset statistics: {other:?}"),
    }
    assert!(stats("timestamp").is_some_and(|s| s.null_count_opt() == Some(1)));
    assert!(stats("value").is_none(), "no statistics on the payload");
    assert_eq!(encoded(&varied(), ValueFormat::Raw), bytes, "the same records give the same bytes");
}

#[test]
fn row_groups_close_at_their_row_count_or_their_payload_bytes_whichever_comes_first() {
    let groups = |rows: usize, bytes: usize| {
        let mut file = ParquetFile::new(ValueFormat::Raw, &[]).unwrap().with_row_groups(rows, bytes);
        for offset in 0..10 {
            let value = vec![b'x'; 100];
            let record = Record {
                offset,
                timestamp: 1_000,
                timestamp_type: TimestampType::CreateTime,
                key: None,
                value: Some(&value),
                headers: mak::v2::Headers::EMPTY,
            };
            file.push("t", 0, &record).unwrap();
        }
        let reader = SerializedFileReader::new(Bytes::from(file.finish().unwrap())).unwrap();
        let metadata = reader.metadata();
        (0..metadata.num_row_groups()).map(|i| metadata.row_group(i).num_rows()).collect::<Vec<_>>()
    };
    assert_eq!(groups(4, usize::MAX), [4, 4, 2]);
    // A row of a 100-byte value counts 149 bytes: the topic and the row's own cost too.
    assert_eq!(groups(100, 400), [3, 3, 3, 1], "100-byte values, 400 bytes a group");
    assert_eq!(groups(100, usize::MAX), [10]);
}
