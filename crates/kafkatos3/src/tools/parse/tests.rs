use super::*;

fn rendered(bytes: &[u8]) -> String {
    let mut s = String::new();
    render_bytes(bytes, &mut s);
    s
}

#[test]
fn printable_text_is_shown_verbatim_and_binary_is_escaped() {
    assert_eq!(rendered(b"hello world"), "hello world");
    assert_eq!(rendered("h\u{e9}llo".as_bytes()), "h\u{e9}llo");
    assert_eq!(rendered(b""), "");
    assert_eq!(rendered(&[0x00, 0xff, b'a']), "b\"\\x00\\xffa\"");
    assert_eq!(rendered(b"line\nbreak"), "b\"line\\x0abreak\"");
    assert_eq!(rendered(b"b\"x\""), "b\"b\\\"x\\\"\"");
}

#[test]
fn json_lines_hold_every_record_field_and_the_filter_keeps_an_offset_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.mak");
    let header = mak::Header { topic: "t".into(), partition: 2, start_offset: 10, start_time: 1.0 };
    let mut writer = mak::MakWriter::create(&path, &header).unwrap();
    for offset in 10..15 {
        writer.append(offset, Some(b"k"), Some(&[0xff, offset as u8])).unwrap();
    }
    writer.close().unwrap();
    let mut out = Vec::new();
    let filter = Filter { from: Some(11), to: Some(12), ..Filter::default() };
    let file = File::open(&path).unwrap();
    let printed = print_stream("f.mak", file, Format::Json(BytesAs::Base64), filter, None, &mut out).unwrap();
    assert_eq!(printed, 2);
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines[0],
        serde_json::json!({"topic": "t", "partition": 2, "offset": 11, "timestamp": null, "timestamp_type": "NotAvailable", "key": "aw==", "value": "/ws=", "headers": []})
    );
    assert_eq!(lines[1]["offset"], 12);

    let error = print_stream(
        "f.mak",
        File::open(&path).unwrap(),
        Format::Json(BytesAs::Utf8),
        Filter::default(),
        None,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "f.mak: record at offset 10: its value is not UTF-8; use --bytes base64");
}

#[test]
fn start_time_prints_like_python() {
    assert_eq!(python_float(1479000000.0), "1479000000.0");
    assert_eq!(python_float(1.5), "1.5");
}

/// A sealed file of `version` (2 or 3) holding what version 1 loses, and its path.
fn full_file(dir: &std::path::Path, version: Version) -> std::path::PathBuf {
    use mak::v2::RecordRef;
    let path = dir.join(format!("{version:?}.mak"));
    let start = mak::FileStart { topic: "t", partition: 1, start_offset: 7, created_secs: 1_479_000_000, writer: None };
    let mut writer = mak::AnyWriter::create(&path, version, &start).unwrap();
    let headers = [("trace", Some(&b"abc"[..])), ("trace", None), ("e", Some(&b""[..]))];
    let records = [
        RecordRef {
            offset: 7,
            timestamp: 1_700_000_000_000,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: Some(b"\x00"),
            headers: &headers,
        },
        RecordRef {
            offset: 8,
            timestamp: 42,
            timestamp_type: TimestampType::LogAppendTime,
            key: Some(b""),
            value: None,
            headers: mak::v2::NO_HEADERS,
        },
        RecordRef {
            offset: 9,
            timestamp: -1,
            timestamp_type: TimestampType::NotAvailable,
            key: Some(b"None"),
            value: Some(b"v"),
            headers: mak::v2::NO_HEADERS,
        },
    ];
    for record in &records {
        writer.append(record).unwrap();
    }
    writer.seal().unwrap();
    path
}

#[test]
fn version_2_and_3_human_lines_show_null_as_none_then_the_timestamp_and_headers_in_order() {
    for version in [Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let path = full_file(dir.path(), version);
        let mut out = Vec::new();
        assert_eq!(print_file(&path, &mut out).unwrap(), 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "File topic is t\nFile partition is 1\nStaring offset is 7\nFile created at 1479000000.0\n\
             Processing message with offset: 7, key: None, value: b\"\\x00\", timestamp: 1700000000000 (CreateTime), headers: [trace: abc, trace: None, e: ]\n\
             Processing message with offset: 8, key: , value: None, timestamp: 42 (LogAppendTime)\n\
             Processing message with offset: 9, key: b\"None\", value: v, timestamp: -1 (NotAvailable)\n",
            "{version:?}"
        );
    }
}

#[test]
fn version_2_and_3_json_lines_keep_null_timestamps_and_ordered_headers() {
    for version in [Version::V2, Version::V3] {
        let dir = tempfile::tempdir().unwrap();
        let path = full_file(dir.path(), version);
        let mut out = Vec::new();
        let file = File::open(&path).unwrap();
        print_stream("f.mak", file, Format::Json(BytesAs::Base64), Filter::default(), None, &mut out).unwrap();
        let lines: Vec<serde_json::Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            lines,
            [
                serde_json::json!({"topic": "t", "partition": 1, "offset": 7, "timestamp": 1_700_000_000_000_i64,
                "timestamp_type": "CreateTime", "key": null, "value": "AA==",
                "headers": [{"key": "trace", "value": "YWJj"}, {"key": "trace", "value": null}, {"key": "e", "value": ""}]}),
                serde_json::json!({"topic": "t", "partition": 1, "offset": 8, "timestamp": 42,
                "timestamp_type": "LogAppendTime", "key": "", "value": null, "headers": []}),
                serde_json::json!({"topic": "t", "partition": 1, "offset": 9, "timestamp": null,
                "timestamp_type": "NotAvailable", "key": "Tm9uZQ==", "value": "dg==", "headers": []}),
            ],
            "{version:?}"
        );
    }
}

#[test]
fn a_time_range_keeps_records_stamped_inside_it_and_leaves_out_those_without_a_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let path = full_file(dir.path(), Version::V3);
    let offsets = |filter: Filter| {
        let mut out = Vec::new();
        let file = File::open(&path).unwrap();
        print_stream("f.mak", file, Format::Json(BytesAs::Base64), filter, None, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(offsets(Filter { from_ms: Some(0), ..Filter::default() }), [7, 8], "offset 9 has no timestamp");
    assert_eq!(offsets(Filter { to_ms: Some(42), ..Filter::default() }), [8]);
    assert_eq!(offsets(Filter { from_ms: Some(43), to_ms: Some(1_700_000_000_000), ..Filter::default() }), [7]);
    let both = Filter { from: Some(8), from_ms: Some(0), ..Filter::default() };
    assert_eq!(offsets(both), [8], "offset and time bounds both apply");
}
