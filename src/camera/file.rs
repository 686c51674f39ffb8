//! `file:PATH`: replays a concatenated-JPEG stream.
//!
//! STUB: to be implemented (see the cameras task).
