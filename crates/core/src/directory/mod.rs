//! The directory: people, their accounts and grants. Used by the CLI (and later the console and API).

mod import;

pub use import::{ImportError, parse_csv};

use crate::audit::AuditEntry;
use crate::authz::{AddPerson, Proof, SearchPeople, SetGrant, Unlock};
use crate::domain::{AccountId, AccountSource, Grant, Person, PersonId, PersonStatus, Reason};
use crate::policy::lockout::LockState;
use crate::policy::password;
use crate::services::Core;
use crate::store::{AuditStore, CredentialStore, DirectoryStore, EventStore, NewPerson, StoreError};
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0}")]
    Invalid(String),
    #[error("no person with email {0}")]
    UnknownPerson(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unexpected(String),
}

/// What `person show --json` prints: the public contract of a person's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonView {
    pub person_id: PersonId,
    pub display_name: String,
    pub email: String,
    pub phone: Option<String>,
    pub manager_email: Option<String>,
    pub department: Option<String>,
    pub status: PersonStatus,
    pub permissions: Grant,
    pub rank: u8,
    pub accounts: Vec<AccountView>,
    /// The second notification address the person added, if any.
    pub second_address: Option<SecondAddressView>,
}

/// A person's second notification address: used for notices (and, when an admin chooses, a recovery code or an
/// access email) once confirmed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecondAddressView {
    pub address: String,
    pub added_at: Option<String>,
    /// None: waiting for the code sent to it; it is not used yet.
    pub confirmed_at: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub account_id: AccountId,
    pub username: String,
    pub source: AccountSource,
    pub locked: bool,
    pub locked_at: Option<String>,
    /// When a temporary lock ends by itself (none: it stays until an operator unlocks it).
    pub locked_until: Option<String>,
    pub lock_reason: Option<String>,
    pub unlocked_by: Option<String>,
    pub unlocked_at: Option<String>,
    pub failed_attempts: u32,
    pub mfa: MfaView,
    pub required_actions: crate::domain::RequiredActions,
    pub qa_enrolled: bool,
    pub qa_locked: bool,
    pub qa_failed_attempts: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaView {
    pub totp_enabled: bool,
    pub backup_codes_unused: i64,
    /// The account's passkeys, oldest first.
    pub passkeys: Vec<PasskeyView>,
}

/// A passkey as the person record, `person show` and the API show it (never its key material).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasskeyView {
    pub id: i64,
    pub name: String,
    pub created_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// One line of a person's authenticator record (NIST SP 800-63B-4 §4.1: every authenticator ever bound, with
/// the time of each life-cycle event) as the console and the API show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthenticatorEventView {
    /// The account's username.
    pub account: String,
    /// RFC 3339.
    pub at: String,
    /// "password", "totp", "backup_codes", "passkey", "security_questions"; for a use, the sign-in method.
    pub kind: String,
    /// The same, in words: "Authenticator app".
    pub authenticator: String,
    /// "bound", "temporary" (a password someone else set, to be changed), "removed" or "used".
    pub change: String,
    /// Who made the change, in words: a username, "the system operator", "the person, with a temporary access
    /// pass". A use is the person's own.
    pub by: String,
    /// Which one, when there are several of the kind (a passkey's name).
    pub detail: Option<String>,
}

/// An authenticator kind (or a sign-in method that used one), in words.
pub fn authenticator_name(kind: &str) -> String {
    match kind {
        "password" => "Password".into(),
        "totp" => "Authenticator app".into(),
        "backup_codes" | "backup_code" => "Backup codes".into(),
        "passkey" => "Passkey".into(),
        "security_questions" => "Security questions".into(),
        other => {
            let words = other.replace('_', " ");
            let mut chars = words.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
        }
    }
}

fn iso(at: Option<i64>) -> Option<String> {
    at.and_then(|t| chrono::DateTime::from_timestamp(t, 0)).map(|t| t.to_rfc3339())
}

/// The store capabilities the directory uses.
pub trait DirectoryServiceStore:
    DirectoryStore + CredentialStore + EventStore + AuditStore + crate::store::PasskeyStore + crate::store::AddressStore
{
}
impl<
    T: DirectoryStore
        + CredentialStore
        + EventStore
        + AuditStore
        + crate::store::PasskeyStore
        + crate::store::AddressStore,
> DirectoryServiceStore for T
{
}

/// What the console shows of one person: their record, recent sign-ins and activity log.
pub struct PersonRecord {
    pub view: PersonView,
    /// Newest first, each with the username of the account it was for.
    pub sign_ins: Vec<(String, crate::store::SignInEvent)>,
    /// Every audited event about the person, newest first (the latest 200).
    pub activity: Vec<crate::audit::AuditRecord>,
    /// The authenticator record of every account, newest first.
    pub authenticators: Vec<AuthenticatorEventView>,
}

/// People, their accounts and grants.
pub struct Directory {
    core: Arc<Core>,
    store: Arc<dyn DirectoryServiceStore>,
}

impl Directory {
    pub(crate) fn new(core: Arc<Core>, store: Arc<dyn DirectoryServiceStore>) -> Self {
        Self { core, store }
    }

    fn now(&self) -> crate::domain::Timestamp {
        self.core.now()
    }

    /// Add a person with a first account. A password, when given, must pass the password rule.
    pub async fn add_person(
        &self,
        proof: Proof<AddPerson>,
        mut new: NewPerson,
        password: Option<&str>,
    ) -> Result<(crate::domain::Person, crate::domain::Account), DirectoryError> {
        if !proof.may_give(&new.grant) {
            return Err(DirectoryError::Invalid("you may only give a grant that ranks below your own".into()));
        }
        if let Some(pw) = password {
            if new.source == AccountSource::Sso {
                return Err(DirectoryError::Invalid(
                    "sso accounts sign in through the identity provider and take no password".into(),
                ));
            }
            let context = [new.email.as_str(), new.username.as_str(), new.display_name.as_str()];
            password::check(pw, self.core.settings.policy.mfa_required, &context)
                .map_err(|e| DirectoryError::Invalid(format!("password refused: {e}")))?;
            new.password_hash =
                Some(self.core.hasher.hash(pw).await.map_err(|e| DirectoryError::Unexpected(e.to_string()))?);
        }
        let audit = AuditEntry::new(self.now(), proof.actor(), "person.add", "success").details(
            serde_json::json!({ "email": new.email.as_str(), "username": new.username.as_str(), "source": new.source })
                .to_string(),
        );
        Ok(self.store.create_person(&new, self.now(), &audit).await?)
    }

    /// Most people a search lists; the page says when there may be more.
    pub const SEARCH_LIMIT: i64 = 100;

    /// People whose name, username or email contains `text` (any case), optionally only those locked now.
    pub async fn search(
        &self,
        _proof: &Proof<SearchPeople>,
        text: &str,
        locked_only: bool,
    ) -> Result<Vec<crate::store::PersonHit>, DirectoryError> {
        let text = text.trim();
        if text.chars().count() > 200 || text.chars().any(char::is_control) {
            return Err(DirectoryError::Invalid(
                "Search for at most 200 characters of a name, username or email.".into(),
            ));
        }
        Ok(self.store.search_people(text, locked_only, self.now(), None, Self::SEARCH_LIMIT).await?)
    }

    /// One page of a search (the API): at most `limit` (1–200) people after `after` (the `sort_key` and id of
    /// the previous page's last person).
    pub async fn search_page(
        &self,
        _proof: &Proof<SearchPeople>,
        text: &str,
        locked_only: bool,
        after: Option<(&str, PersonId)>,
        limit: i64,
    ) -> Result<Vec<crate::store::PersonHit>, DirectoryError> {
        let text = text.trim();
        if text.chars().count() > 200 || text.chars().any(char::is_control) {
            return Err(DirectoryError::Invalid("query: at most 200 characters of a name, username or email".into()));
        }
        if !(1..=200).contains(&limit) {
            return Err(DirectoryError::Invalid("limit: 1 to 200".into()));
        }
        Ok(self.store.search_people(text, locked_only, self.now(), after, limit).await?)
    }

    /// One person's record for the console, by id: `None` when there is no such person.
    pub async fn record(
        &self,
        proof: &Proof<SearchPeople>,
        person: PersonId,
    ) -> Result<Option<PersonRecord>, DirectoryError> {
        let Some(found) = self.store.person(person).await? else { return Ok(None) };
        let mut sign_ins = Vec::new();
        for account in self.store.accounts_of(person).await? {
            for event in self.store.recent_sign_ins(account.id, 10).await? {
                sign_ins.push((account.username.to_string(), event));
            }
        }
        sign_ins.sort_by_key(|(_, event)| std::cmp::Reverse(event.at));
        let activity = self.store.audit_about(person, 200).await?;
        let authenticators = self.authenticator_record(proof, person).await?;
        Ok(Some(PersonRecord { view: self.view(found).await?, sign_ins, activity, authenticators }))
    }

    /// The authenticator record of every account of `person` (every change, and the newest 200 uses of each),
    /// newest first.
    pub async fn authenticator_record(
        &self,
        _proof: &Proof<SearchPeople>,
        person: PersonId,
    ) -> Result<Vec<AuthenticatorEventView>, DirectoryError> {
        let mut lines = Vec::new();
        for account in self.store.accounts_of(person).await? {
            for e in self.store.authenticator_record(account.id, 200).await? {
                lines.push((
                    e.at,
                    AuthenticatorEventView {
                        account: account.username.to_string(),
                        at: iso(Some(e.at)).unwrap_or_default(),
                        authenticator: authenticator_name(&e.kind),
                        by: crate::audit::actor_in_words(&e.actor),
                        kind: e.kind,
                        change: e.change,
                        detail: e.detail,
                    },
                ));
            }
        }
        lines.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        Ok(lines.into_iter().map(|(_, line)| line).collect())
    }

    /// The person with this email, or [`DirectoryError::UnknownPerson`]: how a front finds the subject it
    /// asks authorisation for.
    pub async fn find(&self, email: &str) -> Result<Person, DirectoryError> {
        let parsed = crate::domain::EmailAddress::parse(email).map_err(|e| DirectoryError::Invalid(e.to_string()))?;
        self.store.person_by_email(&parsed).await?.ok_or_else(|| DirectoryError::UnknownPerson(parsed.to_string()))
    }

    /// One person, by id.
    pub async fn person_by_id(&self, id: PersonId) -> Result<Option<Person>, DirectoryError> {
        Ok(self.store.person(id).await?)
    }

    /// One account, by id.
    pub async fn account(&self, id: AccountId) -> Result<Option<crate::domain::Account>, DirectoryError> {
        Ok(self.store.account(id).await?)
    }

    pub async fn person_view(&self, email: &str) -> Result<PersonView, DirectoryError> {
        let person = self.find(email).await?;
        self.view(person).await
    }

    async fn view(&self, person: Person) -> Result<PersonView, DirectoryError> {
        let manager_email = match person.manager_id {
            Some(id) => self.store.person(id).await?.map(|m| m.email.to_string()),
            None => None,
        };
        let grant = self.store.grant(person.id).await?;
        let now = self.now();
        let mut accounts = Vec::new();
        for a in self.store.accounts_of(person.id).await? {
            let totp_enabled = self.store.totp(a.id).await?.is_some_and(|t| t.confirmed_at.is_some());
            accounts.push(AccountView {
                account_id: a.id,
                locked: LockState::of(&a).is_locked(now),
                locked_at: iso(a.locked_at),
                locked_until: iso(a.locked_until.filter(|_| a.locked_at.is_some())),
                lock_reason: a.lock_reason.map(|r| r.to_string()),
                unlocked_by: a.unlocked_by.clone(),
                unlocked_at: iso(a.unlocked_at),
                failed_attempts: a.failed_attempts,
                mfa: MfaView {
                    totp_enabled,
                    backup_codes_unused: self.store.unused_backup_codes(a.id).await?,
                    passkeys: self
                        .store
                        .passkeys(a.id)
                        .await?
                        .into_iter()
                        .map(|p| PasskeyView {
                            id: p.id,
                            name: p.name,
                            created_at: iso(Some(p.created_at)),
                            last_used_at: iso(p.last_used_at),
                        })
                        .collect(),
                },
                required_actions: a.required,
                qa_enrolled: !self.store.qa_answers(a.id).await?.is_empty(),
                qa_locked: a.qa_locked_at.is_some(),
                qa_failed_attempts: a.qa_failed_attempts,
                username: a.username,
                source: a.source,
            });
        }
        let second_address = self.store.notification_address(person.id).await?.map(|a| SecondAddressView {
            address: a.address,
            added_at: iso(Some(a.added_at)),
            confirmed_at: iso(a.confirmed_at),
        });
        Ok(PersonView {
            second_address,
            person_id: person.id,
            display_name: person.display_name,
            email: person.email.to_string(),
            phone: person.phone,
            manager_email,
            department: person.department,
            status: person.status,
            rank: crate::policy::tiers::rank(&grant),
            permissions: grant,
            accounts,
        })
    }

    /// Whether anyone holds the directory-admin permission yet (`init` makes the first one).
    pub async fn has_directory_admin(&self) -> Result<bool, DirectoryError> {
        Ok(self.store.count_directory_admins().await? > 0)
    }

    /// Check a CSV file against the directory as it is now; rows come back with managers first.
    pub async fn parse_import(&self, data: &[u8]) -> Result<Vec<NewPerson>, ImportError> {
        parse_csv(data, self.store.as_ref()).await
    }

    /// Create the people of a checked import in one transaction, all or none, with one audit row naming
    /// where they came from. `progress` hears how many rows are written so far.
    pub async fn import(
        &self,
        proof: Proof<AddPerson>,
        rows: &[NewPerson],
        from: &str,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<usize, DirectoryError> {
        let audit =
            AuditEntry::new(self.now(), proof.actor(), "person.add", "success").reason(format!("imported from {from}"));
        Ok(self.store.import_people(rows, self.now(), &audit, progress).await?)
    }

    /// Replace the grant of the proof's subject (`person grant`: the CLI acts as the system, outside tiers).
    pub async fn set_grant(&self, proof: Proof<SetGrant>, grant: Grant) -> Result<PersonView, DirectoryError> {
        if grant.dpa_level > 3 {
            return Err(DirectoryError::Invalid("--dpa must be 0, 1, 2 or 3".into()));
        }
        if !proof.may_give(&grant) {
            return Err(DirectoryError::Invalid("you may only give a grant that ranks below your own".into()));
        }
        let person = self.subject(proof.subject()).await?;
        let audit = AuditEntry::new(self.now(), proof.actor(), "person.grant", "success")
            .person(person.id)
            .details(serde_json::to_string(&grant).unwrap_or_default());
        self.store.set_grant(person.id, &grant, &audit).await?;
        self.view(person).await
    }

    async fn subject(&self, subject: Option<crate::domain::PersonId>) -> Result<Person, DirectoryError> {
        let id = subject.ok_or_else(|| DirectoryError::Unexpected("a proof for a person names one".into()))?;
        self.store.person(id).await?.ok_or_else(|| DirectoryError::UnknownPerson(format!("person {id}")))
    }

    /// Lift the sign-in lock of every locked account of a person (`person unlock`), audited with the
    /// actor and the reason. Returns how many accounts were unlocked (0: none was locked).
    pub async fn unlock(&self, proof: Proof<Unlock>, reason: &Reason) -> Result<usize, DirectoryError> {
        let person = self.subject(proof.subject()).await?;
        let actor = proof.actor();
        let mut unlocked = 0;
        for account in self.store.accounts_of(person.id).await? {
            let now = self.now();
            let audit = AuditEntry::new(now, actor, "account.unlock", "success")
                .person(person.id)
                .account(account.id)
                .reason(reason.as_str())
                .details(format!("lock reason was {}", account.lock_reason.map(|r| r.as_str()).unwrap_or("none")));
            if self.store.unlock_account(account.id, &actor.to_string(), now, &audit).await? {
                unlocked += 1;
            }
        }
        Ok(unlocked)
    }
}
