//! The compression codecs an archive can be stored with, streaming both ways, and detection of a
//! stream's codec by its first bytes (never by its name: a renamed or mislabelled file still reads).
//!
//! Every codec writes its standard container, so the codec's own command-line tool reads the
//! file without kafkatos3: gzip (RFC 1952, `gzip -d`), zstd frames with content checksum
//! (`zstd -d`), LZ4 frames with content checksum (`lz4 -d`). Each container checksums the
//! uncompressed bytes, so corruption surfaces as an error rather than as different records.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

/// A compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Stored as is.
    None,
    Gzip,
    Zstd,
    Lz4,
}

/// The first bytes of each container.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

impl Codec {
    pub const ALL: [Codec; 4] = [Codec::None, Codec::Gzip, Codec::Zstd, Codec::Lz4];

    /// The name used in configuration files: `none`, `gzip`, `zstd`, `lz4`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
        }
    }

    /// The codec called `name` (see [`Codec::name`]).
    pub fn from_name(name: &str) -> Option<Codec> {
        Codec::ALL.into_iter().find(|codec| codec.name() == name)
    }

    /// The file name suffix the codec's command-line tool expects, appended after `.mak`:
    /// `""`, `".gz"`, `".zst"`, `".lz4"`.
    pub fn suffix(self) -> &'static str {
        match self {
            Codec::None => "",
            Codec::Gzip => ".gz",
            Codec::Zstd => ".zst",
            Codec::Lz4 => ".lz4",
        }
    }

    /// The levels the codec accepts, as its command-line tool numbers them (`gzip -1..-9`,
    /// `zstd -1..-19`, `lz4 -1..-12`); `none` has only level 0.
    pub fn levels(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Codec::None => 0..=0,
            Codec::Gzip => 1..=9,
            // 20-22 are zstd's --ultra levels: they need a window too large for bounded memory.
            Codec::Zstd => 1..=19,
            Codec::Lz4 => 1..=12,
        }
    }

    /// The level used when none is configured: the command-line tool's own default.
    pub fn default_level(self) -> i32 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 6,
            Codec::Zstd => 3,
            Codec::Lz4 => 1,
        }
    }

    /// The codec whose container starts with `first_bytes`; `None` (the option) when none does,
    /// which is what an uncompressed MAK file looks like. Needs the first 4 bytes, fewer only
    /// at the end of a stream.
    pub fn detect(first_bytes: &[u8]) -> Option<Codec> {
        if first_bytes.starts_with(&GZIP_MAGIC) {
            Some(Codec::Gzip)
        } else if first_bytes.starts_with(&ZSTD_MAGIC) {
            Some(Codec::Zstd)
        } else if first_bytes.starts_with(&LZ4_MAGIC) {
            Some(Codec::Lz4)
        } else {
            None
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A codec with its level, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    codec: Codec,
    level: i32,
    /// Threads compressing one stream (zstd only; 1 for every other codec).
    threads: u32,
}

/// A level outside the codec's range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec} has no level {level} (levels {}..={})", .codec.levels().start(), .codec.levels().end())]
pub struct LevelError {
    pub codec: Codec,
    pub level: i32,
}

impl Compression {
    /// `codec` at `level`, or at its default level.
    pub fn new(codec: Codec, level: Option<i32>) -> Result<Compression, LevelError> {
        let level = level.unwrap_or(codec.default_level());
        if codec.levels().contains(&level) {
            Ok(Compression { codec, level, threads: 1 })
        } else {
            Err(LevelError { codec, level })
        }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn level(&self) -> i32 {
        self.level
    }

    /// The same with one stream compressed by `threads` threads, which zstd can do (its output
    /// is one ordinary frame, read by any zstd decoder); the other codecs keep one.
    pub fn with_threads(self, threads: u32) -> Compression {
        let threads = if self.codec == Codec::Zstd { threads.max(1) } else { 1 };
        Compression { threads, ..self }
    }

    pub fn threads(&self) -> u32 {
        self.threads
    }

    /// Wraps `out` in a streaming encoder: memory stays bounded by the codec's window whatever
    /// the input size. Call [`Encoder::finish`] to write the container's end.
    pub fn encoder<W: Write>(&self, out: W) -> io::Result<Encoder<W>> {
        Ok(match self.codec {
            Codec::None => Encoder::None(out),
            Codec::Gzip => {
                Encoder::Gzip(flate2::write::GzEncoder::new(out, flate2::Compression::new(self.level.unsigned_abs())))
            }
            Codec::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(out, self.level)?;
                encoder.include_checksum(true)?;
                if self.threads > 1 {
                    encoder.multithread(self.threads)?;
                }
                Encoder::Zstd(encoder)
            }
            Codec::Lz4 => Encoder::Lz4(
                lz4::EncoderBuilder::new()
                    .level(self.level.unsigned_abs())
                    .checksum(lz4::ContentChecksum::ChecksumEnabled)
                    .build(out)?,
            ),
        })
    }
}

/// A streaming compressor writing one container into `W`.
pub enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Lz4(lz4::Encoder<W>),
}

impl<W: Write> Encoder<W> {
    /// Writes the container's end (trailer, checksum) and returns the inner writer, not flushed.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(out) => Ok(out),
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
            Encoder::Lz4(encoder) => {
                let (out, result) = encoder.finish();
                result.map(|()| out)
            }
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(out) => out.write(buf),
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
            Encoder::Lz4(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(out) => out.flush(),
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
            Encoder::Lz4(encoder) => encoder.flush(),
        }
    }
}

/// A streaming decompressor for whichever codec the input starts with.
pub enum Decoder<R: BufRead> {
    None(R),
    // Boxed: a decoder is made once per file, and the gzip state would make every variant large.
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
    Lz4(Lz4Reader<R>),
}

impl<R: BufRead> Decoder<R> {
    /// Looks at the first bytes of `input` (without consuming them) and decodes accordingly;
    /// input that starts with no known container is passed through.
    pub fn detect(mut input: R) -> io::Result<Decoder<R>> {
        let codec = loop {
            match input.fill_buf() {
                Ok(first) => break Codec::detect(first),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        };
        Decoder::new(codec.unwrap_or(Codec::None), input)
    }

    /// Decodes `input` as `codec`.
    pub fn new(codec: Codec, input: R) -> io::Result<Decoder<R>> {
        Ok(match codec {
            Codec::None => Decoder::None(input),
            Codec::Gzip => Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(input))),
            Codec::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(input)?),
            Codec::Lz4 => Decoder::Lz4(Lz4Reader { decoder: Some(lz4::Decoder::new(input)?) }),
        })
    }

    pub fn codec(&self) -> Codec {
        match self {
            Decoder::None(_) => Codec::None,
            Decoder::Gzip(_) => Codec::Gzip,
            Decoder::Zstd(_) => Codec::Zstd,
            Decoder::Lz4(_) => Codec::Lz4,
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(input) => input.read(buf),
            Decoder::Gzip(decoder) => decoder.read(buf),
            Decoder::Zstd(decoder) => decoder.read(buf),
            Decoder::Lz4(decoder) => decoder.read(buf),
        }
    }
}

/// The LZ4 frame decoder, made to fail on a cut stream: the underlying decoder reports a frame
/// that ends early as a plain end of input.
pub struct Lz4Reader<R> {
    decoder: Option<lz4::Decoder<R>>,
}

impl<R: Read> Read for Lz4Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(decoder) = self.decoder.as_mut() else { return Ok(0) };
        let got = decoder.read(buf)?;
        if got == 0 && !buf.is_empty() {
            let (_, finished) = self.decoder.take().expect("checked above").finish();
            finished.map_err(|_| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "lz4 stream ends before its frame's end mark")
            })?;
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32).flat_map(|i| format!("record {i} value {}\n", i % 97).into_bytes()).collect()
    }

    fn compress(compression: Compression, data: &[u8]) -> Vec<u8> {
        let mut encoder = compression.encoder(Vec::new()).unwrap();
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_codec_and_level_round_trips_and_is_detected_by_content() {
        let data = sample();
        for codec in Codec::ALL {
            for level in [*codec.levels().start(), codec.default_level(), *codec.levels().end()] {
                let packed = compress(Compression::new(codec, Some(level)).unwrap(), &data);
                let mut decoder = Decoder::detect(&packed[..]).unwrap();
                assert_eq!(decoder.codec(), codec);
                let mut unpacked = Vec::new();
                decoder.read_to_end(&mut unpacked).unwrap();
                assert!(unpacked == data, "{codec} level {level} round trip");
                if codec != Codec::None {
                    assert!(packed.len() < data.len() / 3, "{codec} level {level} compresses");
                }
            }
        }
    }

    #[test]
    fn zstd_on_several_threads_writes_one_frame_any_decoder_reads_and_other_codecs_keep_one_thread() {
        // Several of zstd's jobs (at least 1 MiB each) so the threads really share the input.
        let data: Vec<u8> = (0..12u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 % 17).collect();
        let threaded = Compression::new(Codec::Zstd, Some(3)).unwrap().with_threads(3);
        assert_eq!(threaded.threads(), 3);
        let packed = compress(threaded, &data);
        let unpacked = zstd::stream::decode_all(&packed[..]).unwrap();
        assert!(unpacked == data, "a multithreaded stream reads back with a plain decoder");
        let mut decoder = Decoder::detect(&packed[..]).unwrap();
        let mut again = Vec::new();
        decoder.read_to_end(&mut again).unwrap();
        assert!(again == data);
        assert_eq!(Compression::new(Codec::Gzip, None).unwrap().with_threads(4).threads(), 1);
    }

    #[test]
    fn a_cut_or_damaged_stream_is_an_error_for_every_codec() {
        let data = sample();
        for codec in [Codec::Gzip, Codec::Zstd, Codec::Lz4] {
            let packed = compress(Compression::new(codec, None).unwrap(), &data);
            let cut = &packed[..packed.len() - 3];
            let result = Decoder::detect(cut).and_then(|mut d| d.read_to_end(&mut Vec::new()));
            assert!(result.is_err(), "{codec}: a stream cut 3 bytes short must fail");
            let mut flipped = packed.clone();
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0x40;
            let mut unpacked = Vec::new();
            let result = Decoder::detect(&flipped[..]).and_then(|mut d| d.read_to_end(&mut unpacked));
            assert!(result.is_err() || unpacked != data, "{codec}: a flipped bit never passes as the data");
            assert!(result.is_err(), "{codec}: the container's checksum catches a flipped bit");
        }
    }

    #[test]
    fn levels_outside_the_codecs_range_are_refused_with_the_range() {
        assert_eq!(Compression::new(Codec::Gzip, None).unwrap().level(), 6);
        let error = Compression::new(Codec::Zstd, Some(22)).unwrap_err();
        assert_eq!(error.to_string(), "zstd has no level 22 (levels 1..=19)");
        assert!(Compression::new(Codec::None, Some(3)).is_err());
        assert!(Compression::new(Codec::Lz4, Some(12)).is_ok());
    }

    #[test]
    fn names_and_suffixes_follow_the_command_line_tools() {
        for codec in Codec::ALL {
            assert_eq!(Codec::from_name(codec.name()), Some(codec));
        }
        let suffixes: Vec<_> = Codec::ALL.iter().map(|c| c.suffix()).collect();
        assert_eq!(suffixes, ["", ".gz", ".zst", ".lz4"]);
        assert_eq!(Codec::detect(b"MAK\0"), None);
        assert_eq!(Codec::detect(&[0x89, b'M', b'A', b'K']), None);
    }
}
