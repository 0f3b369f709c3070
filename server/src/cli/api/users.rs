//! What `user …` and `apikey …` need. Through `serve` the first administrator cannot be made
//! (`user add` on the server's machine needs no key), and a key made without `--user` is for
//! the user of the key that makes it.

use reqwest::Method;

use crate::model::{ApiKey, User};
use crate::ops::{AddUser, CreateApiKey, CreatedApiKey, KeyQuery, NewPassword, Ops};

use super::super::CliError;
use super::super::remote::{Payload, Remote, read, segment};

/// What `user …` and `apikey …` need, wherever the work runs: [`Ops`] in process, the HTTP API
/// through `serve`.
pub(crate) trait UsersApi {
    /// Adds a user (`POST /api/v1/users`).
    async fn add_user(&self, add: AddUser) -> Result<User, CliError>;
    /// Every user, by name (`GET /api/v1/users`).
    async fn users(&self) -> Result<Vec<User>, CliError>;
    /// Sets a user's password (`PUT /api/v1/users/{name}/password`).
    async fn change_password(&self, name: &str, password: String) -> Result<(), CliError>;
    /// Disables or enables a user (`POST /api/v1/users/{name}/disable`, `…/enable`).
    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<(), CliError>;
    /// Makes an API key, with its secret (`POST /api/v1/apikeys`).
    async fn create_api_key(&self, create: CreateApiKey) -> Result<CreatedApiKey, CliError>;
    /// API keys, without their secrets (`GET /api/v1/apikeys`).
    async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>, CliError>;
    /// Revokes an API key (`DELETE /api/v1/apikeys/{id}`).
    async fn revoke_api_key(&self, id: i64) -> Result<ApiKey, CliError>;
}

impl UsersApi for Ops {
    async fn add_user(&self, add: AddUser) -> Result<User, CliError> {
        Ok(Ops::add_user(self, add).await?)
    }

    async fn users(&self) -> Result<Vec<User>, CliError> {
        Ok(Ops::users(self).await?)
    }

    async fn change_password(&self, name: &str, password: String) -> Result<(), CliError> {
        Ok(Ops::change_password(self, name, password).await?)
    }

    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<(), CliError> {
        Ok(Ops::set_user_disabled(self, name, disabled).await?)
    }

    async fn create_api_key(&self, create: CreateApiKey) -> Result<CreatedApiKey, CliError> {
        Ok(Ops::create_api_key(self, create).await?)
    }

    async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>, CliError> {
        Ok(Ops::api_keys(self, user).await?)
    }

    async fn revoke_api_key(&self, id: i64) -> Result<ApiKey, CliError> {
        Ok(Ops::revoke_api_key(self, id).await?)
    }
}

/// `/api/v1/users/{name}` and what follows it.
fn user_path(name: &str, what: &str) -> String {
    format!("/api/v1/users/{}{what}", segment(name))
}

impl UsersApi for Remote {
    async fn add_user(&self, add: AddUser) -> Result<User, CliError> {
        Ok(self.call(Method::POST, "/api/v1/users", &add).await?)
    }

    async fn users(&self) -> Result<Vec<User>, CliError> {
        Ok(self.call(Method::GET, "/api/v1/users", &()).await?)
    }

    async fn change_password(&self, name: &str, password: String) -> Result<(), CliError> {
        let path = user_path(name, "/password");
        self.send(Method::PUT, &path, &NewPassword { password })
            .await?;
        Ok(())
    }

    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<(), CliError> {
        let what = if disabled { "/disable" } else { "/enable" };
        self.send(Method::POST, &user_path(name, what), &()).await?;
        Ok(())
    }

    async fn create_api_key(&self, create: CreateApiKey) -> Result<CreatedApiKey, CliError> {
        Ok(self.call(Method::POST, "/api/v1/apikeys", &create).await?)
    }

    async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>, CliError> {
        let query = KeyQuery {
            user: user.map(str::to_owned),
        };
        let response = self
            .request(Method::GET, "/api/v1/apikeys", &query, Payload::Empty)
            .await?;
        Ok(read(response).await?)
    }

    async fn revoke_api_key(&self, id: i64) -> Result<ApiKey, CliError> {
        let path = format!("/api/v1/apikeys/{id}");
        Ok(self.call(Method::DELETE, &path, &()).await?)
    }
}
