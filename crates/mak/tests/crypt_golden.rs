//! Golden age files: every plain golden MAK file (version 1 and 2, and the gzip one), encrypted
//! once and committed, must decrypt to exactly its plain bytes forever.
//!
//! - `golden/age-recipient/<plain>.age`: written by mak::crypt to the TEST ONLY identity
//!   `golden/age-test-identity.txt` (its public key is in the file's comments).
//! - `golden/age-passphrase/<plain>.age`: written by mak::crypt with the TEST ONLY passphrase in
//!   `golden/age-test-passphrase.txt`, at scrypt work factor 2^10 to keep the test fast (the work
//!   factor is a header field; files the daemon writes use 2^18 and read through the same code).
//! - `golden/age-cli/`: two files written by the age command-line tool 1.1.1 (the Go reference
//!   implementation), one binary and one armored (`age -a`), to the same identity.
//!
//! Encryption is randomised, so regenerating gives different bytes: regenerate only to add files
//! (`cargo test -p mak --release --test crypt_golden -- --ignored`; needs the age CLI).
//! By hand: `age -d -i crates/mak/tests/golden/age-test-identity.txt FILE.age`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use mak::crypt::{
    decrypt_reader, encrypt_writer, is_encrypted, Decryption, DecryptionSpec, Encryption, EncryptionSpec, SecretSource,
};
use mak::AnyReader;

/// The plain golden files, version 1 (from the original Python writer) and version 2.
const PLAIN: &[&str] = &[
    "original_empty_and_null.mak",
    "original_escaped_topic.mak",
    "original_no_records.mak",
    "original_three_records.mak",
    "original_three_records.mak.gz",
    "original_torn_tail.mak",
    "v2_empty_sealed.mak",
    "v2_open.mak",
    "v2_open_torn_tail.mak",
    "v2_tombstones_headers.mak",
];

/// Files encrypted by the age CLI: (plain file, armored).
const BY_CLI: &[(&str, bool)] = &[("original_three_records.mak", false), ("v2_tombstones_headers.mak", true)];

const TEST_PUBLIC_KEY: &str = "age15rzxjhtqrh7yjl5kmhfj38m8qtn5luw5ddn662pvwrfkyqt3vupqdjyyp4";
const GOLDEN_WORK_FACTOR: u8 = 10;

fn golden(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(path)
}

fn identity() -> SecretSource {
    SecretSource::File(golden("age-test-identity.txt"))
}

fn passphrase() -> SecretSource {
    SecretSource::File(golden("age-test-passphrase.txt"))
}

fn decrypt_file(path: &Path, spec: &DecryptionSpec) -> Vec<u8> {
    let decryption = Decryption::new(spec).unwrap();
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut plain = Vec::new();
    decrypt_reader(file, &decryption)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .read_to_end(&mut plain)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    plain
}

/// Reads the decrypted bytes as a MAK file by content (through gzip when it is gzip) and returns
/// the record count: the decrypted file is a MAK file, not only equal bytes.
fn records_in(plain: &[u8]) -> usize {
    let mut decompressed = Vec::new();
    let bytes = if plain.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(plain).read_to_end(&mut decompressed).unwrap();
        &decompressed[..]
    } else {
        plain
    };
    let mut reader = AnyReader::with_size_limit(bytes, bytes.len() as u64).unwrap();
    let mut count = 0;
    while reader.next_record().unwrap().is_some() {
        count += 1;
    }
    count
}

fn check(encrypted: &Path, plain_name: &str, spec: &DecryptionSpec, stanza: &str) {
    let ciphertext = std::fs::read(encrypted).unwrap_or_else(|e| panic!("{}: {e}", encrypted.display()));
    assert!(is_encrypted(&ciphertext), "{} is not recognised as age", encrypted.display());
    let expected = std::fs::read(golden(plain_name)).unwrap();
    let plain = decrypt_file(encrypted, spec);
    assert!(plain == expected, "{} does not decrypt to {plain_name}", encrypted.display());
    let header = String::from_utf8_lossy(&ciphertext[..ciphertext.len().min(600)]).into_owned();
    assert!(header.contains(stanza) || ciphertext.starts_with(b"-----BEGIN"), "{}: no {stanza}", encrypted.display());
    // Panics unless the decrypted bytes read as a MAK file.
    records_in(&plain);
}

#[test]
fn recipient_golden_files_decrypt_to_the_plain_golden_files() {
    let spec = DecryptionSpec { identities: vec![identity()], ..Default::default() };
    for name in PLAIN {
        check(&golden(&format!("age-recipient/{name}.age")), name, &spec, "-> X25519 ");
    }
}

#[test]
fn passphrase_golden_files_decrypt_to_the_plain_golden_files() {
    let spec = DecryptionSpec { passphrase: Some(passphrase()), ..Default::default() };
    for name in PLAIN {
        check(&golden(&format!("age-passphrase/{name}.age")), name, &spec, "-> scrypt ");
    }
}

#[test]
fn golden_files_written_by_the_age_cli_decrypt() {
    let spec = DecryptionSpec { identities: vec![identity()], ..Default::default() };
    for (name, armored) in BY_CLI {
        let path = golden(&format!("age-cli/{name}.age"));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"), *armored, "{}", path.display());
        check(&path, name, &spec, "-> X25519 ");
    }
}

#[test]
fn golden_records_survive_decryption() {
    // Equal record counts, and some records in all: a golden set that decrypts to empty or
    // truncated files cannot pass.
    let spec = DecryptionSpec { identities: vec![identity()], ..Default::default() };
    let counts: Vec<usize> = PLAIN
        .iter()
        .map(|name| records_in(&decrypt_file(&golden(&format!("age-recipient/{name}.age")), &spec)))
        .collect();
    let plain_counts: Vec<usize> = PLAIN.iter().map(|name| records_in(&std::fs::read(golden(name)).unwrap())).collect();
    assert_eq!(counts, plain_counts);
    assert!(counts.iter().sum::<usize>() > 10, "{counts:?}");
}

/// Writes the golden age files. Run by hand, once per new plain golden file (see the module docs).
#[test]
#[ignore]
fn make_golden_age_files() {
    let by_key =
        Encryption::new(&EncryptionSpec { recipients: vec![TEST_PUBLIC_KEY.into()], ..Default::default() }).unwrap();
    let by_passphrase =
        Encryption::with_passphrase(&passphrase()).unwrap().with_scrypt_work_factor(GOLDEN_WORK_FACTOR).unwrap();
    for (dir, encryption) in [("age-recipient", &by_key), ("age-passphrase", &by_passphrase)] {
        std::fs::create_dir_all(golden(dir)).unwrap();
        for name in PLAIN {
            let mut writer =
                encrypt_writer(std::fs::File::create(golden(&format!("{dir}/{name}.age"))).unwrap(), encryption)
                    .unwrap();
            writer.write_all(&std::fs::read(golden(name)).unwrap()).unwrap();
            writer.finish().unwrap().sync_all().unwrap();
        }
    }
    std::fs::create_dir_all(golden("age-cli")).unwrap();
    for (name, armored) in BY_CLI {
        let mut age = Command::new("age");
        if *armored {
            age.arg("-a");
        }
        let status = age
            .arg("-r")
            .arg(TEST_PUBLIC_KEY)
            .arg("-o")
            .arg(golden(&format!("age-cli/{name}.age")))
            .arg(golden(name))
            .status()
            .expect("the age CLI is needed to make the golden files (scripts/install-deps.sh)");
        assert!(status.success());
    }
}
