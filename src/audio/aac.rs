//! AAC-LC encoding of the microphone's PCM: the Fraunhofer FDK AAC library (`fdk-aac`; its
//! licence: docs/LICENSES.md). Raw access units (no ADTS), 1024 samples each, mono.

#[cfg(feature = "aac")]
use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams, Transport};

/// Samples per AAC-LC frame.
pub const FRAME: usize = 1024;
/// The largest access unit the encoder makes for one mono frame (6144 bits per channel).
pub const MAX_AU: usize = 768;

/// An AAC-LC encoder for one mono stream.
pub struct Aac {
    #[cfg(feature = "aac")]
    enc: Encoder,
    /// AudioSpecificConfig (the MP4's `esds` decoder config).
    pub asc: heapless::Vec<u8, 16>,
    /// Encoder delay in samples: access unit `k` decodes to input samples
    /// `k * 1024 - delay .. (k + 1) * 1024 - delay`.
    pub delay: u32,
}

#[cfg(not(feature = "aac"))]
impl Aac {
    pub fn new(_rate: u32, _bitrate: u32) -> Result<Aac, String> {
        Err("this blackbox was built without AAC (the \"aac\" feature; docs/LICENSES.md): no sound is recorded".into())
    }

    pub fn encode(&mut self, _pcm: &[i16; FRAME], _out: &mut [u8; MAX_AU]) -> Result<usize, String> {
        Err("built without AAC".into())
    }
}

#[cfg(feature = "aac")]
impl Aac {
    /// An encoder for `rate` Hz mono at `bitrate` bit/s.
    pub fn new(rate: u32, bitrate: u32) -> Result<Aac, String> {
        let enc = Encoder::new(EncoderParams {
            bit_rate: BitRate::Cbr(bitrate),
            sample_rate: rate,
            transport: Transport::Raw,
            channels: ChannelMode::Mono,
            audio_object_type: AudioObjectType::Mpeg4LowComplexity,
        })
        .map_err(|e| format!("AAC encoder for {rate} Hz at {bitrate} bit/s: {e}"))?;
        let info = enc.info().map_err(|e| format!("AAC encoder info: {e}"))?;
        let n = (info.confSize as usize).min(info.confBuf.len()).min(16);
        let asc = heapless::Vec::from_slice(&info.confBuf[..n]).unwrap_or_default();
        if info.frameLength as usize != FRAME {
            return Err(format!("AAC encoder frame of {} samples, not {FRAME}", info.frameLength));
        }
        Ok(Aac { enc, asc, delay: info.nDelay })
    }

    /// Feeds one frame of samples; returns the bytes of the access unit it completed in `out`
    /// (0 while the encoder fills its look-ahead).
    pub fn encode(&mut self, pcm: &[i16; FRAME], out: &mut [u8; MAX_AU]) -> Result<usize, String> {
        let r = self.enc.encode(pcm, out).map_err(|e| format!("AAC encoding: {e}"))?;
        Ok(r.output_size)
    }
}

#[cfg(all(test, feature = "aac"))]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_tone_into_access_units() {
        let mut a = Aac::new(16_000, 32_000).unwrap();
        assert_eq!(a.asc.as_slice(), &[0x14, 0x08], "AAC-LC, 16 kHz, mono");
        assert!(a.delay > 0 && a.delay < 4096, "delay {}", a.delay);
        let mut out = [0u8; MAX_AU];
        let (mut aus, mut bytes) = (0, 0);
        for f in 0..100 {
            let mut pcm = [0i16; FRAME];
            for (i, s) in pcm.iter_mut().enumerate() {
                let t = (f * FRAME + i) as f64 / 16_000.0;
                *s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
            }
            let n = a.encode(&pcm, &mut out).unwrap();
            if n > 0 {
                aus += 1;
                bytes += n;
            }
        }
        assert!(aus >= 97, "{aus} access units");
        // 32 kbit/s is 256 bytes per 64 ms frame on average.
        let avg = bytes / aus;
        assert!((150..=400).contains(&avg), "average access unit {avg} bytes");
    }
}
