//! The HTTP API's users and API keys.

use std::io::Write;

use super::Printer;
use crate::model::{ApiKey, User, now_ms};
use crate::ops::CreatedApiKey;

impl<W: Write + Send + 'static> Printer<W> {
    /// Users, one row each.
    pub fn users(&self, users: &[User]) {
        self.list(users, &["user", "permissions", "state", "added"], |u| {
            vec![
                u.name.clone(),
                u.permissions.to_string(),
                if u.disabled { "disabled" } else { "enabled" }.into(),
                self.time(u.created),
            ]
        });
    }

    /// API keys, one row each, without secrets.
    pub fn api_keys(&self, keys: &[ApiKey]) {
        let now = now_ms();
        self.list(
            keys,
            &["id", "user", "permissions", "state", "made", "expires"],
            |k| {
                let state = match (k.revoked, k.expires) {
                    (Some(_), _) => "revoked",
                    (None, Some(at)) if at <= now => "expired",
                    _ => "active",
                };
                vec![
                    k.id.to_string(),
                    k.user.clone(),
                    k.permissions.to_string(),
                    state.into(),
                    self.time(k.created),
                    self.time_or_dash(k.expires),
                ]
            },
        );
    }

    /// A key just made: its secret, shown this once.
    pub fn api_key_created(&self, created: &CreatedApiKey) {
        if self.json {
            return self.json(created);
        }
        let key = &created.key;
        self.print(|out| {
            writeln!(
                out,
                "API key {} for {} ({}), expires {}",
                key.id,
                key.user,
                key.permissions,
                self.time_or_dash(key.expires)
            )?;
            writeln!(out, "{}", created.secret)?;
            writeln!(out, "Keep it now: it is not shown again.")
        });
    }
}
