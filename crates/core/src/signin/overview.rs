//! What a signed-in person sees of their own account, and what the console needs to know of an admin.

use super::{SignIn, SignInError};
use crate::domain::{Account, AccountId, Person};
use crate::policy::permissions::{Permission, allows};
use crate::store::SignInEvent;

pub struct AccountOverview {
    pub person: Person,
    pub account: Account,
    pub totp_enabled: bool,
    pub backup_codes_left: i64,
    pub qa_enrolled: bool,
    pub can_view_requests: bool,
    /// Newest first.
    pub recent_sign_ins: Vec<SignInEvent>,
}

impl SignIn {
    async fn has_totp(&self, account: AccountId) -> Result<bool, SignInError> {
        Ok(self.store.totp(account).await?.is_some_and(|t| t.confirmed_at.is_some()))
    }

    pub async fn account_overview(&self, account_id: AccountId) -> Result<AccountOverview, SignInError> {
        let account = self.account_or_gone(account_id).await?;
        let person = self
            .store
            .person(account.person_id)
            .await?
            .ok_or_else(|| SignInError::Unexpected("person vanished".into()))?;
        let grant = self.store.grant(person.id).await?;
        Ok(AccountOverview {
            totp_enabled: self.has_totp(account.id).await?,
            backup_codes_left: self.store.unused_backup_codes(account.id).await?,
            qa_enrolled: !self.store.qa_answers(account.id).await?.is_empty(),
            can_view_requests: allows(&grant, Permission::ViewRequests, &self.core.settings.permissions),
            recent_sign_ins: self.store.recent_sign_ins(account.id, 10).await?,
            person,
            account,
        })
    }
}
