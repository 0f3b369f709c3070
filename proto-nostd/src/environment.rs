//! A script's environment as one borrowed block of `NAME=value\0` entries.
//!
//! This is the shape `execve` wants, it moves without copying, and it has no limit on the number
//! of variables but the frame's size. The block is validated when it is decoded, so iterating it
//! never fails.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;

/// A validated environment block: zero or more `NAME=value` entries, each ended by a NUL byte,
/// where `NAME` is not empty and contains no `=`, and nothing contains a NUL.
#[derive(Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Environment<'a>(&'a str);

impl<'a> Environment<'a> {
    /// Checks that `block` is a well-formed environment block.
    pub fn new(block: &'a str) -> Result<Environment<'a>, Error> {
        let well_formed = (block.is_empty() || block.ends_with('\0'))
            && block
                .split_terminator('\0')
                .all(|entry| matches!(entry.split_once('='), Some((name, _)) if !name.is_empty()));
        if well_formed {
            Ok(Environment(block))
        } else {
            Err(Error::InvalidEnvironment)
        }
    }

    /// The variables, in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0
            .split_terminator('\0')
            .filter_map(|entry| entry.split_once('='))
    }

    /// The block as it is on the wire.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Environment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Environment<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let block = <&'de str>::deserialize(deserializer)?;
        Environment::new(block).map_err(serde::de::Error::custom)
    }
}

/// Builds an [`Environment`] in a caller's buffer.
#[derive(Debug)]
pub struct EnvironmentBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> EnvironmentBuilder<'b> {
    /// A builder writing into `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        EnvironmentBuilder { buf, len: 0 }
    }

    /// Adds a variable. Fails with [`Error::InvalidEnvironment`] for an empty name, a name with
    /// `=`, or a NUL anywhere, and with [`Error::BufferTooSmall`] when the buffer is full; either
    /// way the builder is unchanged.
    pub fn push(&mut self, name: &str, value: &str) -> Result<(), Error> {
        if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
            return Err(Error::InvalidEnvironment);
        }
        let entry = [name.as_bytes(), b"=", value.as_bytes(), b"\0"];
        let entry_len: usize = entry.iter().map(|part| part.len()).sum();
        let mut dest = self
            .buf
            .get_mut(self.len..self.len + entry_len)
            .ok_or(Error::BufferTooSmall)?;
        for part in entry {
            let (head, tail) = dest.split_at_mut(part.len());
            head.copy_from_slice(part);
            dest = tail;
        }
        self.len += entry_len;
        Ok(())
    }

    /// The environment built so far.
    pub fn finish(self) -> Environment<'b> {
        let filled = self.buf.get(..self.len).unwrap_or_default();
        // Only whole `str`s and ASCII separators were written, so this is valid UTF-8.
        Environment(core::str::from_utf8(filled).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_iterates() {
        let mut buf = [0u8; 64];
        let mut builder = EnvironmentBuilder::new(&mut buf);
        builder.push("A", "1").unwrap();
        builder.push("B", "x=y").unwrap();
        builder.push("EMPTY", "").unwrap();
        let env = builder.finish();
        assert_eq!(env.as_str(), "A=1\0B=x=y\0EMPTY=\0");
        let vars: [(&str, &str); 3] = [("A", "1"), ("B", "x=y"), ("EMPTY", "")];
        assert!(env.iter().eq(vars));
    }

    #[test]
    fn refuses_bad_names_values_and_blocks() {
        let mut buf = [0u8; 8];
        let mut builder = EnvironmentBuilder::new(&mut buf);
        assert_eq!(builder.push("", "v"), Err(Error::InvalidEnvironment));
        assert_eq!(builder.push("A=B", "v"), Err(Error::InvalidEnvironment));
        assert_eq!(builder.push("A", "v\0"), Err(Error::InvalidEnvironment));
        assert_eq!(builder.push("LONG", "value"), Err(Error::BufferTooSmall));
        assert!(builder.finish().is_empty());
        for bad in ["A=1", "=1\0", "NOEQUALS\0", "A=1\0\0"] {
            assert_eq!(
                Environment::new(bad),
                Err(Error::InvalidEnvironment),
                "{bad:?}"
            );
        }
        assert!(Environment::new("").is_ok());
    }
}
