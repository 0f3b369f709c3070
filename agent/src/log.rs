//! A minimal logger: one line per event on stderr. Under a service manager (stderr not a
//! terminal) each line starts with a syslog priority, `<3>` … `<7>`, which systemd's journal and
//! OpenWrt's logd both understand; on a terminal it reads `error: …`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, Ordering};

/// How much to log, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error = 0,
    /// Something was refused or looks wrong.
    Warn = 1,
    /// What the agent did.
    Info = 2,
    /// Details for debugging.
    Debug = 3,
}

impl Level {
    /// Parses `error`, `warn`, `info` or `debug`.
    pub fn parse(text: &str) -> Option<Level> {
        match text {
            "error" => Some(Level::Error),
            "warn" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    fn syslog_priority(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug => 7,
        }
    }
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the most detailed level that is written.
pub fn set_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether `level` is written.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Writes one line; use the `error!`, `warn!`, `info!` and `debug!` macros.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    let stderr = std::io::stderr();
    let mut out = stderr.lock();
    // A failed write to stderr has nowhere to be reported.
    let _ = if stderr.is_terminal() {
        writeln!(out, "{}: {args}", level.name())
    } else {
        writeln!(out, "<{}>{args}", level.syslog_priority())
    };
}

/// Logs at a level, formatting only when the level is enabled.
macro_rules! log {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::write($level, format_args!($($arg)*));
        }
    };
}
pub(crate) use log;

macro_rules! error { ($($arg:tt)*) => { $crate::log::log!($crate::log::Level::Error, $($arg)*) }; }
macro_rules! warning { ($($arg:tt)*) => { $crate::log::log!($crate::log::Level::Warn, $($arg)*) }; }
macro_rules! info { ($($arg:tt)*) => { $crate::log::log!($crate::log::Level::Info, $($arg)*) }; }
macro_rules! debug { ($($arg:tt)*) => { $crate::log::log!($crate::log::Level::Debug, $($arg)*) }; }
pub(crate) use {debug, error, info, warning};
