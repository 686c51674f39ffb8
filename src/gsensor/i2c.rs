//! The I2C bus as the chip drivers see it ([`Bus`]), and its one real implementation:
//! `/dev/i2c-N` through i2c-dev's `I2C_RDWR` ioctl (a register-pointer write and a read in one
//! transaction, with a repeated start). Tests use a fake bus instead.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// Register access to chips on one I2C bus.
pub trait Bus {
    /// Writes `bytes` (register address first) to the chip at `addr`.
    fn write(&mut self, addr: u8, bytes: &[u8]) -> io::Result<()>;
    /// Sets the register pointer to `reg` and reads `out.len()` bytes (one transaction).
    fn read(&mut self, addr: u8, reg: u8, out: &mut [u8]) -> io::Result<()>;
    /// `out.len() / each` reads of `each` bytes from `reg`, as few transactions as the bus
    /// allows (the ADXL345 pops one FIFO entry per read of its data registers).
    fn read_each(&mut self, addr: u8, reg: u8, out: &mut [u8], each: usize) -> io::Result<()> {
        for chunk in out.chunks_mut(each.max(1)) {
            self.read(addr, reg, chunk)?;
        }
        Ok(())
    }
}

/// `struct i2c_msg` (linux/i2c.h).
#[repr(C)]
struct I2cMsg {
    addr: u16,
    flags: u16,
    len: u16,
    buf: *mut u8,
}

/// `struct i2c_rdwr_ioctl_data` (linux/i2c-dev.h).
#[repr(C)]
struct RdwrData {
    msgs: *mut I2cMsg,
    nmsgs: u32,
}

const I2C_RDWR: rustix::ioctl::Opcode = 0x0707;
const I2C_M_RD: u16 = 0x0001;
/// `I2C_RDWR_IOCTL_MAX_MSGS`.
const MAX_MSGS: usize = 42;

/// An i2c-dev character device, `/dev/i2c-N`.
pub struct I2cDev {
    file: File,
}

impl I2cDev {
    pub fn open(path: &Path) -> io::Result<I2cDev> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
        Ok(I2cDev { file })
    }

    fn transfer(&mut self, msgs: &mut [I2cMsg]) -> io::Result<()> {
        let mut data = RdwrData { msgs: msgs.as_mut_ptr(), nmsgs: msgs.len() as u32 };
        // SAFETY: I2C_RDWR takes a `struct i2c_rdwr_ioctl_data` (RdwrData, same layout) whose
        // messages point at buffers that live (and are not otherwise borrowed) for the call;
        // each `len` is its buffer's length (callers build them from slices).
        let ioctl = unsafe { rustix::ioctl::Updater::<I2C_RDWR, RdwrData>::new(&mut data) };
        // SAFETY: see above; the fd is an open i2c-dev device.
        unsafe { rustix::ioctl::ioctl(self.file.as_fd(), ioctl) }.map_err(io::Error::from)
    }
}

fn len16(n: usize) -> io::Result<u16> {
    u16::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "I2C message too long"))
}

impl Bus for I2cDev {
    fn write(&mut self, addr: u8, bytes: &[u8]) -> io::Result<()> {
        // The kernel only reads a write message's buffer.
        let mut msgs = [I2cMsg { addr: addr.into(), flags: 0, len: len16(bytes.len())?, buf: bytes.as_ptr().cast_mut() }];
        self.transfer(&mut msgs)
    }

    fn read(&mut self, addr: u8, reg: u8, out: &mut [u8]) -> io::Result<()> {
        let mut r = [reg];
        let mut msgs = [
            I2cMsg { addr: addr.into(), flags: 0, len: 1, buf: r.as_mut_ptr() },
            I2cMsg { addr: addr.into(), flags: I2C_M_RD, len: len16(out.len())?, buf: out.as_mut_ptr() },
        ];
        self.transfer(&mut msgs)
    }

    fn read_each(&mut self, addr: u8, reg: u8, out: &mut [u8], each: usize) -> io::Result<()> {
        let each = each.max(1);
        let mut r = [reg];
        let rp = r.as_mut_ptr();
        for group in out.chunks_mut(each * (MAX_MSGS / 2)) {
            let mut msgs: [I2cMsg; MAX_MSGS] =
                std::array::from_fn(|_| I2cMsg { addr: addr.into(), flags: 0, len: 1, buf: rp });
            let mut n = 0;
            for chunk in group.chunks_mut(each) {
                msgs[n + 1] = I2cMsg { addr: addr.into(), flags: I2C_M_RD, len: len16(chunk.len())?, buf: chunk.as_mut_ptr() };
                n += 2;
            }
            self.transfer(&mut msgs[..n])?;
        }
        Ok(())
    }
}
