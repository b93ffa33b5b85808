//! mak::layers: every combination of MAK version, codec and encryption written and read as one
//! stream, recognised by content; and the golden files of every combination, read forever.
//!
//! Golden files: `golden/layers/{plain,recipient,passphrase}/<golden MAK file><codec suffix>[.age]`
//! for one version 1 file and one version 2 file, every codec, no encryption, the TEST ONLY
//! identity (`golden/age-test-identity.txt`) and the TEST ONLY passphrase (scrypt 2^10). Written
//! once by `cargo test -p mak --release --test layers -- --ignored`; by hand:
//! `age -d -i crates/mak/tests/golden/age-test-identity.txt F.mak.zst.age | zstd -d`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use mak::codec::{Codec, Compression};
use mak::crypt::{Decryption, DecryptionSpec, Encryption, EncryptionSpec, SecretSource};
use mak::layers::{archive_reader, archive_writer, suffix, LayerError};
use mak::AnyReader;

const VERSIONS: [&str; 2] = ["original_three_records.mak", "v2_tombstones_headers.mak"];
const TEST_PUBLIC_KEY: &str = "age15rzxjhtqrh7yjl5kmhfj38m8qtn5luw5ddn662pvwrfkyqt3vupqdjyyp4";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Crypt {
    Plain,
    Recipient,
    Passphrase,
}

const CRYPTS: [Crypt; 3] = [Crypt::Plain, Crypt::Recipient, Crypt::Passphrase];

impl Crypt {
    fn dir(self) -> &'static str {
        match self {
            Crypt::Plain => "plain",
            Crypt::Recipient => "recipient",
            Crypt::Passphrase => "passphrase",
        }
    }
}

fn golden(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(path)
}

fn encryption(crypt: Crypt) -> Option<Encryption> {
    match crypt {
        Crypt::Plain => None,
        Crypt::Recipient => Some(
            Encryption::new(&EncryptionSpec { recipients: vec![TEST_PUBLIC_KEY.into()], ..Default::default() })
                .unwrap(),
        ),
        Crypt::Passphrase => Some(
            Encryption::with_passphrase(&SecretSource::File(golden("age-test-passphrase.txt")))
                .unwrap()
                .with_scrypt_work_factor(10)
                .unwrap(),
        ),
    }
}

/// Opens both kinds of encrypted file: the TEST ONLY identity and passphrase together.
fn decryption() -> Decryption {
    Decryption::new(&DecryptionSpec {
        identities: vec![SecretSource::File(golden("age-test-identity.txt"))],
        passphrase: Some(SecretSource::File(golden("age-test-passphrase.txt"))),
    })
    .unwrap()
}

fn write_layers(plain: &[u8], codec: Codec, crypt: Crypt) -> Vec<u8> {
    let compression = Compression::new(codec, None).unwrap();
    let encryption = encryption(crypt);
    let mut writer = archive_writer(Vec::new(), &compression, encryption.as_ref()).unwrap();
    writer.write_all(plain).unwrap();
    writer.finish().unwrap()
}

/// Reads through every layer; returns the MAK bytes, checking the layers found are the ones expected.
fn read_layers(input: impl Read, codec: Codec, crypt: Crypt, decryption: &Decryption) -> Vec<u8> {
    let mut reader = archive_reader(input, Some(decryption)).unwrap();
    assert_eq!((reader.codec(), reader.is_encrypted()), (codec, crypt != Crypt::Plain));
    let mut mak = Vec::new();
    reader.read_to_end(&mut mak).unwrap();
    mak
}

fn record_count(mak: &[u8]) -> usize {
    let mut reader = AnyReader::new(mak).unwrap();
    let mut count = 0;
    while reader.next_record().unwrap().is_some() {
        count += 1;
    }
    count
}

fn golden_layers_path(name: &str, codec: Codec, crypt: Crypt) -> PathBuf {
    let stem = name.strip_suffix(".mak").unwrap();
    golden(&format!("layers/{}/{stem}{}", crypt.dir(), suffix(codec, crypt != Crypt::Plain)))
}

#[test]
fn suffix_puts_the_codec_then_age() {
    assert_eq!(suffix(Codec::None, false), ".mak");
    assert_eq!(suffix(Codec::Gzip, false), ".mak.gz");
    assert_eq!(suffix(Codec::Zstd, true), ".mak.zst.age");
    assert_eq!(suffix(Codec::Lz4, true), ".mak.lz4.age");
    assert_eq!(suffix(Codec::None, true), ".mak.age");
}

#[test]
fn every_version_codec_and_encryption_round_trips_recognised_by_content() {
    let decryption = decryption();
    for name in VERSIONS {
        let plain = std::fs::read(golden(name)).unwrap();
        for codec in Codec::ALL {
            for crypt in CRYPTS {
                let written = write_layers(&plain, codec, crypt);
                assert_eq!(mak::crypt::is_encrypted(&written), crypt != Crypt::Plain, "{name} {codec} {crypt:?}");
                let mak = read_layers(&written[..], codec, crypt, &decryption);
                assert!(mak == plain, "{name} {codec} {crypt:?}: different MAK bytes");
                assert!(record_count(&mak) > 0, "{name}");
            }
        }
    }
}

/// Input that arrives one byte per read, like a slow network body.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some((&first, rest)) = self.0.split_first() else { return Ok(0) };
        if buf.is_empty() {
            return Ok(0);
        }
        buf[0] = first;
        self.0 = rest;
        Ok(1)
    }
}

#[test]
fn layers_are_recognised_when_input_arrives_a_byte_at_a_time() {
    let decryption = decryption();
    let plain = std::fs::read(golden(VERSIONS[1])).unwrap();
    for codec in Codec::ALL {
        for crypt in CRYPTS {
            let written = write_layers(&plain, codec, crypt);
            assert!(read_layers(Trickle(&written), codec, crypt, &decryption) == plain, "{codec} {crypt:?}");
        }
    }
}

#[test]
fn encrypted_file_without_decryption_is_refused_by_name() {
    let written = write_layers(b"MAK", Codec::Zstd, Crypt::Recipient);
    let error = archive_reader(&written[..], None).err().unwrap();
    assert!(matches!(error, LayerError::NeedsDecryption), "{error:?}");
    assert_eq!(error.to_string(), "this file is age-encrypted: give an age identity or passphrase to read it");
}

#[test]
fn damage_inside_any_encrypted_codec_is_an_error_never_short_output() {
    let decryption = decryption();
    // Large enough for several age chunks after compression.
    let plain: Vec<u8> = (0..400_000u32).flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()).collect();
    for codec in Codec::ALL {
        let written = write_layers(&plain, codec, Crypt::Recipient);
        for at in [written.len() / 2, written.len() - 1] {
            let mut damaged = written.clone();
            damaged[at] ^= 0x40;
            let mut out = Vec::new();
            let result = archive_reader(&damaged[..], Some(&decryption)).map(|mut r| r.read_to_end(&mut out));
            assert!(matches!(result, Ok(Err(_)) | Err(_)), "{codec}: flip at {at} read {} bytes", out.len());
        }
        let cut = &written[..written.len() - 100];
        let mut out = Vec::new();
        let result = archive_reader(cut, Some(&decryption)).map(|mut r| r.read_to_end(&mut out));
        assert!(matches!(result, Ok(Err(_)) | Err(_)), "{codec}: cut file read {} bytes", out.len());
    }
}

#[test]
fn golden_files_of_every_combination_read_as_the_plain_golden_file() {
    let decryption = decryption();
    let mut checked = 0;
    for name in VERSIONS {
        let plain = std::fs::read(golden(name)).unwrap();
        for codec in Codec::ALL {
            for crypt in CRYPTS {
                if codec == Codec::None && crypt == Crypt::Plain {
                    continue; // the plain golden file itself
                }
                let path = golden_layers_path(name, codec, crypt);
                let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let mak = read_layers(file, codec, crypt, &decryption);
                assert!(mak == plain, "{} does not read as {name}", path.display());
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 22);
}

/// Writes the golden files of every combination (see the module docs). Encryption and gzip
/// headers are not reproducible byte for byte, so regenerate only to add combinations.
#[test]
#[ignore]
fn make_golden_layer_files() {
    for name in VERSIONS {
        let plain = std::fs::read(golden(name)).unwrap();
        for codec in Codec::ALL {
            for crypt in CRYPTS {
                if codec == Codec::None && crypt == Crypt::Plain {
                    continue;
                }
                let path = golden_layers_path(name, codec, crypt);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, write_layers(&plain, codec, crypt)).unwrap();
            }
        }
    }
}
