//! GPS (issue 18): NMEA 0183 from a USB receiver or a UART.
//!
//! - `nmea`: RMC/GGA/VTG parsed in place, checksums required, two-digit years in a window.
//! - `timefix`: when a receiver's time may set the clock (3 agreeing fixes).
//!
//! Still to come (see the note): the tty reader, fixes stored with the footage, the
//! subtitle track, GPX.

pub mod nmea;
pub mod timefix;
