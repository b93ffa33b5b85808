//! mak::crypt: round trips, damage, key files and secret sources. Interoperability with the age
//! command-line tool is in crypt_cli.rs, the golden encrypted files in crypt_golden.rs.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use age::secrecy::ExposeSecret;
use mak::crypt::{
    decrypt_reader, encrypt_writer, is_encrypted, CryptError, Decryption, DecryptionSpec, Encryption, EncryptionSpec,
    KeyFileKind, LineProblem, SecretSource, SCRYPT_WORK_FACTOR,
};

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

/// A plaintext spanning three chunks (64 KiB each) and a bit, and where its payload starts.
fn three_chunk_file(dir: &Path) -> (Vec<u8>, Vec<u8>, Decryption, usize) {
    let key = new_key();
    let plain = pseudo_random(3 * 65536 + 1000);
    let ciphertext = encrypt(&plain, &to_recipients(&[&key]));
    let header_end = ciphertext.windows(5).position(|w| w == b"\n--- ").unwrap();
    let mac_line_end = header_end + 1 + ciphertext[header_end + 1..].iter().position(|&b| b == b'\n').unwrap() + 1;
    // The payload: a 16-byte nonce, then chunks of 64 KiB + 16-byte tag.
    let payload_start = mac_line_end + 16;
    assert_eq!(ciphertext.len() - payload_start, plain.len() + 4 * 16);
    (plain, ciphertext, identity_decryption(dir, &key), payload_start)
}

#[test]
fn truncated_ciphertext_is_an_error_never_short_output() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ciphertext, decryption, payload_start) = three_chunk_file(dir.path());
    let chunk = 65536 + 16;
    let cuts = [
        0,
        10,
        payload_start - 20, // in the header
        payload_start + 8,  // in the nonce
        payload_start + 16, // right after the nonce: no chunk at all
        payload_start + 16 + 100,
        payload_start + 16 + chunk, // exactly at a chunk boundary
        payload_start + 16 + 2 * chunk,
        payload_start + 16 + 3 * chunk, // every full chunk, no last chunk
        ciphertext.len() - 1,
    ];
    for cut in cuts {
        let result = decrypt(&ciphertext[..cut], &decryption);
        assert!(result.is_err(), "cut at {cut} of {} decrypted to {} bytes", ciphertext.len(), result.unwrap().len());
    }
}

#[test]
fn flipped_byte_anywhere_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ciphertext, decryption, payload_start) = three_chunk_file(dir.path());
    let positions = [
        0,                              // version line
        30,                             // recipient stanza
        payload_start - 17,             // header MAC
        payload_start - 1,              // last byte of the nonce
        payload_start + 16,             // first payload byte
        payload_start + 16 + 65536 + 5, // inside the first tag
        payload_start + 100_000,        // second chunk
        ciphertext.len() - 1,           // the last chunk's tag
    ];
    for position in positions {
        let mut damaged = ciphertext.clone();
        damaged[position] ^= 0x01;
        assert!(decrypt(&damaged, &decryption).is_err(), "flip at {position} went unnoticed");
    }
}

#[test]
fn appended_bytes_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut ciphertext, decryption, _) = three_chunk_file(dir.path());
    ciphertext.extend_from_slice(b"trailing");
    let error = decrypt(&ciphertext, &decryption).unwrap_err();
    assert!(error.starts_with("age payload"), "{error}");
}

#[test]
fn a_writer_dropped_without_finish_leaves_an_undecryptable_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key();
    let mut sink = Vec::new();
    {
        let mut writer = encrypt_writer(&mut sink, &to_recipients(&[&key])).unwrap();
        writer.write_all(&pseudo_random(200_000)).unwrap();
    }
    assert!(sink.len() > 65536, "full chunks were written before the drop");
    let error = decrypt(&sink, &identity_decryption(dir.path(), &key)).unwrap_err();
    assert!(error.contains("truncated"), "{error}");
}

#[test]
fn damaged_header_mac_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut ciphertext, decryption, payload_start) = three_chunk_file(dir.path());
    // The MAC's base64 sits just before the header's final newline; change one character of it.
    let at = payload_start - 16 - 5;
    ciphertext[at] = if ciphertext[at] == b'A' { b'B' } else { b'A' };
    let error = decrypt_reader(&ciphertext[..], &decryption).err().unwrap();
    assert!(matches!(error, CryptError::HeaderMac), "{error:?}");
}

#[test]
fn not_an_age_file_is_refused_at_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let decryption = identity_decryption(dir.path(), &new_key());
    let mak = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/original_three_records.mak")).unwrap();
    let error = decrypt_reader(&mak[..], &decryption).err().unwrap();
    assert!(matches!(error, CryptError::InvalidHeader), "{error:?}");
    let error = decrypt_reader(&b"MAK\0\0"[..], &decryption).err().unwrap();
    assert!(matches!(error, CryptError::ShortHeader), "{error:?}");
    let future = [&b"age-encryption.org/v2\n"[..], &[b'x'; 200], b"\n"].concat();
    let error = decrypt_reader(&future[..], &decryption).err().unwrap();
    assert!(matches!(error, CryptError::UnknownFormat), "{error:?}");
}

#[test]
fn is_encrypted_recognises_binary_and_armored_age_only() {
    let key = new_key();
    assert!(is_encrypted(&encrypt(b"x", &to_recipients(&[&key]))));
    assert!(is_encrypted(b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n"));
    assert!(!is_encrypted(b"MAK\0\0\0\0"));
    assert!(!is_encrypted(b"\x89MAK\r\n\x1a\n"));
    assert!(!is_encrypted(b"\x1f\x8b\x08"));
    assert!(!is_encrypted(b"\x28\xb5\x2f\xfd"));
    assert!(!is_encrypted(b"age-encryption.org/v"), "a prefix of the magic is not enough");
    assert!(!is_encrypted(b""));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Any bytes, written in any pieces, read back in any pieces, are the same bytes.
    #[test]
    fn any_bytes_in_any_pieces_round_trip(
        plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200_000),
        write_piece in 1usize..100_000,
        read_piece in 1usize..100_000,
    ) {
        let key = new_key();
        let dir = tempfile::tempdir().unwrap();
        let mut writer = encrypt_writer(Vec::new(), &to_recipients(&[&key])).unwrap();
        for piece in plain.chunks(write_piece) {
            writer.write_all(piece).unwrap();
        }
        let ciphertext = writer.finish().unwrap();
        let mut reader = decrypt_reader(&ciphertext[..], &identity_decryption(dir.path(), &key)).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; read_piece];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        proptest::prop_assert!(out == plain, "{} bytes differ", plain.len());
    }
}

// ---- key files, secret sources and their errors ----

fn identity_error(dir: &Path, text: &str) -> (PathBuf, CryptError) {
    let path = write_file(dir, "identities.txt", text);
    let error =
        Decryption::new(&DecryptionSpec { identities: vec![SecretSource::File(path.clone())], ..Default::default() })
            .err()
            .unwrap();
    (path, error)
}

fn recipients_file_error(dir: &Path, text: &str) -> (PathBuf, CryptError) {
    let path = write_file(dir, "recipients.txt", text);
    let error =
        Encryption::new(&EncryptionSpec { recipients_files: vec![path.clone()], ..Default::default() }).err().unwrap();
    (path, error)
}

#[test]
fn identity_file_bad_line_is_named_by_number_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key();
    // A truncated secret key on line 3 must not be echoed: it is most of a secret.
    let truncated = &key.secret[..key.secret.len() - 3];
    let (path, error) = identity_error(dir.path(), &format!("# c\n{}\n{truncated}\n", key.secret));
    assert_eq!(
        error.to_string(),
        format!("age identity file {}: line 3: not an age identity (AGE-SECRET-KEY-1...)", path.display())
    );
    assert!(matches!(
        error,
        CryptError::BadLine { what: KeyFileKind::Identities, line: 3, problem: LineProblem::NotAnIdentity, .. }
    ));
}

#[test]
fn identity_file_with_only_comments_has_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (path, error) = identity_error(dir.path(), "# nothing here\n\n");
    assert_eq!(error.to_string(), format!("age identity file {}: no key in it", path.display()));
}

#[test]
fn plugin_identity_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (_, error) = identity_error(dir.path(), "AGE-PLUGIN-YUBIKEY-1QQQQQQ\n");
    assert!(matches!(error, CryptError::BadLine { line: 1, problem: LineProblem::Plugin, .. }), "{error:?}");
}

#[test]
fn passphrase_protected_identity_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let source = passphrase_file(dir.path(), "pw");
    // What `age-keygen | age -p > key.age` makes: an age file whose plaintext is an identity file.
    let protected = encrypt(new_key().secret.as_bytes(), &passphrase_encryption(&source));
    let path = dir.path().join("key.age");
    std::fs::write(&path, protected).unwrap();
    let error =
        Decryption::new(&DecryptionSpec { identities: vec![SecretSource::File(path.clone())], ..Default::default() })
            .err()
            .unwrap();
    assert_eq!(
        error.to_string(),
        format!(
            "age identity file {}: is itself age-encrypted (passphrase-protected key files are not supported)",
            path.display()
        )
    );
}

#[test]
fn missing_identity_file_names_the_path() {
    let error = Decryption::new(&DecryptionSpec {
        identities: vec![SecretSource::File("/nonexistent/mak-test/key.txt".into())],
        ..Default::default()
    })
    .err()
    .unwrap();
    let message = error.to_string();
    assert!(message.starts_with("age identity file /nonexistent/mak-test/key.txt: "), "{message}");
    assert!(matches!(error, CryptError::ReadSource { .. }));
}

#[test]
fn recipients_file_errors_name_line_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = new_key();
    let cases = [
        (format!("{}\nage1notakey\n", good.public), 2, LineProblem::NotARecipient),
        (format!("# c\n\n{}\n", new_key().secret), 3, LineProblem::SecretKeyAsRecipient),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB user@host\n".to_string(), 1, LineProblem::SshKey),
        ("age1yubikey1qqqqqqqqqqqqqqqqqq\n".to_string(), 1, LineProblem::Plugin),
    ];
    for (text, want_line, want_problem) in cases {
        let (path, error) = recipients_file_error(dir.path(), &text);
        match &error {
            CryptError::BadLine { what: KeyFileKind::Recipients, line, problem, .. } => {
                assert_eq!((*line, *problem), (want_line, want_problem), "{text}")
            }
            other => panic!("{text}: {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("age recipients file {}: line {want_line}: ", path.display())),
            "{message}"
        );
        assert!(!message.contains("AGE-SECRET-KEY-1"), "{message}");
    }
}

#[test]
fn literal_recipient_errors_are_numbered_and_never_echo_a_secret_key() {
    let secret = new_key().secret;
    let error =
        Encryption::new(&EncryptionSpec { recipients: vec![new_key().public, secret.clone()], ..Default::default() })
            .err()
            .unwrap();
    assert_eq!(
        error.to_string(),
        "age recipient #2: is a secret key, not a recipient: give its public key (age-keygen -y)"
    );
    assert!(!format!("{error:?}").contains(&secret));
}

#[test]
fn passphrase_spec_must_be_file_or_env_and_is_never_echoed() {
    for literal in ["hunter2", "", "file:", "env:", "passphrase:hunter2", "/etc/passphrase"] {
        let error = SecretSource::passphrase(literal).unwrap_err();
        assert!(matches!(error, CryptError::LiteralPassphrase), "{literal}: {error:?}");
        let message = error.to_string();
        assert_eq!(message, "a passphrase must be given as file:/path or env:NAME, never literally");
    }
    assert_eq!(SecretSource::passphrase("file:/run/pw").unwrap(), SecretSource::File("/run/pw".into()));
    assert_eq!(SecretSource::passphrase("env:PW").unwrap(), SecretSource::Env("PW".into()));
    assert_eq!("env:PW".parse::<SecretSource>().unwrap(), SecretSource::Env("PW".into()));
}

#[test]
fn identity_spec_is_a_path_or_env_never_a_literal_key() {
    assert_eq!(SecretSource::identity("/keys/a.txt").unwrap(), SecretSource::File("/keys/a.txt".into()));
    assert_eq!(SecretSource::identity("file:/keys/a.txt").unwrap(), SecretSource::File("/keys/a.txt".into()));
    assert_eq!(SecretSource::identity("env:KEYS").unwrap(), SecretSource::Env("KEYS".into()));
    for empty in ["", "file:", "env:", "env:A=B"] {
        assert!(matches!(SecretSource::identity(empty).unwrap_err(), CryptError::EmptySourceSpec), "{empty:?}");
    }
    let secret = new_key().secret;
    let error = SecretSource::identity(&secret).unwrap_err();
    assert!(matches!(error, CryptError::LiteralIdentity));
    assert!(!error.to_string().contains(&secret[15..]));
}

#[test]
fn unset_env_var_is_named() {
    let source = SecretSource::passphrase("env:MAK_CRYPT_TEST_SURELY_UNSET").unwrap();
    std::env::remove_var("MAK_CRYPT_TEST_SURELY_UNSET");
    let error = Encryption::with_passphrase(&source).unwrap_err();
    assert_eq!(error.to_string(), "env var MAK_CRYPT_TEST_SURELY_UNSET is not set");
}

#[test]
fn empty_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty_line = SecretSource::File(write_file(dir.path(), "empty.txt", "\nsecond line\n"));
    let error = Encryption::with_passphrase(&empty_line).unwrap_err();
    assert!(matches!(error, CryptError::EmptyPassphrase { .. }), "{error:?}");
    std::env::set_var("MAK_CRYPT_TEST_EMPTY_PASSPHRASE", "");
    let error = Encryption::with_passphrase(&SecretSource::Env("MAK_CRYPT_TEST_EMPTY_PASSPHRASE".into())).unwrap_err();
    assert_eq!(error.to_string(), "age passphrase env var MAK_CRYPT_TEST_EMPTY_PASSPHRASE: empty");
}

#[test]
fn key_file_that_is_not_text_is_refused_without_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("binary.txt");
    std::fs::write(&path, b"\xff\xfe secret \x00").unwrap();
    let error = Encryption::with_passphrase(&SecretSource::File(path.clone())).unwrap_err();
    assert_eq!(error.to_string(), format!("age passphrase file {}: not UTF-8 text", path.display()));
}

#[test]
fn passphrase_and_recipients_together_or_neither_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let both = EncryptionSpec {
        recipients: vec![new_key().public],
        passphrase: Some(passphrase_file(dir.path(), "pw")),
        ..Default::default()
    };
    assert!(matches!(Encryption::new(&both).unwrap_err(), CryptError::PassphraseWithRecipients));
    assert!(matches!(Encryption::new(&EncryptionSpec::default()).unwrap_err(), CryptError::NoRecipients));
    assert!(matches!(Decryption::new(&DecryptionSpec::default()).unwrap_err(), CryptError::NoIdentities));
}

#[test]
fn debug_output_never_shows_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key();
    let source = passphrase_file(dir.path(), "very-secret-passphrase");
    let encryption = passphrase_encryption(&source);
    let decryption = Decryption::new(&DecryptionSpec {
        identities: vec![SecretSource::File(write_file(dir.path(), "id.txt", &key.secret))],
        passphrase: Some(source.clone()),
    })
    .unwrap();
    let printed = format!("{encryption:?} {decryption:?} {:?}", to_recipients(&[&key]));
    assert!(!printed.contains("very-secret-passphrase"), "{printed}");
    assert!(!printed.contains(&key.secret), "{printed}");
    assert!(!printed.contains(&key.secret[15..]), "{printed}");
    // What it shows instead: where the secrets come from, and the public keys.
    assert!(printed.contains("passphrase.txt") && printed.contains(&key.public), "{printed}");
}

#[test]
fn encryption_and_decryption_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Encryption>();
    shareable::<Decryption>();
    // A real use from another thread, not only the bound.
    let key = new_key();
    let encryption = std::sync::Arc::new(to_recipients(&[&key]));
    let ciphertext = std::thread::spawn(move || encrypt(b"threaded", &encryption)).join().unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(decrypt(&ciphertext, &identity_decryption(dir.path(), &key)).unwrap(), b"threaded");
}

#[test]
fn work_factor_outside_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = passphrase_file(dir.path(), "pw");
    for log_n in [0, 23, 64] {
        let error = Encryption::with_passphrase(&source).unwrap().with_scrypt_work_factor(log_n).unwrap_err();
        assert!(matches!(error, CryptError::WorkFactor(n) if n == log_n));
    }
}

/// The cost of passphrase mode at the default work factor, per file, printed for the module docs
/// (`cargo test -p mak --release --test crypt passphrase_cost -- --nocapture`).
#[test]
fn passphrase_cost_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let source = passphrase_file(dir.path(), "pw");
    let encryption = Encryption::with_passphrase(&source).unwrap();
    let decryption = passphrase_decryption(&source);
    let plain = b"a small file";
    let started = Instant::now();
    let ciphertext = encrypt(plain, &encryption);
    let encrypt_time = started.elapsed();
    assert!(
        String::from_utf8_lossy(&ciphertext).contains(&format!(" {SCRYPT_WORK_FACTOR}\n")),
        "work factor 18 in the stanza"
    );
    let started = Instant::now();
    assert_eq!(decrypt(&ciphertext, &decryption).unwrap(), plain);
    let decrypt_time = started.elapsed();
    eprintln!(
        "scrypt 2^{SCRYPT_WORK_FACTOR}: encrypt {encrypt_time:?}, decrypt {decrypt_time:?} for a {}-byte file",
        plain.len()
    );
}
