//! The one error type of [`crate::crypt`].

use std::io;

use super::keys::{KeyFileKind, LineProblem, SecretSource};
use super::{KEY_FILE_LIMIT, MAX_SCRYPT_WORK_FACTOR};

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
