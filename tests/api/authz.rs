//! Authorisation as a value: the one function that makes proofs, over a real store. An admin acts only on
//! people who rank below them, never on themself, and only with a second factor; the proof's actor is the
//! actor the audit row names.

use crate::helpers::*;
use lifeline::authz::{AuthzError, Principal, SetGrant, Unlock, ViewRequests};
use lifeline::policy::authz::Denial;
use lifeline::store::AuditStore;

#[tokio::test]
async fn an_admin_unlocks_only_people_below_them_and_never_themself() {
    each_backend(async |app: TestApp| {
        let harry = app.add_admin("harry", 1).await;
        let boss = app.add_admin("boss", 2).await;
        let sam = app.add_person("sam", false).await;
        let id = |p: &Person| {
            let email = p.email.clone();
            let directory = app.state.directory.clone();
            async move { directory.find(&email).await.unwrap_or_else(|e| panic!("{e}")).id }
        };
        let (harry_id, boss_id, sam_id) = (id(&harry).await, id(&boss).await, id(&sam).await);
        let as_harry = Principal::Account(harry.account_id);
        let ask = |subject| app.state.authority.authorize::<Unlock>(as_harry, Some(subject));

        assert!(matches!(ask(boss_id).await, Err(AuthzError::Denied(Denial::Outranked))));
        assert!(matches!(ask(harry_id).await, Err(AuthzError::Denied(Denial::Themself))));
        // An action on a person must name one.
        let unnamed = app.state.authority.authorize::<Unlock>(as_harry, None).await;
        assert!(matches!(unnamed, Err(AuthzError::Denied(Denial::Subject))));

        for _ in 0..5 {
            app.post_sign_in(&browser(), "sam", "not-the-password-at-all").await;
        }
        assert_eq!(app.person_json(&sam.email).await["accounts"][0]["locked"], true, "sam is locked");
        let proof = ask(sam_id).await.unwrap_or_else(|e| panic!("{e}"));
        let reason = lifeline::domain::Reason::parse("called back on the number in the directory")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(app.state.directory.unlock(proof, &reason).await.unwrap_or_else(|e| panic!("{e}")), 1);
        let rows = app.db.audit_records(0, 1000).await.unwrap_or_else(|e| panic!("{e}"));
        let unlock = rows.iter().rev().find(|r| r.entry.action == "account.unlock");
        let unlock = unlock.unwrap_or_else(|| panic!("an unlock audit row"));
        assert_eq!(unlock.entry.actor, format!("account:{}:harry", harry.account_id));
        assert_eq!(unlock.entry.subject_person_id, Some(sam_id.0));
    })
    .await;
}

#[tokio::test]
async fn no_proof_without_a_second_factor_or_the_permission() {
    each_backend(async |app: TestApp| {
        let staff = app.add_person("sam", true).await;
        let no_mfa = app.add_person("nina", false).await;
        let nina_id = app.state.directory.find(&no_mfa.email).await.unwrap_or_else(|e| panic!("{e}")).id;
        let grant = lifeline::domain::Grant { dpa_level: 3, ..Default::default() };
        let proof = system(&app.state, Some(nina_id)).await;
        app.state.directory.set_grant(proof, grant).await.unwrap_or_else(|e| panic!("{e}"));

        let view = |account| app.state.authority.authorize::<ViewRequests>(Principal::Account(account), None);
        assert!(matches!(view(staff.account_id).await, Err(AuthzError::Denied(Denial::NotPermitted))));
        assert!(matches!(view(no_mfa.account_id).await, Err(AuthzError::Denied(Denial::NoSecondFactor))));
        // The system is outside grants and tiers.
        assert!(app.state.authority.authorize::<ViewRequests>(Principal::System, None).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn the_decision_reads_the_actor_afresh_each_time() {
    each_backend(async |app: TestApp| {
        let harry = app.add_admin("harry", 1).await;
        let harry_id = app.state.directory.find(&harry.email).await.unwrap_or_else(|e| panic!("{e}")).id;
        let ask = || app.state.authority.authorize::<ViewRequests>(Principal::Account(harry.account_id), None);
        assert!(ask().await.is_ok(), "an admin with a second factor may view requests");

        // The grant taken away: no proof from the next question on, whatever session is still open.
        let proof = system(&app.state, Some(harry_id)).await;
        app.state
            .directory
            .set_grant(proof, lifeline::domain::Grant::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(ask().await, Err(AuthzError::Denied(Denial::NotPermitted))));

        // Given back, then the person disabled: refused as inactive, before the grant is even looked at.
        let proof = system(&app.state, Some(harry_id)).await;
        let grant = lifeline::domain::Grant { dpa_level: 1, ..Default::default() };
        app.state.directory.set_grant(proof, grant).await.unwrap_or_else(|e| panic!("{e}"));
        sqlx::query("UPDATE person SET status = 'disabled' WHERE person_id = $1")
            .bind(harry_id.0)
            .execute(app.db.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(ask().await, Err(AuthzError::Denied(Denial::Inactive))));
    })
    .await;
}

#[tokio::test]
async fn nobody_gives_a_grant_that_ranks_as_high_as_their_own() {
    each_backend(async |app: TestApp| {
        let dora = app.add_person("dora", true).await;
        let sam = app.add_person("sam", false).await;
        let find = |email: String| {
            let directory = app.state.directory.clone();
            async move { directory.find(&email).await.unwrap_or_else(|e| panic!("{e}")).id }
        };
        let (dora_id, sam_id) = (find(dora.email.clone()).await, find(sam.email.clone()).await);
        let admin = lifeline::domain::Grant { directory_admin: true, ..Default::default() };
        app.state
            .directory
            .set_grant(system(&app.state, Some(dora_id)).await, admin)
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        let as_dora = || app.state.authority.authorize::<SetGrant>(Principal::Account(dora.account_id), Some(sam_id));
        let helpdesk = lifeline::domain::Grant { dpa_level: 3, expert_mode: true, ..Default::default() };
        let proof = as_dora().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(app.state.directory.set_grant(proof, helpdesk).await.is_ok(), "rank 4 is below a directory admin's 5");
        // Sam now ranks 4: still below Dora, but Dora may not make a peer.
        let proof = as_dora().await.unwrap_or_else(|e| panic!("{e}"));
        let refused = app.state.directory.set_grant(proof, admin).await;
        assert!(matches!(refused, Err(lifeline::directory::DirectoryError::Invalid(_))), "{refused:?}");
        assert_eq!(app.person_json(&sam.email).await["permissions"]["directory_admin"], false);
    })
    .await;
}
