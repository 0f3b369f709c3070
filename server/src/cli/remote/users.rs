//! `user …` and `apikey …` through `serve`, as far as the API allows: the first administrator
//! is made on the server's machine (`user add` there needs no key).

use reqwest::Method;
use serde_json::{Value, json};

use crate::model::{ApiKey, User};
use crate::ops::CreatedApiKey;
use crate::print::Printer;

use super::super::CliError;
use super::super::users::{ApiKeyCommand, UserCommand, read_password};
use super::{Remote, segment};

impl Remote {
    /// `user …`.
    pub async fn user(&self, out: &Printer, command: UserCommand) -> Result<(), CliError> {
        let user_path = |name: &str, what: &str| format!("/api/v1/users/{}{what}", segment(name));
        match command {
            UserCommand::List => out.users(&self.get::<Vec<User>>("/api/v1/users", &[]).await?),
            UserCommand::Add { name, permissions } => {
                let password = read_password(&name).await?;
                let body = json!({
                    "name": name,
                    "password": password,
                    "permissions": permissions.given().unwrap_or_default(),
                });
                let user: User = self.call(Method::POST, "/api/v1/users", &body).await?;
                out.say(&format!("user {} added ({})", user.name, user.permissions));
            }
            UserCommand::Passwd { name } => {
                let password = read_password(&name).await?;
                let body = json!({ "password": password });
                let path = user_path(&name, "/password");
                self.send(Method::PUT, &path, &body).await?;
                out.say(&format!("password of {name} changed"));
            }
            UserCommand::Disable { name } => {
                let path = user_path(&name, "/disable");
                self.send(Method::POST, &path, &Value::Null).await?;
                out.say(&format!("user {name} disabled"));
            }
            UserCommand::Enable { name } => {
                let path = user_path(&name, "/enable");
                self.send(Method::POST, &path, &Value::Null).await?;
                out.say(&format!("user {name} enabled"));
            }
        }
        Ok(())
    }

    /// `apikey …`.
    pub async fn api_key(&self, out: &Printer, command: ApiKeyCommand) -> Result<(), CliError> {
        match command {
            ApiKeyCommand::Create {
                user,
                expires,
                permissions,
            } => {
                let body = json!({
                    "user": user,
                    "permissions": permissions.given(),
                    "expires_in_secs": expires.map(|e| e.as_secs()),
                });
                let created: CreatedApiKey =
                    self.call(Method::POST, "/api/v1/apikeys", &body).await?;
                out.api_key_created(&created);
            }
            ApiKeyCommand::List { user } => {
                let query: Vec<(&str, String)> = user.map(|u| ("user", u)).into_iter().collect();
                out.api_keys(&self.get::<Vec<ApiKey>>("/api/v1/apikeys", &query).await?);
            }
            ApiKeyCommand::Revoke { id } => {
                let path = format!("/api/v1/apikeys/{id}");
                let key: ApiKey = self.call(Method::DELETE, &path, &Value::Null).await?;
                out.say(&format!("API key {id} of {} revoked", key.user));
            }
        }
        Ok(())
    }
}
