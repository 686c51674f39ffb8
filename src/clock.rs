//! Clocks and UTC time text. See docs/FORMAT.md ("Assumptions"): UTC may be wrong and jump;
//! the monotonic clock orders events within one boot.
//!
//! STUB: to be implemented (see the config/clock/logger task).

/// Nanoseconds since the Unix epoch, from CLOCK_REALTIME.
pub fn now_utc_ns() -> i64 {
    todo!()
}

/// Nanoseconds from CLOCK_MONOTONIC.
pub fn now_mono_ns() -> u64 {
    todo!()
}
