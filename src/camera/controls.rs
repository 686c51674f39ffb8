//! V4L2 camera controls: list them, set one with validation, reset one to its default.
//!
//! The backend of the dashboard's camera panel (`/api/controls`) and of `blackbox controls`.
//!
//! - **Its own file descriptor.** Every operation opens the device node afresh with
//!   `O_RDWR | O_NONBLOCK` and closes it afterwards. V4L2 allows control ioctls on a second
//!   descriptor while another one streams, so the recorder's capture is never touched: this
//!   module never calls `S_FMT`, `REQBUFS` or `STREAMON`, and closing a descriptor that does not
//!   own the buffer queue does not stop streaming. Opening afresh also means an unplugged and
//!   replugged camera is found again, and a vanished one is an error at `open`, not a hang.
//! - **Raw ioctls** (`VIDIOC_QUERY_EXT_CTRL`, `VIDIOC_QUERYMENU`, `VIDIOC_G_EXT_CTRLS`,
//!   `VIDIOC_S_EXT_CTRLS`) through the `v4l` crate's `v4l2::ioctl`. The crate's own
//!   `Device::query_controls` panics on control types it does not know (`unwrap` of
//!   `Type::try_from`; vivid has several) and its `Device` `unwrap`s `close` in `Drop`, so it
//!   is not used here.
//! - **Walk:** `V4L2_CTRL_FLAG_NEXT_CTRL | V4L2_CTRL_FLAG_NEXT_COMPOUND` from id 0. Class
//!   entries (type `CTRL_CLASS`, "User Controls", "Camera Controls", ...) are not controls; they
//!   name the category of the controls of their class. Disabled controls are left out (the
//!   V4L2 spec says applications should ignore them). Compound controls (arrays, areas, codec
//!   structures) are listed with their type but without a value, and cannot be set here.
//! - **Set:** the control is queried afresh, the value checked against its type, range, step,
//!   menu items and flags ([`validate`], pure and unit-tested), then `VIDIOC_S_EXT_CTRLS`.
//!   Every refusal is a [`ControlError`] with a message that names the control and what it
//!   allows, e.g. `Brightness: 300 is out of range 0..=255 (step 1)`.
//! - **Cache:** [`DeviceControls`] keeps the list for [`CACHE_TTL`]; a set or reset drops it.
//!
//! Nothing here panics on a driver's answer: unknown types, empty menus, step 0, ids that do
//! not advance, ENODEV, EBUSY and EINVAL all become values or errors.

use std::ffi::c_void;
use std::fmt::{self, Write as _};
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use v4l::v4l_sys::{v4l2_ext_control, v4l2_ext_controls, v4l2_query_ext_ctrl, v4l2_querymenu};
use v4l::v4l2::{self as raw, vidioc};

/// How long a listing is served from the cache.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// Most controls one device may list (a bound against a driver whose walk never ends).
pub const MAX_CONTROLS: usize = 1024;
/// Most menu indices tried per menu control.
pub const MAX_MENU_ITEMS: i64 = 256;
/// Longest string control value read or written (bytes, without the NUL).
pub const MAX_STRING: usize = 4096;

const FLAG_NEXT_CTRL: u32 = 0x8000_0000;
const FLAG_NEXT_COMPOUND: u32 = 0x4000_0000;
/// `V4L2_CTRL_ID_MASK`: the bits of an id; the others are the `NEXT_*` walk flags.
const ID_MASK: u32 = 0x0fff_ffff;
const WHICH_CUR_VAL: u32 = 0;
const WHICH_DEF_VAL: u32 = 0x0f00_0000;
const TYPE_CTRL_CLASS: u32 = 6;

/// `V4L2_CTRL_FLAG_*`.
pub mod flag {
    pub const DISABLED: u32 = 0x0001;
    pub const GRABBED: u32 = 0x0002;
    pub const READ_ONLY: u32 = 0x0004;
    pub const UPDATE: u32 = 0x0008;
    pub const INACTIVE: u32 = 0x0010;
    pub const SLIDER: u32 = 0x0020;
    pub const WRITE_ONLY: u32 = 0x0040;
    pub const VOLATILE: u32 = 0x0080;
    pub const HAS_PAYLOAD: u32 = 0x0100;
    pub const EXECUTE_ON_WRITE: u32 = 0x0200;
    pub const MODIFY_LAYOUT: u32 = 0x0400;
    pub const DYNAMIC_ARRAY: u32 = 0x0800;
    /// Every flag with its name, for listings.
    pub const NAMES: [(u32, &str); 12] = [
        (DISABLED, "disabled"),
        (GRABBED, "grabbed"),
        (READ_ONLY, "read_only"),
        (UPDATE, "update"),
        (INACTIVE, "inactive"),
        (SLIDER, "slider"),
        (WRITE_ONLY, "write_only"),
        (VOLATILE, "volatile"),
        (HAS_PAYLOAD, "has_payload"),
        (EXECUTE_ON_WRITE, "execute_on_write"),
        (MODIFY_LAYOUT, "modify_layout"),
        (DYNAMIC_ARRAY, "dynamic_array"),
    ];
}

/// A control's type (`V4L2_CTRL_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Boolean,
    Menu,
    Button,
    Integer64,
    String,
    Bitmask,
    IntegerMenu,
    /// Arrays and structures (`U8`, `U16`, `U32`, `AREA`, codec parameters, ...): listed, not
    /// read or set here. Holds the raw type.
    Compound(u32),
}

impl Kind {
    /// `None` for `CTRL_CLASS`, which is a heading, not a control.
    pub fn from_raw(t: u32) -> Option<Kind> {
        Some(match t {
            1 => Kind::Integer,
            2 => Kind::Boolean,
            3 => Kind::Menu,
            4 => Kind::Button,
            5 => Kind::Integer64,
            TYPE_CTRL_CLASS => return None,
            7 => Kind::String,
            8 => Kind::Bitmask,
            9 => Kind::IntegerMenu,
            other => Kind::Compound(other),
        })
    }

    /// The type's name in the API and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Integer => "integer",
            Kind::Boolean => "boolean",
            Kind::Menu => "menu",
            Kind::Button => "button",
            Kind::Integer64 => "integer64",
            Kind::String => "string",
            Kind::Bitmask => "bitmask",
            Kind::IntegerMenu => "integer_menu",
            Kind::Compound(0x0100) => "u8",
            Kind::Compound(0x0101) => "u16",
            Kind::Compound(0x0102) => "u32",
            Kind::Compound(0x0106) => "area",
            Kind::Compound(_) => "compound",
        }
    }

    fn is_menu(self) -> bool {
        matches!(self, Kind::Menu | Kind::IntegerMenu)
    }
}

/// One item of a menu control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MenuItem {
    pub index: u32,
    /// The item's name; for an integer menu, its value in decimal.
    pub name: String,
    /// An integer menu item's value.
    pub value: Option<i64>,
}

/// A control's current value, or a value to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Integer, integer64, bitmask, or a menu's index.
    Int(i64),
    Bool(bool),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// A value asked for by a client: a JSON number, bool or string. Numbers that are not
/// integers (or do not fit in 64 bits) keep their text, to be refused with it.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Int(i64),
    Bool(bool),
    Text(String),
    /// A number that is not an `i64` (fraction, exponent, too large): its text.
    OtherNumber(String),
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Int(v) => write!(f, "{v}"),
            Input::Bool(b) => write!(f, "{b}"),
            Input::Text(s) => write!(f, "{s:?}"),
            Input::OtherNumber(s) => f.write_str(s),
        }
    }
}

/// One control as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    pub id: u32,
    pub name: String,
    /// The name of its class: "User Controls", "Camera Controls", ...
    pub category: String,
    pub kind: Kind,
    pub min: i64,
    pub max: i64,
    pub step: u64,
    pub default: i64,
    /// `None` for buttons, write-only and compound controls, and when reading it failed.
    pub value: Option<Value>,
    /// Menu items the driver accepts (indices it rejects are left out).
    pub menu: Vec<MenuItem>,
    /// `V4L2_CTRL_FLAG_*` ([`flag`]).
    pub flags: u32,
}

impl Control {
    pub fn read_only(&self) -> bool {
        self.flags & flag::READ_ONLY != 0
    }
    pub fn inactive(&self) -> bool {
        self.flags & flag::INACTIVE != 0
    }
    /// The allowed values in words, as error messages quote them.
    pub fn allowed(&self) -> String {
        match self.kind {
            Kind::Integer | Kind::Integer64 => format!("{}..={} (step {})", self.min, self.max, self.step.max(1)),
            Kind::Boolean => "true or false".into(),
            Kind::Button => "true (press it)".into(),
            Kind::Bitmask => format!("a bitmask within 0x{:x}", self.max as u32),
            Kind::String => format!("a string of {}..={} bytes", self.min, self.max),
            Kind::Menu | Kind::IntegerMenu => {
                let mut s = String::from("one of the menu indices ");
                for (i, m) in self.menu.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    let _ = write!(s, "{} ({})", m.index, m.name);
                }
                if self.menu.is_empty() {
                    s.push_str("(none: the driver lists no items)");
                }
                s
            }
            Kind::Compound(_) => "nothing (compound controls cannot be set from blackbox)".into(),
        }
    }
}

/// Why a control operation failed. [`fmt::Display`] gives the message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// No such control on this device (404).
    UnknownId { id: u32, device: String },
    /// The value is not acceptable: wrong type, out of range, off-step, not a menu index, or
    /// the driver refused it (400). The message names the control and what it allows.
    Invalid(String),
    /// The control is read-only (400).
    ReadOnly(String),
    /// The control or device is busy now (grabbed, EBUSY) (409).
    Busy(String),
    /// The device is not there (unplugged, no such node) (503).
    Gone(String),
    /// Any other I/O error (503).
    Io(String),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::UnknownId { id, device } => write!(f, "{device} has no control {id}"),
            ControlError::Invalid(m) | ControlError::ReadOnly(m) | ControlError::Busy(m) => f.write_str(m),
            ControlError::Gone(m) | ControlError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ControlError {}

/// What `VIDIOC_S_EXT_CTRLS` gets for one control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Raw {
    /// `value` (integer, boolean, menu, button, bitmask).
    I32(i32),
    /// `value64` (integer64).
    I64(i64),
    /// `string`.
    Str(String),
}

/// Checks `v` against the control's type, flags, range, step and menu, and gives what the
/// driver is to be sent. Pure: no device needed.
pub fn validate(c: &Control, v: &Input) -> Result<Raw, ControlError> {
    let name = &c.name;
    if c.read_only() {
        return Err(ControlError::ReadOnly(format!("{name} is read-only")));
    }
    if c.flags & flag::DISABLED != 0 {
        return Err(ControlError::Invalid(format!("{name} is disabled by the driver")));
    }
    let wrong = |what: &str| ControlError::Invalid(format!("{name}: expects {what}, got {v}"));
    match c.kind {
        Kind::Integer | Kind::Integer64 => {
            let Input::Int(x) = *v else {
                return Err(wrong(&format!("an integer in {}", c.allowed())));
            };
            check_range_step(c, x)?;
            if c.kind == Kind::Integer {
                // The driver's range is 32-bit for this type; a wider one is the driver's error.
                i32::try_from(x).map(Raw::I32).map_err(|_| wrong("a 32-bit integer"))
            } else {
                Ok(Raw::I64(x))
            }
        }
        Kind::Boolean => match v {
            Input::Bool(b) => Ok(Raw::I32(*b as i32)),
            _ => Err(wrong("true or false")),
        },
        Kind::Button => match v {
            Input::Bool(true) => Ok(Raw::I32(1)),
            _ => Err(wrong("true (a button is pressed, it has no value)")),
        },
        Kind::Menu | Kind::IntegerMenu => {
            let Input::Int(x) = *v else {
                return Err(wrong(&format!("a menu index: {}", c.allowed())));
            };
            if c.menu.iter().any(|m| i64::from(m.index) == x) {
                Ok(Raw::I32(x as i32))
            } else {
                Err(ControlError::Invalid(format!("{name}: {x} is not {}", c.allowed())))
            }
        }
        Kind::Bitmask => {
            let Input::Int(x) = *v else {
                return Err(wrong(&c.allowed()));
            };
            let mask = c.max as u32;
            match u32::try_from(x) {
                Ok(bits) if bits & !mask == 0 => Ok(Raw::I32(bits as i32)),
                _ => Err(ControlError::Invalid(format!(
                    "{name}: {x} (0x{x:x}) has bits outside the mask: expects {}",
                    c.allowed()
                ))),
            }
        }
        Kind::String => {
            let Input::Text(s) = v else {
                return Err(wrong(&c.allowed()));
            };
            let n = s.len() as i64;
            if s.as_bytes().contains(&0) {
                return Err(ControlError::Invalid(format!("{name}: the string may not contain NUL")));
            }
            let step = c.step.max(1) as i64;
            if n < c.min || n > c.max || n as usize > MAX_STRING || (n - c.min) % step != 0 {
                return Err(ControlError::Invalid(format!(
                    "{name}: {v} is {n} bytes long: expects {}{}",
                    c.allowed(),
                    if step > 1 { format!(" in steps of {step}") } else { String::new() }
                )));
            }
            Ok(Raw::Str(s.clone()))
        }
        Kind::Compound(_) => Err(ControlError::Invalid(format!(
            "{name}: a {} control cannot be set from blackbox",
            c.kind.name()
        ))),
    }
}

fn check_range_step(c: &Control, x: i64) -> Result<(), ControlError> {
    let name = &c.name;
    if x < c.min || x > c.max {
        return Err(ControlError::Invalid(format!("{name}: {x} is out of range {}", c.allowed())));
    }
    let step = c.step.max(1) as i128;
    let off = (x as i128 - c.min as i128) % step;
    if off != 0 {
        let below = x as i128 - off;
        let above = below + step;
        let mut near = format!("{below}");
        if above <= c.max as i128 {
            let _ = write!(near, " or {above}");
        }
        return Err(ControlError::Invalid(format!(
            "{name}: {x} is off-step: range {} allows {near} nearby",
            c.allowed()
        )));
    }
    Ok(())
}

/// An open control descriptor on a device node (never used to stream).
struct Dev {
    fd: OwnedFd,
    path: String,
}

fn io_err(path: &str, what: &str, e: io::Error) -> ControlError {
    let msg = format!("{path}: {what}: {e}");
    match e.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENOENT) | Some(libc::ENXIO) => ControlError::Gone(msg),
        Some(libc::EBUSY) | Some(libc::EAGAIN) => ControlError::Busy(msg),
        _ => ControlError::Io(msg),
    }
}

fn cstr(bytes: &[u8]) -> String {
    let n = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..n]).into_owned()
}

fn name_of(q: &v4l2_query_ext_ctrl) -> String {
    let bytes: Vec<u8> = q.name.iter().map(|&c| c as u8).collect();
    cstr(&bytes)
}

/// Known class names, for a driver that lists controls without their class heading.
fn default_class_name(class: u32) -> String {
    match class {
        0x0098_0000 => "User Controls".into(),
        0x0099_0000 => "Codec Controls".into(),
        0x009a_0000 => "Camera Controls".into(),
        0x009b_0000 => "FM Radio Modulator Controls".into(),
        0x009c_0000 => "Flash Controls".into(),
        0x009d_0000 => "JPEG Compression Controls".into(),
        0x009e_0000 => "Image Source Controls".into(),
        0x009f_0000 => "Image Processing Controls".into(),
        0x00a0_0000 => "Digital Video Controls".into(),
        0x00a1_0000 => "FM Radio Receiver Controls".into(),
        0x00a2_0000 => "RF Tuner Controls".into(),
        0x00a3_0000 => "Detection Controls".into(),
        0x00a4_0000 => "Stateless Codec Controls".into(),
        0x00a5_0000 => "Colorimetry Controls".into(),
        other => format!("Class 0x{other:08x}"),
    }
}

/// `V4L2_CTRL_ID2CLASS`.
fn class_of(id: u32) -> u32 {
    id & 0x0fff_0000
}

impl Dev {
    fn open(path: &Path) -> Result<Dev, ControlError> {
        use rustix::fs::{Mode, OFlags};
        let shown = path.display().to_string();
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY, Mode::empty())
            .map_err(|e| io_err(&shown, "open", e.into()))?;
        Ok(Dev { fd, path: shown })
    }

    /// One ioctl on this descriptor, retried on EINTR.
    ///
    /// # Safety
    /// `arg` must be the argument type the kernel expects for `req`, with every pointer in it
    /// valid for the sizes it states.
    unsafe fn ioctl<T>(&self, req: vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
        loop {
            // SAFETY: the caller guarantees `arg` matches `req`; the fd is open (owned).
            match unsafe { raw::ioctl(self.fd.as_raw_fd(), req, arg as *mut T as *mut c_void) } {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                r => return r,
            }
        }
    }

    /// `VIDIOC_QUERY_EXT_CTRL` for `id` (with or without the NEXT flags).
    fn query(&self, id: u32) -> io::Result<v4l2_query_ext_ctrl> {
        // SAFETY: plain C struct; all-zero is a valid value.
        let mut q: v4l2_query_ext_ctrl = unsafe { mem::zeroed() };
        q.id = id;
        // SAFETY: QUERY_EXT_CTRL takes a v4l2_query_ext_ctrl, which holds no pointers.
        unsafe { self.ioctl(vidioc::VIDIOC_QUERY_EXT_CTRL, &mut q) }?;
        Ok(q)
    }

    /// The items of a menu control; indices the driver rejects are skipped.
    fn menu(&self, q: &v4l2_query_ext_ctrl, kind: Kind) -> Vec<MenuItem> {
        let mut items = Vec::new();
        if q.minimum < 0 || q.maximum < q.minimum {
            return items;
        }
        let last = q.maximum.min(q.minimum + MAX_MENU_ITEMS - 1);
        for index in q.minimum..=last {
            // SAFETY: plain C struct; all-zero is a valid value.
            let mut m: v4l2_querymenu = unsafe { mem::zeroed() };
            m.id = q.id;
            m.index = index as u32;
            // SAFETY: QUERYMENU takes a v4l2_querymenu, which holds no pointers.
            if unsafe { self.ioctl(vidioc::VIDIOC_QUERYMENU, &mut m) }.is_err() {
                continue;
            }
            items.push(if kind == Kind::IntegerMenu {
                // SAFETY: for an integer menu the driver filled the union's `value`.
                let v = unsafe { m.__bindgen_anon_1.value };
                MenuItem { index: index as u32, name: v.to_string(), value: Some(v) }
            } else {
                // SAFETY: for a text menu the driver filled the union's `name` (u8 array).
                let name = unsafe { m.__bindgen_anon_1.name };
                MenuItem { index: index as u32, name: cstr(&name), value: None }
            });
        }
        items
    }

    /// Reads a control's value (`which`: current or default). `None` for types without one.
    fn get(&self, q: &v4l2_query_ext_ctrl, kind: Kind, which: u32) -> io::Result<Option<Value>> {
        if q.flags & flag::WRITE_ONLY != 0 || matches!(kind, Kind::Button | Kind::Compound(_)) {
            return Ok(None);
        }
        // SAFETY: plain C structs; all-zero is a valid value.
        let mut c: v4l2_ext_control = unsafe { mem::zeroed() };
        c.id = q.id;
        let mut text: Vec<u8> = Vec::new();
        if kind == Kind::String {
            let cap = (q.maximum.clamp(0, MAX_STRING as i64) as usize) + 1;
            text.resize(cap, 0);
            c.size = cap as u32;
            c.__bindgen_anon_1.string = text.as_mut_ptr() as *mut _;
        }
        // SAFETY: as above.
        let mut cs: v4l2_ext_controls = unsafe { mem::zeroed() };
        cs.__bindgen_anon_1.which = which;
        cs.count = 1;
        cs.controls = &mut c;
        // SAFETY: G_EXT_CTRLS takes a v4l2_ext_controls whose `controls` points at `count` (1)
        // v4l2_ext_control; a string control's `string` points at `size` writable bytes
        // (`text`), both alive for the call.
        unsafe { self.ioctl(vidioc::VIDIOC_G_EXT_CTRLS, &mut cs) }?;
        Ok(Some(match kind {
            Kind::Integer64 => Value::Int(unsafe { c.__bindgen_anon_1.value64 }),
            Kind::String => Value::Text(cstr(&text)),
            // SAFETY (here and above): the driver filled the union member of this type.
            Kind::Boolean => Value::Bool(unsafe { c.__bindgen_anon_1.value } != 0),
            Kind::Bitmask => Value::Int(i64::from(unsafe { c.__bindgen_anon_1.value } as u32)),
            _ => Value::Int(i64::from(unsafe { c.__bindgen_anon_1.value })),
        }))
    }

    fn set(&self, id: u32, raw: &Raw) -> io::Result<()> {
        // SAFETY: plain C structs; all-zero is a valid value.
        let mut c: v4l2_ext_control = unsafe { mem::zeroed() };
        c.id = id;
        let mut text: Vec<u8>;
        match raw {
            Raw::I32(v) => c.__bindgen_anon_1.value = *v,
            Raw::I64(v) => c.__bindgen_anon_1.value64 = *v,
            Raw::Str(s) => {
                text = Vec::with_capacity(s.len() + 1);
                text.extend_from_slice(s.as_bytes());
                text.push(0);
                c.size = text.len() as u32;
                c.__bindgen_anon_1.string = text.as_mut_ptr() as *mut _;
            }
        }
        // SAFETY: as above.
        let mut cs: v4l2_ext_controls = unsafe { mem::zeroed() };
        cs.__bindgen_anon_1.which = WHICH_CUR_VAL;
        cs.count = 1;
        cs.controls = &mut c;
        // SAFETY: S_EXT_CTRLS takes a v4l2_ext_controls whose `controls` points at one
        // v4l2_ext_control; a string's `string` points at `size` bytes (`text`, NUL-terminated),
        // alive for the call.
        unsafe { self.ioctl(vidioc::VIDIOC_S_EXT_CTRLS, &mut cs) }
    }

    /// The control `q` describes, with its value and menu.
    fn control(&self, q: &v4l2_query_ext_ctrl, kind: Kind, category: String) -> Result<Control, ControlError> {
        let value = match self.get(q, kind, WHICH_CUR_VAL) {
            Ok(v) => v,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV)) => {
                return Err(io_err(&self.path, "VIDIOC_G_EXT_CTRLS", e));
            }
            // EACCES (write-only), EBUSY, EINVAL: listed without a value.
            Err(_) => None,
        };
        let menu = if kind.is_menu() { self.menu(q, kind) } else { Vec::new() };
        Ok(Control {
            id: q.id,
            name: name_of(q),
            category,
            kind,
            min: q.minimum,
            max: q.maximum,
            step: q.step,
            default: q.default_value,
            value,
            menu,
            flags: q.flags,
        })
    }

    /// Every control of the device, in the driver's order.
    fn list(&self) -> Result<Vec<Control>, ControlError> {
        let mut out = Vec::new();
        let mut classes: Vec<(u32, String)> = Vec::new();
        let mut id = 0u32;
        for _ in 0..MAX_CONTROLS * 2 {
            let q = match self.query(id | FLAG_NEXT_CTRL | FLAG_NEXT_COMPOUND) {
                Ok(q) => q,
                // The end of the list.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => return Err(io_err(&self.path, "VIDIOC_QUERY_EXT_CTRL", e)),
            };
            let next = q.id & ID_MASK;
            if next <= id {
                log::warn!("controls: {}: the driver's control list does not advance at id {next}; stopping", self.path);
                break;
            }
            id = next;
            let Some(kind) = Kind::from_raw(q.type_) else {
                classes.push((class_of(q.id), name_of(&q)));
                continue;
            };
            if q.flags & flag::DISABLED != 0 {
                continue;
            }
            let class = class_of(q.id);
            let category = classes
                .iter()
                .find(|(c, _)| *c == class)
                .map_or_else(|| default_class_name(class), |(_, n)| n.clone());
            out.push(self.control(&q, kind, category)?);
            if out.len() >= MAX_CONTROLS {
                break;
            }
        }
        Ok(out)
    }

    /// The control `id` exactly (never a walk), or [`ControlError::UnknownId`].
    fn lookup(&self, id: u32) -> Result<(v4l2_query_ext_ctrl, Kind), ControlError> {
        let unknown = || ControlError::UnknownId { id, device: self.path.clone() };
        if id & !ID_MASK != 0 || id == 0 {
            return Err(unknown());
        }
        let q = match self.query(id) {
            Ok(q) => q,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Err(unknown()),
            Err(e) => return Err(io_err(&self.path, "VIDIOC_QUERY_EXT_CTRL", e)),
        };
        match Kind::from_raw(q.type_) {
            Some(kind) if q.id == id && q.flags & flag::DISABLED == 0 => Ok((q, kind)),
            _ => Err(unknown()),
        }
    }

    fn category(&self, id: u32) -> String {
        let class = class_of(id);
        match self.query(class | 1) {
            Ok(q) if q.type_ == TYPE_CTRL_CLASS => name_of(&q),
            _ => default_class_name(class),
        }
    }

    fn one(&self, id: u32) -> Result<Control, ControlError> {
        let (q, kind) = self.lookup(id)?;
        let category = self.category(id);
        self.control(&q, kind, category)
    }

    fn set_checked(&self, c: &Control, raw: &Raw) -> Result<(), ControlError> {
        self.set(c.id, raw).map_err(|e| match e.raw_os_error() {
            Some(libc::EACCES) => ControlError::ReadOnly(format!("{} is read-only (the driver says)", c.name)),
            Some(libc::EINVAL) | Some(libc::ERANGE) => ControlError::Invalid(format!(
                "{}: the driver refused {}: {e} (allowed: {})",
                c.name,
                match raw {
                    Raw::I32(v) => v.to_string(),
                    Raw::I64(v) => v.to_string(),
                    Raw::Str(s) => format!("{s:?}"),
                },
                c.allowed()
            )),
            Some(libc::EBUSY) => ControlError::Busy(format!("{} is busy now (in use by the driver): {e}", c.name)),
            _ => io_err(&self.path, &format!("setting {}", c.name), e),
        })
    }
}

/// Every control of `device`.
pub fn list(device: &Path) -> Result<Vec<Control>, ControlError> {
    Dev::open(device)?.list()
}

/// One control of `device`, with its current value.
pub fn get(device: &Path, id: u32) -> Result<Control, ControlError> {
    Dev::open(device)?.one(id)
}

/// Validates `value` for control `id` and sets it; returns the control as read back.
pub fn set(device: &Path, id: u32, value: &Input) -> Result<Control, ControlError> {
    let dev = Dev::open(device)?;
    let c = dev.one(id)?;
    if c.flags & flag::GRABBED != 0 && !c.read_only() {
        return Err(ControlError::Busy(format!("{} is grabbed by the driver now (e.g. while streaming)", c.name)));
    }
    let raw = validate(&c, value)?;
    dev.set_checked(&c, &raw)?;
    dev.one(id)
}

/// Sets control `id` back to its default; returns the control as read back.
pub fn reset(device: &Path, id: u32) -> Result<Control, ControlError> {
    let dev = Dev::open(device)?;
    let (q, kind) = dev.lookup(id)?;
    let c = dev.control(&q, kind, dev.category(id))?;
    if c.read_only() {
        return Err(ControlError::ReadOnly(format!("{} is read-only", c.name)));
    }
    let raw = match kind {
        Kind::Button => return Err(ControlError::Invalid(format!("{}: a button has no value to reset", c.name))),
        Kind::Compound(_) => {
            return Err(ControlError::Invalid(format!("{}: a {} control cannot be set from blackbox", c.name, kind.name())));
        }
        Kind::String => match dev.get(&q, kind, WHICH_DEF_VAL) {
            Ok(Some(Value::Text(s))) => Raw::Str(s),
            Ok(_) => return Err(ControlError::Invalid(format!("{}: the driver gives no default", c.name))),
            Err(e) => return Err(io_err(&dev.path, "VIDIOC_G_EXT_CTRLS (default)", e)),
        },
        Kind::Integer64 => Raw::I64(c.default),
        _ => Raw::I32(c.default as i32),
    };
    if c.flags & flag::GRABBED != 0 {
        return Err(ControlError::Busy(format!("{} is grabbed by the driver now (e.g. while streaming)", c.name)));
    }
    dev.set_checked(&c, &raw)?;
    dev.one(id)
}

/// The controls of one device with a [`CACHE_TTL`] cache of the list. Lives on the web thread.
pub struct DeviceControls {
    device: PathBuf,
    cache: Option<(Instant, Vec<Control>)>,
}

impl DeviceControls {
    pub fn new(device: PathBuf) -> DeviceControls {
        DeviceControls { device, cache: None }
    }

    pub fn device(&self) -> &Path {
        &self.device
    }

    /// The list, from the cache when it is younger than [`CACHE_TTL`].
    pub fn list(&mut self) -> Result<&[Control], ControlError> {
        let fresh = matches!(&self.cache, Some((at, _)) if at.elapsed() < CACHE_TTL);
        if !fresh {
            self.cache = None;
            let l = list(&self.device)?;
            self.cache = Some((Instant::now(), l));
        }
        Ok(self.cache.as_ref().map_or(&[][..], |(_, l)| l.as_slice()))
    }

    pub fn set(&mut self, id: u32, value: &Input) -> Result<Control, ControlError> {
        self.cache = None;
        set(&self.device, id, value)
    }

    pub fn reset(&mut self, id: u32) -> Result<Control, ControlError> {
        self.cache = None;
        reset(&self.device, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl(kind: Kind, min: i64, max: i64, step: u64) -> Control {
        Control {
            id: 0x0098_0900,
            name: "Brightness".into(),
            category: "User Controls".into(),
            kind,
            min,
            max,
            step,
            default: min,
            value: None,
            menu: Vec::new(),
            flags: 0,
        }
    }

    fn msg(r: Result<Raw, ControlError>) -> String {
        match r {
            Err(ControlError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn an_integer_in_range_and_on_step_is_sent_as_value() {
        let c = ctl(Kind::Integer, 0, 255, 1);
        assert_eq!(validate(&c, &Input::Int(0)), Ok(Raw::I32(0)));
        assert_eq!(validate(&c, &Input::Int(255)), Ok(Raw::I32(255)));
        assert_eq!(validate(&c, &Input::Int(128)), Ok(Raw::I32(128)));
        let neg = ctl(Kind::Integer, -128, 128, 1);
        assert_eq!(validate(&neg, &Input::Int(-128)), Ok(Raw::I32(-128)));
    }

    #[test]
    fn an_integer_out_of_range_is_refused_naming_the_range() {
        let c = ctl(Kind::Integer, 0, 255, 1);
        assert_eq!(msg(validate(&c, &Input::Int(300))), "Brightness: 300 is out of range 0..=255 (step 1)");
        assert_eq!(msg(validate(&c, &Input::Int(-1))), "Brightness: -1 is out of range 0..=255 (step 1)");
        let big = ctl(Kind::Integer64, i64::MIN, i64::MAX, 1);
        assert_eq!(validate(&big, &Input::Int(i64::MIN)), Ok(Raw::I64(i64::MIN)));
        assert_eq!(validate(&big, &Input::Int(i64::MAX)), Ok(Raw::I64(i64::MAX)));
    }

    #[test]
    fn an_off_step_integer_is_refused_with_its_neighbours() {
        let c = ctl(Kind::Integer, 0, 255, 2);
        let m = msg(validate(&c, &Input::Int(5)));
        assert!(m.contains("5 is off-step") && m.contains("0..=255 (step 2)") && m.contains("4 or 6"), "{m}");
        assert_eq!(validate(&c, &Input::Int(6)), Ok(Raw::I32(6)));
        // The step counts from the minimum, not from zero.
        let odd = ctl(Kind::Integer, 1, 9, 4);
        assert_eq!(validate(&odd, &Input::Int(5)), Ok(Raw::I32(5)));
        let m = msg(validate(&odd, &Input::Int(8)));
        assert!(m.contains("allows 5 or 9 nearby"), "{m}");
        // Near the top only the value below is offered.
        let m = msg(validate(&ctl(Kind::Integer, 0, 5, 4), &Input::Int(5)));
        assert!(m.contains("allows 4 nearby"), "{m}");
        // Step 0 from a careless driver counts as 1, and i64 extremes do not overflow.
        assert_eq!(validate(&ctl(Kind::Integer, 0, 10, 0), &Input::Int(7)), Ok(Raw::I32(7)));
        // 2^64 - 1 is a multiple of 3: i64::MAX is on-step from i64::MIN, i64::MAX - 1 is not.
        let wide = ctl(Kind::Integer64, i64::MIN, i64::MAX, 3);
        assert_eq!(validate(&wide, &Input::Int(i64::MAX)), Ok(Raw::I64(i64::MAX)));
        let m = msg(validate(&wide, &Input::Int(i64::MAX - 1)));
        assert!(m.contains(&format!("allows {} or {} nearby", i64::MAX - 3, i64::MAX)), "{m}");
    }

    #[test]
    fn wrong_types_are_refused_with_what_is_expected() {
        let c = ctl(Kind::Integer, 0, 255, 1);
        assert_eq!(
            msg(validate(&c, &Input::Bool(true))),
            "Brightness: expects an integer in 0..=255 (step 1), got true"
        );
        assert!(msg(validate(&c, &Input::OtherNumber("1.5".into()))).ends_with("got 1.5"));
        assert!(msg(validate(&c, &Input::Text("7".into()))).ends_with("got \"7\""));
        let b = ctl(Kind::Boolean, 0, 1, 1);
        assert_eq!(validate(&b, &Input::Bool(false)), Ok(Raw::I32(0)));
        assert_eq!(validate(&b, &Input::Bool(true)), Ok(Raw::I32(1)));
        assert_eq!(msg(validate(&b, &Input::Int(1))), "Brightness: expects true or false, got 1");
        let button = ctl(Kind::Button, 0, 0, 0);
        assert_eq!(validate(&button, &Input::Bool(true)), Ok(Raw::I32(1)));
        assert!(validate(&button, &Input::Int(1)).is_err());
        assert!(validate(&button, &Input::Bool(false)).is_err());
        let compound = ctl(Kind::Compound(0x0100), 0, 255, 1);
        assert!(msg(validate(&compound, &Input::Int(1))).contains("a u8 control cannot be set"));
    }

    #[test]
    fn a_menu_takes_only_the_indices_the_driver_lists() {
        let mut c = ctl(Kind::Menu, 1, 4, 1);
        c.name = "Menu".into();
        for (i, n) in [(1, "Menu Item 1"), (3, "Menu Item 3"), (4, "Menu Item 4")] {
            c.menu.push(MenuItem { index: i, name: n.into(), value: None });
        }
        assert_eq!(validate(&c, &Input::Int(3)), Ok(Raw::I32(3)));
        // Index 2 is inside min..=max but the driver skips it.
        assert_eq!(
            msg(validate(&c, &Input::Int(2))),
            "Menu: 2 is not one of the menu indices 1 (Menu Item 1), 3 (Menu Item 3), 4 (Menu Item 4)"
        );
        assert!(validate(&c, &Input::Int(0)).is_err());
        assert!(validate(&c, &Input::Int(5)).is_err());
        assert!(validate(&c, &Input::Int(i64::MAX)).is_err());
        assert!(msg(validate(&c, &Input::Text("Menu Item 3".into()))).contains("expects a menu index"));
        let mut im = ctl(Kind::IntegerMenu, 0, 1, 1);
        im.menu.push(MenuItem { index: 0, name: "42".into(), value: Some(42) });
        assert_eq!(validate(&im, &Input::Int(0)), Ok(Raw::I32(0)));
        // An integer menu is set by index, not by the item's value.
        assert!(validate(&im, &Input::Int(42)).is_err());
    }

    #[test]
    fn a_bitmask_takes_only_bits_inside_its_mask() {
        let c = ctl(Kind::Bitmask, 0, 0x8000_ffff, 0);
        assert_eq!(validate(&c, &Input::Int(0x8000_0001)), Ok(Raw::I32(0x8000_0001u32 as i32)));
        assert!(msg(validate(&c, &Input::Int(0x1_0000))).contains("bits outside the mask"));
        assert!(validate(&c, &Input::Int(-1)).is_err());
        assert!(validate(&c, &Input::Int(1 << 32)).is_err());
    }

    #[test]
    fn a_string_must_fit_its_length_limits() {
        let c = ctl(Kind::String, 2, 4, 1);
        assert_eq!(validate(&c, &Input::Text("abc".into())), Ok(Raw::Str("abc".into())));
        assert!(msg(validate(&c, &Input::Text("a".into()))).contains("expects a string of 2..=4 bytes"));
        assert!(validate(&c, &Input::Text("abcde".into())).is_err());
        assert!(validate(&c, &Input::Text("a\0b".into())).is_err());
        assert!(validate(&c, &Input::Int(12)).is_err());
    }

    #[test]
    fn read_only_and_disabled_controls_are_refused() {
        let mut c = ctl(Kind::Integer, 0, 255, 1);
        c.flags = flag::READ_ONLY;
        assert_eq!(validate(&c, &Input::Int(1)), Err(ControlError::ReadOnly("Brightness is read-only".into())));
        c.flags = flag::DISABLED;
        assert!(validate(&c, &Input::Int(1)).is_err());
        // Inactive controls may be set (the value applies once they become active).
        c.flags = flag::INACTIVE;
        assert_eq!(validate(&c, &Input::Int(1)), Ok(Raw::I32(1)));
    }

    #[test]
    fn kinds_map_from_the_kernel_types() {
        assert_eq!(Kind::from_raw(1), Some(Kind::Integer));
        assert_eq!(Kind::from_raw(6), None);
        assert_eq!(Kind::from_raw(9).map(Kind::name), Some("integer_menu"));
        assert_eq!(Kind::from_raw(0x0102).map(Kind::name), Some("u32"));
        assert_eq!(Kind::from_raw(0x0250).map(Kind::name), Some("compound"));
    }

    #[test]
    fn a_missing_device_is_gone_not_a_panic() {
        let e = list(Path::new("/nonexistent/video9")).unwrap_err();
        assert!(matches!(e, ControlError::Gone(_)), "{e:?}");
        assert!(matches!(set(Path::new("/nonexistent/video9"), 1, &Input::Int(1)), Err(ControlError::Gone(_))));
    }

    #[test]
    fn a_file_that_is_not_a_device_gives_an_error() {
        // A regular file answers the ioctls with ENOTTY: an error, not a panic or a hang.
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(matches!(list(f.path()), Err(ControlError::Io(_))));
        assert!(matches!(get(f.path(), 0x0098_0900), Err(ControlError::Io(_))));
        // Ids with the walk flags or zero never reach the driver.
        let d = Dev::open(f.path()).unwrap();
        assert!(matches!(d.lookup(0x8098_0900), Err(ControlError::UnknownId { .. })));
        assert!(matches!(d.lookup(0), Err(ControlError::UnknownId { .. })));
    }
}
