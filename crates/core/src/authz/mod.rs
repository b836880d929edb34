//! Authorisation as a value. [`Authority::authorize`] is the only way to obtain a [`Proof`] that *this actor
//! may do this action to this subject now*; every service method that acts on someone, or on the request
//! queue, takes the proof for its own action (the type says which), and acts as the proof's actor on the
//! proof's subject. Pages, the API and the CLI all go through it: there is no other path.
//!
//! A proof is made for one use: it is not `Clone`, not serialisable, carries the moment it was made, and the
//! service methods that change something take it by value, so it is spent by the change it authorised.
//! The decision itself is pure (`policy::authz::decide`); this module reads the facts it needs — the actor's
//! grant, whether their person is active, whether they have a second factor, the subject's grant — just
//! before deciding.

use crate::audit::Actor;
use crate::domain::{AccountId, Grant, PersonId, PersonStatus, Timestamp};
use crate::policy::authz::{ActorFacts, Denial, decide};
use crate::policy::permissions::{Permission, RecoveryAction};
use crate::services::Core;
use crate::store::{AuditStore, CredentialStore, DirectoryStore, StoreError, TokenStore};
use std::marker::PhantomData;
use std::sync::Arc;

/// An action someone may be authorised to do. Each is a type, so a service method names the one its proof
/// must be for, and the compiler refuses a proof for another.
pub trait Action: sealed::Sealed + Send + Sync + 'static {
    /// The permission that guards it.
    const PERMISSION: Permission;
    /// Whether it acts on a person (and so is bounded by privilege tiers and never on oneself).
    const ON_PERSON: bool;
    /// For log lines and messages.
    const NAME: &'static str;
}

mod sealed {
    /// Only this module declares actions: a new one is a line in `actions!`, with its permission.
    pub trait Sealed {}
}

macro_rules! actions {
    ($($(#[$doc:meta])* $name:ident => $permission:expr, $on_person:expr, $text:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}
        impl sealed::Sealed for $name {}
        impl Action for $name {
            const PERMISSION: Permission = $permission;
            const ON_PERSON: bool = $on_person;
            const NAME: &'static str = $text;
        }
    )*};
}

actions! {
    /// List and read assistance requests.
    ViewRequests => Permission::ViewRequests, false, "view requests";
    /// Resolve or dismiss an assistance request.
    CloseRequest => Permission::ViewRequests, false, "close a request";
    /// Search the directory (the console's People page).
    SearchPeople => Permission::ViewPeople, false, "search people";
    /// Read and filter the audit log (auditors).
    ReadAudit => Permission::ReadAudit, false, "read the audit log";
    /// Add people to the directory.
    AddPerson => Permission::AddPeople, false, "add people";
    /// Replace a person's grant.
    SetGrant => Permission::ManageGrants, true, "change a grant";
    /// Make a personal API token for a person (the CLI; the console makes one's own).
    IssueToken => Permission::ManageGrants, true, "issue an API token";
    /// See one's reporting line in the manager portal (anyone with reports).
    ViewTeam => Permission::ManageReports, false, "view one's team";
    /// Reset the password and/or MFA of someone in one's reporting line (the manager portal).
    ManagerReset => Permission::ManageReports, true, "reset a report's access";
    /// Ask a person's line manager, in Lifeline, whether their request is genuine (manager attestation).
    AskManager => Permission::ViewRequests, true, "ask a line manager";
    /// Work the engineers' ticket queue.
    WorkTickets => Permission::WorkTickets, false, "work tickets";
    /// Make, list and revoke one's own API tokens (the console's Tokens page).
    ManageOwnTokens => Permission::UseApi, false, "manage one's own API tokens";
    /// Enrol an authenticator for a person (as `person add --totp` does), with fresh backup codes.
    EnrolTotp => Permission::AddPeople, true, "enrol an authenticator";
    /// The recovery actions of SPEC §4, by their SPEC §8 names; each needs what `[permissions]` says.
    SendAccessEmail => Permission::Recovery(RecoveryAction::SendAccessEmail), true, "send-access-email";
    SendRecoveryCode => Permission::Recovery(RecoveryAction::SendRecoveryCode), true, "send-recovery-code";
    UnlockAccount => Permission::Recovery(RecoveryAction::Unlock), true, "unlock";
    /// Lift the sign-in lock of every account of a person (`person unlock`).
    Unlock => Permission::Recovery(RecoveryAction::UnlockPerson), true, "unlock-person";
    ResetMfa => Permission::Recovery(RecoveryAction::ResetMfa), true, "reset-mfa";
    IssueTemporaryAccessPass => Permission::Recovery(RecoveryAction::IssueTemporaryAccessPass), true,
        "issue-temporary-access-pass";
    SendOneTimePassword => Permission::Recovery(RecoveryAction::SendOneTimePassword), true, "send-one-time-password";
    SendMagicLink => Permission::Recovery(RecoveryAction::SendMagicLink), true, "send-magic-link";
    UnlockQa => Permission::Recovery(RecoveryAction::UnlockQa), true, "unlock-qa";
    UnenrollQa => Permission::Recovery(RecoveryAction::UnenrollQa), true, "unenroll-qa";
    Enable => Permission::Recovery(RecoveryAction::Enable), true, "enable";
    Disable => Permission::Recovery(RecoveryAction::Disable), true, "disable";
    IssueEnrolmentCode => Permission::Recovery(RecoveryAction::IssueEnrolmentCode), true, "issue-enrolment-code";
}

/// A recovery action of SPEC §4: an [`Action`] that the recovery service runs, with its SPEC §8 name.
pub trait Recover: Action {
    const RECOVERY: RecoveryAction;
}

macro_rules! recover {
    ($($name:ident => $action:ident;)*) => {$(
        impl Recover for $name {
            const RECOVERY: RecoveryAction = RecoveryAction::$action;
        }
    )*};
}

recover! {
    SendAccessEmail => SendAccessEmail;
    SendRecoveryCode => SendRecoveryCode;
    UnlockAccount => Unlock;
    Unlock => UnlockPerson;
    ResetMfa => ResetMfa;
    IssueTemporaryAccessPass => IssueTemporaryAccessPass;
    SendOneTimePassword => SendOneTimePassword;
    SendMagicLink => SendMagicLink;
    UnlockQa => UnlockQa;
    UnenrollQa => UnenrollQa;
    Enable => Enable;
    Disable => Disable;
    IssueEnrolmentCode => IssueEnrolmentCode;
}

/// Call `$body` with the action type `$A` bound to the [`Recover`] type of `$action` (a [`RecoveryAction`]):
/// how a front that reads an action's name from a form or a path reaches the one generic service method.
#[macro_export]
macro_rules! with_recover_type {
    ($action:expr, $A:ident => $body:expr) => {{
        use $crate::authz as az;
        use $crate::policy::permissions::RecoveryAction as R;
        match $action {
            R::SendAccessEmail => {
                type $A = az::SendAccessEmail;
                $body
            }
            R::SendRecoveryCode => {
                type $A = az::SendRecoveryCode;
                $body
            }
            R::Unlock => {
                type $A = az::UnlockAccount;
                $body
            }
            R::UnlockPerson => {
                type $A = az::Unlock;
                $body
            }
            R::ResetMfa => {
                type $A = az::ResetMfa;
                $body
            }
            R::IssueTemporaryAccessPass => {
                type $A = az::IssueTemporaryAccessPass;
                $body
            }
            R::SendOneTimePassword => {
                type $A = az::SendOneTimePassword;
                $body
            }
            R::SendMagicLink => {
                type $A = az::SendMagicLink;
                $body
            }
            R::UnlockQa => {
                type $A = az::UnlockQa;
                $body
            }
            R::UnenrollQa => {
                type $A = az::UnenrollQa;
                $body
            }
            R::Enable => {
                type $A = az::Enable;
                $body
            }
            R::Disable => {
                type $A = az::Disable;
                $body
            }
            R::IssueEnrolmentCode => {
                type $A = az::IssueEnrolmentCode;
                $body
            }
        }
    }};
}

/// Who asks: the system (the CLI run by an operator on the host, background work), or a signed-in account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    System,
    Account(AccountId),
    /// An account calling the API with its personal token `token` (the token was found live for this call).
    Token {
        account: AccountId,
        token: i64,
    },
}

/// The proof that an actor may do `A` to the subject now. Only [`Authority::authorize`] makes one.
#[derive(Debug)]
pub struct Proof<A: Action> {
    actor: Actor,
    /// The actor's grant when the decision was made; `None` for the system.
    actor_grant: Option<Grant>,
    subject: Option<PersonId>,
    at: Timestamp,
    action: PhantomData<A>,
}

impl<A: Action> Proof<A> {
    /// Who acts, for the audit row.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The person acted on (always present for an action on a person).
    pub fn subject(&self) -> Option<PersonId> {
        self.subject
    }

    /// When the decision was made.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// The actor's grant when the decision was made; `None` for the system.
    pub fn actor_grant(&self) -> Option<&Grant> {
        self.actor_grant.as_ref()
    }

    /// The signed-in account that acts (`None`: the system).
    pub fn actor_account(&self) -> Option<AccountId> {
        match &self.actor {
            Actor::Account { account_id, .. } | Actor::Token { account_id, .. } => Some(*account_id),
            _ => None,
        }
    }

    /// Whether the actor may hand out `grant`: only a rank below their own, so nobody makes a peer or a
    /// superior (the system may give any).
    pub fn may_give(&self, grant: &Grant) -> bool {
        self.actor_grant.as_ref().is_none_or(|own| crate::policy::tiers::outranks(own, grant))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error(transparent)]
    Denied(#[from] Denial),
    /// The signed-in account, or the subject, no longer exists.
    #[error("no such account or person")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store capabilities authorisation reads (and the audit log, where refusals are written).
pub trait AuthorityStore: DirectoryStore + CredentialStore + AuditStore + TokenStore {}
impl<T: DirectoryStore + CredentialStore + AuditStore + TokenStore> AuthorityStore for T {}

/// Decides who may do what; the only maker of proofs.
pub struct Authority {
    core: Arc<Core>,
    store: Arc<dyn AuthorityStore>,
}

impl Authority {
    pub(crate) fn new(core: Arc<Core>, store: Arc<dyn AuthorityStore>) -> Self {
        Self { core, store }
    }

    /// May `principal` do `A` to `subject` now? Reads the facts, asks `policy::authz::decide`, and on yes
    /// returns the proof the service method for `A` takes. A refusal is logged and audited (`authz.refused`):
    /// failed authorisations are security events.
    pub async fn authorize<A: Action>(
        &self,
        principal: Principal,
        subject: Option<PersonId>,
    ) -> Result<Proof<A>, AuthzError> {
        let result = self.decide::<A>(principal, subject).await;
        if let Err(AuthzError::Denied(denial)) = &result {
            let actor = self.actor(principal).await?.unwrap_or(Actor::Public);
            tracing::warn!(actor = %actor, action = A::NAME, ?subject, ?denial, "authorisation refused");
            let mut entry = crate::audit::AuditEntry::new(self.core.now(), &actor, "authz.refused", "denied")
                .details(serde_json::json!({ "action": A::NAME, "denial": format!("{denial:?}") }).to_string());
            entry.subject_person_id = subject.map(|p| p.0);
            self.store.append_audit(&entry).await?;
        }
        result
    }

    /// Would `principal` be allowed `A` on `subject` now? For showing only the actions an admin may take
    /// (the Actions menu); nothing is logged or audited, and nothing is proved: acting still asks
    /// [`Authority::authorize`].
    pub async fn may<A: Action>(&self, principal: Principal, subject: Option<PersonId>) -> bool {
        self.decide::<A>(principal, subject).await.is_ok()
    }

    /// Who `principal` is, for the audit row (`None`: the account or token is gone).
    async fn actor(&self, principal: Principal) -> Result<Option<Actor>, StoreError> {
        Ok(match principal {
            Principal::System => Some(Actor::System),
            Principal::Account(id) => self
                .store
                .account(id)
                .await?
                .map(|a| Actor::Account { account_id: id, username: a.username.to_string() }),
            Principal::Token { account, token } => match self.store.account(account).await? {
                Some(a) => self.token_actor(account, &a.username, token).await?,
                None => None,
            },
        })
    }

    /// The actor of an API token of `account` (`None`: the token is gone or is another account's).
    async fn token_actor(&self, account: AccountId, username: &str, token: i64) -> Result<Option<Actor>, StoreError> {
        Ok(match self.store.token(token).await? {
            Some(t) if t.account == account => Some(Actor::Token {
                token_id: token,
                account_id: account,
                username: username.to_string(),
                name: t.name,
            }),
            _ => None,
        })
    }

    async fn decide<A: Action>(&self, principal: Principal, subject: Option<PersonId>) -> Result<Proof<A>, AuthzError> {
        let (actor, facts) = match principal {
            Principal::System => (Actor::System, None),
            Principal::Account(id) | Principal::Token { account: id, .. } => {
                // One query for the account, its person, authenticator and grant; a token's own row is a
                // second (asked on every API call, so it is kept to these).
                let record = self.store.actor_record(id).await?.ok_or(AuthzError::Gone)?;
                let account = &record.account;
                let actor = match principal {
                    Principal::Token { token, .. } => {
                        self.token_actor(id, &account.username, token).await?.ok_or(AuthzError::Gone)?
                    }
                    _ => Actor::Account { account_id: id, username: account.username.to_string() },
                };
                let person = account.person_id;
                // The reporting line is read only for the actions it guards (a recursive walk each).
                let line = A::PERMISSION == Permission::ManageReports;
                let has_reports = line && self.store.has_reports(person).await?;
                let manages_subject = match subject {
                    Some(subject) if has_reports => self.store.manages(person, subject).await?,
                    _ => false,
                };
                // A token stops with its account's lock; a console session is ended by the locks that mean it.
                let locked = matches!(principal, Principal::Token { .. })
                    && crate::policy::lockout::LockState::of(account).is_locked(self.core.now());
                let facts = ActorFacts {
                    locked,
                    person,
                    grant: record.grant,
                    active: record.person_status == PersonStatus::Active,
                    has_second_factor: record.has_totp || record.has_passkey,
                    has_reports,
                    manages_subject,
                };
                (actor, Some(facts))
            }
        };
        let subject_grant = match subject {
            Some(person) => Some((person, self.store.person_grant(person).await?.ok_or(AuthzError::Gone)?)),
            None => None,
        };
        let subject_ref = subject_grant.as_ref().map(|(p, g)| (*p, g));
        let settings = &self.core.settings.permissions;
        decide(facts.as_ref(), A::PERMISSION, A::ON_PERSON, subject_ref, settings)?;
        let actor_grant = facts.map(|f| f.grant);
        Ok(Proof { actor, actor_grant, subject, at: self.core.now(), action: PhantomData })
    }
}
