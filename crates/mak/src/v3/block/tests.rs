use super::open::RecordSize;
use super::*;
use crate::error::BlockProblem;
use crate::v2::{OwnedRecord, TimestampType};
use crate::v3::{BLOCK_HEAD_LEN, CRC_LEN, FLAG_GAPS, FLAG_TYPES};

fn record(offset: i64, timestamp: i64, timestamp_type: TimestampType) -> OwnedRecord {
    OwnedRecord {
        offset,
        timestamp,
        timestamp_type,
        key: Some(format!("k{offset}").into_bytes()),
        value: Some(format!("value {offset}").into_bytes()),
        headers: vec![],
    }
}

/// Everything a block can hold: gaps, mixed types, null and empty keys and values, headers
/// with repeated keys and null values, timestamps going backwards and missing.
fn varied() -> Vec<OwnedRecord> {
    let mut records = vec![
        record(10, 1_000, TimestampType::CreateTime),
        record(11, 999, TimestampType::CreateTime),
        record(15, -1, TimestampType::NotAvailable),
        record(16, 5_000, TimestampType::LogAppendTime),
    ];
    records[1].key = None;
    records[1].value = Some(vec![]);
    records[2].key = Some(vec![]);
    records[2].value = None;
    records[3].headers =
        vec![("trace".into(), Some(b"1".to_vec())), ("trace".into(), None), ("".into(), Some(vec![0xff; 300]))];
    records
}

/// The block `records` make, whole (length field to CRC).
fn encoded(records: &[OwnedRecord]) -> Vec<u8> {
    let mut block = OpenBlock::default();
    for record in records {
        block.push(&record.as_record_ref());
    }
    let expected_len = block.encoded_len() as usize;
    let bytes = block.close(None, |closed| closed.pieces().collect::<Vec<_>>().concat());
    assert_eq!(bytes.len(), expected_len, "encoded_len says what close writes");
    assert!(block.is_empty(), "close empties the block");
    bytes
}

/// `bytes` checked and walked, as the reader does after the CRC.
fn walked(bytes: &[u8]) -> Result<(Totals, Vec<OwnedRecord>), BlockProblem> {
    let body = &bytes[BLOCK_LEN_LEN as usize..bytes.len() - CRC_LEN as usize];
    let checked = check(body)?;
    let mut walk = Walk::new(checked);
    let mut records = Vec::new();
    while let Some(record) = walk.next(body) {
        records.push(record.to_owned_record());
    }
    assert!(!walk.has_next());
    Ok((checked.totals, records))
}

#[test]
fn a_block_hands_back_every_field_of_every_record_in_order() {
    let records = varied();
    let bytes = encoded(&records);
    assert_eq!(u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize, bytes.len() - 4);
    assert_eq!(bytes[5], FLAG_GAPS | FLAG_TYPES, "gaps and mixed types");
    let crc = crc32c::crc32c(&bytes[..bytes.len() - 4]);
    assert_eq!(bytes[bytes.len() - 4..], crc.to_be_bytes(), "one CRC over the whole block");
    let (totals, read) = walked(&bytes).unwrap();
    assert_eq!(read, records);
    assert_eq!((totals.count, totals.first_offset, totals.last_offset), (4, 10, 16));
    assert_eq!((totals.first_timestamp, totals.last_timestamp), (1_000, 5_000));
    assert_eq!((totals.min_timestamp, totals.max_timestamp), (999, 5_000), "-1 is no timestamp");
}

#[test]
fn consecutive_offsets_and_one_timestamp_type_need_no_gap_or_type_column() {
    let records: Vec<OwnedRecord> = (0..100).map(|o| record(o, 1_000 + o / 10, TimestampType::CreateTime)).collect();
    let bytes = encoded(&records);
    assert_eq!((bytes[5], bytes[6]), (0, TimestampType::CreateTime as u8));
    let data: usize = records.iter().map(|r| r.key.as_ref().unwrap().len() + r.value.as_ref().unwrap().len()).sum();
    // Head, 99 one-byte deltas, two length bytes and a header count per record, data, CRC.
    assert_eq!(bytes.len(), BLOCK_HEAD_LEN as usize + 99 + 3 * 100 + data + 4);
    assert_eq!(walked(&bytes).unwrap().1, records);
}

#[test]
fn a_block_of_one_record_with_its_data_given_apart_reads_as_if_copied() {
    let records = vec![varied().remove(3)];
    let copied = encoded(&records);
    let mut block = OpenBlock::default();
    let record = records[0].as_record_ref();
    block.push_meta(&record);
    let pieces = [record.key.unwrap(), record.value.unwrap()];
    let apart = block.close(Some(&pieces), |closed| closed.pieces().collect::<Vec<_>>().concat());
    assert_eq!(apart, copied);
}

#[test]
fn size_of_is_what_a_record_adds_to_the_block_a_first_gap_and_a_first_type_change_included() {
    // A run of 50 before the first gap and the first type change, so that what those add for
    // the records before them shows; then null and empty fields and headers.
    let mut records: Vec<OwnedRecord> = (10..60).map(|o| record(o, 1_000 + o, TimestampType::CreateTime)).collect();
    records.push(record(70, 2_000, TimestampType::CreateTime));
    records.push(record(71, 1_999, TimestampType::LogAppendTime));
    for (offset, mut varied) in (72..).zip(varied()) {
        varied.offset = offset;
        records.push(varied);
    }
    let mut block = OpenBlock::default();
    for owned in &records {
        let record = owned.as_record_ref();
        let size = block.size_of(&record).expect("not too large");
        let before = block.encoded_len().max(BLOCK_HEAD_LEN + CRC_LEN);
        block.push(&record);
        assert_eq!(block.encoded_len() - before, size.total(), "offset {}", owned.offset);
        let kv = owned.key.as_ref().map_or(0, Vec::len) + owned.value.as_ref().map_or(0, Vec::len);
        assert_eq!(size.data, kv as u64, "offset {}", owned.offset);
    }
}

#[test]
fn small_records_close_a_block_at_the_other_columns_share_and_it_stays_within_its_bound() {
    let room = BlockRoom::of(4096);
    assert_eq!((room.data, room.meta), (3584, 256));
    let mut block = OpenBlock::default();
    let huge = RecordSize { data: 1 << 20, meta: 1 << 20 };
    assert!(block.fits(huge, room), "an empty block takes any record");
    block.reserve_data(room);
    let mut offset = 0;
    loop {
        let owned =
            OwnedRecord { key: None, value: Some(vec![b'v'; 10]), ..record(offset, 5, TimestampType::CreateTime) };
        let record = owned.as_record_ref();
        if !block.fits(block.size_of(&record).unwrap(), room) {
            break;
        }
        block.push(&record);
        offset += 1;
    }
    // Four bytes of lengths and deltas per 10-byte record: the other columns fill first.
    assert!(block.meta_len() <= room.meta && block.meta_len() > room.meta - 8, "{}", block.meta_len());
    assert!(block.allocated() <= 4096, "allocated {} of a 4096-byte bound", block.allocated());
}

/// `bytes` with `edit` applied and the CRC made to match again (damage the CRC did not catch).
fn resigned(mut bytes: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&mut bytes);
    let len = bytes.len();
    let new_len = (len - 4) as u32;
    bytes[0..4].copy_from_slice(&new_len.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[..len - 4]);
    bytes[len - 4..].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn a_block_that_breaks_a_rule_is_refused_naming_the_rule() {
    let good = encoded(&varied());
    let problem = |edit: &dyn Fn(&mut Vec<u8>)| walked(&resigned(good.clone(), |b| edit(b))).unwrap_err();
    assert_eq!(problem(&|b| b[5] |= 0x80), BlockProblem::UnknownFlags(0x83));
    assert_eq!(problem(&|b| b[7..11].copy_from_slice(&0u32.to_be_bytes())), BlockProblem::NoRecords);
    assert_eq!(problem(&|b| b[11..19].copy_from_slice(&(-5i64).to_be_bytes())), BlockProblem::NegativeOffset(-5));
    let trailing = problem(&|b| {
        let at = b.len() - 4;
        b.insert(at, 0);
    });
    assert_eq!(trailing, BlockProblem::TrailingBytes { unused: 1 });
    let short = problem(&|b| {
        let at = b.len() - 5;
        b.remove(at);
    });
    assert_eq!(short, BlockProblem::ColumnPastBlock { column: "data column", at: short_at(&short) });
    // The first column (gaps) starts at byte 27: make its first varint run on for 11 bytes.
    let overlong = problem(&|b| {
        let eleven: Vec<u8> = (0..11).map(|index| if index == 10 { 0 } else { 0x80 }).collect();
        b.splice(27..27, eleven);
    });
    assert_eq!(overlong, BlockProblem::BadVarint { column: "gap column", at: 27 });
}

fn short_at(problem: &BlockProblem) -> u32 {
    match problem {
        BlockProblem::ColumnPastBlock { at, .. } => *at,
        other => panic!("{other}"),
    }
}

#[test]
fn an_offset_gap_past_the_largest_offset_is_an_error_not_a_wrap() {
    let mut records = vec![record(0, 0, TimestampType::CreateTime), record(i64::MAX, 0, TimestampType::CreateTime)];
    let bytes = encoded(&records);
    assert_eq!(walked(&bytes).unwrap().1[1].offset, i64::MAX);
    records[0].offset = 1;
    let wrapped = resigned(bytes, |b| b[11..19].copy_from_slice(&1i64.to_be_bytes()));
    assert_eq!(walked(&wrapped).unwrap_err(), BlockProblem::OffsetOverflow { record: 1 });
}

#[test]
fn progress_and_footer_round_trip_and_a_torn_progress_block_is_told_apart() {
    let progress = Progress {
        write_position: 1234,
        record_count: 7,
        last_offset: 99,
        first_timestamp: 5,
        last_timestamp: 3,
        min_timestamp: 1,
        max_timestamp: 9,
        state: State::Sealed,
    };
    let mut bytes = progress.encode();
    assert_eq!(Progress::decode(&bytes), Ok(progress));
    bytes[20] ^= 1;
    assert_eq!(Progress::decode(&bytes), Err(ProgressProblem::CrcMismatch));
    let footer = Footer {
        record_count: 7,
        first_offset: 93,
        last_offset: 99,
        first_timestamp: 5,
        last_timestamp: 3,
        min_timestamp: 1,
        max_timestamp: 9,
        body_crc: 0xdead_beef,
    };
    let bytes = footer.encode();
    assert_eq!(bytes.len(), FOOTER_BYTES);
    assert_eq!(Footer::decode(&bytes[4..FOOTER_BYTES - 4], FOOTER_BLOCK_LEN), Ok(footer));
}
