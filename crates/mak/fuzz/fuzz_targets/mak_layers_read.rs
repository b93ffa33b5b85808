//! Arbitrary bytes through `mak::layers::archive_reader` (age, then the codec, told apart by
//! content) and a MAK reader on top: every input ends in records or an error, never a panic, and
//! the decompressed stream is read only up to a bound (a small input may claim gigabytes). The
//! same bytes, compressed by each codec, must also come back unchanged through the same reader.
#![no_main]

use std::io::{Read, Write};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mak::codec::{Codec, Compression};
use mak::crypt::{Decryption, DecryptionSpec, SecretSource};

/// Decompressed bytes read per input at most.
const READ_BOUND: u64 = 4 << 20;

static DECRYPTION: LazyLock<Decryption> = LazyLock::new(|| {
    let identity = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden/age-test-identity.txt");
    let spec = DecryptionSpec { identities: vec![SecretSource::identity(identity).unwrap()], passphrase: None };
    Decryption::new(&spec).expect("the committed test identity")
});

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = mak::layers::archive_reader(data, Some(&DECRYPTION)) {
        if let Ok(mut records) = mak::AnyReader::new(reader.take(READ_BOUND)) {
            while let Ok(Some(_)) = records.next_record() {}
        }
    }
    for codec in [Codec::Gzip, Codec::Zstd, Codec::Lz4] {
        let compression = Compression::new(codec, Some(1)).unwrap();
        let mut writer = mak::layers::archive_writer(Vec::new(), &compression, None).unwrap();
        writer.write_all(data).unwrap();
        let packed = writer.finish().unwrap();
        let mut unpacked = Vec::new();
        mak::layers::archive_reader(&packed[..], None).unwrap().read_to_end(&mut unpacked).unwrap();
        assert!(unpacked == data, "{codec} round trip");
    }
});
