//! mak::crypt: round trips here, damage in `damage.rs`, key files and secret sources in `keys.rs`. Interoperability with the age
//! command-line tool is in crypt_cli.rs, the golden encrypted files in crypt_golden.rs.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use age::secrecy::ExposeSecret;
use mak::crypt::{
    decrypt_reader, encrypt_writer, is_encrypted, CryptError, Decryption, DecryptionSpec, Encryption, EncryptionSpec,
    KeyFileKind, LineProblem, SecretSource, SCRYPT_WORK_FACTOR,
};

mod damage;
mod keys;

/// Low scrypt work factor for passphrase tests that are not about its cost: the factor is a header
/// parameter, the code path is the same.
const FAST: u8 = 10;

struct Key {
    secret: String,
    public: String,
}

fn new_key() -> Key {
    let identity = age::x25519::Identity::generate();
    Key { secret: identity.to_string().expose_secret().to_string(), public: identity.to_public().to_string() }
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn to_recipients(keys: &[&Key]) -> Encryption {
    Encryption::new(&EncryptionSpec {
        recipients: keys.iter().map(|k| k.public.clone()).collect(),
        ..Default::default()
    })
    .unwrap()
}

fn identity_decryption(dir: &Path, key: &Key) -> Decryption {
    let path = write_file(dir, "identity.txt", &format!("# test key\n{}\n", key.secret));
    Decryption::new(&DecryptionSpec { identities: vec![SecretSource::File(path)], ..Default::default() }).unwrap()
}

fn passphrase_file(dir: &Path, passphrase: &str) -> SecretSource {
    SecretSource::File(write_file(dir, "passphrase.txt", &format!("{passphrase}\n")))
}

fn passphrase_encryption(source: &SecretSource) -> Encryption {
    Encryption::new(&EncryptionSpec { passphrase: Some(source.clone()), ..Default::default() })
        .unwrap()
        .with_scrypt_work_factor(FAST)
        .unwrap()
}

fn passphrase_decryption(source: &SecretSource) -> Decryption {
    Decryption::new(&DecryptionSpec { passphrase: Some(source.clone()), ..Default::default() }).unwrap()
}

fn encrypt(plain: &[u8], encryption: &Encryption) -> Vec<u8> {
    let mut writer = encrypt_writer(Vec::new(), encryption).unwrap();
    writer.write_all(plain).unwrap();
    writer.finish().unwrap()
}

/// Decrypts the whole input: Ok only if the header opens and every chunk authenticates.
fn decrypt(ciphertext: &[u8], decryption: &Decryption) -> Result<Vec<u8>, String> {
    let mut reader = decrypt_reader(ciphertext, decryption).map_err(|e| e.to_string())?;
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).map_err(|e| e.to_string())?;
    Ok(plain)
}

/// Deterministic, incompressible-looking bytes.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn one_recipient_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key();
    let plain = b"MAK\x00\x00 some archive bytes";
    let ciphertext = encrypt(plain, &to_recipients(&[&key]));
    assert!(ciphertext.starts_with(b"age-encryption.org/v1\n"));
    assert!(!ciphertext.windows(plain.len()).any(|w| w == plain), "plaintext visible in ciphertext");
    assert_eq!(decrypt(&ciphertext, &identity_decryption(dir.path(), &key)).unwrap(), plain);
}

#[test]
fn three_recipients_each_identity_alone_decrypts() {
    let keys = [new_key(), new_key(), new_key()];
    let ciphertext = encrypt(b"for three", &to_recipients(&[&keys[0], &keys[1], &keys[2]]));
    for key in &keys {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(decrypt(&ciphertext, &identity_decryption(dir.path(), key)).unwrap(), b"for three");
    }
}

#[test]
fn identity_file_with_several_keys_finds_the_matching_one() {
    let dir = tempfile::tempdir().unwrap();
    let (other, ours) = (new_key(), new_key());
    let path = write_file(
        dir.path(),
        "keys.txt",
        &format!("# created: x\n# public key: {}\n{}\n\n# second\n{}\n", other.public, other.secret, ours.secret),
    );
    let decryption =
        Decryption::new(&DecryptionSpec { identities: vec![SecretSource::File(path)], ..Default::default() }).unwrap();
    assert_eq!(decryption.identity_count(), 2);
    assert_eq!(decrypt(&encrypt(b"x", &to_recipients(&[&ours])), &decryption).unwrap(), b"x");
}

#[test]
fn recipients_file_and_literal_recipients_are_combined() {
    let dir = tempfile::tempdir().unwrap();
    let (literal, in_file) = (new_key(), new_key());
    let file = write_file(dir.path(), "recipients.txt", &format!("# ops team\n\n  {}  \r\n", in_file.public));
    let encryption = Encryption::new(&EncryptionSpec {
        recipients: vec![literal.public.clone()],
        recipients_files: vec![file],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(encryption.recipients().len(), 2);
    let ciphertext = encrypt(b"both", &encryption);
    for key in [&literal, &in_file] {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(decrypt(&ciphertext, &identity_decryption(dir.path(), key)).unwrap(), b"both");
    }
}

#[test]
fn passphrase_from_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let source = passphrase_file(dir.path(), "correct horse battery staple");
    let encryption = passphrase_encryption(&source);
    assert!(encryption.is_passphrase());
    let ciphertext = encrypt(b"secret records", &encryption);
    assert_eq!(decrypt(&ciphertext, &passphrase_decryption(&source)).unwrap(), b"secret records");
}

#[test]
fn passphrase_file_uses_its_first_line_only() {
    let dir = tempfile::tempdir().unwrap();
    let two_lines = SecretSource::File(write_file(dir.path(), "two.txt", "the passphrase\r\nignored second line\n"));
    let one_line = SecretSource::File(write_file(dir.path(), "one.txt", "the passphrase"));
    let ciphertext = encrypt(b"x", &passphrase_encryption(&two_lines));
    assert_eq!(decrypt(&ciphertext, &passphrase_decryption(&one_line)).unwrap(), b"x");
}

#[test]
fn passphrase_from_env_var_round_trips_with_a_file_holding_the_same() {
    let dir = tempfile::tempdir().unwrap();
    // Each test uses its own variable name: tests run in parallel threads of one process.
    std::env::set_var("MAK_CRYPT_TEST_PASSPHRASE_ROUND_TRIP", "from the environment");
    let env = SecretSource::passphrase("env:MAK_CRYPT_TEST_PASSPHRASE_ROUND_TRIP").unwrap();
    let file = passphrase_file(dir.path(), "from the environment");
    let ciphertext = encrypt(b"env", &passphrase_encryption(&env));
    assert_eq!(decrypt(&ciphertext, &passphrase_decryption(&file)).unwrap(), b"env");
}

#[test]
fn identities_from_env_var_decrypt() {
    let key = new_key();
    std::env::set_var("MAK_CRYPT_TEST_IDENTITY", format!("# from env\n{}\n", key.secret));
    let source = SecretSource::identity("env:MAK_CRYPT_TEST_IDENTITY").unwrap();
    let decryption = Decryption::new(&DecryptionSpec { identities: vec![source], ..Default::default() }).unwrap();
    assert_eq!(decrypt(&encrypt(b"e", &to_recipients(&[&key])), &decryption).unwrap(), b"e");
}

#[test]
fn empty_input_round_trips_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key();
    let ciphertext = encrypt(b"", &to_recipients(&[&key]));
    assert_eq!(decrypt(&ciphertext, &identity_decryption(dir.path(), &key)).unwrap(), b"");
    let source = passphrase_file(dir.path(), "pw");
    let ciphertext = encrypt(b"", &passphrase_encryption(&source));
    assert_eq!(decrypt(&ciphertext, &passphrase_decryption(&source)).unwrap(), b"");
}

#[test]
fn five_megabytes_round_trip_streaming_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let plain = pseudo_random(5 * 1024 * 1024 + 17);
    let key = new_key();
    let source = passphrase_file(dir.path(), "pw");
    let decryptions = [identity_decryption(dir.path(), &key), passphrase_decryption(&source)];
    for (encryption, decryption) in [to_recipients(&[&key]), passphrase_encryption(&source)].iter().zip(&decryptions) {
        // Odd-sized writes and reads, so pieces straddle age's 64 KiB chunks.
        let mut writer = encrypt_writer(Vec::new(), encryption).unwrap();
        for piece in plain.chunks(10_007) {
            writer.write_all(piece).unwrap();
        }
        let ciphertext = writer.finish().unwrap();
        // 16 bytes of tag per 64 KiB chunk plus the header: the payload is not buffered or padded.
        assert!(ciphertext.len() < plain.len() + 81 * 16 + 400, "ciphertext of {} bytes", ciphertext.len());
        let mut reader = decrypt_reader(&ciphertext[..], decryption).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4093];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(out == plain, "5 MB round trip differs");
    }
}

#[test]
fn wrong_identity_is_no_matching_identity() {
    let dir = tempfile::tempdir().unwrap();
    let ciphertext = encrypt(b"x", &to_recipients(&[&new_key()]));
    let error = decrypt_reader(&ciphertext[..], &identity_decryption(dir.path(), &new_key())).err().unwrap();
    assert!(matches!(error, CryptError::NoMatchingIdentity), "{error:?}");
    assert_eq!(error.to_string(), "no identity matches this file's recipients");
}

#[test]
fn wrong_passphrase_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ciphertext = encrypt(b"x", &passphrase_encryption(&passphrase_file(dir.path(), "right")));
    let wrong = SecretSource::File(write_file(dir.path(), "wrong.txt", "wrong\n"));
    let error = decrypt_reader(&ciphertext[..], &passphrase_decryption(&wrong)).err().unwrap();
    assert!(matches!(error, CryptError::WrongPassphrase), "{error:?}");
    assert_eq!(error.to_string(), "wrong passphrase");
}

#[test]
fn missing_kind_of_secret_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key();
    let source = passphrase_file(dir.path(), "pw");
    let by_passphrase = encrypt(b"x", &passphrase_encryption(&source));
    let by_key = encrypt(b"x", &to_recipients(&[&key]));
    let error = decrypt_reader(&by_passphrase[..], &identity_decryption(dir.path(), &key)).err().unwrap();
    assert!(matches!(error, CryptError::NeedsPassphrase), "{error:?}");
    let error = decrypt_reader(&by_key[..], &passphrase_decryption(&source)).err().unwrap();
    assert!(matches!(error, CryptError::NeedsIdentity), "{error:?}");
}

#[test]
fn identities_and_passphrase_together_open_either_kind_of_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key();
    let identity = write_file(dir.path(), "id.txt", &key.secret);
    let source = passphrase_file(dir.path(), "pw");
    let both = Decryption::new(&DecryptionSpec {
        identities: vec![SecretSource::File(identity)],
        passphrase: Some(source.clone()),
    })
    .unwrap();
    assert_eq!(decrypt(&encrypt(b"p", &passphrase_encryption(&source)), &both).unwrap(), b"p");
    assert_eq!(decrypt(&encrypt(b"k", &to_recipients(&[&key])), &both).unwrap(), b"k");
}
