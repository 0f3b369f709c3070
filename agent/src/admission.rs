//! Which connections may hold a slot: the bookkeeping behind the SSH server's accept loop,
//! without any IO (the caller closes the sockets this names).
//!
//! Connections that have not authenticated yet are counted apart from authenticated ones, in all
//! and per source (an IPv4 address, or an IPv6 /64). The pool is never closed to a newcomer: when
//! it is full, the newcomer takes the place of an older unauthenticated connection, so sockets
//! held open in silence cannot keep the server from getting a banner (OpenSSH's MaxStartups drops
//! the newcomer instead, which lets such sockets lock the server out until LoginGraceTime). The
//! connection dropped is, when the newcomer's source is at its own limit, that source's oldest;
//! otherwise the oldest of the source holding the most. The source that authenticated last (the
//! server's) is never dropped to make room for another source: once the server has logged in
//! from an address, attackers elsewhere, however many addresses they have, only displace each
//! other. An attacker sharing the server's address (behind the same NAT, on the same host) can
//! still hold no slot for long, but by opening connections faster than the server finishes its
//! handshake it can displace the server's; the server tries again, and that is the limit of what
//! an agent can tell apart before authentication.

use std::net::SocketAddr;

use otto_proto::Source;

/// How many connections of each kind may be open at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections not authenticated yet, from all sources.
    pub unauthenticated: usize,
    /// Connections not authenticated yet, from one source.
    pub per_source: usize,
    /// Authenticated connections.
    pub authenticated: usize,
}

/// The agent's limits: a few connections for the server's processes, and room for a handful of
/// handshakes at once.
pub const LIMITS: Limits = Limits {
    unauthenticated: 16,
    per_source: 4,
    authenticated: 8,
};

/// An open connection.
#[derive(Debug)]
struct Entry<T> {
    id: u64,
    peer: SocketAddr,
    source: Source,
    authenticated: bool,
    /// The caller's handle on the connection (the agent: its socket).
    handle: T,
}

/// The open connections, oldest first.
#[derive(Debug)]
pub struct Admissions<T> {
    limits: Limits,
    entries: Vec<Entry<T>>,
    next_id: u64,
    /// The source of the last connection that authenticated.
    trusted: Option<Source>,
}

/// A connection dropped to make room: its address and handle.
pub type Displaced<T> = (SocketAddr, T);

impl<T: Copy> Admissions<T> {
    /// No connections yet.
    pub fn new(limits: Limits) -> Admissions<T> {
        Admissions {
            limits,
            entries: Vec::new(),
            next_id: 0,
            trusted: None,
        }
    }

    /// Admits a new connection from `peer`; returns its id, and the unauthenticated connection
    /// it displaces, if the pool was full (already forgotten: the caller closes it).
    pub fn admit(&mut self, peer: SocketAddr, handle: T) -> (u64, Option<Displaced<T>>) {
        let source = Source::of(peer.ip());
        let displaced = self.victim(source).map(|index| {
            let entry = self.entries.remove(index);
            (entry.peer, entry.handle)
        });
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push(Entry {
            id,
            peer,
            source,
            authenticated: false,
            handle,
        });
        (id, displaced)
    }

    /// The index of the connection to drop before a newcomer from `source` is admitted.
    fn victim(&self, source: Source) -> Option<usize> {
        let waiting = |e: &Entry<T>| !e.authenticated;
        let from = |s: Source| {
            self.entries
                .iter()
                .filter(move |e| waiting(e) && e.source == s)
        };
        if from(source).count() >= self.limits.per_source {
            return self
                .entries
                .iter()
                .position(|e| waiting(e) && e.source == source);
        }
        if self.entries.iter().filter(|e| waiting(e)).count() < self.limits.unauthenticated {
            return None;
        }
        // Spare the trusted source, unless the limits let one source fill the whole pool.
        let spare = self
            .entries
            .iter()
            .any(|e| waiting(e) && Some(e.source) != self.trusted);
        let candidates = |e: &Entry<T>| waiting(e) && !(spare && Some(e.source) == self.trusted);
        let mut best: Option<(usize, usize)> = None;
        for (index, entry) in self.entries.iter().enumerate() {
            if !candidates(entry) {
                continue;
            }
            let held = from(entry.source).count();
            if best.is_none_or(|(_, most)| held > most) {
                best = Some((index, held));
            }
        }
        best.map(|(index, _)| index)
    }

    /// Marks `id` authenticated; None if `id` is no longer open. At the limit of authenticated
    /// connections, the oldest authenticated one makes room and is returned (already forgotten:
    /// the caller closes it): every authenticated peer holds the server's key, and the newest
    /// is the one surely alive, while an old one may be half-open after a network cut or a
    /// killed server and would otherwise keep the server out until keepalives notice.
    pub fn authenticate(&mut self, id: u64) -> Option<Option<Displaced<T>>> {
        let index = self.entries.iter().position(|e| e.id == id)?;
        let entry = self.entries.get_mut(index)?;
        if entry.authenticated {
            return Some(None);
        }
        entry.authenticated = true;
        self.trusted = Some(entry.source);
        let authenticated = self.entries.iter().filter(|e| e.authenticated).count();
        if authenticated <= self.limits.authenticated {
            return Some(None);
        }
        let oldest = self
            .entries
            .iter()
            .position(|e| e.authenticated && e.id != id)?;
        let entry = self.entries.remove(oldest);
        Some(Some((entry.peer, entry.handle)))
    }

    /// Forgets `id` if it has not authenticated, returning its handle to close.
    pub fn expire(&mut self, id: u64) -> Option<T> {
        let index = self
            .entries
            .iter()
            .position(|e| e.id == id && !e.authenticated)?;
        Some(self.entries.remove(index).handle)
    }

    /// Forgets `id` (it closed).
    pub fn remove(&mut self, id: u64) {
        self.entries.retain(|e| e.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limits = Limits {
        unauthenticated: 4,
        per_source: 2,
        authenticated: 2,
    };

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    /// Admits a connection whose handle is its number, returning the displaced one's handle.
    fn admit(a: &mut Admissions<u32>, ip: &str, handle: u32) -> (u64, Option<u32>) {
        let (id, displaced) = a.admit(peer(ip), handle);
        (id, displaced.map(|(_, h)| h))
    }

    #[test]
    fn sources_group_ipv6_by_64_and_unmap_ipv4() {
        let s = |ip: &str| Source::of(ip.parse().unwrap());
        assert_eq!(s("2001:db8:1:2:aaaa::1"), s("2001:db8:1:2:bbbb::2"));
        assert_ne!(s("2001:db8:1:2::1"), s("2001:db8:1:3::1"));
        assert_eq!(s("::ffff:10.0.0.1"), s("10.0.0.1"));
        assert_ne!(s("10.0.0.1"), s("10.0.0.2"));
    }

    #[test]
    fn a_source_at_its_limit_displaces_its_own_oldest() {
        let mut a = Admissions::new(SMALL);
        assert_eq!(admit(&mut a, "10.0.0.1", 1).1, None);
        assert_eq!(admit(&mut a, "10.0.0.1", 2).1, None);
        assert_eq!(admit(&mut a, "10.0.0.2", 3).1, None);
        assert_eq!(admit(&mut a, "10.0.0.1", 4).1, Some(1));
        assert_eq!(admit(&mut a, "10.0.0.1", 5).1, Some(2));
    }

    #[test]
    fn a_full_pool_displaces_the_oldest_of_the_biggest_holder() {
        let mut a = Admissions::new(SMALL);
        admit(&mut a, "10.0.0.1", 1);
        admit(&mut a, "10.0.0.2", 2);
        admit(&mut a, "10.0.0.2", 3);
        admit(&mut a, "10.0.0.3", 4);
        assert_eq!(admit(&mut a, "10.0.0.4", 5).1, Some(2));
        // Now every source holds one: the oldest goes.
        assert_eq!(admit(&mut a, "10.0.0.5", 6).1, Some(1));
    }

    #[test]
    fn the_trusted_source_is_not_displaced_by_others() {
        let mut a = Admissions::new(SMALL);
        let (server, _) = admit(&mut a, "10.0.0.9", 1);
        assert_eq!(a.authenticate(server), Some(None));
        a.remove(server);
        // The server's new connection is the oldest, and every source holds one.
        admit(&mut a, "10.0.0.9", 2);
        for (n, ip) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].into_iter().enumerate() {
            admit(&mut a, ip, 3 + n as u32);
        }
        for n in 0..20 {
            let (_, displaced) = admit(&mut a, &format!("10.1.0.{n}"), 10 + n);
            assert_ne!(displaced, Some(2), "the server's connection was displaced");
            assert!(displaced.is_some());
        }
        // Its own source still displaces its oldest.
        admit(&mut a, "10.0.0.9", 50);
        assert_eq!(admit(&mut a, "10.0.0.9", 51).1, Some(2));
    }

    #[test]
    fn authenticated_connections_are_bounded_by_displacing_the_oldest() {
        let mut a = Admissions::new(SMALL);
        // From three sources: a source's own limit (2) must not displace them first.
        let ids: Vec<u64> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .into_iter()
            .zip(0..)
            .map(|(ip, n)| admit(&mut a, ip, n).0)
            .collect();
        assert_eq!(a.authenticate(ids[0]), Some(None));
        assert_eq!(a.authenticate(ids[1]), Some(None));
        assert_eq!(a.authenticate(ids[1]), Some(None), "twice is still once");
        let displaced = a.authenticate(ids[2]).map(|d| d.map(|(_, h)| h));
        assert_eq!(
            displaced,
            Some(Some(0)),
            "over the limit: the oldest makes room"
        );
        // Authenticated ones count neither in the pool nor as victims of unauthenticated ones.
        for n in 10..30 {
            let (_, displaced) = admit(&mut a, "10.0.1.1", n);
            assert!(!matches!(displaced, Some(1 | 2)));
        }
        assert_eq!(a.expire(ids[1]), None, "authenticated in time");
        a.remove(ids[1]);
        let (late, _) = admit(&mut a, "10.0.0.7", 99);
        assert_eq!(a.expire(late), Some(99));
        assert_eq!(a.expire(late), None, "already gone");
        assert_eq!(a.authenticate(late), None, "gone");
    }
}
