//! Which 32-byte Ed25519 public keys either side accepts (a server key given to the agent, an
//! agent key the server pins or gets from a rotation): only canonical encodings of points that
//! are not of small order. A pure check of the bytes, without curve arithmetic: whether the
//! point is on the curve at all is left to the signature library that decodes it.
//!
//! An encoding is the point's y (the low 255 bits, little-endian) and the sign of its x (the top
//! bit). It is canonical when y < p = 2^255 − 19 and, for the two points whose x is 0 (y = 1 and
//! y = p − 1), the sign bit is clear: otherwise several byte strings name one point, and a key
//! would have several fingerprints. The eight points of small order (y = 0, 1, p − 1 and the two
//! y of the points of order 8, either sign) are refused too: anyone can sign for them.

use core::fmt;

/// Why 32 bytes are refused as an Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncodingError {
    /// Not the canonical encoding of a point (y ≥ p, or x = 0 with the sign bit set).
    NotCanonical,
    /// A point of small order (a weak key, such as all zeros).
    SmallOrder,
}

impl fmt::Display for KeyEncodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyEncodingError::NotCanonical => {
                "not a valid Ed25519 public key (not a canonical encoding)"
            }
            KeyEncodingError::SmallOrder => {
                "not a usable Ed25519 public key (a point of small order)"
            }
        })
    }
}

impl core::error::Error for KeyEncodingError {}

/// p = 2^255 − 19, little-endian.
const P: [u8; 32] = {
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// y = 1: the identity (order 1).
const ONE: [u8; 32] = {
    let mut one = [0; 32];
    one[0] = 1;
    one
};

/// y = p − 1: the point of order 2.
const P_MINUS_ONE: [u8; 32] = {
    let mut y = P;
    y[0] = 0xec;
    y
};

/// The y of two of the points of order 8; the other two have p minus this.
const ORDER_8: [u8; 32] = [
    0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
    0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
];

/// p minus [`ORDER_8`]: the y of the other two points of order 8.
const ORDER_8_NEG: [u8; 32] = [
    0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
    0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
];

/// Checks that `key` is the canonical encoding of a point not of small order (module docs).
pub fn check_public_key(key: &[u8; 32]) -> Result<(), KeyEncodingError> {
    let mut y = *key;
    let mut negative = false;
    if let Some(top) = y.last_mut() {
        negative = *top & 0x80 != 0;
        *top &= 0x7f;
    }
    // Little-endian: compare from the most significant byte.
    if y.iter().rev().cmp(P.iter().rev()).is_ge() {
        return Err(KeyEncodingError::NotCanonical);
    }
    if negative && (y == ONE || y == P_MINUS_ONE) {
        return Err(KeyEncodingError::NotCanonical);
    }
    if y == [0; 32] || y == ONE || y == P_MINUS_ONE || y == ORDER_8 || y == ORDER_8_NEG {
        return Err(KeyEncodingError::SmallOrder);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `y` with the sign bit set.
    fn negated(mut y: [u8; 32]) -> [u8; 32] {
        y[31] |= 0x80;
        y
    }

    #[test]
    fn y_at_or_above_p_is_refused_with_either_sign() {
        let mut two_255_minus_1 = [0xff; 32];
        two_255_minus_1[31] = 0x7f;
        let mut p_plus_one = P;
        p_plus_one[0] = 0xee;
        for y in [P, p_plus_one, two_255_minus_1] {
            assert_eq!(check_public_key(&y), Err(KeyEncodingError::NotCanonical));
            assert_eq!(
                check_public_key(&negated(y)),
                Err(KeyEncodingError::NotCanonical)
            );
        }
        // 32 × 0xFF: y = 2^255 − 1 with the sign bit.
        assert_eq!(
            check_public_key(&[0xff; 32]),
            Err(KeyEncodingError::NotCanonical)
        );
    }

    #[test]
    fn y_below_p_is_canonical_but_p_minus_1_is_of_small_order() {
        let mut p_minus_2 = P;
        p_minus_2[0] = 0xeb;
        assert_eq!(check_public_key(&p_minus_2), Ok(()));
        assert_eq!(check_public_key(&negated(p_minus_2)), Ok(()));
        assert_eq!(
            check_public_key(&P_MINUS_ONE),
            Err(KeyEncodingError::SmallOrder)
        );
        // x = 0 has no negative form.
        assert_eq!(
            check_public_key(&negated(P_MINUS_ONE)),
            Err(KeyEncodingError::NotCanonical)
        );
        assert_eq!(
            check_public_key(&negated(ONE)),
            Err(KeyEncodingError::NotCanonical)
        );
    }

    #[test]
    fn the_points_of_small_order_are_refused() {
        for y in [[0; 32], ONE, P_MINUS_ONE, ORDER_8, ORDER_8_NEG] {
            assert_eq!(check_public_key(&y), Err(KeyEncodingError::SmallOrder));
        }
        for y in [[0; 32], ORDER_8, ORDER_8_NEG] {
            assert_eq!(
                check_public_key(&negated(y)),
                Err(KeyEncodingError::SmallOrder)
            );
        }
    }

    /// The list is ed25519-dalek's: each is a point of small order there (and there are
    /// exactly eight, all listed: the four y with x = 0 or not, either sign where x is not 0).
    #[test]
    fn the_small_order_points_are_those_of_ed25519_dalek() {
        for y in [[0; 32], ORDER_8, ORDER_8_NEG] {
            for key in [y, negated(y)] {
                let point = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
                assert!(point.is_weak(), "{key:02x?}");
            }
        }
        for key in [ONE, P_MINUS_ONE] {
            assert!(
                ed25519_dalek::VerifyingKey::from_bytes(&key)
                    .unwrap()
                    .is_weak()
            );
        }
    }

    #[test]
    fn the_order_8_values_sum_to_p() {
        let mut carry = 0u16;
        let mut sum = [0u8; 32];
        for ((s, a), b) in sum.iter_mut().zip(ORDER_8).zip(ORDER_8_NEG) {
            let t = u16::from(a) + u16::from(b) + carry;
            *s = t as u8;
            carry = t >> 8;
        }
        assert_eq!((sum, carry), (P, 0));
    }

    #[test]
    fn ordinary_keys_pass() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        assert_eq!(check_public_key(key.as_bytes()), Ok(()));
        // The Ed25519 base point (RFC 8032) and a key of the test vectors.
        let mut base = [0x66; 32];
        base[0] = 0x58;
        assert_eq!(check_public_key(&base), Ok(()));
        let rfc8032_1 = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        assert_eq!(check_public_key(&rfc8032_1), Ok(()));
    }
}
