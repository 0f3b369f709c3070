//! The fixed 12-byte frame header.
//!
//! ```text
//! 0        4        8        12
//! +--------+--------+--------+------------------+--------------------
//! | version|  type  | length | body (length B)  | additional data…
//! +--------+--------+--------+------------------+--------------------
//! ```
//! All three fields are big-endian `u32`.

/// Length of the frame header in bytes.
pub const HEADER_LEN: usize = 12;

/// A frame header as it is on the wire, before any field is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version of the sender.
    pub version: u32,
    /// Message type number (see [`MessageType`](crate::MessageType)).
    pub message_type: u32,
    /// Length of the body that follows the header.
    pub body_len: u32,
}

impl Header {
    /// Reads a header from its 12 bytes. Every bit pattern is a header; validation is the
    /// decoder's job.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Header {
        let [v0, v1, v2, v3, t0, t1, t2, t3, l0, l1, l2, l3] = *bytes;
        Header {
            version: u32::from_be_bytes([v0, v1, v2, v3]),
            message_type: u32::from_be_bytes([t0, t1, t2, t3]),
            body_len: u32::from_be_bytes([l0, l1, l2, l3]),
        }
    }

    /// Writes the header's 12 bytes.
    pub fn emit(&self) -> [u8; HEADER_LEN] {
        let [v0, v1, v2, v3] = self.version.to_be_bytes();
        let [t0, t1, t2, t3] = self.message_type.to_be_bytes();
        let [l0, l1, l2, l3] = self.body_len.to_be_bytes();
        [v0, v1, v2, v3, t0, t1, t2, t3, l0, l1, l2, l3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_big_endian() {
        let h = Header {
            version: 0x0102_0304,
            message_type: 0x0506_0708,
            body_len: 0x090a_0b0c,
        };
        assert_eq!(h.emit(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(Header::parse(&h.emit()), h);
    }
}
