//! Page routes. Handlers are named `<page>_get` / `<page>_post`.

mod account;
mod addresses;
mod assistance;
mod health;
pub(crate) mod passkeys;
mod recover;
mod reset;
mod signin;

use super::AppState;
use axum::Router;

pub use assistance::problems;
use axum::routing::{get, post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(account::home_get))
        .route("/signin", get(signin::signin_get).post(signin::signin_post))
        .route("/signin/mfa", get(signin::mfa_get).post(signin::mfa_post))
        .route("/signin/enroll", get(signin::enroll_get).post(signin::enroll_post))
        .route("/signout", get(signin::signout_get).post(signin::signout_post))
        .route("/signin/passkey", post(passkeys::signin_post))
        .route("/signin/passkey/options", post(passkeys::signin_options_post))
        .route("/signin/passkey/enrol", get(passkeys::enrol_get).post(passkeys::enrol_post))
        .route("/signin/passkey/enrol/options", post(passkeys::enrol_options_post))
        .route("/account/passkeys", get(passkeys::passkeys_get))
        .route("/account/passkeys/options", post(passkeys::register_options_post))
        .route("/account/passkeys/add", post(passkeys::add_post))
        .route("/account/passkeys/{id}/rename", post(passkeys::rename_post))
        .route("/account/passkeys/{id}/remove", post(passkeys::remove_post))
        .route("/static/passkey.js", get(passkeys::script))
        .route("/signin/code", get(recover::signin_code_get).post(recover::signin_code_post))
        .route("/signin/device", get(recover::device_get).post(recover::device_post))
        .route("/reset-password", get(recover::reset_password_get).post(recover::reset_password_post))
        .route("/recover", get(recover::recover_get).post(recover::recover_post))
        .route("/recover/options", get(recover::recover_options_get))
        .route("/recover/password", post(recover::recover_password_post))
        .route("/recover/authenticator", post(recover::recover_authenticator_post))
        .route("/not-me", get(recover::not_me_get).post(recover::not_me_post))
        .route("/account/password", get(account::password_get).post(account::password_post))
        .route("/account/addresses", get(addresses::addresses_get))
        .route("/account/addresses/add", post(addresses::add_post))
        .route("/account/addresses/confirm", post(addresses::confirm_post))
        .route("/account/addresses/remove", post(addresses::remove_post))
        .route("/account/backup-codes", get(account::backup_codes_get).post(account::backup_codes_post))
        .route(
            "/account/security-questions",
            get(account::security_questions_get).post(account::security_questions_post),
        )
        .route("/help", get(reset::help_get))
        .route("/assistance", get(assistance::assistance_get).post(assistance::assistance_post))
        .route("/assistance/status", get(assistance::status_get))
        .route("/reset", get(reset::reset_get).post(reset::reset_post))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/style.css", get(health::stylesheet))
}
