//! Codecs, apart from the sources that produce frames (`camera`) and the container that
//! carries them (`export`): H.264 bitstream parsing ([`h264`]), raw layouts ([`raw`]), the
//! encoder interface and the software H.264 encoder and decoder ([`encoder`]).

pub mod encoder;
pub mod h264;
pub mod h264ctl;
pub mod jpeg_yuv;
pub mod m2m;
pub mod m2m_selftest;
pub mod raw;
pub mod still;
