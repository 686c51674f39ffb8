//! The receiver's serial line: a tty (`/dev/ttyACM*` from cdc_acm, `/dev/ttyUSB*` from a
//! USB-serial chip, a UART such as `/dev/ttyS0` or `/dev/serial0`) opened raw, 8N1, with
//! reads that return after at most 0.5 s so the reader notices a receiver that went quiet.

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::termios::{self, ControlModes, OptionalActions, QueueSelector, SpecialCodeIndex};
use std::io;
use std::path::Path;

/// Opens `path` raw at `baud` (a CDC-ACM receiver ignores the rate).
pub fn open(path: &Path, baud: u32) -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())?;
    configure(&fd, baud)?;
    Ok(fd)
}

/// Raw 8N1 at `baud`, reads returning after 0.5 s without data; the input queued so far is
/// dropped (it was sent at another rate, or is stale).
pub fn configure(fd: &OwnedFd, baud: u32) -> io::Result<()> {
    let mut t = termios::tcgetattr(fd)?;
    t.make_raw();
    t.control_modes |= ControlModes::CLOCAL | ControlModes::CREAD;
    t.special_codes[SpecialCodeIndex::VMIN] = 0;
    t.special_codes[SpecialCodeIndex::VTIME] = 5;
    t.set_speed(baud)?;
    termios::tcsetattr(fd, OptionalActions::Now, &t)?;
    let _ = termios::tcflush(fd, QueueSelector::IFlush);
    Ok(())
}

/// Up to `buf.len()` bytes; `Ok(0)` after 0.5 s without any.
pub fn read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
