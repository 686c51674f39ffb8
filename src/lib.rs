#![recursion_limit = "256"]
//! blackbox: a crash-safe dash-cam recorder.
//!
//! Data flows one way: `camera` → `recorder` → `store` (and `live` for viewers).
//! `config`, `clock` and `logger` serve everyone; `cli` is the command line on top.

pub mod alerts;
pub mod alloc_count;
pub mod audio;
pub mod base64;
pub mod camera;
pub mod cameras;
pub mod cli;
pub mod clock;
pub mod codec;
pub mod config;
pub mod json_str;
pub mod control;
pub mod events;
pub mod export;
pub mod gps;
pub mod gsensor;
pub mod live;
pub mod offload;
pub mod parking;
pub mod logger;
pub mod perms;
pub mod recorder;
pub mod status;
pub mod store;
pub mod supervisor;
pub mod watchdog;
pub mod web;
