//! cardpbx daemon library: media engine, call control, configuration, control socket.
#![deny(unsafe_code)]
pub mod audiofile;
pub mod bench;
pub mod bench_pri;
pub mod callcenter;
pub mod config;
pub mod ctl;
pub mod demo;
pub mod dspcli;
pub mod engine;
pub mod faxcli;
pub mod faxsvc;
#[doc(hidden)]
pub mod fuzzing;
pub mod pbx;
pub mod pri;
pub mod runner;
pub mod service;
pub mod store;
pub mod whatif;

/// The serde name of a unit enum value (`fxs_loop_start`), for status output.
pub fn json_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
