//! The servers sharing the store: a row each, or on SQLite a line saying there is one.

use std::io::Write;

use super::Printer;
use super::units::utc;
use crate::ops::ServerEntry;
use crate::sanitize;

impl<W: Write + Send + 'static> Printer<W> {
    /// The servers sharing the store, a row each: its name (`(this)` for the one that
    /// answered), lease id, start, whether its lease is live and until when (or when it ended),
    /// and how many hosts it owns. None (SQLite) is said in a line; as JSON, `[]`.
    pub fn servers(&self, servers: &[ServerEntry]) {
        if servers.is_empty() && !self.json {
            return self.say("one server (SQLite): this data directory's, owning every host");
        }
        self.list(
            servers,
            &["name", "lease id", "started", "lease", "hosts"],
            |s| {
                let l = &s.lease;
                let name = sanitize::field(&l.name, 60);
                vec![
                    if s.this {
                        format!("{name} (this)")
                    } else {
                        name
                    },
                    l.id.clone(),
                    self.time(l.started),
                    if l.live {
                        format!("live until {}", utc(l.expires))
                    } else {
                        format!("ended {}", utc(l.expires))
                    },
                    l.hosts.to_string(),
                ]
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::printed;
    use super::*;
    use crate::model::ServerLease;

    fn entry(name: &str, live: bool, hosts: u64, this: bool) -> ServerEntry {
        ServerEntry {
            lease: ServerLease {
                id: format!("id-{name}"),
                name: name.into(),
                started: 1_764_000_000_000,
                expires: 1_764_000_030_000,
                live,
                hosts,
            },
            this,
        }
    }

    #[test]
    fn servers_are_a_row_each_and_none_is_one_sqlite_server() {
        let p = Printer::new(false, Vec::new());
        p.servers(&[entry("a:1", true, 3, true), entry("b:2", false, 0, false)]);
        let text = printed(&p);
        assert!(text.contains("a:1 (this)"), "{text}");
        assert!(text.contains("live until 2025-11-24T16:00:30Z"), "{text}");
        assert!(text.contains("ended 2025-11-24T16:00:30Z"), "{text}");
        assert!(text.contains("id-b:2"), "{text}");
        let p = Printer::new(false, Vec::new());
        p.servers(&[]);
        assert!(
            printed(&p).starts_with("one server (SQLite)"),
            "{}",
            printed(&p)
        );
        let p = Printer::new(true, Vec::new());
        p.servers(&[]);
        assert_eq!(printed(&p), "[]\n");
        let p = Printer::new(true, Vec::new());
        p.servers(&[entry("a:1", true, 3, true)]);
        let json: serde_json::Value = serde_json::from_str(&printed(&p)).unwrap();
        assert_eq!(json[0]["hosts"], 3);
        assert_eq!(json[0]["this"], true);
        assert_eq!(json[0]["expires"], "2025-11-24T16:00:30.000Z");
    }
}
