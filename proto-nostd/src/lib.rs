//! The Otto protocol: frame codec and message types, `no_std` and allocation-free.
//!
//! With the feature `alloc` (off by default) it also has owned forms of protocol values: `Facts`,
//! the owned [`HostFacts`]; and the `FrameWriter`, the one way both sides turn frames into the
//! owned `Bytes` an SSH channel takes.
//!
//! A frame is a 12-byte [`Header`] (three big-endian `u32`: protocol version, message type, body
//! length), a [postcard](https://docs.rs/postcard)-encoded body, and — for the messages that
//! move bulk bytes, [`RunScript`], [`UploadFile`], [`UpdateAgent`] and [`FileHeader`] —
//! *additional data* whose length the body declares. The additional data is raw bytes, never
//! buffered by the codec: the [`Decoder`] hands it to the receiver in chunks as they arrive, so
//! a script or a file of any size moves through a fixed amount of memory. A [`FrameReader`] is the decoder with its loop: it yields the items of
//! each chunk that arrives, one at a time.
//!
//! ```
//! use otto_proto::{encode, ActionRef, Decoder, Item, Message};
//!
//! let mut wire = [0u8; 64];
//! let n = encode(&Message::Keepalive(ActionRef { action: 7 }), &mut wire).unwrap();
//!
//! let mut decoder = Decoder::<1024>::new();
//! let mut input = &wire[..n];
//! while !input.is_empty() {
//!     let decoded = decoder.decode(input).unwrap();
//!     if let Some(Item::Frame(message)) = decoded.item {
//!         assert_eq!(message, Message::Keepalive(ActionRef { action: 7 }));
//!     }
//!     input = &input[decoded.consumed..];
//! }
//! ```
//!
//! The wire format is pinned by golden vectors (`tests/vectors/*.hex`) and described in
//! `proto-nostd/README.md`. Nothing in this crate panics or allocates on any input.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod control;
mod decoder;
pub mod ed25519;
mod encoder;
mod environment;
mod error;
#[cfg(feature = "alloc")]
mod facts;
mod header;
mod message;
pub mod profile;
mod reader;
mod source;
#[cfg(feature = "alloc")]
mod writer;

pub use control::Control;
pub use decoder::{Decoded, Decoder, Item, decode_frame};
pub use encoder::{encode, encode_to_vec};
pub use environment::{Environment, EnvironmentBuilder};
pub use error::Error;
#[cfg(feature = "alloc")]
pub use facts::Facts;
pub use header::{HEADER_LEN, Header};
pub use message::{
    ActionId, ActionOutput, ActionRef, ActionResult, CancelAction, Credentials, EnrollRequest,
    EnrollResponse, FetchFile, FileHeader, FileInfo, FileStat, GeneralFailure, HeartbeatRequest,
    HeartbeatResponse, HostFacts, Message, MessageType, Outcome, RotateIdentityRequest,
    RotateIdentityResponse, RunScript, ScriptTimeout, StatFile, Stream, UpdateAgent, UploadDigest,
    UploadFile, UploadStream,
};
pub use reader::FrameReader;
pub use source::Source;
#[cfg(feature = "alloc")]
pub use writer::FrameWriter;

/// The newest protocol version this crate speaks. Each frame carries the version that brought
/// its message ([`MessageType::since`]): a message of version 7 goes as version 7 still, so an
/// agent of version 7 understands every conversation it knows (the heartbeat, `UpdateAgent`:
/// a fleet updates itself past a new version) and refuses only what it cannot answer. Frames
/// of a version outside [`OLDEST_VERSION`]`..=PROTOCOL_VERSION`, or with a message newer than
/// their version, are refused with [`Error::UnsupportedVersion`] and
/// [`Error::UnknownMessageType`].
///
/// The Go Otto speaks version 5 with `gob` bodies; this protocol (postcard bodies, action ids,
/// streamed additional data) is not wire-compatible with it, so it has its own number. Version 7
/// added `UpdateAgent` and the board's model, byte order and flash space to the host facts;
/// version 8 added `StatFile`/`FileStat` and `FetchFile`/`FileHeader` (files read back from the
/// agent); version 9 added `UploadStream`/`UploadDigest` (an upload whose checksum follows its
/// data, so the server need not read a file twice).
pub const PROTOCOL_VERSION: u32 = 9;

/// The oldest protocol version spoken: that of the messages before version 8.
pub const OLDEST_VERSION: u32 = 7;

/// What precedes the version text in an agent binary: `\0otto-agent-version:` then the version
/// (as its heartbeats report it) then `\0`. The server reads a binary's version from it without
/// running the binary (it is for another CPU).
pub const AGENT_VERSION_TAG: &str = "\0otto-agent-version:";

/// The TCP port an agent listens on unless its configuration says otherwise, and the port the
/// server dials when a host is added without one.
pub const DEFAULT_PORT: u16 = 12444;
/// The port a server listens on for agents that call home (and enroll).
pub const CALL_HOME_PORT: u16 = 12445;

/// The body size every receiver must accept: senders keep each frame's body at or below it
/// (an [`ActionOutput`] chunk carries at most [`MAX_OUTPUT_CHUNK`] bytes of output to fit).
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// The most output bytes one [`ActionOutput`] frame carries.
pub const MAX_OUTPUT_CHUNK: usize = 8 * 1024;

/// The most channels an agent accepts on one SSH connection over its whole life (it must
/// remember each until the connection ends); the server goes on with a new connection before
/// it has asked for more.
pub const MAX_CHANNELS_PER_CONNECTION: usize = 512;

/// The SSH subsystem of the one channel of an enrolling connection: the agent, serving SSH on a
/// connection it dialled, sends an [`EnrollRequest`] on it and reads an [`EnrollResponse`].
pub const ENROLL_SUBSYSTEM: &str = "otto-enroll";
