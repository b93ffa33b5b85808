//! Where keys and passphrases come from (`file:`/`env:` sources) and how key files are read:
//! recipients files, identity files and passphrases, with line-numbered errors that never show a
//! secret.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use age::x25519;

use super::{is_encrypted, CryptError, KEY_FILE_LIMIT};

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

pub(super) fn zeroize_vec(bytes: &mut Vec<u8>) {
    use age::secrecy::zeroize::Zeroize;
    bytes.zeroize();
}

pub(super) fn looks_like_secret_key(text: &str) -> bool {
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

pub(super) fn parse_recipient(text: &str) -> Result<x25519::Recipient, LineProblem> {
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
pub(super) fn key_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

pub(super) fn read_recipients_file(path: &Path) -> Result<Vec<x25519::Recipient>, CryptError> {
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

pub(super) fn read_identities(source: &SecretSource) -> Result<Vec<x25519::Identity>, CryptError> {
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
pub(super) fn read_passphrase(source: &SecretSource) -> Result<SecretString, CryptError> {
    let text = source.read(KeyFileKind::Passphrase)?;
    let first_line = text.expose_secret().lines().next().unwrap_or("");
    if first_line.is_empty() {
        return Err(CryptError::EmptyPassphrase { from: source.clone() });
    }
    Ok(SecretString::from(first_line.to_string()))
}
