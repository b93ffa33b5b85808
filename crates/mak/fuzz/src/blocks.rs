//! Versions 2 and 3 read alike (same header JSON, same records, progress block, footer), so
//! their checks are one generic function over [`Blocked`], implemented by [`V2`] and [`V3`].

use mak::ReadError;

use crate::heap::*;
use crate::v1::check_error;

/// A version 2 or 3 record as owned bytes, with everything the format keeps.
pub type OwnedV2 = mak::v2::OwnedRecord;

/// What the generic checks need of a version's reader.
pub trait Blocked {
    /// For messages: "v2" or "v3".
    const NAME: &'static str;
    /// The first bytes of every file of the version (magic, version, flags).
    fn preamble() -> Vec<u8>;
    fn read_all(bytes: &[u8]) -> Result<u64, ReadError>;
    /// Every record, reading with the input's length as size limit (`limited`) or as a
    /// stream of unknown length; checks the reader stays at its end and stops at its write
    /// position.
    fn collect(bytes: &[u8], limited: bool) -> Result<Vec<OwnedV2>, ReadError>;
    /// Reads every record keeping none (the heap this takes is the reader's own).
    fn drain(bytes: &[u8]) -> Result<u64, ReadError>;
    /// Checks the summary read from the first bytes against a full reader's header and
    /// progress block.
    fn check_summary(bytes: &[u8]);
}

/// Reads `bytes` as a file of version `F` every way the crate offers (size-limited,
/// streaming, summary only, through `AnyReader`), checking that each returns records or an
/// error inside the input, that they agree, and the heap each read takes on its own. Returns
/// the size-limited result.
pub fn read_blocked<F: Blocked>(bytes: &[u8]) -> Result<Vec<OwnedV2>, ReadError> {
    let name = F::NAME;
    let len = bytes.len();
    let (count, peak) = measure_peak(|| F::read_all(bytes));
    check_heap(&format!("{name} read_all"), peak, len);
    let (streaming_count, peak) = measure_peak(|| F::drain(bytes));
    check_heap(&format!("{name} new (streaming)"), peak, len);

    let limited = F::collect(bytes, true);
    let streaming = F::collect(bytes, false);
    match (&count, &limited) {
        (Ok(count), Ok(records)) => assert_eq!(*count, records.len() as u64),
        (Err(err), Err(expected)) => {
            check_error(&format!("{name} with_size_limit"), err, len);
            assert_eq!(err.to_string(), expected.to_string());
        }
        _ => panic!("{name} read_all {count:?} disagrees with with_size_limit {limited:?}"),
    }
    match (&streaming, &limited) {
        (Err(err), _) => check_error(&format!("{name} new (streaming)"), err, len),
        (Ok(records), Ok(expected)) => assert_eq!(records, expected),
        (Ok(_), Err(err)) => panic!("{name} streaming read succeeds where the size-limited one fails: {err:?}"),
    }
    match (&streaming, &streaming_count) {
        (Ok(records), Ok(count)) => assert_eq!(records.len() as u64, *count),
        (Err(err), Err(again)) => assert_eq!(err.to_string(), again.to_string()),
        _ => panic!("two {name} streaming reads of the same bytes disagree"),
    }
    F::check_summary(bytes);

    if bytes.starts_with(&F::preamble()[..10]) {
        let any = mak::AnyReader::with_size_limit(bytes, len as u64).and_then(|mut reader| {
            let mut records = Vec::new();
            while let Some(record) = reader.next_record()? {
                records.push(record.to_owned_record());
            }
            Ok(records)
        });
        match (&any, &limited) {
            (Ok(records), Ok(expected)) => assert_eq!(records, expected),
            (Err(err), Err(expected)) => assert_eq!(err.to_string(), expected.to_string()),
            _ => panic!("AnyReader {any:?} disagrees with the {name} reader {limited:?}"),
        }
    }
    limited
}

/// Version 2.
pub struct V2;
/// Version 3.
pub struct V3;

macro_rules! blocked {
    ($marker:ident, $module:ident, $name:literal) => {
        impl Blocked for $marker {
            const NAME: &'static str = $name;

            fn preamble() -> Vec<u8> {
                let mut preamble = mak::$module::MAGIC.to_vec();
                preamble.extend_from_slice(&mak::$module::VERSION.to_be_bytes());
                preamble.extend_from_slice(&[0, 0]);
                preamble
            }

            fn read_all(bytes: &[u8]) -> Result<u64, ReadError> {
                mak::$module::read_all(bytes)
            }

            fn collect(bytes: &[u8], limited: bool) -> Result<Vec<OwnedV2>, ReadError> {
                let mut reader = if limited {
                    mak::$module::MakReader::with_size_limit(bytes, bytes.len() as u64)?
                } else {
                    mak::$module::MakReader::new(bytes)?
                };
                let mut records = Vec::new();
                while let Some(record) = reader.next_record()? {
                    // Iterating the headers of a record the reader accepted must not stop early.
                    assert_eq!(record.headers.count(), record.headers.len());
                    records.push(record.to_owned_record());
                }
                assert!(matches!(reader.next_record(), Ok(None)), "a reader at its end stays there");
                assert_eq!(reader.write_position(), Some(reader.position()), "records end at the write position");
                Ok(records)
            }

            fn drain(bytes: &[u8]) -> Result<u64, ReadError> {
                let mut reader = mak::$module::MakReader::new(bytes)?;
                while reader.next_record()?.is_some() {}
                Ok(reader.records_read())
            }

            fn check_summary(bytes: &[u8]) {
                match mak::$module::read_summary(bytes) {
                    Ok(summary) => {
                        if let Ok(reader) = mak::$module::MakReader::new(bytes) {
                            assert_eq!(&summary.header, reader.header());
                            assert_eq!(summary.progress.as_ref(), reader.progress());
                        }
                    }
                    Err(err) => check_error(concat!($name, " read_summary"), &err, bytes.len()),
                }
            }
        }
    };
}

blocked!(V2, v2, "v2");
blocked!(V3, v3, "v3");

/// Reads `bytes` as a file of version `F` as is, and again behind a valid preamble, so every
/// input reaches the progress block, header and record code, not only the few that guess the
/// 12-byte preamble.
pub fn read_raw<F: Blocked>(data: &[u8]) {
    let _ = read_blocked::<F>(data);
    let mut prefixed = F::preamble();
    prefixed.extend_from_slice(data);
    let _ = read_blocked::<F>(&prefixed);
}
