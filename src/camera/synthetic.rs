//! The built-in test-pattern camera.
//!
//! STUB: to be implemented (see the cameras task).
