//! WAV input of any common shape (PCM 8-32 bit, float 32/64, mu-law; any rate and
//! channel count) decoded to 8 kHz mono i16, and 8 kHz mono 16-bit WAV output.
//!
//! Reads are bounded. The header is checked before any audio is read, so what is not a WAV
//! costs a dozen bytes (`/dev/zero` is refused at once), a data chunk longer than the file
//! is refused from its declared size, and no more of the data is read than the caller's
//! bound can use: `max` of audio ([`read_8k`]), never more than [`MAX_DURATION`] or
//! [`MAX_DATA_BYTES`]. What is cut is reported ([`Truncated`]), never silently dropped.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use crate::AudioError;

mod format;

use format::Format;

/// The most audio any read decodes: four hours, Twilio's longest call (`TimeLimit` tops out
/// at 14400 s), so no caller can hear more.
pub const MAX_DURATION: Duration = Duration::from_secs(4 * 3600);
/// The most data-chunk bytes any read holds: 256 MiB, whatever the duration (4 hours of
/// 8 kHz 16-bit mono, 24 minutes of 48 kHz 16-bit stereo). Decoding holds about twice this.
pub const MAX_DATA_BYTES: u64 = 256 << 20;
/// Largest fmt chunk read; the largest real one (WAVE_FORMAT_EXTENSIBLE) is 40 bytes.
const MAX_FMT_BYTES: u32 = 64 << 10;

/// Audio cut short by a read's bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated {
    /// The audio kept.
    pub kept: Duration,
    /// The file's whole length, when its header says (`None`: a streaming header with no
    /// length, or a download not read to its end).
    pub total: Option<Duration>,
}

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.kept.as_secs_f64();
        match self.total {
            Some(total) => write!(
                f,
                "{:.1} s long; only its first {kept:.1} s were read",
                total.as_secs_f64()
            ),
            None => write!(
                f,
                "longer than {kept:.1} s; only its first {kept:.1} s were read"
            ),
        }
    }
}

/// Audio read under a bound: 8 kHz mono samples, and what was cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// 8 kHz mono 16-bit samples.
    pub pcm: Vec<i16>,
    /// `Some` when the file holds more than was read.
    pub truncated: Option<Truncated>,
}

/// What a WAV header says: how the samples are stored, where they start and how many bytes
/// they declare.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    format: Format,
    data_start: u64,
    data_len: Option<u64>,
}

impl Header {
    /// Offset of the first byte of audio (the data chunk's body).
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Bytes of audio the header declares; `None` for the `0xFFFFFFFF` "unknown length"
    /// placeholder streaming writers leave (the data then runs to the end of the file).
    pub fn data_len(&self) -> Option<u64> {
        self.data_len
    }

    /// Bytes of audio a read bounded by `max` holds: whole sample frames, at most `max`
    /// (and [`MAX_DURATION`]) of audio and [`MAX_DATA_BYTES`], no more than declared.
    pub fn data_to_read(&self, max: Duration) -> u64 {
        let block = self.format.block() as u64;
        let secs = max.min(MAX_DURATION).as_secs_f64();
        // f64 → u64 saturates; the rate is at most 768 kHz, so this is exact enough.
        let frames = (secs * f64::from(self.format.sample_rate)).ceil() as u64;
        let want = frames
            .saturating_mul(block)
            .min(MAX_DATA_BYTES / block * block);
        self.data_len.map_or(want, |n| want.min(n))
    }

    /// Playing time of `bytes` of audio (whole sample frames).
    pub fn duration_of(&self, bytes: u64) -> Duration {
        let frames = bytes / self.format.block() as u64;
        Duration::from_secs_f64(frames as f64 / f64::from(self.format.sample_rate))
    }
}

/// Reads a WAV file of any common shape: 8-48 kHz (any rate really), mono or
/// stereo (or more channels: mixed down by averaging), 8/16/24/32-bit integer
/// PCM, 32/64-bit float and G.711 mu-law; returns mono 8 kHz i16 PCM.
///
/// The whole file: audio longer than a read holds ([`MAX_DURATION`], [`MAX_DATA_BYTES`])
/// is an [`AudioError::TooLong`]. [`read_8k`] reads what a bound needs instead.
pub fn load_8k(path: &Path) -> Result<Vec<i16>, AudioError> {
    whole(read_8k(path, MAX_DURATION)?, &path.display().to_string())
}

/// Same as [`load_8k`] from bytes already in memory (e.g. fetched over HTTP for
/// `<Play>`); `name` is used in error messages.
pub fn load_8k_from_bytes(bytes: &[u8], name: &str) -> Result<Vec<i16>, AudioError> {
    whole(decode_8k(bytes, name, MAX_DURATION)?, name)
}

/// Reads at most `max` of audio from the WAV file at `path` (see [`load_8k`] for the shapes
/// read). The header is checked first; chunks before the audio are skipped, not read.
pub fn read_8k(path: &Path, max: Duration) -> Result<Decoded, AudioError> {
    let name = path.display().to_string();
    let io = |source| AudioError::Io {
        path: name.clone(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // The length of a regular file checks the declared data size before the body is read;
    // devices and pipes have none and are read as far as the bound allows.
    let meta = file.metadata().map_err(io)?;
    let len = meta.is_file().then_some(meta.len());
    let mut r = BufReader::with_capacity(64 << 10, file);
    let header = read_header(&mut r, &name, |r, n| {
        // A pipe cannot seek: read past the chunk instead (nothing is kept).
        r.seek_relative(n as i64).or_else(|_| skip_by_reading(r, n))
    })?;
    let available = len.map(|l| l.saturating_sub(header.data_start));
    read_body(&mut r, &header, &name, max, available)
}

/// Reads at most `max` of audio from a WAV file held in memory; `name` is used in errors.
pub fn decode_8k(bytes: &[u8], name: &str, max: Duration) -> Result<Decoded, AudioError> {
    let header = read_header(&mut Cursor::new(bytes), name, seek_cursor)?;
    slice_body(bytes, &header, name, max, true)
}

/// Like [`decode_8k`] for the first bytes of a longer WAV file, e.g. a download stopped
/// once it had the `data_start + data_to_read(max)` bytes a read bounded by `max` needs
/// ([`scan_header`]): the declared data size is not checked against `head`'s length.
pub fn decode_head_8k(head: &[u8], name: &str, max: Duration) -> Result<Decoded, AudioError> {
    let header = read_header(&mut Cursor::new(head), name, seek_cursor)?;
    slice_body(head, &header, name, max, false)
}

/// The header at the front of `prefix` (the first bytes of a WAV file): `Ok(None)` while the
/// bytes end before the audio starts, an error as soon as they show the file is not a WAV
/// or is one this crate cannot decode.
pub fn scan_header(prefix: &[u8], name: &str) -> Result<Option<Header>, AudioError> {
    if prefix.len() < 12 {
        return Ok(None);
    }
    match read_header(&mut Cursor::new(prefix), name, seek_cursor) {
        Ok(h) => Ok(Some(h)),
        Err(AudioError::Truncated { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A read that had to stop at the bound is an error when the whole file was asked for.
fn whole(decoded: Decoded, name: &str) -> Result<Vec<i16>, AudioError> {
    match decoded.truncated {
        None => Ok(decoded.pcm),
        Some(t) => Err(AudioError::TooLong {
            path: name.into(),
            what: t.to_string(),
        }),
    }
}

fn seek_cursor(r: &mut Cursor<&[u8]>, n: u64) -> io::Result<()> {
    r.seek(SeekFrom::Current(n as i64)).map(drop)
}

fn skip_by_reading<R: Read>(r: &mut R, n: u64) -> io::Result<()> {
    let skipped = io::copy(&mut r.take(n), &mut io::sink())?;
    if skipped < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Reads into `buf` until it is full or the input ends; how many bytes came.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// An I/O error in words: the end of the input inside the header or the data is truncation.
fn io_error(name: &str, e: io::Error) -> AudioError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        AudioError::Truncated { path: name.into() }
    } else {
        AudioError::Io {
            path: name.into(),
            source: e,
        }
    }
}

/// Validates the RIFF structure up to the data chunk and leaves `r` at its first byte.
/// Chunks are walked by hand (rather than with hound) so that every failure maps to a
/// precise error, odd-sized chunks get their pad byte, and mu-law and 64-bit float files,
/// which hound rejects, can be read. Chunks other than `fmt ` are skipped with `skip`.
fn read_header<R: Read>(
    r: &mut R,
    name: &str,
    mut skip: impl FnMut(&mut R, u64) -> io::Result<()>,
) -> Result<Header, AudioError> {
    let unsupported = |what: String| AudioError::Unsupported {
        path: name.into(),
        what,
    };
    let mut riff = [0u8; 12];
    let got = read_up_to(r, &mut riff).map_err(|e| io_error(name, e))?;
    if got == 0 {
        return Err(AudioError::Empty { path: name.into() });
    }
    if got < 12 || &riff[8..12] != b"WAVE" {
        return Err(AudioError::NotRiff { path: name.into() });
    }
    match &riff[0..4] {
        b"RIFF" => {}
        b"RIFX" => return Err(unsupported("big-endian (RIFX) file".into())),
        b"RF64" => return Err(unsupported("64-bit (RF64) file".into())),
        _ => return Err(AudioError::NotRiff { path: name.into() }),
    }
    let mut format = None;
    let mut pos: u64 = 12;
    loop {
        // A file that ends before any data chunk was cut short.
        let mut head = [0u8; 8];
        r.read_exact(&mut head).map_err(|e| io_error(name, e))?;
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        pos += 8;
        if &head[0..4] == b"data" {
            let format = format.ok_or_else(|| unsupported("data chunk before fmt chunk".into()))?;
            return Ok(Header {
                format,
                data_start: pos,
                data_len: (size != u32::MAX).then_some(u64::from(size)),
            });
        }
        // RIFF chunks are word-aligned: odd sizes are followed by a pad byte.
        let pad = u64::from(size & 1);
        if &head[0..4] == b"fmt " {
            // Read into memory, so its size is bounded first (a hostile header may declare
            // 4 GiB).
            if size > MAX_FMT_BYTES {
                return Err(unsupported(format!("fmt chunk of {size} bytes")));
            }
            let mut chunk = vec![0u8; size as usize];
            r.read_exact(&mut chunk).map_err(|e| io_error(name, e))?;
            format = Some(format::parse_fmt(&chunk).map_err(unsupported)?);
            skip(r, pad).map_err(|e| io_error(name, e))?;
        } else {
            skip(r, u64::from(size) + pad).map_err(|e| io_error(name, e))?;
        }
        pos += u64::from(size) + pad;
    }
}

/// Reads what `max` needs of the data chunk `r` is at and decodes it. `available` is how
/// many bytes follow the data chunk's start, when known: less than declared is truncation.
fn read_body<R: Read>(
    r: &mut R,
    header: &Header,
    name: &str,
    max: Duration,
    available: Option<u64>,
) -> Result<Decoded, AudioError> {
    decode_body(header, name, max, available, |limit| {
        // Reserve no more than can come: a pipe may end long before the bound.
        let reserve = available.map_or(limit.min(1 << 20), |a| limit.min(a));
        let mut data = Vec::with_capacity(reserve as usize);
        r.take(limit)
            .read_to_end(&mut data)
            .map_err(|e| io_error(name, e))?;
        Ok(Cow::Owned(data))
    })
}

/// [`read_body`] for a file already in memory: its audio is decoded where it lies, not
/// copied first.
fn slice_body(
    bytes: &[u8],
    header: &Header,
    name: &str,
    max: Duration,
    whole_file: bool,
) -> Result<Decoded, AudioError> {
    let rest = bytes.get(header.data_start as usize..).unwrap_or_default();
    let available = whole_file.then_some(rest.len() as u64);
    decode_body(header, name, max, available, |limit| {
        let end = usize::try_from(limit).unwrap_or(usize::MAX).min(rest.len());
        Ok(Cow::Borrowed(&rest[..end]))
    })
}

/// Checks the data chunk's declared size against `available`, takes what `max` needs with
/// `take(limit)` and decodes it.
fn decode_body<'a>(
    header: &Header,
    name: &str,
    max: Duration,
    available: Option<u64>,
    take: impl FnOnce(u64) -> Result<Cow<'a, [u8]>, AudioError>,
) -> Result<Decoded, AudioError> {
    let truncated = || AudioError::Truncated { path: name.into() };
    if let (Some(declared), Some(available)) = (header.data_len, available)
        && available < declared
    {
        return Err(truncated());
    }
    let want = header.data_to_read(max);
    // One byte more shows whether audio of unknown length goes on past the bound.
    let limit = if header.data_len.is_some() {
        want
    } else {
        want + 1
    };
    let mut data = take(limit)?;
    let cut = match header.data_len {
        Some(_) if (data.len() as u64) < want => return Err(truncated()),
        Some(declared) => (want < declared).then(|| Some(header.duration_of(declared))),
        None if data.len() as u64 > want => {
            data = match data {
                Cow::Owned(mut v) => {
                    v.truncate(want as usize);
                    Cow::Owned(v)
                }
                Cow::Borrowed(b) => Cow::Borrowed(&b[..want as usize]),
            };
            Some(available.map(|a| header.duration_of(a)))
        }
        None => None,
    };
    // Empty is a file with no audio; a bound of zero (nothing more fits) is a cut, not that.
    if data.len() < header.format.block() && cut.is_none() {
        return Err(AudioError::Empty { path: name.into() });
    }
    let kept = header.duration_of(want);
    Ok(Decoded {
        pcm: header.format.decode(data),
        truncated: cut.map(|total| Truncated { kept, total }),
    })
}

/// Writes 8 kHz mono 16-bit PCM WAV.
pub fn write_8k(path: &Path, samples: &[i16]) -> Result<(), AudioError> {
    let name = path.display().to_string();
    let file = std::fs::File::create(path).map_err(|e| AudioError::Write {
        path: name.clone(),
        message: e.to_string(),
    })?;
    write_channels(std::io::BufWriter::new(file), &[samples], &name)
}

/// 8 kHz 16-bit PCM WAV bytes of `channels` interleaved, a shorter one padded with silence:
/// what is served over HTTP (a recording, one or two channels; a stream's audio).
pub fn encode_8k(channels: &[&[i16]]) -> Result<Vec<u8>, AudioError> {
    let mut out = std::io::Cursor::new(Vec::new());
    write_channels(&mut out, channels, "(WAV in memory)")?;
    Ok(out.into_inner())
}

/// 8 kHz μ-law codes as mono 16-bit PCM WAV bytes.
pub fn encode_mulaw_8k(codes: &[u8]) -> Result<Vec<u8>, AudioError> {
    let mut pcm = Vec::with_capacity(codes.len());
    crate::mulaw::decode_slice(codes, &mut pcm);
    encode_8k(&[&pcm])
}

/// Writes 8 kHz μ-law codes as an 8 kHz mono 16-bit PCM WAV file.
pub fn write_mulaw_8k(path: &Path, codes: &[u8]) -> Result<(), AudioError> {
    let mut pcm = Vec::with_capacity(codes.len());
    crate::mulaw::decode_slice(codes, &mut pcm);
    write_8k(path, &pcm)
}

/// The one WAV writer (hound): 8 kHz 16-bit PCM, `channels` interleaved and padded.
fn write_channels<W: std::io::Write + std::io::Seek>(
    sink: W,
    channels: &[&[i16]],
    name: &str,
) -> Result<(), AudioError> {
    let fail = |err: hound::Error| AudioError::Write {
        path: name.to_string(),
        message: match err {
            // hound's Display for I/O errors is the io::Error's own text.
            hound::Error::IoError(io) => io.to_string(),
            other => other.to_string(),
        },
    };
    let width = channels.len().max(1);
    let len = channels.iter().map(|c| c.len()).max().unwrap_or(0);
    // RIFF sizes are 32-bit; refuse up front rather than write a corrupt file.
    if len.saturating_mul(width) > (u32::MAX as usize - 44) / 2 || width > usize::from(u16::MAX) {
        return Err(AudioError::Write {
            path: name.to_string(),
            message: "too many samples for a WAV file (4 GiB limit)".into(),
        });
    }
    let spec = hound::WavSpec {
        channels: width as u16,
        sample_rate: crate::frames::SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::new(sink, spec).map_err(fail)?;
    // hound's i16 writer buffers exactly the reserved count; going chunk by chunk keeps
    // that buffer small for long recordings.
    const CHUNK: usize = 1 << 16;
    for start in (0..len).step_by(CHUNK) {
        let end = (start + CHUNK).min(len);
        let mut out = writer.get_i16_writer(((end - start) * width) as u32);
        for i in start..end {
            for c in channels {
                out.write_sample(c.get(i).copied().unwrap_or(0));
            }
        }
        out.flush().map_err(fail)?;
    }
    writer.finalize().map_err(fail)
}
