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
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::armor::ArmoredReader;
use age::secrecy::{ExposeSecret, SecretString};
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

/// Where a secret (a passphrase, identities) comes from. It is never the secret itself, so it can be
/// logged, shown in `Debug` output and named in errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// A file (`file:/path`). A passphrase is its first line; identities are all its lines.
    File(PathBuf),
    /// An environment variable (`env:NAME`).
    Env(String),
}

impl SecretSource {
    /// Parses the spec of a passphrase: `file:/path` or `env:NAME`. Anything else is refused, and the
    /// error does not repeat the value, as it is probably the passphrase itself.
    pub fn passphrase(spec: &str) -> Result<Self, CryptError> {
        Self::prefixed(spec).ok_or(CryptError::LiteralPassphrase)
    }

    /// Parses the spec of an identity file: `file:/path`, `env:NAME`, or a bare path (like `age -i`).
    /// A literal secret key is refused without being repeated.
    pub fn identity(spec: &str) -> Result<Self, CryptError> {
        if let Some(source) = Self::prefixed(spec) {
            return Ok(source);
        }
        if looks_like_secret_key(spec) {
            return Err(CryptError::LiteralIdentity);
        }
        // `file:` or `env:` with nothing usable after it, rather than a file named "file:".
        if spec.is_empty() || spec.starts_with("file:") || spec.starts_with("env:") {
            return Err(CryptError::EmptySourceSpec);
        }
        Ok(SecretSource::File(PathBuf::from(spec)))
    }

    fn prefixed(spec: &str) -> Option<Self> {
        if let Some(path) = spec.strip_prefix("file:") {
            return (!path.is_empty()).then(|| SecretSource::File(PathBuf::from(path)));
        }
        let name = spec.strip_prefix("env:")?;
        (!name.is_empty() && !name.contains('=') && !name.contains('\0')).then(|| SecretSource::Env(name.to_string()))
    }

    /// Reads the whole secret, bounded by [`KEY_FILE_LIMIT`], as UTF-8 held in a `SecretString` (zeroed
    /// when dropped).
    fn read(&self, what: KeyFileKind) -> Result<SecretString, CryptError> {
        match self {
            SecretSource::Env(name) => match std::env::var_os(name) {
                None => Err(CryptError::EnvNotSet { name: name.clone() }),
                Some(value) => match value.into_string() {
                    Ok(text) => Ok(SecretString::from(text)),
                    Err(_) => Err(CryptError::NotUtf8 { what, from: self.clone() }),
                },
            },
            SecretSource::File(path) => {
                let io_error = |error| CryptError::ReadSource { what, from: self.clone(), error };
                let file = std::fs::File::open(path).map_err(io_error)?;
                let mut bytes = Vec::new();
                file.take(KEY_FILE_LIMIT + 1).read_to_end(&mut bytes).map_err(io_error)?;
                if bytes.len() as u64 > KEY_FILE_LIMIT {
                    zeroize_vec(&mut bytes);
                    return Err(CryptError::TooLarge { what, from: self.clone() });
                }
                // `age -p` can protect an identity file with a passphrase; we would need a terminal
                // to ask for it, so say what the file is rather than "not UTF-8" or "line 1".
                if is_encrypted(&bytes) {
                    return Err(CryptError::EncryptedKeyFile { what, from: self.clone() });
                }
                match String::from_utf8(bytes) {
                    Ok(text) => Ok(SecretString::from(text)),
                    Err(error) => {
                        zeroize_vec(&mut error.into_bytes());
                        Err(CryptError::NotUtf8 { what, from: self.clone() })
                    }
                }
            }
        }
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Env(name) => write!(f, "env var {name}"),
        }
    }
}

impl FromStr for SecretSource {
    type Err = CryptError;

    /// The passphrase rule ([`SecretSource::passphrase`]): only `file:` and `env:` specs.
    fn from_str(spec: &str) -> Result<Self, CryptError> {
        Self::passphrase(spec)
    }
}

fn zeroize_vec(bytes: &mut Vec<u8>) {
    use age::secrecy::zeroize::Zeroize;
    bytes.zeroize();
}

fn looks_like_secret_key(text: &str) -> bool {
    text.trim_start().get(..15).is_some_and(|start| start.eq_ignore_ascii_case("AGE-SECRET-KEY-"))
}

/// What a key file holds, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFileKind {
    /// Identities (`AGE-SECRET-KEY-1...`), as written by `age-keygen` and read by `age -i`.
    Identities,
    /// Public keys (`age1...`), one per line, as read by `age -R`.
    Recipients,
    /// A passphrase: the first line.
    Passphrase,
}

impl fmt::Display for KeyFileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyFileKind::Identities => "age identity",
            KeyFileKind::Recipients => "age recipients",
            KeyFileKind::Passphrase => "age passphrase",
        })
    }
}

/// What is wrong with one line of a key file (never its content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineProblem {
    /// An identity file line that is not `AGE-SECRET-KEY-1...`.
    NotAnIdentity,
    /// A recipients file line, or a configured recipient, that is not `age1...`.
    NotARecipient,
    /// A secret key where a public key belongs.
    SecretKeyAsRecipient,
    /// An `ssh-ed25519`/`ssh-rsa` key: age supports them, this build does not.
    SshKey,
    /// A plugin identity or recipient (`AGE-PLUGIN-...`, `age1name1...`): not supported.
    Plugin,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LineProblem::NotAnIdentity => "not an age identity (AGE-SECRET-KEY-1...)",
            LineProblem::NotARecipient => "not an age recipient (age1...)",
            LineProblem::SecretKeyAsRecipient => {
                "is a secret key, not a recipient: give its public key (age-keygen -y)"
            }
            LineProblem::SshKey => "ssh keys are not supported: use an age key (age-keygen)",
            LineProblem::Plugin => "age plugins are not supported",
        })
    }
}

/// Everything that can go wrong setting up or running encryption and decryption. Messages are one
/// line, name the file or env var, and never contain a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptError {
    /// A passphrase given as something other than `file:` or `env:`.
    #[error("a passphrase must be given as file:/path or env:NAME, never literally")]
    LiteralPassphrase,
    /// A secret key given where an identity file path belongs.
    #[error("an identity must be given as a file path, file:/path or env:NAME, never literally")]
    LiteralIdentity,
    /// An identity spec with an empty path or an unusable variable name.
    #[error("an identity source must name a file or an environment variable (PATH, file:PATH or env:NAME)")]
    EmptySourceSpec,
    /// `env:NAME` names an unset variable.
    #[error("env var {name} is not set")]
    EnvNotSet {
        /// The variable.
        name: String,
    },
    /// A key file or variable that cannot be read.
    #[error("{what} {from}: {error}")]
    ReadSource {
        /// What it should hold.
        what: KeyFileKind,
        /// The file.
        from: SecretSource,
        /// Why it cannot be read.
        #[source]
        error: io::Error,
    },
    /// A key file above [`KEY_FILE_LIMIT`].
    #[error("{what} {from}: larger than {KEY_FILE_LIMIT} bytes")]
    TooLarge {
        /// What it should hold.
        what: KeyFileKind,
        /// The file.
        from: SecretSource,
    },
    /// A key file that is itself age-encrypted (a passphrase-protected identity file).
    #[error("{what} {from}: is itself age-encrypted (passphrase-protected key files are not supported)")]
    EncryptedKeyFile {
        /// What it should hold.
        what: KeyFileKind,
        /// The file.
        from: SecretSource,
    },
    /// A key file or variable that is not UTF-8 text.
    #[error("{what} {from}: not UTF-8 text")]
    NotUtf8 {
        /// What it should hold.
        what: KeyFileKind,
        /// The file or variable.
        from: SecretSource,
    },
    /// A bad line in a key file (1-based line number).
    #[error("{what} {from}: line {line}: {problem}")]
    BadLine {
        /// What it should hold.
        what: KeyFileKind,
        /// The file or variable.
        from: SecretSource,
        /// 1-based.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// A key file or variable with no key in it (only comments and blank lines).
    #[error("{what} {from}: no key in it")]
    NoKeys {
        /// What it should hold.
        what: KeyFileKind,
        /// The file or variable.
        from: SecretSource,
    },
    /// A passphrase whose first line is empty.
    #[error("age passphrase {from}: empty")]
    EmptyPassphrase {
        /// The file or variable.
        from: SecretSource,
    },
    /// A configured recipient (numbered from 1 in the list) that is not a public key. Public keys are
    /// not secret, but the value is not repeated in case it is a misplaced secret key.
    #[error("age recipient #{index}: {problem}")]
    BadRecipient {
        /// Its place in the configured list, from 1.
        index: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// Neither recipients nor a passphrase.
    #[error("encryption needs at least one age recipient or a passphrase")]
    NoRecipients,
    /// Both recipients and a passphrase: age files are one or the other.
    #[error("an age passphrase cannot be combined with recipients: a file is encrypted to one or the other")]
    PassphraseWithRecipients,
    /// A work factor outside 1..=[`MAX_SCRYPT_WORK_FACTOR`].
    #[error("scrypt work factor {0} is outside 1..={MAX_SCRYPT_WORK_FACTOR}")]
    WorkFactor(u8),
    /// Neither identities nor a passphrase.
    #[error("decryption needs at least one age identity or a passphrase")]
    NoIdentities,
    /// The age library refused to set up encryption.
    #[error("age: {0}")]
    Encrypt(#[source] age::EncryptError),
    /// Writing the age header failed.
    #[error("writing age header: {0}")]
    WriteHeader(#[source] io::Error),
    /// Reading the age header failed (including a file that ends inside it).
    #[error("reading age header: {0}")]
    ReadHeader(#[source] io::Error),
    /// The input ends before a complete age header.
    #[error("the input ends before a complete age header: not an age file, or a truncated one")]
    ShortHeader,
    /// The input is not an age file, or its header is damaged.
    #[error("invalid age header: not an age file, or a damaged one")]
    InvalidHeader,
    /// An age file of a later format version.
    #[error("unknown age format version: written by a newer age?")]
    UnknownFormat,
    /// The header's MAC does not match: damaged or altered.
    #[error("age header MAC mismatch: the file is damaged or was altered")]
    HeaderMac,
    /// A recipient-encrypted file, and no identity was given.
    #[error("this age file is encrypted to recipients and no identity was given")]
    NeedsIdentity,
    /// A passphrase-encrypted file, and no passphrase was given.
    #[error("this age file is passphrase-encrypted and no passphrase was given")]
    NeedsPassphrase,
    /// None of the identities can open the file.
    #[error("no identity matches this file's recipients")]
    NoMatchingIdentity,
    /// The passphrase does not open the file.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// A passphrase file whose scrypt work factor is above what this host accepts.
    #[error("this age file's scrypt work factor 2^{required} is above this host's limit")]
    ExcessiveWork {
        /// log2 of N in the file.
        required: u8,
    },
    /// Any other decryption error of the age library.
    #[error("age: {0}")]
    Decrypt(#[source] age::DecryptError),
}

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

fn parse_recipient(text: &str) -> Result<x25519::Recipient, LineProblem> {
    if let Ok(recipient) = text.parse::<x25519::Recipient>() {
        return Ok(recipient);
    }
    Err(if looks_like_secret_key(text) {
        LineProblem::SecretKeyAsRecipient
    } else if text.starts_with("ssh-") {
        LineProblem::SshKey
    } else if text.starts_with("age1") && text[4..].contains('1') {
        // A bech32 string with a longer human-readable part: age1<plugin name>1...
        LineProblem::Plugin
    } else {
        LineProblem::NotARecipient
    })
}

/// The key lines of a key file: trimmed, without blank lines and `#` comments, numbered from 1.
fn key_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

fn read_recipients_file(path: &Path) -> Result<Vec<x25519::Recipient>, CryptError> {
    let what = KeyFileKind::Recipients;
    let source = SecretSource::File(path.to_path_buf());
    let text = source.read(what)?;
    let mut recipients = Vec::new();
    for (line, key) in key_lines(text.expose_secret()) {
        let recipient = parse_recipient(key).map_err(|problem| CryptError::BadLine {
            what,
            from: source.clone(),
            line,
            problem,
        })?;
        recipients.push(recipient);
    }
    if recipients.is_empty() {
        return Err(CryptError::NoKeys { what, from: source });
    }
    Ok(recipients)
}

fn read_identities(source: &SecretSource) -> Result<Vec<x25519::Identity>, CryptError> {
    let what = KeyFileKind::Identities;
    let text = source.read(what)?;
    let mut identities = Vec::new();
    for (line, key) in key_lines(text.expose_secret()) {
        match key.parse::<x25519::Identity>() {
            Ok(identity) => identities.push(identity),
            Err(_) => {
                let problem =
                    if key.starts_with("AGE-PLUGIN-") { LineProblem::Plugin } else { LineProblem::NotAnIdentity };
                return Err(CryptError::BadLine { what, from: source.clone(), line, problem });
            }
        }
    }
    if identities.is_empty() {
        return Err(CryptError::NoKeys { what, from: source.clone() });
    }
    Ok(identities)
}

/// The first line of the source, without its line ending (`\n` or `\r\n`); the rest is ignored.
fn read_passphrase(source: &SecretSource) -> Result<SecretString, CryptError> {
    let text = source.read(KeyFileKind::Passphrase)?;
    let first_line = text.expose_secret().lines().next().unwrap_or("");
    if first_line.is_empty() {
        return Err(CryptError::EmptyPassphrase { from: source.clone() });
    }
    Ok(SecretString::from(first_line.to_string()))
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
