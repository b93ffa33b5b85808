//! `kafkatos3_parse`: the original's golden files, corrupt and missing files, and files our
//! writer wrote, read by both this tool and the original's reader.

use super::*;

#[test]
fn parse_prints_header_and_records_of_original_file() {
    let out = run(PARSE, [golden("original_three_records.mak")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, three_records_output(3));
    assert_eq!(out.stderr, "");
}

#[test]
fn parse_detects_gzip_by_content_and_prints_the_same_output() {
    let out = run(PARSE, [golden("original_three_records.mak.gz")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, three_records_output(3));
    assert_eq!(out.stderr, "");

    // By content, not by name: a gzip file named .mak and a plain file named .mak.gz.
    let dir = tempfile::tempdir().unwrap();
    let gzip_named_mak = dir.path().join("compressed.mak");
    fs::copy(golden("original_three_records.mak.gz"), &gzip_named_mak).unwrap();
    let plain_named_gz = dir.path().join("plain.mak.gz");
    fs::copy(golden("original_three_records.mak"), &plain_named_gz).unwrap();
    for path in [gzip_named_mak, plain_named_gz] {
        let out = run(PARSE, [&path]);
        assert_eq!(out.code(), Some(0), "{}: {out:?}", path.display());
        assert_eq!(out.stdout, three_records_output(3), "{}", path.display());
    }
}

#[test]
fn parse_shows_empty_and_null_as_nothing_and_binary_as_escaped_bytes() {
    let out = run(PARSE, [golden("original_empty_and_null.mak")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let expected = [
        header_lines("test", 3, 41, "1479000000.0"),
        record_line(41, "", "value with null key"),
        record_line(42, "key with empty value", ""),
        record_line(43, r#"b"\x00\xff\x00bin""#, r#"b"\xff\x00\xfe\x01""#),
        record_line(44, "", ""),
    ]
    .concat();
    assert_eq!(out.stdout, expected);
    assert_eq!(out.stderr, "");
}

#[test]
fn parse_prints_only_the_header_of_a_file_without_records() {
    let out = run(PARSE, [golden("original_no_records.mak")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    // This golden file's start time has a fraction, printed as Python prints the float.
    assert_eq!(out.stdout, header_lines("test", 1, 100, "1479000000.25"));
    assert_eq!(out.stderr, "");
}

#[test]
fn parse_stops_at_the_write_position_and_ignores_a_torn_tail() {
    let out = run(PARSE, [golden("original_torn_tail.mak")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let expected =
        [header_lines("test", 0, 10, "1479000000.0"), record_line(10, "a", "first"), record_line(11, "b", "second")]
            .concat();
    assert_eq!(out.stdout, expected);
    assert_eq!(out.stderr, "");
}

// ---------------------------------------------------------------------------------------------
// kafkatos3_parse: corrupt and missing files
// ---------------------------------------------------------------------------------------------

/// The middle of record 2's value-length prefix: record 2's key-length prefix (8 bytes) and key
/// `key-2` (5 bytes) are complete, its value length is not.
const TRUNCATED_AT: usize = THREE_RECORDS_THIRD_AT + 8 + 5 + 3;

#[test]
fn parse_of_truncated_file_fails_with_one_line_naming_the_file_and_where_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.mak");
    fs::write(&path, &three_records_bytes()[..TRUNCATED_AT]).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3_parse: {}: ", path.display())), "{line}");
    // The field cut short starts 3 bytes before the end of the data.
    let field_at = TRUNCATED_AT - 3;
    assert!(
        line.contains(&format!("at byte {field_at}")) && line.contains("found 3"),
        "names the truncated field's position, byte {field_at}: {line}"
    );
}

/// The records before a truncation are intact and worth showing, as the original's reader
/// showed them and as this tool does for the same bytes gzipped (next test).
#[test]
fn parse_of_truncated_file_prints_the_records_before_the_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.mak");
    fs::write(&path, &three_records_bytes()[..TRUNCATED_AT]).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, three_records_output(2), "stderr: {}", out.stderr);
}

#[test]
fn parse_of_truncated_gzip_content_prints_records_before_it_and_names_the_exact_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.mak.gz");
    fs::write(&path, gzip(&three_records_bytes()[..TRUNCATED_AT])).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, three_records_output(2));
    // The value-length prefix starts at 190, where the decompressed input runs out.
    let value_length_at = THREE_RECORDS_THIRD_AT + 8 + 5;
    assert_eq!(
        out.stderr_line(),
        format!(
            "kafkatos3_parse: {}: input ends inside the record value length at byte {value_length_at}: needed 8 bytes, found 3",
            path.display()
        )
    );
}

#[test]
fn parse_of_huge_length_prefix_fails_at_the_prefix_after_printing_earlier_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.mak");
    let mut bytes = three_records_bytes();
    bytes[THREE_RECORDS_THIRD_AT..THREE_RECORDS_THIRD_AT + 8].fill(0xff);
    fs::write(&path, &bytes).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, three_records_output(2));
    assert_eq!(
        out.stderr_line(),
        format!(
            "kafkatos3_parse: {}: record key of {} bytes announced at byte {THREE_RECORDS_THIRD_AT} runs past the end of valid data at byte {THREE_RECORDS_LEN}",
            path.display(),
            u64::MAX
        )
    );
}

#[test]
fn parse_of_bad_magic_fails_at_byte_zero_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("magic.mak");
    let mut bytes = three_records_bytes();
    bytes[..3].copy_from_slice(b"KAM");
    fs::write(&path, &bytes).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, "");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3_parse: {}: bad magic at byte 0", path.display())), "{line}");
}

#[test]
fn parse_of_cut_gzip_stream_fails_naming_the_file_and_a_byte_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.mak.gz");
    let compressed = gzip(&three_records_bytes());
    fs::write(&path, &compressed[..compressed.len() / 2]).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3_parse: {}: ", path.display())), "{line}");
    assert!(line.contains(" at byte "), "{line}");
}

/// A gzip member ends with a CRC-32 of its content; a file whose compressed bytes were
/// damaged in a way deflate cannot notice (a stored block) is only caught by that check,
/// which `gzip -t` does.
#[test]
fn parse_of_gzip_file_with_bad_crc_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("badcrc.mak.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    std::io::Write::write_all(&mut encoder, &three_records_bytes()).unwrap();
    let mut compressed = encoder.finish().unwrap();
    let at = compressed.windows(7).position(|w| w == b"value-1").expect("stored blocks hold the bytes as they are");
    compressed[at] = b'V';
    fs::write(&path, &compressed).unwrap();
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "a damaged .mak.gz must not pass as valid: {out:?}");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3_parse: {}: ", path.display())), "{line}");
}

#[test]
fn parse_of_missing_file_fails_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.mak");
    let out = run(PARSE, [&path]);
    assert_ne!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, "");
    let line = out.stderr_line();
    assert!(line.starts_with(&format!("kafkatos3_parse: {}: ", path.display())), "{line}");
    assert!(line.contains("No such file or directory"), "{line}");
}

#[test]
fn parse_into_a_pipe_closed_early_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mak");
    // Far more output than a pipe buffers, so the tool is still writing when the pipe closes.
    let records: Vec<Rec> =
        (0..50_000).map(|i| rec(i, Some(b"some key"), Some(b"a value long enough to fill the pipe"))).collect();
    write_mak(&path, &header("big", 0, 0), &records);

    // `kafkatos3_parse big.mak | head -1`
    let mut child = Command::new(PARSE)
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kafkatos3_parse");
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut first).expect("read first line");
    assert_eq!(first, "File topic is big\n");
    // The reader (and so the pipe's read end) is dropped here.
    let status = wait_with_deadline(&mut child, PARSE);
    let stderr = String::from_utf8(stderr.join().unwrap()).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");
}

// ---------------------------------------------------------------------------------------------
// kafkatos3_parse and the original Python reader on files written by our writer
// ---------------------------------------------------------------------------------------------

/// Records with every shape a Kafka record can have: null and empty keys and values, binary,
/// non-ASCII text, an offset gap (compaction) and a value larger than the writer's buffer.
fn varied_records() -> Vec<Rec> {
    vec![
        rec(1000, Some(b"k"), Some(b"v")),
        rec(1001, None, Some(b"value with null key")),
        rec(1002, Some(b"key with null value"), None),
        rec(1003, Some(b""), Some(b"")),
        rec(1004, Some(&[0x00, 0xff, 0x0a]), Some(b"line\nbreak")),
        rec(1007, Some("cl\u{e9} \u{1f511}".as_bytes()), Some(b"after a gap")),
        rec(1008, Some(b"big"), Some(&vec![b'x'; 100_000])),
        rec(1009, Some(b"last"), Some(b"\"quoted\" \\ b\"")),
    ]
}

fn python_available() {
    let probe = Command::new("python3").args(["-c", "import kafkatos3.MessageArchiveKafka"]).output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the original Python kafkatos3 is not importable ({}): run scripts/install-deps.sh",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("cannot run python3 ({e}): run scripts/install-deps.sh"),
    }
}

#[test]
fn parse_prints_every_record_of_a_file_written_by_our_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.mak");
    let records = varied_records();
    write_mak(&path, &header("events", 4, 1000), &records);

    let out = run(PARSE, [&path]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let mut expected = header_lines("events", 4, 1000, "1479000000.0");
    for (offset, key, value) in &records {
        let (mut k, mut v) = (String::new(), String::new());
        kafkatos3::tools::parse::render_bytes(key.as_deref().unwrap_or_default(), &mut k);
        kafkatos3::tools::parse::render_bytes(value.as_deref().unwrap_or_default(), &mut v);
        expected.push_str(&record_line(*offset, &k, &v));
    }
    assert_eq!(out.stdout, expected);
    // Spot-check the rendering independently of render_bytes.
    assert!(out
        .stdout
        .contains("Processing message with offset: 1004, key: b\"\\x00\\xff\\x0a\", value: b\"line\\x0abreak\"\n"));
    assert!(out.stdout.contains("Processing message with offset: 1007, key: cl\u{e9} \u{1f511}, value: after a gap\n"));
    assert_eq!(out.stderr, "");
}

#[test]
fn parse_json_prints_one_object_per_record_in_base64_and_keeps_an_offset_range() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.mak.gz");
    let records = varied_records();
    let plain = dir.path().join("ours.mak");
    write_mak(&plain, &header("events", 4, 1000), &records);
    let mut gz = flate2::write::GzEncoder::new(fs::File::create(&path).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &fs::read(&plain).unwrap()).unwrap();
    gz.finish().unwrap();

    let out = run(PARSE, [path.as_os_str(), OsStr::new("--json"), OsStr::new("--bytes"), OsStr::new("base64")]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let lines: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), records.len());
    let b64 = |bytes: &Option<Vec<u8>>| {
        base64::engine::general_purpose::STANDARD.encode(bytes.as_deref().unwrap_or_default())
    };
    for (line, (offset, key, value)) in lines.iter().zip(&records) {
        assert_eq!(line["topic"], "events");
        assert_eq!(line["partition"], 4);
        assert_eq!(line["offset"], *offset);
        assert_eq!(line["key"], b64(key), "offset {offset}");
        assert_eq!(line["value"], b64(value), "offset {offset}");
        assert_eq!(line["headers"], serde_json::json!([]));
    }

    let (first, last) = (records[1].0, records[2].0);
    let ranged = run(
        PARSE,
        [
            path.as_os_str(),
            OsStr::new("--json"),
            OsStr::new("--bytes"),
            OsStr::new("base64"),
            OsStr::new("--from-offset"),
            OsStr::new(&first.to_string()),
            OsStr::new("--to-offset"),
            OsStr::new(&last.to_string()),
        ],
    );
    let offsets: Vec<i64> = ranged
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![first, last]);

    let utf8 = run(PARSE, [path.as_os_str(), OsStr::new("--json")]);
    assert_eq!(utf8.code(), Some(1), "binary values need base64: {utf8:?}");
    assert!(utf8.stderr.contains("is not UTF-8; use --bytes base64"), "{utf8:?}");
}

#[test]
fn file_written_by_our_writer_is_read_by_the_original_python_reader() {
    python_available();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.mak");
    let records = varied_records();
    write_mak(&path, &header("events", 4, 1000), &records);

    // Records, through the repository's script: `offset<TAB>hex(key)<TAB>hex(value)`.
    let script = golden("read_with_original.py");
    let out = run("python3", [script.as_os_str(), path.as_os_str()]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let expected: String = records
        .iter()
        .map(|(offset, key, value)| {
            format!(
                "{offset}\t{}\t{}\n",
                hex(key.as_deref().unwrap_or_default()),
                hex(value.as_deref().unwrap_or_default())
            )
        })
        .collect();
    assert_eq!(out.stdout, expected);
    assert_eq!(out.stderr, "");

    // Header and last-offset field, through the original's own accessors.
    let out = run(
        "python3",
        [
            OsStr::new("-c"),
            OsStr::new(
                "import json, sys\n\
                 from kafkatos3.MessageArchiveKafka import MessageArchiveKafkaReader\n\
                 r = MessageArchiveKafkaReader(sys.argv[1])\n\
                 print(json.dumps(r.get_header().get_data(), sort_keys=True))\n\
                 print(r.get_last_offset())\n\
                 r.close()\n",
            ),
            path.as_os_str(),
        ],
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "{\"partition\": 4, \"startoffset\": 1000, \"starttime\": 1479000000.0, \"topic\": \"events\"}\n1009\n"
    );
}
