//! A `log` backend that writes one line per event to stderr.
//!
//! STUB: to be implemented (see the config/clock/logger task).
