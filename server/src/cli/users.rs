//! `user …` and `apikey …`: the HTTP API's users and their API keys.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::model::{Permission, Permissions, RunLevel};
use crate::ops::{AddUser, CreateApiKey};
use crate::print::Printer;

use super::CliError;
use super::api::UsersApi;
use super::env::read_hidden;
use super::parse::parse_nonzero_duration;

/// What a user or a key may do, as the command line gives it.
#[derive(Args, Clone, Default)]
pub struct PermissionArgs {
    /// Everything, now and whatever comes later.
    #[arg(long, conflicts_with_all = ["permissions", "run_level"])]
    admin: bool,
    /// What may be changed (repeatable, or a comma list).
    #[arg(
        long = "permission",
        value_enum,
        value_delimiter = ',',
        value_name = "PERMISSION"
    )]
    permissions: Vec<Permission>,
    /// Which scripts may be run: read-only ones, every one (and commands), or none.
    #[arg(long, value_enum, value_name = "LEVEL")]
    run_level: Option<RunLevel>,
}

impl PermissionArgs {
    /// The permissions given, if any were.
    fn given(&self) -> Option<Permissions> {
        if self.admin {
            return Some(Permissions::admin());
        }
        if self.permissions.is_empty() && self.run_level.is_none() {
            return None;
        }
        Some(Permissions {
            admin: false,
            run: self.run_level.unwrap_or_default(),
            modify: self.permissions.iter().copied().collect(),
        })
    }
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user of the HTTP API; the password is read from standard input, or typed twice
    /// on a terminal without being shown. Without permissions the user may only read.
    Add {
        /// Their name: 1 to 63 letters, digits, `.`, `_`, `-` and `@`, not starting with `.`,
        /// `-` or `@`.
        name: String,
        #[command(flatten)]
        permissions: PermissionArgs,
    },
    /// List users.
    List,
    /// Change a user's password (read as for `user add`).
    Passwd {
        /// The user.
        name: String,
    },
    /// Disable a user: none of their API keys works until they are enabled again.
    Disable {
        /// The user.
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Make an API key; its secret is printed once and never stored (only its hash is).
    Create {
        /// For this user (default: the user named as your login).
        #[arg(long)]
        user: Option<String>,
        /// It stops working after this long (e.g. 30d, 12h).
        #[arg(long, value_name = "DURATION", value_parser = parse_nonzero_duration)]
        expires: Option<Duration>,
        /// Less than its user may do (default: all its user may; never more).
        #[command(flatten)]
        permissions: PermissionArgs,
    },
    /// List API keys (never their secrets).
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke an API key, by its id: it stops working at once.
    Revoke {
        /// The key's id.
        id: i64,
    },
}

/// `user …`, in process or through `serve`.
pub async fn user(
    api: &impl UsersApi,
    out: &Printer,
    command: UserCommand,
) -> Result<(), CliError> {
    match command {
        UserCommand::Add { name, permissions } => {
            let password = read_password(&name).await?;
            let user = api
                .add_user(AddUser {
                    name,
                    password,
                    permissions: permissions.given().unwrap_or_default(),
                })
                .await?;
            out.say(&format!("user {} added ({})", user.name, user.permissions));
        }
        UserCommand::List => out.users(&api.users().await?),
        UserCommand::Passwd { name } => {
            let password = read_password(&name).await?;
            api.change_password(&name, password).await?;
            out.say(&format!("password of {name} changed"));
        }
        UserCommand::Disable { name } => {
            api.set_user_disabled(&name, true).await?;
            out.say(&format!("user {name} disabled"));
        }
        UserCommand::Enable { name } => {
            api.set_user_disabled(&name, false).await?;
            out.say(&format!("user {name} enabled"));
        }
    }
    Ok(())
}

/// `apikey …`, in process or through `serve`: a new key's secret printed once, as
/// [`Printer::api_key_created`] prints it.
pub async fn api_key(
    api: &impl UsersApi,
    out: &Printer,
    command: ApiKeyCommand,
) -> Result<(), CliError> {
    match command {
        ApiKeyCommand::Create {
            user,
            expires,
            permissions,
        } => {
            let created = api
                .create_api_key(CreateApiKey {
                    user,
                    permissions: permissions.given(),
                    expires_in: expires,
                })
                .await?;
            out.api_key_created(&created);
        }
        ApiKeyCommand::List { user } => out.api_keys(&api.api_keys(user.as_deref()).await?),
        ApiKeyCommand::Revoke { id } => {
            let key = api.revoke_api_key(id).await?;
            out.say(&format!("API key {id} of {} revoked", key.user));
        }
    }
    Ok(())
}

/// A new password for `user`: typed twice on a terminal without being shown, else the first
/// line of standard input.
async fn read_password(user: &str) -> Result<String, CliError> {
    if std::io::stdin().is_terminal() {
        let first = read_hidden(&format!("password for {user} (not shown)")).await?;
        let again = read_hidden("again").await?;
        if first != again {
            return Err(CliError::Usage("the two passwords differ".into()));
        }
        return Ok(first);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::File("<stdin>".into(), e))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}
