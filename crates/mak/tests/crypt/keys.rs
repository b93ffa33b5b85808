//! Key files, secret sources and their errors: named by file and line, never echoing a secret.

use super::*;

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
