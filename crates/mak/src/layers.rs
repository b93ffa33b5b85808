//! The layers around a MAK file, written and read as one stream: MAK -> codec ([`crate::codec`]) ->
//! optional age ([`crate::crypt`]). Writing stacks the codec's encoder on the age encryptor;
//! reading recognises each layer by its first bytes (never by the file name), so one call reads
//! every combination of version, codec and encryption.
//!
//! ```text
//! pub fn suffix(codec: Codec, encrypted: bool) -> String;                  // ".mak.zst.age"
//! pub fn archive_writer<W: Write>(out: W, &Compression, Option<&Encryption>) -> Result<ArchiveWriter<W>, LayerError>;
//! impl ArchiveWriter<W> { pub fn finish(self) -> io::Result<W>; }        // codec end, then age's last chunk
//! pub fn archive_reader<R: Read>(input: R, Option<&Decryption>) -> Result<ArchiveReader<R>, LayerError>;
//! impl ArchiveReader<R> { pub fn codec(&self) -> Codec; pub fn is_encrypted(&self) -> bool; } // + Read: the MAK bytes
//! ```

use std::io::{self, BufReader, Chain, Cursor, Read, Write};

use crate::codec::{Codec, Compression, Decoder, Encoder};
use crate::crypt::{self, CryptError, DecryptReader, Decryption, EncryptWriter, Encryption};

/// What goes wrong opening the layers. Errors while streaming are `io::Error`s from `Read`/`Write`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The file is age-encrypted and no identity or passphrase was given.
    #[error("this file is age-encrypted: give an age identity or passphrase to read it")]
    NeedsDecryption,
    /// Setting up encryption or decryption failed (bad key, wrong passphrase, damaged header...).
    #[error(transparent)]
    Crypt(#[from] CryptError),
    /// Reading the first bytes, or starting the codec, failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The file name suffix of a MAK file with these layers: `.mak`, then the codec's, then `.age`.
pub fn suffix(codec: Codec, encrypted: bool) -> String {
    format!(".mak{}{}", codec.suffix(), if encrypted { crypt::SUFFIX } else { "" })
}

/// Where the codec's output goes: straight to the file, or through age.
enum Sink<W: Write> {
    Plain(W),
    Encrypted(EncryptWriter<W>),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(out) => out.write(buf),
            Sink::Encrypted(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(out) => out.flush(),
            Sink::Encrypted(out) => out.flush(),
        }
    }
}

/// A streaming writer of a compressed and possibly encrypted MAK file: write the MAK bytes, then
/// [`finish`](Self::finish). Memory is bounded by the codec's window plus one 64 KiB age chunk.
pub struct ArchiveWriter<W: Write> {
    encoder: Encoder<Sink<W>>,
}

impl<W: Write> ArchiveWriter<W> {
    /// Ends the codec's container, then the age stream, and returns the output, neither flushed
    /// nor synced: durability is the caller's step.
    pub fn finish(self) -> io::Result<W> {
        match self.encoder.finish()? {
            Sink::Plain(out) => Ok(out),
            Sink::Encrypted(out) => out.finish(),
        }
    }
}

impl<W: Write> Write for ArchiveWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.encoder.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.encoder.flush()
    }
}

/// Starts a MAK file on `out` compressed with `compression` and, when `encryption` is given,
/// encrypted with age (the age header is written now).
pub fn archive_writer<W: Write>(
    out: W,
    compression: &Compression,
    encryption: Option<&Encryption>,
) -> Result<ArchiveWriter<W>, LayerError> {
    let sink = match encryption {
        Some(encryption) => Sink::Encrypted(crypt::encrypt_writer(out, encryption)?),
        None => Sink::Plain(out),
    };
    Ok(ArchiveWriter { encoder: compression.encoder(sink)? })
}

/// The input with its first bytes, read to recognise it, put back in front.
type Peeked<R> = Chain<Cursor<Vec<u8>>, R>;

/// What the codec decodes: the file itself, or its age plaintext.
enum Source<R: Read> {
    Plain(Peeked<R>),
    // Boxed: one per file, and age's reader state would make every variant large.
    Decrypted(Box<DecryptReader<Peeked<R>>>),
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(input) => input.read(buf),
            Source::Decrypted(input) => input.read(buf),
        }
    }
}

/// The MAK bytes of a compressed and possibly encrypted file; give it to [`crate::AnyReader`]
/// (without a size limit: the decoded length is not known up front).
pub struct ArchiveReader<R: Read> {
    decoder: Decoder<BufReader<Source<R>>>,
    encrypted: bool,
}

impl<R: Read> ArchiveReader<R> {
    /// The codec found inside (`Codec::None` for a plain MAK file).
    pub fn codec(&self) -> Codec {
        self.decoder.codec()
    }

    /// Whether the file was age-encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }
}

impl<R: Read> Read for ArchiveReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decoder.read(buf)
    }
}

/// Opens `input` whatever its layers: age (binary or armored) if it starts like age, decrypted with
/// `decryption`; then the codec its (decrypted) first bytes show; the result is the MAK bytes.
pub fn archive_reader<R: Read>(mut input: R, decryption: Option<&Decryption>) -> Result<ArchiveReader<R>, LayerError> {
    // Read enough to tell age from the rest even if the input arrives in small pieces (a network
    // body), and put it back in front.
    let mut first = Vec::with_capacity(crypt::DETECT_LEN);
    (&mut input).take(crypt::DETECT_LEN as u64).read_to_end(&mut first)?;
    let encrypted = crypt::is_encrypted(&first);
    let peeked = Cursor::new(first).chain(input);
    let source = if encrypted {
        let decryption = decryption.ok_or(LayerError::NeedsDecryption)?;
        Source::Decrypted(Box::new(crypt::decrypt_reader(peeked, decryption)?))
    } else {
        Source::Plain(peeked)
    };
    // The codec's magic is in the first bytes of the BufReader's first fill: a decrypted source
    // yields a whole 64 KiB chunk at once, a plain one at least the peeked bytes.
    let decoder = Decoder::detect(BufReader::new(source))?;
    Ok(ArchiveReader { decoder, encrypted })
}
