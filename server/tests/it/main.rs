//! The server's integration tests, linked into one test binary (`cargo test -p otto-server
//! --test it`); each module is one subject, and a name filter picks a subject's tests:
//! `cargo test -p otto-server --test it qemu::`.

// Helpers outside #[test] functions may unwrap and index too: a failing test stops there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod both_ways;
mod browser;
mod callhome;
mod changes;
mod cli;
mod client;
mod completions;
mod config;
mod deadlines;
mod defaults;
mod demo;
mod deploy;
mod dry_run;
mod enroll;
mod exit_codes;
mod files;
mod fleet;
mod http;
mod http_admin;
mod http_enrollment;
mod http_hosts;
mod http_resources;
mod http_runs;
mod import;
mod input;
mod interrupt;
mod jsonl;
mod manual;
mod names;
mod packages;
mod postgres;
mod progress;
mod qemu;
mod qemu_system;
mod remote;
mod remote_commands;
mod rolling;
mod schedules;
mod secrets;
mod selectors;
mod templates;
mod times;
mod updates;
mod users;
mod versions;
mod web;
mod webhooks;

mod emulated;
mod fake_agent;
mod harness;
