//! The environment a script runs with, assembled with the original Otto's precedence (later
//! wins): built-ins, global, script, each of the host's groups (by name), the host. Also the
//! redaction of secret values from anything shown to a person.

use crate::model::{EnvVar, Host, Scope};

/// The assembled environment, in a stable order, and the values that must never be shown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assembled {
    /// NAME, value pairs, each name once.
    pub vars: Vec<(String, String)>,
    /// The secret values among them.
    pub secrets: Vec<String>,
}

/// Assembles the environment for a run of `script` (None for an ad-hoc command) on `host`,
/// from every stored variable `all`.
pub fn assemble(all: &[EnvVar], script: Option<&str>, host: &Host) -> Assembled {
    let mut out = Assembled::default();
    let mut set = |name: &str, value: &str, secret: bool| {
        match out.vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => out.vars.push((name.to_string(), value.to_string())),
        }
        if secret && !value.is_empty() && !out.secrets.iter().any(|s| s == value) {
            out.secrets.push(value.to_string());
        }
    };
    set("OTTO_SERVER_VERSION", env!("CARGO_PKG_VERSION"), false);
    set("OTTO_HOST_NAME", &host.name, false);
    set("OTTO_HOST_ADDRESS", &host.address, false);
    set("OTTO_HOST_PORT", &host.port.to_string(), false);
    for layer in layers(script, host) {
        for var in all.iter().filter(|v| v.scope == layer) {
            set(&var.name, &var.value.value, var.value.secret);
        }
    }
    out
}

/// The scopes whose variables a run of `script` (None for an ad-hoc command) on `host` gets,
/// the later winning: global, the script's, each of the host's groups, the host's.
pub fn layers<'a>(script: Option<&str>, host: &'a Host) -> impl Iterator<Item = Scope> + 'a {
    std::iter::once(Scope::Global)
        .chain(script.map(|s| Scope::Script(s.to_string())))
        .chain(host.groups.iter().map(|g| Scope::Group(g.clone())))
        .chain(std::iter::once(Scope::Host(host.name.clone())))
}

/// What a secret, or a run of secrets that overlap or touch, is replaced with.
pub const MASK: &str = "********";

/// `text` with every secret value replaced by [`MASK`]: every occurrence of every secret,
/// however they overlap (so a secret that contains a shorter one is hidden whole), each run
/// of covered bytes once.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut redactor = Redactor::new(secrets);
    let mut out = redactor.push(text.as_bytes());
    out.extend(redactor.finish());
    // Each mask replaces whole secrets, which begin and end at characters of `text`, so the
    // bytes are UTF-8: nothing is replaced here.
    String::from_utf8_lossy(&out).into_owned()
}

/// Redacts a stream of output that arrives in chunks, so that a secret split across chunks
/// is found all the same: each byte covered by an occurrence of a secret (occurrences may
/// overlap) is hidden, each run of covered bytes replaced by one [`MASK`]. It holds back only
/// what may be the start of a secret (the longest end of what it was given that begins one:
/// at most the longest secret − 1 bytes), until the next chunk or the end, and passes the
/// rest on at once. It works on bytes, so chunks may end anywhere, even inside a UTF-8
/// character, and what it passes on is the stream redacted as a whole would be, whatever
/// the chunks. Each byte is looked at once per secret.
pub struct Redactor {
    secrets: Vec<Secret>,
    /// The bytes not passed on yet.
    held: Vec<u8>,
    /// The runs of covered bytes in `held` (from its start), in order, those that overlap or
    /// touch made one.
    spans: Vec<(usize, usize)>,
    /// Whether the last byte passed on was covered (its mask written).
    masking: bool,
}

/// A secret searched for as the stream goes (Knuth–Morris–Pratt).
struct Secret {
    bytes: Vec<u8>,
    /// For each length `k` of a prefix matched, the length of its longest proper prefix that
    /// is also a suffix of it (where the search goes on after a mismatch).
    fallback: Vec<usize>,
    /// How many of its first bytes the stream ends with.
    matched: usize,
}

impl Secret {
    fn new(bytes: &[u8]) -> Secret {
        let mut fallback = vec![0; bytes.len() + 1];
        let mut k = 0;
        for (i, &b) in bytes.iter().enumerate().skip(1) {
            while k > 0 && bytes.get(k) != Some(&b) {
                k = fallback.get(k).copied().unwrap_or(0);
            }
            if bytes.get(k) == Some(&b) {
                k += 1;
            }
            if let Some(slot) = fallback.get_mut(i + 1) {
                *slot = k;
            }
        }
        Secret {
            bytes: bytes.to_vec(),
            fallback,
            matched: 0,
        }
    }

    /// Takes the next byte of the stream; whether it ends an occurrence.
    fn step(&mut self, b: u8) -> bool {
        if self.matched == self.bytes.len() {
            self.matched = self.fallback.get(self.matched).copied().unwrap_or(0);
        }
        while self.matched > 0 && self.bytes.get(self.matched) != Some(&b) {
            self.matched = self.fallback.get(self.matched).copied().unwrap_or(0);
        }
        if self.bytes.get(self.matched) == Some(&b) {
            self.matched += 1;
        }
        self.matched == self.bytes.len()
    }

    /// How many bytes at the end of the stream may begin an occurrence still to come.
    fn pending(&self) -> usize {
        if self.matched == self.bytes.len() {
            self.fallback.get(self.matched).copied().unwrap_or(0)
        } else {
            self.matched
        }
    }
}

impl Redactor {
    /// A redactor of `secrets` (empty ones are ignored).
    pub fn new(secrets: &[String]) -> Redactor {
        Redactor {
            secrets: secrets
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| Secret::new(s.as_bytes()))
                .collect(),
            held: Vec::new(),
            spans: Vec::new(),
            masking: false,
        }
    }

    /// Adds a chunk; returns what can be passed on, redacted.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        for &b in chunk {
            self.held.push(b);
            let end = self.held.len();
            for secret in &mut self.secrets {
                if secret.step(b) {
                    cover(&mut self.spans, end - secret.bytes.len(), end);
                }
            }
        }
        let pending = self.secrets.iter().map(Secret::pending).max().unwrap_or(0);
        self.pass(self.held.len().saturating_sub(pending))
    }

    /// The end of the stream: what was held back, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        let out = self.pass(self.held.len());
        for secret in &mut self.secrets {
            secret.matched = 0;
        }
        self.masking = false;
        out
    }

    /// Passes on the first `release` bytes held, redacted: no occurrence still to come can
    /// cover them.
    fn pass(&mut self, release: usize) -> Vec<u8> {
        if release == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(release);
        let mut at = 0;
        let mut masking = false;
        let mut kept = Vec::new();
        for &(start, end) in &self.spans {
            if start >= release {
                kept.push((start - release, end - release));
                continue;
            }
            out.extend_from_slice(self.held.get(at..start).unwrap_or_default());
            if !(start == 0 && self.masking) {
                out.extend_from_slice(MASK.as_bytes());
            }
            at = end.min(release);
            masking = end >= release;
            if end > release {
                kept.push((0, end - release));
            }
        }
        out.extend_from_slice(self.held.get(at..release).unwrap_or_default());
        self.held.drain(..release);
        self.spans = kept;
        self.masking = masking;
        out
    }
}

/// Adds the occurrence `start..end` to `spans`, whose runs all end at or before `end`.
fn cover(spans: &mut Vec<(usize, usize)>, mut start: usize, end: usize) {
    while let Some(&(s, e)) = spans.last() {
        if e < start {
            break;
        }
        start = start.min(s);
        spans.pop();
    }
    spans.push((start, end));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Secretish;

    fn var(scope: Scope, name: &str, value: &str, secret: bool) -> EnvVar {
        EnvVar {
            scope,
            name: name.into(),
            value: Secretish {
                value: value.into(),
                secret,
            },
        }
    }

    fn host() -> Host {
        Host::example("r1", "10.0.0.1", 12444, &["a", "b"])
    }

    fn get<'a>(a: &'a Assembled, name: &str) -> Option<&'a str> {
        a.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn later_layers_win() {
        let all = [
            var(Scope::Host("r1".into()), "X", "host", false),
            var(Scope::Group("b".into()), "X", "group b", false),
            var(Scope::Group("a".into()), "X", "group a", false),
            var(Scope::Script("s".into()), "X", "script", false),
            var(Scope::Global, "X", "global", false),
            var(Scope::Global, "OTTO_HOST_PORT", "overridden", false),
            var(Scope::Script("s".into()), "Y", "script", false),
            var(Scope::Group("a".into()), "Y", "group a", false),
            var(Scope::Group("b".into()), "Z", "group b", false),
            var(Scope::Script("other".into()), "Z", "other script", false),
            var(Scope::Host("r2".into()), "Z", "other host", false),
            var(Scope::Group("c".into()), "Z", "other group", false),
        ];
        let env = assemble(&all, Some("s"), &host());
        assert_eq!(get(&env, "X"), Some("host"));
        assert_eq!(get(&env, "Y"), Some("group a"));
        assert_eq!(get(&env, "Z"), Some("group b"));
        assert_eq!(get(&env, "OTTO_HOST_PORT"), Some("overridden"));
        assert_eq!(get(&env, "OTTO_HOST_ADDRESS"), Some("10.0.0.1"));
        let ad_hoc = assemble(&all, None, &host());
        assert_eq!(get(&ad_hoc, "Y"), Some("group a"));
    }

    #[test]
    fn secrets_are_collected_and_redacted() {
        let all = [
            var(Scope::Global, "TOKEN", "s3cr3t-value", true),
            var(Scope::Global, "EMPTY", "", true),
        ];
        let env = assemble(&all, None, &host());
        assert_eq!(env.secrets, ["s3cr3t-value"]);
        assert_eq!(
            redact("token=s3cr3t-value; again s3cr3t-value", &env.secrets),
            "token=********; again ********"
        );
    }

    #[test]
    fn a_secret_that_contains_another_is_hidden_whole() {
        // Issue 21: `HOST_TOKEN=********-host` showed the end of the longer secret.
        let secrets = [
            "S3cr3t-VALUE-zq81x".to_string(),
            "S3cr3t-VALUE-zq81x-host".into(),
        ];
        let env = "API_TOKEN=S3cr3t-VALUE-zq81x\nHOST_TOKEN=S3cr3t-VALUE-zq81x-host\n";
        let shown = "API_TOKEN=********\nHOST_TOKEN=********\n";
        assert_eq!(redact(env, &secrets), shown);
        let reversed: Vec<String> = secrets.iter().rev().cloned().collect();
        assert_eq!(redact(env, &reversed), shown);
    }

    #[test]
    fn overlapping_secrets_and_occurrences_are_hidden_as_one() {
        let secrets = ["abcd".to_string(), "cdef".into(), "xyx".into()];
        // Two secrets that overlap, and a secret overlapping itself, each one mask.
        assert_eq!(redact("1abcdef2", &secrets), "1********2");
        assert_eq!(redact("1xyxyx2", &secrets), "1********2");
        // Secrets side by side are one run.
        assert_eq!(redact("abcdxyx", &secrets), "********");
        assert_eq!(redact("abcd-xyx", &secrets), "********-********");
    }

    #[test]
    fn a_secret_split_across_chunks_is_found_and_little_is_held() {
        let secrets = ["s3cr3t-value".to_string(), "é-ü".into()];
        let text = "a s3cr3t-value, é-ü and s3cr3t-valu".as_bytes();
        for at in 0..=text.len() {
            let (first, second) = text.split_at(at);
            let mut r = Redactor::new(&secrets);
            let mut out = r.push(first);
            assert!(r.held.len() < 12, "held {} bytes", r.held.len());
            out.extend(r.push(second));
            out.extend(r.finish());
            assert_eq!(out, b"a ********, ******** and s3cr3t-valu", "cut at {at}");
        }
    }

    #[test]
    fn only_what_may_begin_a_secret_is_held_back() {
        // A line is shown as it comes, not once a secret's length more has come.
        let mut r = Redactor::new(&["s3cr3t-value".to_string()]);
        assert_eq!(r.push(b"sleeping\n"), b"sleeping\n");
        assert_eq!(r.push(b"token: s3c"), b"token: ");
        assert_eq!(r.push(b"r"), b"");
        assert_eq!(r.push(b"ap"), b"s3crap");
        assert_eq!(r.push(b"s3cr3t-value!"), b"********!");
        assert_eq!(r.push(b"s3cr3t"), b"");
        assert_eq!(r.finish(), b"s3cr3t");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Text over a few letters, so that secrets occur, overlap and nearly occur often.
        fn text(max: usize) -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![Just("a"), Just("b"), Just("é"), Just("\n")],
                0..max,
            )
            .prop_map(|parts| parts.concat())
        }

        fn secrets() -> impl Strategy<Value = Vec<String>> {
            proptest::collection::vec(text(6), 0..4)
        }

        /// `input` cut at `cuts` (taken modulo its length) and redacted chunk by chunk; the most
        /// bytes held back after a chunk.
        fn chunked(secrets: &[String], input: &[u8], cuts: &[usize]) -> (Vec<u8>, usize) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            points.sort_unstable();
            let mut r = Redactor::new(secrets);
            let (mut out, mut held, mut from) = (Vec::new(), 0, 0);
            for to in points.into_iter().chain([input.len()]) {
                out.extend(r.push(&input[from..to]));
                held = held.max(r.held.len());
                from = to;
            }
            out.extend(r.finish());
            (out, held)
        }

        fn contains(haystack: &[u8], needle: &[u8]) -> bool {
            haystack.windows(needle.len()).any(|w| w == needle)
        }

        proptest! {
            #[test]
            fn no_secret_is_shown_whatever_the_chunks(
                secrets in secrets(),
                input in text(60),
                cuts in proptest::collection::vec(any::<usize>(), 0..6),
            ) {
                let (out, held) = chunked(&secrets, input.as_bytes(), &cuts);
                for s in secrets.iter().filter(|s| !s.is_empty()) {
                    prop_assert!(!contains(&out, s.as_bytes()), "{s:?} in {:?}", String::from_utf8_lossy(&out));
                }
                let longest = secrets.iter().map(String::len).max().unwrap_or(0);
                prop_assert!(held <= longest.saturating_sub(1), "held {held}");
            }

            #[test]
            fn chunked_output_is_the_whole_output(
                secrets in secrets(),
                input in text(60),
                cuts in proptest::collection::vec(any::<usize>(), 0..6),
            ) {
                let (out, _) = chunked(&secrets, input.as_bytes(), &cuts);
                prop_assert_eq!(String::from_utf8(out).unwrap(), redact(&input, &secrets));
            }

            #[test]
            fn text_without_a_secret_is_unchanged(
                secrets in secrets(),
                input in text(60),
                cuts in proptest::collection::vec(any::<usize>(), 0..6),
            ) {
                // Each secret ends with a letter the text never has: the text holds their
                // beginnings, never one whole.
                let secrets: Vec<String> = secrets.iter().map(|s| format!("{s}c")).collect();
                let (out, _) = chunked(&secrets, input.as_bytes(), &cuts);
                prop_assert_eq!(out, input.as_bytes());
            }
        }
    }
}
