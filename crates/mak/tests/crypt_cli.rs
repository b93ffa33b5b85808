//! Interoperability with the reference age command-line tool (Debian package `age`, installed by
//! scripts/install-deps.sh): what we encrypt, `age -d` decrypts; what `age` encrypts (binary or
//! armored, to `-r` keys, a `-R` file or a passphrase), we decrypt; and the whole stack with the
//! codec tools (`age -d | zstd -d` reads our `.mak.zst.age`). Without the tools these tests
//! fail under CI (CI=true, where it is installed) and are skipped with a message elsewhere.
//!
//! The age CLI reads passphrases only from a terminal, so the passphrase tests run it under
//! `script` (Debian bsdutils), which gives it a pseudo-terminal fed from our stdin.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mak::crypt::{
    decrypt_reader, encrypt_writer, Decryption, DecryptionSpec, Encryption, EncryptionSpec, SecretSource,
};

/// Whether the CLI tools `names` are on PATH. Missing under CI is a failure: CI installs them, so
/// a missing one means the install step broke, and skipping would hide the interop tests.
fn have_tools(names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {name}"))
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!("{} not installed (scripts/install-deps.sh installs it)", missing.join(", "));
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{message}: required under CI");
    }
    eprintln!("SKIPPED: {message}");
    false
}

fn run(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Feed stdin from another thread: the child's output would fill its pipe while we still write.
    let mut child_stdin = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let feeder = std::thread::spawn(move || child_stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

struct KeyPair {
    identity_file: PathBuf,
    public: String,
}

/// A fresh key made by `age-keygen` itself, so the identity file is in the tool's own format.
fn keygen(dir: &Path, name: &str) -> KeyPair {
    let identity_file = dir.join(name);
    run(Command::new("age-keygen").arg("-o").arg(&identity_file), b"");
    let public = run(Command::new("age-keygen").arg("-y").arg(&identity_file), b"");
    KeyPair { identity_file, public: String::from_utf8(public.stdout).unwrap().trim().to_string() }
}

fn sample() -> Vec<u8> {
    // Several 64 KiB chunks and a partial one, with every byte value.
    (0..200_003u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn decrypt_with(ciphertext: &[u8], spec: &DecryptionSpec) -> Vec<u8> {
    let decryption = Decryption::new(spec).unwrap();
    let mut plain = Vec::new();
    decrypt_reader(ciphertext, &decryption).unwrap().read_to_end(&mut plain).unwrap();
    plain
}

fn identity_spec(key: &KeyPair) -> DecryptionSpec {
    DecryptionSpec { identities: vec![SecretSource::File(key.identity_file.clone())], ..Default::default() }
}

#[test]
fn age_cli_decrypts_what_we_encrypt_to_recipients() {
    if !have_tools(&["age", "age-keygen"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (keygen(dir.path(), "first.txt"), keygen(dir.path(), "second.txt"));
    let encryption = Encryption::new(&EncryptionSpec {
        recipients: vec![first.public.clone(), second.public.clone()],
        ..Default::default()
    })
    .unwrap();
    let plain = sample();
    let encrypted = dir.path().join("f.mak.age");
    let mut writer = encrypt_writer(std::fs::File::create(&encrypted).unwrap(), &encryption).unwrap();
    writer.write_all(&plain).unwrap();
    writer.finish().unwrap();
    for key in [&first, &second] {
        let output = run(Command::new("age").arg("-d").arg("-i").arg(&key.identity_file).arg(&encrypted), b"");
        assert!(output.stdout == plain, "age -d output differs ({} bytes)", output.stdout.len());
    }
}

#[test]
fn we_decrypt_what_age_cli_encrypts_to_recipients_binary_and_armored() {
    if !have_tools(&["age", "age-keygen"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (keygen(dir.path(), "first.txt"), keygen(dir.path(), "second.txt"));
    let recipients_file = dir.path().join("recipients.txt");
    std::fs::write(&recipients_file, format!("# both\n{}\n{}\n", first.public, second.public)).unwrap();
    let plain = sample();
    let with_r = run(Command::new("age").arg("-r").arg(&first.public), &plain).stdout;
    let with_file = run(Command::new("age").arg("-R").arg(&recipients_file), &plain).stdout;
    let armored = run(Command::new("age").arg("-a").arg("-R").arg(&recipients_file), &plain).stdout;
    assert!(armored.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(mak::crypt::is_encrypted(&with_r) && mak::crypt::is_encrypted(&armored));
    assert!(decrypt_with(&with_r, &identity_spec(&first)) == plain, "age -r");
    for key in [&first, &second] {
        assert!(decrypt_with(&with_file, &identity_spec(key)) == plain, "age -R");
        assert!(decrypt_with(&armored, &identity_spec(key)) == plain, "age -a -R");
    }
}

/// Runs `age ARGS` on a pseudo-terminal, typing `typed` (the passphrase lines) into it.
fn age_on_a_terminal(args: &str, typed: &[u8]) {
    run(Command::new("script").args(["-q", "-e", "-c", &format!("age {args}"), "/dev/null"]), typed);
}

#[test]
fn passphrase_files_interoperate_with_age_cli_both_ways() {
    if !have_tools(&["age", "script"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let passphrase_file = dir.path().join("passphrase.txt");
    std::fs::write(&passphrase_file, "shared passphrase for interop\n").unwrap();
    let source = SecretSource::File(passphrase_file);
    let plain = sample();
    let plain_file = dir.path().join("plain.mak");
    std::fs::write(&plain_file, &plain).unwrap();

    // Ours (at the default work factor, what the daemon writes) -> age -d.
    let ours = dir.path().join("ours.mak.age");
    let mut writer =
        encrypt_writer(std::fs::File::create(&ours).unwrap(), &Encryption::with_passphrase(&source).unwrap()).unwrap();
    writer.write_all(&plain).unwrap();
    writer.finish().unwrap();
    let out = dir.path().join("ours.out");
    age_on_a_terminal(&format!("-d -o '{}' '{}'", out.display(), ours.display()), b"shared passphrase for interop\n");
    assert!(std::fs::read(&out).unwrap() == plain, "age -d of our passphrase file differs");

    // age -p (asks twice) -> ours.
    let theirs = dir.path().join("theirs.mak.age");
    age_on_a_terminal(
        &format!("-p -o '{}' '{}'", theirs.display(), plain_file.display()),
        b"shared passphrase for interop\nshared passphrase for interop\n",
    );
    let spec = DecryptionSpec { passphrase: Some(source), ..Default::default() };
    assert!(decrypt_with(&std::fs::read(&theirs).unwrap(), &spec) == plain, "our decryption of age -p differs");
}

/// The whole stack against the reference tools: our `.mak.<codec>.age` is read by
/// `age -d | <codec> -d`, and `<codec> | age -r` output is read by our layered reader.
#[test]
fn compressed_and_encrypted_files_interoperate_with_age_and_codec_clis() {
    use mak::codec::{Codec, Compression};
    use mak::layers::{archive_reader, archive_writer};
    if !have_tools(&["age", "age-keygen", "gzip", "zstd", "lz4"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "key.txt");
    let encryption =
        Encryption::new(&EncryptionSpec { recipients: vec![key.public.clone()], ..Default::default() }).unwrap();
    let decryption = Decryption::new(&identity_spec(&key)).unwrap();
    let plain = sample();
    for (codec, tool) in [(Codec::Gzip, "gzip"), (Codec::Zstd, "zstd"), (Codec::Lz4, "lz4")] {
        let ours = dir.path().join(format!("ours{}", mak::layers::suffix(codec, true)));
        let mut writer = archive_writer(
            std::fs::File::create(&ours).unwrap(),
            &Compression::new(codec, None).unwrap(),
            Some(&encryption),
        )
        .unwrap();
        writer.write_all(&plain).unwrap();
        writer.finish().unwrap();
        let pipeline = format!("age -d -i '{}' '{}' | {tool} -dc", key.identity_file.display(), ours.display());
        let output = run(Command::new("bash").args(["-o", "pipefail", "-c", &pipeline]), b"");
        assert!(output.stdout == plain, "{pipeline}: output differs");

        let theirs = run(
            Command::new("bash").args(["-o", "pipefail", "-c", &format!("{tool} -c | age -r {}", key.public)]),
            &plain,
        )
        .stdout;
        let mut reader = archive_reader(&theirs[..], Some(&decryption)).unwrap();
        assert_eq!(reader.codec(), codec);
        let mut mak = Vec::new();
        reader.read_to_end(&mut mak).unwrap();
        assert!(mak == plain, "{tool} | age: our reading differs");
    }
}
