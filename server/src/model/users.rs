//! Users of the HTTP API, their permissions, API keys and web sessions.

use serde::{Deserialize, Serialize};

use super::{from_utc, utc};

/// What a user may change, beside reading the fleet (which every user may): Go Otto's flags.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Add, change, trust and remove hosts.
    Hosts,
    /// Add, change and remove groups and their members.
    Groups,
    /// Add, change and remove scripts, their attachments and variables.
    Scripts,
    /// Add, change and remove schedules.
    Schedules,
    /// Add, change and disable users, and make API keys for others.
    Users,
    /// Change how new agents enroll.
    Enrollment,
    /// Change the server's options.
    Options,
    /// Read the audit trail (the event log).
    Audit,
}

impl Permission {
    /// Every permission, in order.
    pub const ALL: [Permission; 8] = [
        Permission::Hosts,
        Permission::Groups,
        Permission::Scripts,
        Permission::Schedules,
        Permission::Users,
        Permission::Enrollment,
        Permission::Options,
        Permission::Audit,
    ];

    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Hosts => "hosts",
            Permission::Groups => "groups",
            Permission::Scripts => "scripts",
            Permission::Schedules => "schedules",
            Permission::Users => "users",
            Permission::Enrollment => "enrollment",
            Permission::Options => "options",
            Permission::Audit => "audit",
        }
    }

    /// The permission named `text`, if it is one.
    pub fn parse(text: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// Which scripts a user may run, as in Go Otto: a script of a level runs only for users at or
/// above it (read-only scripts look; read-write ones change the host, as any ad-hoc command may).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RunLevel {
    /// Runs nothing.
    #[default]
    None,
    /// Runs read-only scripts.
    ReadOnly,
    /// Runs every script and commands.
    ReadWrite,
}

impl RunLevel {
    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunLevel::None => "none",
            RunLevel::ReadOnly => "read-only",
            RunLevel::ReadWrite => "read-write",
        }
    }

    /// The level named `text`, if it is one.
    pub fn parse(text: &str) -> Option<RunLevel> {
        [RunLevel::None, RunLevel::ReadOnly, RunLevel::ReadWrite]
            .into_iter()
            .find(|l| l.as_str() == text)
    }
}

/// What a user, or an API key, may do. An administrator may do everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// May do everything, now and whatever permissions come later.
    pub admin: bool,
    /// Which scripts it may run.
    pub run: RunLevel,
    /// What it may change, beside reading the fleet (one given twice counts once).
    #[schema(value_type = Vec<Permission>)]
    pub modify: std::collections::BTreeSet<Permission>,
}

impl Permissions {
    /// An administrator's.
    pub fn admin() -> Permissions {
        Permissions {
            admin: true,
            run: RunLevel::ReadWrite,
            modify: Permission::ALL.into_iter().collect(),
        }
    }

    /// Whether they include `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        self.admin || self.modify.contains(&permission)
    }

    /// The run level they give (an administrator's is read-write).
    pub fn run_level(&self) -> RunLevel {
        if self.admin {
            RunLevel::ReadWrite
        } else {
            self.run
        }
    }

    /// Whether they give nothing `other` does not: an API key's against its owner's.
    pub fn within(&self, other: &Permissions) -> bool {
        (other.admin || !self.admin)
            && self.run_level() <= other.run_level()
            && Permission::ALL
                .into_iter()
                .all(|p| !self.allows(p) || other.allows(p))
    }

    /// What both give: an API key's use, bounded by its owner's permissions of the moment.
    pub fn meet(&self, other: &Permissions) -> Permissions {
        Permissions {
            admin: self.admin && other.admin,
            run: self.run_level().min(other.run_level()),
            modify: Permission::ALL
                .into_iter()
                .filter(|p| self.allows(*p) && other.allows(*p))
                .collect(),
        }
    }
}

impl std::fmt::Display for Permissions {
    /// `admin`, or `run read-only; hosts, audit`, as tables show them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.admin {
            return f.write_str("admin");
        }
        write!(f, "run {}", self.run.as_str())?;
        let mut sep = "; ";
        for p in &self.modify {
            write!(f, "{sep}{}", p.as_str())?;
            sep = ", ";
        }
        Ok(())
    }
}

/// A person (or a service) who uses the server through its API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Their unique name.
    pub name: String,
    /// What they may do.
    pub permissions: Permissions,
    /// A disabled user cannot sign in, and none of their API keys work.
    pub disabled: bool,
    /// When they were added (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub created: i64,
}

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Their unique name.
    pub name: String,
    /// Their password, hashed (an Argon2id PHC string).
    pub password_hash: String,
    /// What they may do.
    pub permissions: Permissions,
}

/// An API key, as listed: never its secret, which only its maker saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Its id.
    pub id: i64,
    /// The user it acts for.
    pub user: String,
    /// What it may do (never more than its user may, whatever this says).
    pub permissions: Permissions,
    /// When it was made (ms since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = String, format = DateTime)]
    pub created: i64,
    /// When it stops working, if ever.
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires: Option<i64>,
    /// When it was revoked, if it was.
    #[serde(serialize_with = "utc", deserialize_with = "from_utc")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked: Option<i64>,
}

/// A browser session of a user, as stored: never its tokens, only their hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its id.
    pub id: i64,
    /// Whose it is.
    pub user: String,
    /// The SHA-256 of its CSRF token, hex.
    pub csrf_hash: String,
    /// When it ends (ms since the epoch).
    pub expires: i64,
}

/// A browser session to store.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Whose it is.
    pub user: String,
    /// The SHA-256 of its cookie's token, hex.
    pub hash: String,
    /// The SHA-256 of its CSRF token, hex.
    pub csrf_hash: String,
    /// When it ends (ms since the epoch).
    pub expires: i64,
}

/// An API key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The user it acts for.
    pub user: String,
    /// The SHA-256 of its secret, hex.
    pub hash: String,
    /// What it may do.
    pub permissions: Permissions,
    /// When it stops working, if ever (ms since the epoch).
    pub expires: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_never_wider_than_its_user() {
        let reader = Permissions {
            admin: false,
            run: RunLevel::ReadOnly,
            modify: [Permission::Hosts].into_iter().collect(),
        };
        let admin = Permissions::admin();
        assert!(reader.within(&admin));
        assert!(!admin.within(&reader));
        assert!(Permissions::default().within(&reader));
        let runner = Permissions {
            run: RunLevel::ReadWrite,
            ..Permissions::default()
        };
        assert!(!runner.within(&reader));
        assert_eq!(admin.meet(&reader), reader);
        assert_eq!(reader.meet(&admin), reader);
        assert_eq!(admin.meet(&admin), admin);
        assert_eq!(admin.to_string(), "admin");
        assert_eq!(reader.to_string(), "run read-only; hosts");
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
    }
}
