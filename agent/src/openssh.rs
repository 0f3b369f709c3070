//! OpenSSH's text forms of an Ed25519 key, and only those: the public key line
//! (`ssh-ed25519 AAAA… comment`) and the unencrypted private key file
//! (`-----BEGIN OPENSSH PRIVATE KEY-----`, the `openssh-key-v1` format of OpenSSH's PROTOCOL.key).
//!
//! Written here rather than taken from `ssh-key`'s generic parsers, which handle every
//! algorithm, cipher and key derivation and cost the agent about 20 KiB; what the agent reads and
//! writes is this one shape, byte for byte the same as `ssh-keygen -t ed25519 -N ''` makes.
//! Pure functions: no IO, no randomness (the caller gives the check number).

use std::fmt;

use base64ct::{Base64, Encoding};

/// The algorithm name, in the key line and inside every blob.
const ED25519: &str = "ssh-ed25519";
/// The private key file's first line.
const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
/// The private key file's last line.
const END: &str = "-----END OPENSSH PRIVATE KEY-----";
/// The binary private key's leading bytes.
const MAGIC: &[u8] = b"openssh-key-v1\0";
/// Base64 characters per line in the private key file, as OpenSSH writes it.
const LINE: usize = 70;
/// The private section is padded to this block size (the "none" cipher's).
const BLOCK: usize = 8;

/// Why a text is not an OpenSSH Ed25519 key the agent can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The text does not have the format's structure; says which part is wrong.
    Malformed(&'static str),
    /// A well-formed key of another algorithm (its name as the key gives it).
    Algorithm(String),
    /// A private key protected with a passphrase: the agent starts unattended and cannot ask.
    Encrypted,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Malformed(what) => write!(f, "not an OpenSSH key: {what}"),
            FormatError::Algorithm(name) => write!(f, "an Ed25519 key is required, not {name}"),
            FormatError::Encrypted => f.write_str("the key is encrypted with a passphrase"),
        }
    }
}

impl std::error::Error for FormatError {}

/// The public key line, `ssh-ed25519 AAAA…` (no comment).
pub fn public_line(public: &[u8; 32]) -> String {
    format!("{ED25519} {}", Base64::encode_string(&public_blob(public)))
}

/// The raw public key of a key line (`ssh-ed25519 AAAA… [comment]`). The name before the
/// base64 must agree with the one inside it.
pub fn parse_public_line(text: &str) -> Result<[u8; 32], FormatError> {
    let mut words = text.split_whitespace();
    let (Some(name), Some(data)) = (words.next(), words.next()) else {
        return Err(FormatError::Malformed(
            "expected an algorithm name and base64 data",
        ));
    };
    let blob = Base64::decode_vec(data)
        .map_err(|_| FormatError::Malformed("the key data is not base64"))?;
    let public = read_public_blob(&blob)?;
    if name != ED25519 {
        return Err(FormatError::Malformed(
            "the name does not match the key data",
        ));
    }
    Ok(public)
}

/// The private key file for the key pair (`seed`, `public`), unencrypted, with an empty comment.
/// `check` is the format's random check number (it only detects a wrong passphrase).
pub fn private_file(seed: &[u8; 32], public: &[u8; 32], check: u32) -> String {
    let mut private = Vec::with_capacity(160);
    put_u32(&mut private, check);
    put_u32(&mut private, check);
    put_string(&mut private, ED25519.as_bytes());
    put_string(&mut private, public);
    let mut pair = [0u8; 64];
    let (first, second) = pair.split_at_mut(32);
    first.copy_from_slice(seed);
    second.copy_from_slice(public);
    put_string(&mut private, &pair);
    put_string(&mut private, b"");
    let mut pad = 1u8;
    while private.len() % BLOCK != 0 {
        private.push(pad);
        pad += 1;
    }

    let mut binary = Vec::with_capacity(256);
    binary.extend_from_slice(MAGIC);
    put_string(&mut binary, b"none");
    put_string(&mut binary, b"none");
    put_string(&mut binary, b"");
    put_u32(&mut binary, 1);
    put_string(&mut binary, &public_blob(public));
    put_string(&mut binary, &private);

    let encoded = Base64::encode_string(&binary);
    let mut text = String::with_capacity(encoded.len() + encoded.len() / LINE + 80);
    text.push_str(BEGIN);
    text.push('\n');
    for line in encoded.as_bytes().chunks(LINE) {
        // Base64 is ASCII, so every chunk is whole characters.
        text.push_str(std::str::from_utf8(line).unwrap_or_default());
        text.push('\n');
    }
    text.push_str(END);
    text.push('\n');
    text
}

/// The key pair in a private key file: `(seed, public)`. Checks everything the format lets one
/// check; whether the public key belongs to the seed is the caller's to verify.
pub fn parse_private_file(text: &str) -> Result<([u8; 32], [u8; 32]), FormatError> {
    let text = text.trim();
    let body = text
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or(FormatError::Malformed(
            "no OPENSSH PRIVATE KEY armour lines",
        ))?;
    let encoded: String = body.split_whitespace().collect();
    let binary = Base64::decode_vec(&encoded)
        .map_err(|_| FormatError::Malformed("the key data is not base64"))?;

    let mut outer = Reader(&binary);
    if outer.bytes(MAGIC.len())? != MAGIC {
        return Err(FormatError::Malformed("not the openssh-key-v1 format"));
    }
    let cipher = outer.string()?;
    let kdf = outer.string()?;
    outer.string()?; // the key derivation's options
    if cipher != b"none" || kdf != b"none" {
        return Err(FormatError::Encrypted);
    }
    if outer.u32()? != 1 {
        return Err(FormatError::Malformed("the file must hold exactly one key"));
    }
    let public = read_public_blob(outer.string()?)?;
    let mut private = Reader(outer.string()?);
    outer.end()?;

    if private.u32()? != private.u32()? {
        return Err(FormatError::Malformed("the check numbers differ"));
    }
    let name = private.string()?;
    if name != ED25519.as_bytes() {
        return Err(FormatError::Algorithm(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    let inner_public = private.key32()?;
    let pair = private.string()?;
    private.string()?; // the comment
    let (Some(seed), Some(pair_public)) = (pair.get(..32), pair.get(32..)) else {
        return Err(FormatError::Malformed("the private key is not 64 bytes"));
    };
    if inner_public != public || pair_public != public || pair.len() != 64 {
        return Err(FormatError::Malformed(
            "the public key is not the same throughout",
        ));
    }
    let padding = private.0;
    if padding.len() >= BLOCK || !padding.iter().zip(1u8..).all(|(&b, n)| b == n) {
        return Err(FormatError::Malformed("wrong padding"));
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(seed);
    Ok((out, public))
}

/// The SSH wire form of the public key: `string "ssh-ed25519", string key`.
fn public_blob(public: &[u8; 32]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(51);
    put_string(&mut blob, ED25519.as_bytes());
    put_string(&mut blob, public);
    blob
}

/// The raw key of a public key blob; another algorithm's blob is named in the error.
fn read_public_blob(blob: &[u8]) -> Result<[u8; 32], FormatError> {
    let mut reader = Reader(blob);
    let name = reader.string()?;
    if name != ED25519.as_bytes() {
        return Err(FormatError::Algorithm(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    let key = reader.key32()?;
    reader.end()?;
    Ok(key)
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    // Every string written here is a few dozen bytes.
    put_u32(out, u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(bytes);
}

/// Reads SSH wire values from the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    const SHORT: FormatError = FormatError::Malformed("the key data ends too soon");

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(Self::SHORT)?;
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let mut n = [0u8; 4];
        n.copy_from_slice(self.bytes(4)?);
        Ok(u32::from_be_bytes(n))
    }

    fn string(&mut self) -> Result<&'a [u8], FormatError> {
        let len = usize::try_from(self.u32()?).map_err(|_| Self::SHORT)?;
        self.bytes(len)
    }

    fn key32(&mut self) -> Result<[u8; 32], FormatError> {
        let bytes = self.string()?;
        let mut key = [0u8; 32];
        if bytes.len() != key.len() {
            return Err(FormatError::Malformed("the public key is not 32 bytes"));
        }
        key.copy_from_slice(bytes);
        Ok(key)
    }

    fn end(&self) -> Result<(), FormatError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FormatError::Malformed("unexpected bytes after the key"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use russh::keys::ssh_key::LineEnding;
    use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
    use russh::keys::{PrivateKey, PublicKey};

    const SEED: [u8; 32] = [7; 32];

    fn pair() -> ([u8; 32], [u8; 32]) {
        let public = ed25519_dalek::SigningKey::from_bytes(&SEED)
            .verifying_key()
            .to_bytes();
        (SEED, public)
    }

    #[test]
    fn a_private_file_round_trips_and_is_what_ssh_key_reads() {
        let (seed, public) = pair();
        let text = private_file(&seed, &public, 0x1234_5678);
        assert_eq!(parse_private_file(&text).unwrap(), (seed, public));
        assert!(text.lines().all(|l| l.len() <= LINE));
        // The reference implementation reads it as the same key pair.
        let key = PrivateKey::from_openssh(&text).unwrap();
        let KeypairData::Ed25519(theirs) = key.key_data() else {
            panic!("not ed25519")
        };
        assert_eq!(theirs.private.to_bytes(), seed);
        assert_eq!(theirs.public.0, public);
        // And writes it byte for byte the same (same check number, empty comment).
        let again = parse_private_file(&key.to_openssh(LineEnding::LF).unwrap()).unwrap();
        assert_eq!(again, (seed, public));
    }

    #[test]
    fn files_written_by_ssh_key_are_read() {
        let keypair = Ed25519Keypair::from_seed(&[9; 32]);
        let key = PrivateKey::from(keypair.clone());
        let text = key.to_openssh(LineEnding::LF).unwrap();
        assert_eq!(
            parse_private_file(&text).unwrap(),
            (keypair.private.to_bytes(), keypair.public.0)
        );
    }

    #[test]
    fn public_lines_round_trip_and_match_ssh_key() {
        let (_, public) = pair();
        let line = public_line(&public);
        let theirs = PublicKey::from(russh::keys::ssh_key::public::Ed25519PublicKey(public));
        assert_eq!(line, theirs.to_openssh().unwrap());
        assert_eq!(parse_public_line(&line).unwrap(), public);
        assert_eq!(
            parse_public_line(&format!("  {line} ops@laptop \n")).unwrap(),
            public
        );
    }

    #[test]
    fn bad_public_lines_are_refused_with_the_reason() {
        let (_, public) = pair();
        let line = public_line(&public);
        let data = line.split_once(' ').unwrap().1;
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7";
        for (text, want) in [
            (
                "",
                FormatError::Malformed("expected an algorithm name and base64 data"),
            ),
            (
                "ssh-ed25519",
                FormatError::Malformed("expected an algorithm name and base64 data"),
            ),
            (
                "ssh-ed25519 !!!!",
                FormatError::Malformed("the key data is not base64"),
            ),
            (
                &format!("ssh-rsa {data}"),
                FormatError::Malformed("the name does not match the key data"),
            ),
            (rsa, FormatError::Algorithm("ssh-rsa".into())),
        ] {
            assert_eq!(parse_public_line(text).unwrap_err(), want, "{text:?}");
        }
        // A blob cut short, or with bytes after the key.
        let mut blob = public_blob(&public);
        let short = Base64::encode_string(&blob[..blob.len() - 1]);
        assert_eq!(
            parse_public_line(&format!("ssh-ed25519 {short}")).unwrap_err(),
            FormatError::Malformed("the key data ends too soon")
        );
        blob.push(0);
        let long = Base64::encode_string(&blob);
        assert_eq!(
            parse_public_line(&format!("ssh-ed25519 {long}")).unwrap_err(),
            FormatError::Malformed("unexpected bytes after the key")
        );
    }

    /// The private file's binary form, rebuilt with one part changed.
    fn binary_of(text: &str) -> Vec<u8> {
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        Base64::decode_vec(&body).unwrap()
    }

    fn armour(binary: &[u8]) -> String {
        format!("{BEGIN}\n{}\n{END}\n", Base64::encode_string(binary))
    }

    #[test]
    fn bad_private_files_are_refused_with_the_reason() {
        let (seed, public) = pair();
        let good = private_file(&seed, &public, 1);
        let binary = binary_of(&good);
        let replace = |from: &[u8], to: &[u8]| {
            let at = binary.windows(from.len()).position(|w| w == from).unwrap();
            let mut b = binary.clone();
            b.splice(at..at + from.len(), to.iter().copied());
            armour(&b)
        };
        let encrypted = replace(
            b"\0\0\0\x04none\0\0\0\x04none",
            b"\0\0\0\x0aaes256-ctr\0\0\0\x06bcrypt",
        );
        let other_check = {
            let mut b = binary.clone();
            // The second check number sits right after the private section's length.
            let at = MAGIC.len() + 8 + 8 + 4 + 4 + 4 + 51 + 4 + 4;
            b[at] ^= 1;
            armour(&b)
        };
        let truncated = armour(&binary[..binary.len() - 9]);
        let trailing = armour(&[binary.clone(), vec![0]].concat());
        for (text, want) in [
            (
                "",
                FormatError::Malformed("no OPENSSH PRIVATE KEY armour lines"),
            ),
            (
                "ssh-ed25519 AAAA",
                FormatError::Malformed("no OPENSSH PRIVATE KEY armour lines"),
            ),
            (
                &format!("{BEGIN}\n***\n{END}"),
                FormatError::Malformed("the key data is not base64"),
            ),
            (
                &armour(b"openssh-key-v2\0"),
                FormatError::Malformed("not the openssh-key-v1 format"),
            ),
            (&encrypted, FormatError::Encrypted),
            (
                &other_check,
                FormatError::Malformed("the check numbers differ"),
            ),
            (
                &truncated,
                FormatError::Malformed("the key data ends too soon"),
            ),
            (
                &trailing,
                FormatError::Malformed("unexpected bytes after the key"),
            ),
        ] {
            assert_eq!(parse_private_file(text).unwrap_err(), want, "{text:?}");
        }
        // A key of another algorithm is named.
        let rsa = replace(
            b"\0\0\0\x0bssh-ed25519\0\0\0\x20",
            b"\0\0\0\x07ssh-rsa\0\0\0\x20",
        );
        assert_eq!(
            parse_private_file(&rsa).unwrap_err(),
            FormatError::Algorithm("ssh-rsa".into())
        );
    }

    #[test]
    fn no_input_makes_the_parsers_panic() {
        let (seed, public) = pair();
        let binary = binary_of(&private_file(&seed, &public, 3));
        // Every prefix and every single-byte change of a good key.
        for n in 0..binary.len() {
            let _ = parse_private_file(&armour(&binary[..n]));
            let mut b = binary.clone();
            b[n] = b[n].wrapping_add(0x80);
            let _ = parse_private_file(&armour(&b));
        }
        for text in ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA/////w==", "a b c d"] {
            let _ = parse_public_line(text);
        }
    }
}
