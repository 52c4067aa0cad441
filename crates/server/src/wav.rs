//! WAV bytes for the browser and for clients: 8 kHz 16-bit PCM, mono or two channels.

/// Interleaves `channels` (equal lengths; a shorter one is padded with silence) into a
/// canonical 44-byte-header PCM WAV at 8 kHz.
pub(crate) fn pcm16(channels: &[&[i16]]) -> Vec<u8> {
    let n = channels.iter().map(|c| c.len()).max().unwrap_or(0);
    let ch = channels.len().max(1) as u16;
    let data_len = (n * usize::from(ch) * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&ch.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&(8000 * 2 * u32::from(ch)).to_le_bytes());
    out.extend_from_slice(&(2 * ch).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..n {
        for c in channels {
            out.extend_from_slice(&c.get(i).copied().unwrap_or(0).to_le_bytes());
        }
    }
    out
}

/// μ-law 8 kHz as a mono PCM WAV.
pub(crate) fn from_mulaw(codes: &[u8]) -> Vec<u8> {
    let pcm: Vec<i16> = codes
        .iter()
        .map(|&c| dialtone_audio::mulaw::decode(c))
        .collect();
    pcm16(&[&pcm])
}

/// Both parties on one channel, as a mono recording is.
pub(crate) fn mix(a: &[i16], b: &[i16]) -> Vec<i16> {
    (0..a.len().max(b.len()))
        .map(|i| {
            let x = i32::from(a.get(i).copied().unwrap_or(0));
            let y = i32::from(b.get(i).copied().unwrap_or(0));
            (x + y).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_interleaving() {
        let w = pcm16(&[&[1, 2], &[3]]);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(u16::from_le_bytes([w[22], w[23]]), 2);
        assert_eq!(u32::from_le_bytes([w[40], w[41], w[42], w[43]]), 8);
        let samples: Vec<i16> = w[44..]
            .chunks(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(samples, [1, 3, 2, 0]);
        assert_eq!(mix(&[i16::MAX, 1], &[5]), [i16::MAX, 1]);
    }
}
