//! The accelerometers: which chip answers at which address (WHO_AM_I / DEVID), how each is set
//! up (±16 g, 100 Hz, its FIFO on), and how its FIFO is drained into samples in g.
//!
//! | chip | addresses | id register | FIFO |
//! |---|---|---|---|
//! | MPU-6050/6000 (0x68), MPU-6500 (0x70), MPU-9250 (0x71), MPU-9255 (0x73), ICM-20689 (0x98) | 0x68, 0x69 | WHO_AM_I 0x75 | 1024 bytes (6050), 512 (others): 6 bytes a sample |
//! | LIS3DH, LIS2DH12 (0x33), SC7A20 (0x11) | 0x18, 0x19 | WHO_AM_I 0x0F | 32 samples, stream mode |
//! | ADXL345 | 0x53, 0x1D | DEVID 0x00 = 0xE5 | 32 samples, stream mode |
//!
//! All run at 100 Hz: a 60 ms crash pulse is 6 samples, and the MPU's FIFO holds 1.7 s (the
//! others' 0.32 s), so a reader that runs late loses nothing. A full FIFO is an overflow:
//! counted by the caller; the MPU's is reset (its frames would be misaligned after a wrap).

use super::i2c::Bus;
use std::io;

/// Output data rate of every chip, Hz.
pub const ODR_HZ: u32 = 100;
/// Nominal sample period, ns.
pub const PERIOD_NS: u64 = 1_000_000_000 / ODR_HZ as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// InvenSense MPU-60x0/65x0/92x0 family; the WHO_AM_I value.
    Mpu(u8),
    /// ST LIS3DH and compatibles; the WHO_AM_I value.
    Lis3dh(u8),
    Adxl345,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chip {
    pub kind: Kind,
    pub addr: u8,
}

/// Addresses to probe, with the chip family expected there.
pub const PROBES: [(u8, Family); 6] = [
    (0x68, Family::Mpu),
    (0x69, Family::Mpu),
    (0x18, Family::Lis3dh),
    (0x19, Family::Lis3dh),
    (0x53, Family::Adxl345),
    (0x1d, Family::Adxl345),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Mpu,
    Lis3dh,
    Adxl345,
}

const MPU_IDS: [u8; 5] = [0x68, 0x70, 0x71, 0x73, 0x98];
const LIS_IDS: [u8; 2] = [0x33, 0x11];

/// Which chip (if any) of `family` answers at `addr`. A NAK or bus error is "none".
pub fn identify(bus: &mut dyn Bus, addr: u8, family: Family) -> Option<Chip> {
    let mut id = [0u8];
    let kind = match family {
        Family::Mpu => {
            bus.read(addr, 0x75, &mut id).ok()?;
            MPU_IDS.contains(&id[0]).then_some(Kind::Mpu(id[0]))?
        }
        Family::Lis3dh => {
            bus.read(addr, 0x0f, &mut id).ok()?;
            LIS_IDS.contains(&id[0]).then_some(Kind::Lis3dh(id[0]))?
        }
        Family::Adxl345 => {
            bus.read(addr, 0x00, &mut id).ok()?;
            (id[0] == 0xe5).then_some(Kind::Adxl345)?
        }
    };
    Some(Chip { kind, addr })
}

/// The first known chip on the bus: `addr` only when given, else every address of [`PROBES`].
pub fn probe(bus: &mut dyn Bus, addr: Option<u8>) -> Option<Chip> {
    PROBES
        .iter()
        .filter(|(a, _)| addr.is_none_or(|x| x == *a))
        .find_map(|&(a, f)| identify(bus, a, f))
}

/// What one drain found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drain {
    /// Samples written to the buffer.
    pub n: usize,
    /// The FIFO was full: samples were lost before these (the MPU's FIFO was reset).
    pub overflow: bool,
    /// CLOCK_MONOTONIC just before and just after the FIFO level was read.
    pub t_before: u64,
    pub t_after: u64,
}

/// Largest number of samples one drain returns (the MPU-6050's whole FIFO).
pub const MAX_DRAIN: usize = 1024 / 6;

impl Chip {
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Mpu(0x68) => "MPU-6050",
            Kind::Mpu(0x70) => "MPU-6500",
            Kind::Mpu(0x71) => "MPU-9250",
            Kind::Mpu(0x73) => "MPU-9255",
            Kind::Mpu(_) => "ICM-20689",
            Kind::Lis3dh(0x11) => "SC7A20",
            Kind::Lis3dh(_) => "LIS3DH",
            Kind::Adxl345 => "ADXL345",
        }
    }

    /// FIFO capacity in samples.
    pub fn fifo_samples(&self) -> usize {
        match self.kind {
            Kind::Mpu(0x68) => 1024 / 6,
            Kind::Mpu(_) => 512 / 6,
            Kind::Lis3dh(_) | Kind::Adxl345 => 32,
        }
    }

    fn set(&self, bus: &mut dyn Bus, reg: u8, val: u8) -> io::Result<()> {
        bus.write(self.addr, &[reg, val])
    }

    /// Resets the chip and sets ±16 g, 100 Hz, FIFO on (stream mode); checks one register
    /// read back. `sleep` waits (the chips need a few ms after a reset).
    pub fn init(&self, bus: &mut dyn Bus, sleep: &mut dyn FnMut(u64)) -> io::Result<()> {
        let (check_reg, want) = match self.kind {
            Kind::Mpu(id) => {
                self.set(bus, 0x6b, 0x80)?; // PWR_MGMT_1: H_RESET
                sleep(100);
                self.set(bus, 0x6b, 0x00)?; // awake, internal oscillator
                self.set(bus, 0x1a, 0x03)?; // CONFIG: DLPF 44 Hz (1 kHz internal rate)
                self.set(bus, 0x19, (1000 / ODR_HZ - 1) as u8)?; // SMPLRT_DIV: 100 Hz
                self.set(bus, 0x1c, 0x18)?; // ACCEL_CONFIG: AFS_SEL 3, ±16 g
                if id != 0x68 {
                    self.set(bus, 0x1d, 0x03)?; // ACCEL_CONFIG2 (6500 on): accel DLPF 41 Hz
                }
                self.set(bus, 0x23, 0x08)?; // FIFO_EN: accelerometer only
                self.set(bus, 0x6a, 0x04)?; // USER_CTRL: FIFO_RESET
                self.set(bus, 0x6a, 0x40)?; // USER_CTRL: FIFO_EN
                (0x1c, 0x18)
            }
            Kind::Lis3dh(_) => {
                self.set(bus, 0x24, 0x80)?; // CTRL_REG5: BOOT (reload trimming)
                sleep(10);
                self.set(bus, 0x20, 0x57)?; // CTRL_REG1: 100 Hz, X Y Z on, normal power
                self.set(bus, 0x23, 0xb8)?; // CTRL_REG4: BDU, ±16 g, high resolution
                self.set(bus, 0x24, 0x40)?; // CTRL_REG5: FIFO_EN
                self.set(bus, 0x2e, 0x00)?; // FIFO_CTRL: bypass (empties the FIFO)
                self.set(bus, 0x2e, 0x80)?; // FIFO_CTRL: stream mode
                (0x23, 0xb8)
            }
            Kind::Adxl345 => {
                self.set(bus, 0x2d, 0x00)?; // POWER_CTL: standby
                self.set(bus, 0x31, 0x0b)?; // DATA_FORMAT: FULL_RES, ±16 g
                self.set(bus, 0x2c, 0x0a)?; // BW_RATE: 100 Hz
                self.set(bus, 0x38, 0x00)?; // FIFO_CTL: bypass (empties the FIFO)
                self.set(bus, 0x38, 0x80)?; // FIFO_CTL: stream mode
                self.set(bus, 0x2d, 0x08)?; // POWER_CTL: measure
                (0x31, 0x0b)
            }
        };
        let mut v = [0u8];
        bus.read(self.addr, check_reg, &mut v)?;
        if v[0] != want {
            return Err(io::Error::other(format!(
                "{} at {:#04x}: register {check_reg:#04x} reads {:#04x} after writing {want:#04x}",
                self.name(),
                self.addr,
                v[0]
            )));
        }
        Ok(())
    }

    /// Reads what the FIFO holds (up to `out.len()` samples) as g, oldest first. `now` is
    /// CLOCK_MONOTONIC in ns (taken around the FIFO level read). `raw` is scratch space of at
    /// least `6 * out.len()` bytes (no allocation here).
    pub fn drain(&self, bus: &mut dyn Bus, out: &mut [[f32; 3]], raw: &mut [u8], now: &mut dyn FnMut() -> u64) -> io::Result<Drain> {
        let cap = out.len().min(raw.len() / 6);
        let mut d = Drain { t_before: now(), ..Drain::default() };
        match self.kind {
            Kind::Mpu(_) => {
                let mut c = [0u8; 2];
                bus.read(self.addr, 0x72, &mut c)?; // FIFO_COUNT_H, _L
                d.t_after = now();
                let count = usize::from(u16::from_be_bytes(c) & 0x1fff);
                let bytes = self.fifo_samples() * 6; // whole samples
                if count > bytes {
                    // Full: the oldest bytes were (or are about to be) overwritten, and a wrap
                    // breaks the 6-byte framing. Start over.
                    self.set(bus, 0x6a, 0x44)?; // USER_CTRL: FIFO_EN | FIFO_RESET
                    d.overflow = true;
                    return Ok(d);
                }
                d.n = (count / 6).min(cap);
                if d.n > 0 {
                    let raw = &mut raw[..d.n * 6];
                    bus.read(self.addr, 0x74, raw)?; // FIFO_R_W
                    for (s, b) in out.iter_mut().zip(raw.chunks_exact(6)) {
                        for (k, v) in s.iter_mut().enumerate() {
                            *v = f32::from(i16::from_be_bytes([b[2 * k], b[2 * k + 1]])) / 2048.0;
                        }
                    }
                }
            }
            Kind::Lis3dh(_) => {
                let mut src = [0u8];
                bus.read(self.addr, 0x2f, &mut src)?; // FIFO_SRC_REG
                d.t_after = now();
                d.overflow = src[0] & 0x40 != 0; // OVRN_FIFO: the 33rd sample overwrote one
                let level = if d.overflow { 32 } else { usize::from(src[0] & 0x1f) };
                d.n = level.min(cap);
                if d.n > 0 {
                    let raw = &mut raw[..d.n * 6];
                    // Auto-increment (bit 7); in FIFO mode the address wraps from OUT_Z_H
                    // (0x2D) back to OUT_X_L (0x28), so one read takes every sample.
                    bus.read(self.addr, 0x28 | 0x80, raw)?;
                    for (s, b) in out.iter_mut().zip(raw.chunks_exact(6)) {
                        for (k, v) in s.iter_mut().enumerate() {
                            // 12 bits, left-justified; 12 mg a digit at ±16 g (datasheet).
                            *v = f32::from(i16::from_le_bytes([b[2 * k], b[2 * k + 1]]) >> 4) * 0.012;
                        }
                    }
                }
            }
            Kind::Adxl345 => {
                let mut st = [0u8; 1];
                bus.read(self.addr, 0x39, &mut st)?; // FIFO_STATUS: entries
                d.t_after = now();
                let mut src = [0u8];
                bus.read(self.addr, 0x30, &mut src)?; // INT_SOURCE: bit 0 overrun
                d.overflow = src[0] & 0x01 != 0;
                d.n = usize::from(st[0] & 0x3f).min(32).min(cap);
                if d.n > 0 {
                    let raw = &mut raw[..d.n * 6];
                    bus.read_each(self.addr, 0x32, raw, 6)?; // DATAX0..DATAZ1, one entry each
                    for (s, b) in out.iter_mut().zip(raw.chunks_exact(6)) {
                        for (k, v) in s.iter_mut().enumerate() {
                            // Full resolution: 3.9 mg a digit at every range.
                            *v = f32::from(i16::from_le_bytes([b[2 * k], b[2 * k + 1]])) * 0.0039;
                        }
                    }
                }
            }
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// One emulated chip: a register file and a FIFO of 6-byte frames, as the drivers see it.
    struct Fake {
        addr: u8,
        family: Family,
        regs: [u8; 256],
        fifo: VecDeque<[u8; 6]>,
        writes: Vec<(u8, u8)>,
        fail: bool,
    }

    impl Fake {
        fn new(addr: u8, family: Family, id: u8) -> Fake {
            let mut regs = [0u8; 256];
            match family {
                Family::Mpu => regs[0x75] = id,
                Family::Lis3dh => regs[0x0f] = id,
                Family::Adxl345 => regs[0x00] = id,
            }
            Fake { addr, family, regs, fifo: VecDeque::new(), writes: Vec::new(), fail: false }
        }
        fn push(&mut self, g: [f32; 3]) {
            let mut f = [0u8; 6];
            for k in 0..3 {
                let b = match self.family {
                    Family::Mpu => ((g[k] * 2048.0) as i16).to_be_bytes(),
                    Family::Lis3dh => (((g[k] / 0.012).round() as i16) << 4).to_le_bytes(),
                    Family::Adxl345 => ((g[k] / 0.0039).round() as i16).to_le_bytes(),
                };
                f[2 * k..2 * k + 2].copy_from_slice(&b);
            }
            self.fifo.push_back(f);
            if self.fifo.len() > 32 && self.family != Family::Mpu {
                self.fifo.pop_front();
                self.regs[0x2f] |= 0x40;
                self.regs[0x30] |= 0x01;
            }
        }
    }

    impl Bus for Fake {
        fn write(&mut self, addr: u8, bytes: &[u8]) -> io::Result<()> {
            if self.fail || addr != self.addr {
                return Err(io::Error::from_raw_os_error(6)); // ENXIO: NAK
            }
            self.regs[bytes[0] as usize] = bytes[1];
            self.writes.push((bytes[0], bytes[1]));
            if self.family == Family::Mpu && bytes[0] == 0x6a && bytes[1] & 0x04 != 0 {
                self.fifo.clear();
            }
            Ok(())
        }
        fn read(&mut self, addr: u8, reg: u8, out: &mut [u8]) -> io::Result<()> {
            if self.fail || addr != self.addr {
                return Err(io::Error::from_raw_os_error(6));
            }
            let bytes: usize = self.fifo.len() * 6;
            match (self.family, reg) {
                (Family::Mpu, 0x72) => out.copy_from_slice(&(bytes.min(1024) as u16).to_be_bytes()),
                (Family::Mpu, 0x74) | (Family::Lis3dh, 0xa8) => {
                    for c in out.chunks_mut(6) {
                        c.copy_from_slice(&self.fifo.pop_front().unwrap());
                    }
                    self.regs[0x2f] &= !0x40;
                }
                (Family::Lis3dh, 0x2f) => out[0] = self.regs[0x2f] | self.fifo.len().min(31) as u8,
                (Family::Adxl345, 0x39) => out[0] = self.fifo.len() as u8,
                (Family::Adxl345, 0x30) => {
                    out[0] = self.regs[0x30];
                    self.regs[0x30] = 0;
                }
                (Family::Adxl345, 0x32) => out.copy_from_slice(&self.fifo.pop_front().unwrap()),
                _ => out.copy_from_slice(&self.regs[reg as usize..reg as usize + out.len()]),
            }
            Ok(())
        }
    }

    fn clock() -> impl FnMut() -> u64 {
        let mut t = 0;
        move || {
            t += 1000;
            t
        }
    }

    #[test]
    fn probing_finds_each_chip_and_nothing_else() {
        for (addr, fam, id, name) in [
            (0x68, Family::Mpu, 0x68, "MPU-6050"),
            (0x69, Family::Mpu, 0x70, "MPU-6500"),
            (0x68, Family::Mpu, 0x71, "MPU-9250"),
            (0x18, Family::Lis3dh, 0x33, "LIS3DH"),
            (0x19, Family::Lis3dh, 0x11, "SC7A20"),
            (0x53, Family::Adxl345, 0xe5, "ADXL345"),
            (0x1d, Family::Adxl345, 0xe5, "ADXL345"),
        ] {
            let mut f = Fake::new(addr, fam, id);
            let c = probe(&mut f, None).unwrap_or_else(|| panic!("{name} at {addr:#x} not found"));
            assert_eq!((c.addr, c.name()), (addr, name));
            assert_eq!(probe(&mut f, Some(addr)), Some(c));
            assert_eq!(probe(&mut f, Some(0x77)), None, "only the given address");
        }
        // A wrong id at the right address (another chip) is not taken.
        for (addr, fam, id) in [(0x68, Family::Mpu, 0x00), (0x18, Family::Lis3dh, 0x32), (0x53, Family::Adxl345, 0xe6)] {
            assert_eq!(probe(&mut Fake::new(addr, fam, id), None), None);
        }
        let mut dead = Fake::new(0x68, Family::Mpu, 0x68);
        dead.fail = true;
        assert_eq!(probe(&mut dead, None), None);
    }

    fn set_up(addr: u8, fam: Family, id: u8) -> (Fake, Chip) {
        let mut f = Fake::new(addr, fam, id);
        let c = probe(&mut f, None).unwrap();
        c.init(&mut f, &mut |_| {}).unwrap();
        (f, c)
    }

    #[test]
    fn init_sets_16g_100hz_and_the_fifo() {
        let (f, _) = set_up(0x68, Family::Mpu, 0x68);
        for w in [(0x1c, 0x18), (0x19, 9), (0x23, 0x08), (0x6a, 0x40)] {
            assert!(f.writes.contains(&w), "{w:x?} in {:x?}", f.writes);
        }
        let (f, _) = set_up(0x18, Family::Lis3dh, 0x33);
        for w in [(0x20, 0x57), (0x23, 0xb8), (0x24, 0x40), (0x2e, 0x80)] {
            assert!(f.writes.contains(&w), "{w:x?} in {:x?}", f.writes);
        }
        let (f, _) = set_up(0x53, Family::Adxl345, 0xe5);
        for w in [(0x31, 0x0b), (0x2c, 0x0a), (0x38, 0x80), (0x2d, 0x08)] {
            assert!(f.writes.contains(&w), "{w:x?} in {:x?}", f.writes);
        }
        // A register that doesn't keep what was written is an error, not a silent bad range.
        struct Stuck(Fake);
        impl Bus for Stuck {
            fn write(&mut self, a: u8, b: &[u8]) -> io::Result<()> {
                self.0.write(a, &[b[0], if b[0] == 0x1c { 0 } else { b[1] }])
            }
            fn read(&mut self, a: u8, r: u8, o: &mut [u8]) -> io::Result<()> {
                self.0.read(a, r, o)
            }
        }
        let mut s = Stuck(Fake::new(0x68, Family::Mpu, 0x68));
        let c = probe(&mut s, None).unwrap();
        assert!(c.init(&mut s, &mut |_| {}).unwrap_err().to_string().contains("0x1c"));
    }

    #[test]
    fn drain_converts_each_chip_to_g() {
        for (addr, fam, id, tol) in [(0x68, Family::Mpu, 0x68, 0.001), (0x18, Family::Lis3dh, 0x33, 0.012), (0x53, Family::Adxl345, 0xe5, 0.004)] {
            let (mut f, c) = set_up(addr, fam, id);
            let want = [[0.0, 0.0, 1.0], [-2.5, 15.0, -15.5], [6.0, -0.4, 1.3]];
            for w in want {
                f.push(w);
            }
            let (mut out, mut raw) = ([[0f32; 3]; MAX_DRAIN], [0u8; MAX_DRAIN * 6]);
            let d = c.drain(&mut f, &mut out, &mut raw, &mut clock()).unwrap();
            assert_eq!((d.n, d.overflow), (3, false), "{}", c.name());
            assert!(d.t_before < d.t_after);
            for (g, w) in out.iter().zip(want) {
                for k in 0..3 {
                    assert!((g[k] - w[k]).abs() <= tol, "{}: {g:?} vs {w:?}", c.name());
                }
            }
            let d = c.drain(&mut f, &mut out, &mut raw, &mut clock()).unwrap();
            assert_eq!(d.n, 0);
        }
    }

    #[test]
    fn a_full_fifo_is_an_overflow() {
        let (mut f, c) = set_up(0x68, Family::Mpu, 0x68);
        for _ in 0..171 {
            f.push([0.0, 0.0, 1.0]);
        }
        let (mut out, mut raw) = ([[0f32; 3]; MAX_DRAIN], [0u8; MAX_DRAIN * 6]);
        let d = c.drain(&mut f, &mut out, &mut raw, &mut clock()).unwrap();
        assert!(d.overflow && d.n == 0);
        assert!(f.fifo.is_empty(), "the MPU's FIFO is reset");
        // 170 samples (1020 bytes) are not an overflow yet.
        for _ in 0..170 {
            f.push([0.0, 0.0, 1.0]);
        }
        let d = c.drain(&mut f, &mut out, &mut raw, &mut clock()).unwrap();
        assert_eq!((d.n, d.overflow), (170, false));
        for (addr, fam, id) in [(0x18, Family::Lis3dh, 0x33), (0x53, Family::Adxl345, 0xe5)] {
            let (mut f, c) = set_up(addr, fam, id);
            for _ in 0..40 {
                f.push([0.0, 0.0, 1.0]);
            }
            let d = c.drain(&mut f, &mut out, &mut raw, &mut clock()).unwrap();
            assert_eq!((d.n, d.overflow), (32, true), "{}", c.name());
            f.push([0.0, 0.0, 1.0]);
            let d = c.drain(&mut f, &mut out, &mut raw, &mut clock()).unwrap();
            assert_eq!((d.n, d.overflow), (1, false), "{}", c.name());
        }
    }
}
