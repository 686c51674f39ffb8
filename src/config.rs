//! Configuration: a flat JSON object, parsed with serde-json-core into fixed-size fields.
//!
//! STUB: to be implemented (see the config/clock/logger task).
