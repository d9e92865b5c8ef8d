//! The development login (SPEC U4): no upstream provider, every login is the
//! local test user `dev-user`. Enabled by `SEKISHO_DEV_LOGIN=1`, which the
//! configuration refuses when `SEKISHO_ENV=production`.

use crate::app::App;
use crate::login::{Identity, IdentityProvider, LoginFuture, LoginStart};

/// The subject of every development login.
pub const DEV_SUBJECT: &str = "dev-user";

pub struct DevLogin;

impl IdentityProvider for DevLogin {
    fn name(&self) -> &'static str {
        "dev"
    }

    fn start<'a>(&'a self, _app: &'a App, _request_id: &'a str) -> LoginFuture<'a> {
        Box::pin(async { Ok(LoginStart::Authenticated(Identity { subject: DEV_SUBJECT.to_owned(), provider: "dev" })) })
    }
}
