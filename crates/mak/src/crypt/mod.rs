//! age encryption of archive files: the outermost layer, MAK -> codec -> age, suffix `.age` after the
//! codec's (`.mak.zst.age`). A file written here is a standard age v1 file (<https://age-encryption.org/v1>):
//! `age -d -i key.txt f.mak.zst.age | zstd -d` reads it without our software.
//!
//! Two modes, as in age itself (a file is one or the other, never both):
//! - **recipients**: one or more X25519 public keys (`age1...`). The archiving host holds only public
//!   keys, so it cannot read back what it archived; any one matching identity (`AGE-SECRET-KEY-1...`,
//!   the output of `age-keygen`) decrypts.
//! - **passphrase**: scrypt. The archiving host holds the passphrase, so it can also decrypt.
//!
//! Secrets never appear in a config value, a log line, an error or a `Debug` output: a passphrase
//! or an identity comes from a file (`file:/path`) or an environment variable (`env:NAME`), see
//! [`SecretSource`]; errors name the source and a line number, never the content.
//!
//! # Cost of passphrase mode
//!
//! Every passphrase-encrypted file runs scrypt once to wrap its file key and every decryption runs it
//! once to unwrap it. We pin the work factor to [`SCRYPT_WORK_FACTOR`] (2^18, the age command-line
//! tool's own), instead of the age crate's "about one second on this machine", so that the cost does
//! not depend on the host's load at startup and every file is readable by `age -d` anywhere. Measured
//! on the 2-core development machine (release build, `passphrase_cost_is_printed` in
//! `tests/crypt.rs`, 2026-11): 0.74 s to encrypt and 0.83 s to decrypt a 12-byte file on an idle
//! machine, about 1.0 s each with the other core busy, and 260 MiB peak resident memory (scrypt needs
//! 128 * 8 * 2^18 = 256 MiB), per file, whatever its size. So each compression worker in passphrase
//! mode adds 256 MiB while it starts a file. Recipient mode costs one X25519 operation per
//! recipient: well under a millisecond. For many small files, prefer recipients.
//!
//! Streaming: [`encrypt_writer`] and [`decrypt_reader`] hold one 64 KiB chunk (age's STREAM), so
//! memory is bounded whatever the file size. Every chunk is authenticated and the last one is
//! marked, so a flipped byte, a truncation (even at a chunk boundary) or appended bytes are a read
//! error, never silently different or shorter output. [`EncryptWriter::finish`] must be called: a
//! writer dropped without it leaves a file that fails to decrypt.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use mak::crypt::{decrypt_reader, encrypt_writer, is_encrypted, Decryption, DecryptionSpec, Encryption,
//!                  EncryptionSpec, SecretSource};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let identity_file = dir.path().join("key.txt");
//! // The committed TEST ONLY identity of the golden files; real keys come from age-keygen.
//! std::fs::write(&identity_file, "AGE-SECRET-KEY-1320ERH5RGEK0WUQYV6VH5NHFUE8DS4QC0VRLXNL6SYUP6A4F5DUSGYKW3W\n")?;
//! let encryption = Encryption::new(&EncryptionSpec {
//!     recipients: vec!["age15rzxjhtqrh7yjl5kmhfj38m8qtn5luw5ddn662pvwrfkyqt3vupqdjyyp4".into()],
//!     ..Default::default()
//! })?;
//! let mut writer = encrypt_writer(Vec::new(), &encryption)?;
//! writer.write_all(b"MAK...")?;
//! let ciphertext = writer.finish()?;
//! assert!(is_encrypted(&ciphertext));
//!
//! let decryption = Decryption::new(&DecryptionSpec {
//!     identities: vec![SecretSource::File(identity_file)],
//!     ..Default::default()
//! })?;
//! let mut plain = Vec::new();
//! decrypt_reader(&ciphertext[..], &decryption)?.read_to_end(&mut plain)?;
//! assert_eq!(plain, b"MAK...");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;

use age::armor::ArmoredReader;
use age::stream::{StreamReader, StreamWriter};
use age::{scrypt, x25519};

/// The first bytes of a binary age file (the version line of its header).
pub const BINARY_MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// The first bytes of an ASCII-armored age file (`age -a`).
pub const ARMOR_MAGIC: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// How many leading bytes [`is_encrypted`] needs to recognise either form.
pub const DETECT_LEN: usize = ARMOR_MAGIC.len();
/// The file name suffix of an encrypted file, after the codec's.
pub const SUFFIX: &str = ".age";
/// scrypt work factor (log2 of N) of passphrase-encrypted files: the age CLI's. See the module docs
/// for what it costs.
pub const SCRYPT_WORK_FACTOR: u8 = 18;
/// Highest work factor [`Encryption::with_scrypt_work_factor`] accepts: 2^22 already takes 4 GiB.
pub const MAX_SCRYPT_WORK_FACTOR: u8 = 22;
/// Key, recipient and passphrase files larger than this are refused before being read whole (age
/// itself caps identity files at 16 MiB; 1 MiB is still thousands of keys).
pub const KEY_FILE_LIMIT: u64 = 1 << 20;

/// True when `first_bytes` (the start of a file, at least [`DETECT_LEN`] bytes unless the file is
/// shorter) is an age file, binary or armored. Detection is by content only, like the codecs'.
pub fn is_encrypted(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(BINARY_MAGIC) || first_bytes.starts_with(ARMOR_MAGIC)
}

mod error;
mod keys;

pub use error::CryptError;
use keys::{parse_recipient, read_identities, read_passphrase, read_recipients_file};
pub use keys::{KeyFileKind, LineProblem, SecretSource};

/// The raw encryption settings, as read from a config file: validated into an [`Encryption`] by
/// [`Encryption::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionSpec {
    /// Public keys given literally (`age1...`): they are not secret.
    pub recipients: Vec<String>,
    /// Files of public keys, one per line, `#` comments (like `age -R`).
    pub recipients_files: Vec<PathBuf>,
    /// A passphrase (`file:/path` or `env:NAME`). Excludes recipients.
    pub passphrase: Option<SecretSource>,
}

/// Validated encryption settings: what [`encrypt_writer`] encrypts to. Built once (it reads the key
/// files) and shared by every file; `Send + Sync`.
pub struct Encryption {
    to: EncryptTo,
}

enum EncryptTo {
    Recipients(Vec<x25519::Recipient>),
    Passphrase { recipient: scrypt::Recipient, source: SecretSource, work_factor: u8 },
}

impl Encryption {
    /// Validates `spec`: reads the recipients files and the passphrase. Recipients (literal and from
    /// files together, like `age -r` and `-R`) or a passphrase, not both, not neither.
    pub fn new(spec: &EncryptionSpec) -> Result<Self, CryptError> {
        let has_recipients = !spec.recipients.is_empty() || !spec.recipients_files.is_empty();
        match (&spec.passphrase, has_recipients) {
            (Some(_), true) => Err(CryptError::PassphraseWithRecipients),
            (Some(source), false) => Self::with_passphrase(source),
            (None, false) => Err(CryptError::NoRecipients),
            (None, true) => {
                let mut recipients = Vec::new();
                for (index, text) in spec.recipients.iter().enumerate() {
                    let recipient = parse_recipient(text.trim())
                        .map_err(|problem| CryptError::BadRecipient { index: index + 1, problem })?;
                    recipients.push(recipient);
                }
                for path in &spec.recipients_files {
                    recipients.extend(read_recipients_file(path)?);
                }
                Ok(Encryption { to: EncryptTo::Recipients(recipients) })
            }
        }
    }

    /// Encryption to a passphrase read from `source`, with work factor [`SCRYPT_WORK_FACTOR`].
    pub fn with_passphrase(source: &SecretSource) -> Result<Self, CryptError> {
        let passphrase = read_passphrase(source)?;
        let mut recipient = scrypt::Recipient::new(passphrase);
        recipient.set_work_factor(SCRYPT_WORK_FACTOR);
        Ok(Encryption {
            to: EncryptTo::Passphrase { recipient, source: source.clone(), work_factor: SCRYPT_WORK_FACTOR },
        })
    }

    /// Changes the scrypt work factor of passphrase mode (no effect with recipients). Lower is faster
    /// and weaker: for tests and golden files; the default is [`SCRYPT_WORK_FACTOR`].
    pub fn with_scrypt_work_factor(mut self, log_n: u8) -> Result<Self, CryptError> {
        if !(1..=MAX_SCRYPT_WORK_FACTOR).contains(&log_n) {
            return Err(CryptError::WorkFactor(log_n));
        }
        if let EncryptTo::Passphrase { recipient, work_factor, .. } = &mut self.to {
            recipient.set_work_factor(log_n);
            *work_factor = log_n;
        }
        Ok(self)
    }

    /// The public keys files are encrypted to; empty in passphrase mode.
    pub fn recipients(&self) -> &[x25519::Recipient] {
        match &self.to {
            EncryptTo::Recipients(recipients) => recipients,
            EncryptTo::Passphrase { .. } => &[],
        }
    }

    /// True in passphrase mode.
    pub fn is_passphrase(&self) -> bool {
        matches!(self.to, EncryptTo::Passphrase { .. })
    }
}

impl fmt::Debug for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.to {
            EncryptTo::Recipients(recipients) => {
                let keys: Vec<String> = recipients.iter().map(ToString::to_string).collect();
                f.debug_struct("Encryption").field("recipients", &keys).finish()
            }
            EncryptTo::Passphrase { source, work_factor, .. } => f
                .debug_struct("Encryption")
                .field("passphrase_from", source)
                .field("scrypt_work_factor", work_factor)
                .finish(),
        }
    }
}

/// The raw decryption settings (parse tool flags, config): validated into a [`Decryption`] by
/// [`Decryption::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecryptionSpec {
    /// Identity files or variables (age-keygen format: several keys, `#` comments; like `age -i`).
    pub identities: Vec<SecretSource>,
    /// A passphrase (`file:/path` or `env:NAME`), for passphrase-encrypted files.
    pub passphrase: Option<SecretSource>,
}

/// Validated decryption settings: what [`decrypt_reader`] tries. Identities and a passphrase may be
/// given together: each file uses whichever its header asks for.
pub struct Decryption {
    identities: Vec<x25519::Identity>,
    identity_sources: Vec<SecretSource>,
    passphrase: Option<(scrypt::Identity, SecretSource)>,
}

impl Decryption {
    /// Validates `spec`: reads every identity source and the passphrase.
    pub fn new(spec: &DecryptionSpec) -> Result<Self, CryptError> {
        if spec.identities.is_empty() && spec.passphrase.is_none() {
            return Err(CryptError::NoIdentities);
        }
        let mut identities = Vec::new();
        for source in &spec.identities {
            identities.extend(read_identities(source)?);
        }
        let passphrase = match &spec.passphrase {
            // age caps the work factor it accepts at about 16 s of work on this host (its
            // default), which is far above SCRYPT_WORK_FACTOR on any machine that can run us.
            Some(source) => Some((scrypt::Identity::new(read_passphrase(source)?), source.clone())),
            None => None,
        };
        Ok(Decryption { identities, identity_sources: spec.identities.clone(), passphrase })
    }

    /// How many identities were read.
    pub fn identity_count(&self) -> usize {
        self.identities.len()
    }
}

impl fmt::Debug for Decryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryption")
            .field("identities", &self.identities.len())
            .field("identities_from", &self.identity_sources)
            .field("passphrase_from", &self.passphrase.as_ref().map(|(_, source)| source))
            .finish()
    }
}

/// A streaming age encryptor: everything written to it is encrypted to `out` in 64 KiB chunks.
/// [`finish`](Self::finish) writes the last chunk; without it the file does not decrypt.
pub struct EncryptWriter<W: Write> {
    inner: StreamWriter<W>,
}

impl<W: Write> EncryptWriter<W> {
    /// Encrypts and writes the last (possibly empty) chunk and returns the output, not flushed or
    /// synced: that is the caller's durability step.
    pub fn finish(self) -> io::Result<W> {
        self.inner.finish()
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Starts an age file on `out`: writes its header (a fresh file key wrapped to every recipient, or
/// by scrypt with the passphrase) and returns the writer of its payload.
pub fn encrypt_writer<W: Write>(out: W, encryption: &Encryption) -> Result<EncryptWriter<W>, CryptError> {
    let encryptor = match &encryption.to {
        EncryptTo::Recipients(recipients) => {
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        }
        EncryptTo::Passphrase { recipient, .. } => {
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
        }
    }
    .map_err(CryptError::Encrypt)?;
    let inner = encryptor.wrap_output(out).map_err(CryptError::WriteHeader)?;
    Ok(EncryptWriter { inner })
}

/// A streaming age decryptor. Read errors (a damaged, truncated or extended payload) are
/// `io::Error`s of kind `InvalidData` or `UnexpectedEof` whose message starts with "age payload".
pub struct DecryptReader<R: Read> {
    inner: StreamReader<ArmoredReader<BufReader<R>>>,
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|error| io::Error::new(error.kind(), format!("age payload: {error}")))
    }
}

/// Opens an age file (binary or armored) read from `input`: reads its header and unwraps the file
/// key with the passphrase (if the file is passphrase-encrypted) or the identities (otherwise).
/// The plaintext is then read from the returned reader.
pub fn decrypt_reader<R: Read>(input: R, decryption: &Decryption) -> Result<DecryptReader<R>, CryptError> {
    // ArmoredReader passes binary files through untouched, so one path reads both forms.
    let armored = ArmoredReader::new(input);
    let decryptor = age::Decryptor::new_buffered(armored).map_err(header_error)?;
    let is_scrypt = decryptor.is_scrypt();
    let opened = if is_scrypt {
        let (identity, _) = decryption.passphrase.as_ref().ok_or(CryptError::NeedsPassphrase)?;
        decryptor.decrypt(std::iter::once(identity as &dyn age::Identity))
    } else {
        if decryption.identities.is_empty() {
            return Err(CryptError::NeedsIdentity);
        }
        decryptor.decrypt(decryption.identities.iter().map(|i| i as &dyn age::Identity))
    };
    match opened {
        Ok(inner) => Ok(DecryptReader { inner }),
        Err(age::DecryptError::NoMatchingKeys) => Err(CryptError::NoMatchingIdentity),
        // scrypt's unwrap is an AEAD decryption under the passphrase's key: failing it means the
        // passphrase is wrong (or the stanza damaged, which the header MAC cannot tell apart first).
        Err(age::DecryptError::DecryptionFailed) if is_scrypt => Err(CryptError::WrongPassphrase),
        Err(error) => Err(header_error(error)),
    }
}

fn header_error(error: age::DecryptError) -> CryptError {
    match error {
        age::DecryptError::InvalidHeader => CryptError::InvalidHeader,
        age::DecryptError::UnknownFormat => CryptError::UnknownFormat,
        age::DecryptError::InvalidMac => CryptError::HeaderMac,
        age::DecryptError::NoMatchingKeys => CryptError::NoMatchingIdentity,
        age::DecryptError::ExcessiveWork { required, .. } => CryptError::ExcessiveWork { required },
        age::DecryptError::Io(error) if error.kind() == io::ErrorKind::UnexpectedEof => CryptError::ShortHeader,
        age::DecryptError::Io(error) => CryptError::ReadHeader(error),
        other => CryptError::Decrypt(other),
    }
}
