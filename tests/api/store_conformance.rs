//! The storage conformance suite: what every backend must do, checked through the store traits only.
//! Each test runs against every backend in `stores()` (SQLite now; a later backend adds itself there).

use crate::helpers::new_person;
use lifeline::audit::{Actor, AuditEntry};
use lifeline::crypto::{Keys, MasterKey, TokenHash};
use lifeline::domain::AccountId;
use lifeline::domain::LockReason;
use lifeline::policy::lockout::LockoutPolicy;
use lifeline::store::{
    AuditStore, CodeUse, FailureResult, RateBucket, RateCharge, Sealing, SessionStage, SignInEvent, SqlStore, Store,
    StoreError,
};
use std::sync::Arc;

/// A fresh, migrated store per backend, with its label for failure messages and the guard that drops it.
async fn stores() -> Vec<(&'static str, Arc<dyn Store>, crate::helpers::TestDb)> {
    let mut stores: Vec<(&'static str, Arc<dyn Store>, crate::helpers::TestDb)> = Vec::new();
    for db in crate::helpers::databases().await {
        let store = SqlStore::connect(&db.url).await.unwrap_or_else(|e| panic!("{}: {e}", db.label));
        store.migrate().await.unwrap_or_else(|e| panic!("{}: {e}", db.label));
        let store = store.with_audit_key(keys().audit_key());
        store.seal_audit_chain(0).await.unwrap_or_else(|e| panic!("{}: {e}", db.label));
        stores.push((db.label, Arc::new(store), db));
    }
    stores
}

fn audit() -> AuditEntry {
    AuditEntry::new(1, &Actor::System, "test", "success")
}

/// A sign-in attempt to record with a counter change or a consumed code.
fn attempt(account: AccountId, at: i64, outcome: &str) -> SignInEvent {
    SignInEvent {
        account_id: Some(account),
        at,
        outcome: outcome.into(),
        method: "test".into(),
        client_ip: "127.0.0.1".into(),
        city: None,
        country: None,
        asn: None,
        network: "127.0.0.0/24".into(),
        user_agent: String::new(),
    }
}

fn keys() -> Keys {
    Keys::new(&MasterKey::from_hex(&"42".repeat(32)).unwrap_or_else(|e| panic!("{e}")))
}

async fn person(store: &dyn Store, username: &str) -> AccountId {
    let (_, account) = store
        .create_person(&new_person("Some One", &format!("{username}@example.org"), username), 1_000, &audit())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    account.id
}

#[tokio::test]
async fn people_are_unique_by_email_and_username_and_found_by_either() {
    for (backend, store, _dir) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let dup_email = store.create_person(&new_person("Other", "ada@example.org", "other"), 1, &audit()).await;
        assert!(matches!(dup_email, Err(StoreError::Conflict(m)) if m.contains("email")), "{backend}");
        let dup_user = store.create_person(&new_person("Other", "other@example.org", "ada"), 1, &audit()).await;
        assert!(matches!(dup_user, Err(StoreError::Conflict(m)) if m.contains("username")), "{backend}");
        // The failed insert left no person behind (the person row is rolled back with the account).
        let other = lifeline::domain::EmailAddress::parse("other@example.org").unwrap_or_else(|e| panic!("{e}"));
        assert!(store.person_by_email(&other).await.unwrap_or_else(|e| panic!("{e}")).is_none(), "{backend}");
        for login in ["ada", "ADA", "ada@example.org", " Ada@Example.org "] {
            let found = store.account_by_login(login).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(found.map(|a| a.id), Some(id), "{backend}: {login}");
        }
        assert!(store.account_by_login("nobody").await.unwrap_or_else(|e| panic!("{e}")).is_none());
    }
}

/// Authorisation reads an actor in one query: the account, the person's status, a confirmed authenticator and
/// the grant (the defaults without a grant row); a subject's grant comes with the check that they exist.
#[tokio::test]
async fn an_actor_is_read_with_person_authenticator_and_grant_and_a_missing_one_is_none() {
    use lifeline::domain::{Grant, PersonStatus};
    for (backend, store, _dir) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let record =
            store.actor_record(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("{backend}"));
        assert_eq!(record.account.id, id, "{backend}");
        assert_eq!(record.person_status, PersonStatus::Active, "{backend}");
        assert!(!record.has_totp, "{backend}");
        assert_eq!(record.grant, Grant::default(), "{backend}");
        let person_id = record.account.person_id;
        assert_eq!(store.person_grant(person_id).await.unwrap_or_else(|e| panic!("{e}")), Some(Grant::default()));

        let grant = Grant { dpa_level: 2, expert_mode: true, auditor: false, directory_admin: true };
        store.set_grant(person_id, &grant, &audit()).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            store
                .enrol_totp(id, b"sealed", 10, &[], 2, &audit(), false, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        let record =
            store.actor_record(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("{backend}"));
        assert!(record.has_totp, "{backend}");
        assert_eq!(record.grant, grant, "{backend}");
        assert_eq!(store.person_grant(person_id).await.unwrap_or_else(|e| panic!("{e}")), Some(grant), "{backend}");

        let nobody = AccountId(id.0 + 1_000);
        assert!(store.actor_record(nobody).await.unwrap_or_else(|e| panic!("{e}")).is_none(), "{backend}");
        let no_person = lifeline::domain::PersonId(person_id.0 + 1_000);
        assert!(store.person_grant(no_person).await.unwrap_or_else(|e| panic!("{e}")).is_none(), "{backend}");
    }
}

/// More people than a search reads in name order before it turns to the trigram index (4,096): a common
/// text is answered from the first people in order, a rare one from the index, and both page the same way.
#[tokio::test]
async fn a_search_finds_common_and_rare_text_alike_in_a_large_directory() {
    for (backend, store, _dir) in stores().await {
        let mut rows: Vec<_> = (0..4_300)
            .map(|i| new_person(&format!("Common Person {i:05}"), &format!("p{i}@example.org"), &format!("user{i}")))
            .collect();
        // Sorted after every common person, so only the trigram index finds them quickly.
        rows.push(new_person("Zed Quixotic", "zq@example.org", "zq"));
        rows.push(new_person("Zoe Quixotic", "zoe@example.org", "zoe_q"));
        rows.push(new_person("Zu 50% Off", "zu@example.org", "zu"));
        store.import_people(&rows, 1_000, &audit(), &|_| ()).await.unwrap_or_else(|e| panic!("{e}"));
        let search = async |text: &str, after: Option<(&str, lifeline::domain::PersonId)>, limit: i64| {
            store.search_people(text, false, 2_000, after, limit).await.unwrap_or_else(|e| panic!("{e}"))
        };
        let names = |hits: &[lifeline::store::PersonHit]| {
            hits.iter().map(|h| h.person.display_name.to_string()).collect::<Vec<_>>()
        };
        // Rare: past the window, by the index; by name, email and username, any case.
        assert_eq!(names(&search("QUIXOT", None, 50).await), ["Zed Quixotic", "Zoe Quixotic"], "{backend}");
        assert_eq!(names(&search("zoe@exa", None, 50).await), ["Zoe Quixotic"], "{backend}");
        assert_eq!(names(&search("oe_q", None, 50).await), ["Zoe Quixotic"], "{backend}: _ is a character");
        assert_eq!(names(&search("50%", None, 50).await), ["Zu 50% Off"], "{backend}: % is a character");
        assert_eq!(names(&search("zu", None, 50).await), ["Zu 50% Off"], "{backend}: shorter than a trigram");
        assert!(search("no such text", None, 50).await.is_empty(), "{backend}");
        // Rare, a page at a time.
        let first = search("quixotic", None, 1).await;
        let after = Some((first[0].sort_key.as_str(), first[0].person.id));
        assert_eq!(names(&search("quixotic", after, 1).await), ["Zoe Quixotic"], "{backend}");
        // Common: the first in name order, and the next page from the cursor, deep into the directory.
        let page = search("person", None, 3).await;
        assert_eq!(names(&page), ["Common Person 00000", "Common Person 00001", "Common Person 00002"], "{backend}");
        let deep = search("person 041", None, 200).await;
        assert_eq!(deep.len(), 100, "{backend}: 04100 to 04199");
        let last = deep.last().unwrap_or_else(|| panic!("{backend}: a page"));
        let rest = search("person 04", Some((last.sort_key.as_str(), last.person.id)), 200).await;
        assert_eq!(
            names(&rest),
            (4_200..4_300).map(|i| format!("Common Person {i:05}")).collect::<Vec<_>>(),
            "{backend}: past the window, the rest from the index"
        );
        // Each hit comes with its account.
        assert_eq!(page[0].accounts.len(), 1, "{backend}");
        assert_eq!(page[0].accounts[0].account.username.as_str(), "user0", "{backend}");
    }
}

/// People added one at a time where there is no room left between two others (on SQLite a search row's place
/// in name order is a number between its neighbours', and a crowded stretch is spread out again), before
/// everyone, and by a small import into a larger directory: every search still comes back in name order, and
/// pages from a cursor neither repeat nor skip anyone.
#[tokio::test]
async fn people_added_one_by_one_into_a_crowded_place_are_found_in_name_order() {
    for (backend, store, _dir) in stores().await {
        let add = async |name: &str, user: &str| {
            store
                .create_person(&new_person(name, &format!("{user}@example.org"), user), 1_000, &audit())
                .await
                .unwrap_or_else(|e| panic!("{backend}: {e}"));
        };
        add("Crowd Before", "before").await;
        add("Crowd Zafter", "zafter").await;
        // 80 people with one name go between the same two neighbours (by id, in the order they come): each
        // halves the gap, and past 32 the stretch is spread out.
        for i in 0..80 {
            add("Crowd Middle", &format!("mid{i:02}")).await;
        }
        // 40 people sort before everyone, each before the last.
        for i in (0..40).rev() {
            add(&format!("Crowd Aa{i:02}"), &format!("aa{i:02}")).await;
        }
        // A small import (fewer than an eighth of the directory) is placed row by row.
        let rows: Vec<_> = (0..10)
            .map(|i| new_person(&format!("Crowd Middle {i}"), &format!("imp{i}@example.org"), &format!("imp{i}")))
            .collect();
        store.import_people(&rows, 1_000, &audit(), &|_| ()).await.unwrap_or_else(|e| panic!("{e}"));

        let mut expected: Vec<String> = (0..40).map(|i| format!("Crowd Aa{i:02}")).collect();
        expected.push("Crowd Before".into());
        expected.extend((0..80).map(|_| "Crowd Middle".to_string()));
        expected.extend((0..10).map(|i| format!("Crowd Middle {i}")));
        expected.push("Crowd Zafter".into());
        let mut seen = Vec::new();
        let mut usernames = Vec::new();
        let mut after: Option<(String, lifeline::domain::PersonId)> = None;
        loop {
            let cursor = after.as_ref().map(|(k, id)| (k.as_str(), *id));
            let page = store.search_people("crowd", false, 2_000, cursor, 7).await.unwrap_or_else(|e| panic!("{e}"));
            let Some(last) = page.last() else { break };
            after = Some((last.sort_key.clone(), last.person.id));
            for hit in &page {
                seen.push(hit.person.display_name.to_string());
                usernames.push(hit.accounts[0].account.username.to_string());
            }
        }
        assert_eq!(seen, expected, "{backend}: pages of 7 in name order");
        // The 80 namesakes in the order they came (their ids).
        let middle: Vec<String> = usernames.iter().filter(|u| u.starts_with("mid")).cloned().collect();
        assert_eq!(middle, (0..80).map(|i| format!("mid{i:02}")).collect::<Vec<_>>(), "{backend}");
        // Short text (read in order) and text only some have.
        let short = store.search_people("aa", false, 2_000, None, 3).await.unwrap_or_else(|e| panic!("{e}"));
        let short: Vec<String> = short.iter().map(|h| h.person.display_name.to_string()).collect();
        assert_eq!(short, ["Crowd Aa00", "Crowd Aa01", "Crowd Aa02"], "{backend}");
        let some = store.search_people("middle 1", false, 2_000, None, 50).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(some.len(), 1, "{backend}: only Crowd Middle 1");
    }
}

#[tokio::test]
async fn people_are_found_by_part_of_a_name_username_or_email_and_by_lock() {
    for (backend, store, _dir) in stores().await {
        for (name, email, username) in [
            ("Ada Lovelace", "ada@example.org", "alove"),
            ("Lou Locked", "lou@corp.example", "lou"),
            ("Percy 100% Sure", "percy@example.org", "per_cy"),
        ] {
            store
                .create_person(&new_person(name, email, username), 1_000, &audit())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let names = |hits: Vec<lifeline::store::PersonHit>| {
            hits.into_iter().map(|h| h.person.display_name.to_string()).collect::<Vec<_>>()
        };
        let search = |text: &'static str, locked_only: bool| {
            let store = store.clone();
            async move { store.search_people(text, locked_only, 2_000, None, 50).await.unwrap_or_else(|e| panic!("{e}")) }
        };
        assert_eq!(names(search("LOVE", false).await), ["Ada Lovelace"], "{backend}: name or username, any case");
        assert_eq!(names(search("corp.ex", false).await), ["Lou Locked"], "{backend}: part of an email");
        assert_eq!(names(search("", false).await), ["Ada Lovelace", "Lou Locked", "Percy 100% Sure"], "{backend}");
        // Pattern characters are plain text: `%` and `_` match only themselves.
        assert_eq!(names(search("0%", false).await), ["Percy 100% Sure"], "{backend}");
        assert_eq!(names(search("r_c", false).await), ["Percy 100% Sure"], "{backend}");
        assert!(search("a_a", false).await.is_empty(), "{backend}: _ is not a wildcard");

        let lou = search("lou", false).await;
        let account = lou[0].accounts[0].account.id;
        assert!(!lou[0].accounts[0].has_totp, "{backend}");
        store
            .lock_account(account, lifeline::domain::LockReason::Failures, 1_500, &audit())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names(search("", true).await), ["Lou Locked"], "{backend}: only the locked");
        assert!(search("ada", true).await.is_empty(), "{backend}");
        let limited = store.search_people("", false, 2_000, None, 2).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(limited.len(), 2, "{backend}");
        // The next page starts after the last one listed, by the database's own order.
        let last = &limited[1];
        let after = Some((last.sort_key.as_str(), last.person.id));
        let next = store.search_people("", false, 2_000, after, 50).await.unwrap_or_else(|e| panic!("{e}"));
        let all = store.search_people("", false, 2_000, None, 50).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names(next), names(all[2..].to_vec()), "{backend}");
    }
}

/// Admit one attempt the way the sign-in service does: read, decide with the policy, compare-and-set,
/// and read again when another attempt got there first. Returns whether it was admitted.
async fn admit(store: &dyn Store, id: AccountId, policy: &LockoutPolicy, now: i64) -> bool {
    for _ in 0..100 {
        let account = store.account(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("account"));
        let seen = lifeline::policy::lockout::AttemptState::of(&account);
        let Ok(next) = policy.admit(&seen, now) else { return false };
        if store.admit_attempt(id, &seen, &next).await.unwrap_or_else(|e| panic!("{e}")) {
            return true;
        }
    }
    panic!("no decision after 100 rounds")
}

/// One wrong attempt, admitted and then recorded as a failure.
async fn fail(store: &dyn Store, id: AccountId, policy: &LockoutPolicy, now: i64) -> Option<FailureResult> {
    if !admit(store, id, policy, now).await {
        return None;
    }
    Some(
        store
            .record_failure(id, policy, now, &attempt(id, now, "bad_password"))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn no_delays() -> LockoutPolicy {
    LockoutPolicy { delay_base_seconds: 0, temporary_lock_seconds: None, ..Default::default() }
}

#[tokio::test]
async fn parallel_attempts_are_admitted_only_up_to_the_lock_and_exactly_one_failure_locks() {
    for (backend, store, _dir) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let policy = no_delays();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (store, policy) = (store.clone(), policy.clone());
            tasks.push(tokio::spawn(async move { fail(store.as_ref(), id, &policy, 2_000).await }));
        }
        let (mut admitted, mut locked_now) = (0, 0);
        for t in tasks {
            if let Some(result) = t.await.unwrap_or_else(|e| panic!("{e}")) {
                admitted += 1;
                locked_now += usize::from(result.locked_now);
            }
        }
        assert_eq!((admitted, locked_now), (5, 1), "{backend}: five admitted, exactly one failure locks");
        let account = store.account(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("account"));
        assert_eq!(
            (account.failed_attempts, account.locked_at, account.lock_reason),
            (5, Some(2_000), Some(LockReason::Failures))
        );
        assert!(!admit(store.as_ref(), id, &policy, 9_999_999).await, "{backend}: a permanent lock admits nothing");
    }
}

#[tokio::test]
async fn a_released_attempt_gives_its_count_back_unless_a_lock_came_first() {
    for (backend, store, _dir) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let policy = no_delays();
        assert!(admit(store.as_ref(), id, &policy, 100).await);
        assert!(store.release_attempt(id, 100, None, 101).await.unwrap_or_else(|e| panic!("{e}")), "{backend}");
        let account = store.account(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("account"));
        assert_eq!((account.failed_attempts, account.last_failed_at), (0, None), "{backend}");
        // A right password in flight while wrong ones lock the account: the lock wins.
        assert!(admit(store.as_ref(), id, &policy, 200).await);
        for _ in 0..5 {
            fail(store.as_ref(), id, &policy, 200).await;
        }
        assert!(!store.release_attempt(id, 200, None, 201).await.unwrap_or_else(|e| panic!("{e}")), "{backend}");
        assert!(!store.reset_failures(id, 201).await.unwrap_or_else(|e| panic!("{e}")), "{backend}");
        // An operator unlocks it, once.
        let unlock = AuditEntry::new(300, &Actor::System, "account.unlock", "success").account(id);
        assert!(store.unlock_account(id, "system", 300, &unlock).await.unwrap_or_else(|e| panic!("{e}")));
        assert!(!store.unlock_account(id, "system", 301, &unlock).await.unwrap_or_else(|e| panic!("{e}")));
        let account = store.account(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("account"));
        assert_eq!(
            (account.locked_at, account.failed_attempts, account.unlocked_by.as_deref(), account.unlocked_at),
            (None, 0, Some("system"), Some(300)),
            "{backend}"
        );
        // Attempts counted but never settled (no lock to lift) are lifted too.
        for _ in 0..5 {
            assert!(admit(store.as_ref(), id, &policy, 400).await);
        }
        assert!(store.unlock_account(id, "system", 401, &unlock).await.unwrap_or_else(|e| panic!("{e}")));
        assert!(admit(store.as_ref(), id, &policy, 402).await, "{backend}: admitted again at once");
    }
}

#[tokio::test]
async fn an_expired_temporary_lock_gives_way_to_a_longer_one() {
    for (backend, store, _dir) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let policy = LockoutPolicy { temporary_lock_seconds: Some(60), delay_base_seconds: 0, ..Default::default() };
        for _ in 0..5 {
            fail(store.as_ref(), id, &policy, 1_000).await;
        }
        let account = store.account(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("account"));
        assert_eq!(account.locked_until, Some(1_060), "{backend}");
        assert!(
            lifeline::policy::lockout::LockState::of(&account).is_locked(1_059)
                && !lifeline::policy::lockout::LockState::of(&account).is_locked(1_060)
        );
        assert!(fail(store.as_ref(), id, &policy, 1_059).await.is_none(), "{backend}: nothing admitted while locked");

        let after = fail(store.as_ref(), id, &policy, 1_070).await;
        assert_eq!(
            after.map(|a| (a.failed_attempts, a.locked_now)),
            Some((1, false)),
            "{backend}: counting starts again"
        );
        for _ in 0..4 {
            fail(store.as_ref(), id, &policy, 1_080).await;
        }
        let account = store.account(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("account"));
        assert_eq!((account.locked_at, account.locked_until), (Some(1_080), Some(1_200)), "{backend}: twice as long");
    }
}

#[tokio::test]
async fn client_windows_take_at_most_their_limit_under_concurrency() {
    for (backend, store, _dir) in stores().await {
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move { store.reserve_client_attempt("192.0.2.7", 600, 10).await }));
        }
        let mut taken = 0;
        for t in tasks {
            taken += usize::from(t.await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("{e}")));
        }
        assert_eq!(taken, 10, "{backend}");
        store.release_client_attempt("192.0.2.7", 600).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(store.reserve_client_attempt("192.0.2.7", 600, 10).await.unwrap_or_else(|e| panic!("{e}")));
        assert!(!store.reserve_client_attempt("192.0.2.7", 600, 10).await.unwrap_or_else(|e| panic!("{e}")));
        assert!(
            store.reserve_client_attempt("192.0.2.7", 1_200, 10).await.unwrap_or_else(|e| panic!("{e}")),
            "{backend}"
        );
        assert_eq!(store.delete_old_throttle_windows(1_200).await.unwrap_or_else(|e| panic!("{e}")), 1, "{backend}");
    }
}

#[tokio::test]
async fn a_backup_code_is_consumed_exactly_once_under_concurrency() {
    for (backend, store, db) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let k = keys();
        let codes: Vec<TokenHash> = (0..10).map(|i| TokenHash::of(&k, "backup-code", &format!("CODE{i}"))).collect();
        store
            .replace_backup_codes(id, &codes, 1, &audit(), &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (store, code) = (store.clone(), codes[4].clone());
            tasks.push(tokio::spawn(async move {
                store.consume_backup_code(id, &code, 5, &attempt(id, 5, "success")).await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("{backend}: {e}")) == CodeUse::Used {
                wins += 1;
            }
        }
        assert_eq!(wins, 1, "{backend}");
        assert_eq!(store.unused_backup_codes(id).await.unwrap_or_else(|e| panic!("{e}")), 9);
        let recorded = store.recent_sign_ins(id, 100).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(recorded.len(), 1, "{backend}: only the use that consumed the code is recorded, with it");
        let unknown = TokenHash::of(&k, "backup-code", "NOPE");
        let used = store.consume_backup_code(id, &unknown, 6, &attempt(id, 6, "success")).await;
        assert_eq!(used.unwrap_or_else(|e| panic!("{e}")), CodeUse::NotAccepted);
        // On a locked account a right code is refused and stays unused.
        for _ in 0..5 {
            fail(store.as_ref(), id, &no_delays(), 7).await;
        }
        let used = store.consume_backup_code(id, &codes[5], 8, &attempt(id, 8, "success")).await;
        assert_eq!(used.unwrap_or_else(|e| panic!("{e}")), CodeUse::Refused, "{backend}");
        assert_eq!(store.unused_backup_codes(id).await.unwrap_or_else(|e| panic!("{e}")), 9, "{backend}");

        // A disabled person's right code is refused too, and stays unused (the step re-checks the person).
        let other = person(store.as_ref(), "bob").await;
        store
            .replace_backup_codes(other, &codes[..1], 1, &audit(), &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let pool = SqlStore::connect(&db.url).await.unwrap_or_else(|e| panic!("{e}"));
        sqlx::query("UPDATE person SET status = 'disabled' WHERE email = 'bob@example.org'")
            .execute(pool.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let used = store.consume_backup_code(other, &codes[0], 9, &attempt(other, 9, "success")).await;
        assert_eq!(used.unwrap_or_else(|e| panic!("{e}")), CodeUse::Refused, "{backend}");
        assert_eq!(store.unused_backup_codes(other).await.unwrap_or_else(|e| panic!("{e}")), 1, "{backend}");
        pool.close().await;
    }
}

#[tokio::test]
async fn totp_steps_only_move_forward() {
    for (backend, store, _dir) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let use_step = async |step: i64| {
            store.use_totp_step(id, step, 50, &attempt(id, 50, "success")).await.unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(use_step(10).await, CodeUse::NotAccepted, "{backend}: no authenticator yet");
        assert!(
            store
                .enrol_totp(id, b"sealed", 10, &[], 2, &audit(), true, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(
            !store
                .enrol_totp(id, b"other", 11, &[], 3, &audit(), true, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("{e}")),
            "{backend}: a confirmed authenticator is not replaced by an enrolment"
        );
        assert_eq!(use_step(10).await, CodeUse::NotAccepted, "{backend}: step used at confirmation");
        assert_eq!(use_step(11).await, CodeUse::Used);
        assert_eq!(use_step(11).await, CodeUse::NotAccepted);
        let record = store.totp(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("totp"));
        assert_eq!((record.sealed_secret.as_slice(), record.confirmed_at), (&b"sealed"[..], Some(2)), "{backend}");
    }
}

#[tokio::test]
async fn sessions_expire_and_advance_under_a_new_token() {
    for (backend, store, _dir) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let k = keys();
        let (t1, t2) = (TokenHash::of(&k, "session", "one"), TokenHash::of(&k, "session", "two"));
        store.create_session(&t1, id, SessionStage::Mfa, 100, 160).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            store.session(&t1, 159).await.unwrap_or_else(|e| panic!("{e}")).map(|s| s.stage),
            Some(SessionStage::Mfa),
            "{backend}"
        );
        assert!(
            store.session(&t1, 160).await.unwrap_or_else(|e| panic!("{e}")).is_none(),
            "{backend}: expired on time"
        );
        assert!(
            store.advance_session(&t1, &t2, SessionStage::Active, 120, 500).await.unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(store.session(&t1, 121).await.unwrap_or_else(|e| panic!("{e}")).is_none());
        assert_eq!(
            store.session(&t2, 400).await.unwrap_or_else(|e| panic!("{e}")).map(|s| s.stage),
            Some(SessionStage::Active)
        );
        store.delete_session(&t2).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(store.session(&t2, 401).await.unwrap_or_else(|e| panic!("{e}")).is_none());
    }
}

#[tokio::test]
async fn an_import_with_one_bad_row_writes_nothing() {
    for (backend, store, _dir) in stores().await {
        let mut rows = vec![new_person("A", "a@example.org", "a"), new_person("B", "b@example.org", "b")];
        rows.push(new_person("C", "c@example.org", "a")); // username taken by the first row
        let result = store.import_people(&rows, 1, &audit(), &|_| {}).await;
        assert!(result.is_err(), "{backend}");
        assert_eq!(store.count_people().await.unwrap_or_else(|e| panic!("{e}")), 0, "{backend}: rolled back");
    }
}

#[tokio::test]
async fn sign_in_events_come_back_newest_first() {
    for (backend, store, _dir) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        for (at, outcome) in [(10, "bad_password"), (20, "success")] {
            let event = SignInEvent {
                account_id: Some(id),
                at,
                outcome: outcome.into(),
                method: "password".into(),
                client_ip: "81.2.69.142".into(),
                city: Some("London".into()),
                country: Some("GB".into()),
                asn: None,
                network: "81.2.69.0/24".into(),
                user_agent: "test".into(),
            };
            store.record_sign_in(&event).await.unwrap_or_else(|e| panic!("{e}"));
        }
        let events = store.recent_sign_ins(id, 10).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            events.iter().map(|e| e.outcome.as_str()).collect::<Vec<_>>(),
            ["success", "bad_password"],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn expired_sessions_are_swept_and_live_ones_kept() {
    for (backend, store, _db) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let k = keys();
        let (old, live) = (TokenHash::of(&k, "session", "old"), TokenHash::of(&k, "session", "live"));
        store.create_session(&old, id, SessionStage::Active, 100, 200).await.unwrap_or_else(|e| panic!("{e}"));
        store.create_session(&live, id, SessionStage::Active, 100, 900).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.delete_expired_sessions(500).await.unwrap_or_else(|e| panic!("{e}")), 1, "{backend}");
        assert!(store.session(&live, 500).await.unwrap_or_else(|e| panic!("{e}")).is_some());
        // Safe to run on every instance: a second sweep finds nothing.
        assert_eq!(store.delete_expired_sessions(500).await.unwrap_or_else(|e| panic!("{e}")), 0);
    }
}

#[tokio::test]
async fn copy_db_knows_every_table_of_the_schema() {
    for db in crate::helpers::databases().await {
        let store = SqlStore::connect(&db.url).await.unwrap_or_else(|e| panic!("{e}"));
        store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
        let sql = match store.backend() {
            lifeline::store::Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            }
            lifeline::store::Backend::Postgres => {
                "SELECT CAST(tablename AS TEXT) AS name FROM pg_tables WHERE schemaname = 'public'"
            }
        };
        let tables: Vec<String> =
            sqlx::query_scalar(sql).fetch_all(store.pool()).await.unwrap_or_else(|e| panic!("{e}"));
        let known: Vec<&str> = lifeline::store::copy::copied_tables()
            .into_iter()
            .chain(lifeline::store::copy::NOT_COPIED.iter().copied())
            .collect();
        for table in tables {
            assert!(
                known.contains(&table.as_str()),
                "{}: table {table} is neither copied nor listed as left behind",
                db.label
            );
        }
    }
}

#[tokio::test]
async fn concurrent_audit_writers_build_one_unbroken_chain() {
    for (backend, store, _db) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let policy = no_delays();
        // Five attempts in flight, so that the first failure recorded below locks the account.
        for _ in 0..5 {
            assert!(admit(store.as_ref(), id, &policy, 1).await);
        }
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (store, policy) = (store.clone(), policy.clone());
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    store.append_audit(&AuditEntry::new(i, &Actor::Public, "test.append", "success")).await.map(|_| ())
                } else {
                    store.record_failure(id, &policy, i, &attempt(id, i, "bad_password")).await.map(|_| ())
                }
            }));
        }
        for t in tasks {
            t.await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("{backend}: {e}"));
        }
        let head = store.audit_head().await.unwrap_or_else(|e| panic!("{e}"));
        let records = store.audit_records(0, 1000).await.unwrap_or_else(|e| panic!("{e}"));
        // person.add, 20 appends, 20 failed attempts, one lock.
        assert_eq!(records.len(), 42, "{backend}");
        let key = keys().audit_key();
        let mut verifier = lifeline::audit::Verifier::new(&key);
        records.iter().for_each(|r| verifier.check(r));
        // A new database has no row from before the chain was keyed.
        assert_eq!(verifier.finish(&head), Ok(lifeline::audit::Verified { rows: 42, legacy_rows: 0 }), "{backend}");
    }
}

#[tokio::test]
async fn the_audit_head_is_sealed_once_and_only_its_key_continues_the_log() {
    for (backend, store, db) in stores().await {
        assert_eq!(store.seal_audit_chain(5).await.unwrap_or_else(|e| panic!("{e}")), Sealing::AlreadySealed);
        store.append_audit(&audit()).await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        // Another key neither seals over the head nor continues the log (that would launder a moved head).
        let other_key = Keys::new(&MasterKey::from_hex(&"17".repeat(32)).unwrap_or_else(|e| panic!("{e}"))).audit_key();
        let other = SqlStore::connect(&db.url).await.unwrap_or_else(|e| panic!("{e}")).with_audit_key(other_key);
        assert!(other.seal_audit_chain(5).await.is_err(), "{backend}");
        assert!(other.append_audit(&audit()).await.is_err(), "{backend}");
        let keyless = SqlStore::connect(&db.url).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(keyless.append_audit(&audit()).await, Err(StoreError::NoAuditKey)), "{backend}");
        let head = store.audit_head().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head.last_id, 1, "{backend}: only the right key appended");
    }
}

fn bucket(key: &str, window_start: i64, max: i64) -> RateBucket {
    RateBucket { key: key.into(), window_start, max }
}

#[tokio::test]
async fn rate_limits_charge_every_bucket_or_none_and_old_windows_are_swept() {
    for (backend, store, _db) in stores().await {
        let take = |buckets: Vec<RateBucket>| {
            let store = store.clone();
            async move { store.take_rate_limits(&buckets).await.unwrap_or_else(|e| panic!("{e}")) }
        };
        for _ in 0..2 {
            assert_eq!(take(vec![bucket("ip:a", 0, 2), bucket("global", 0, 3)]).await, RateCharge::Taken, "{backend}");
        }
        // ip:a is full: refused, and global is not charged for it — however often it is asked.
        for _ in 0..5 {
            assert_eq!(
                take(vec![bucket("ip:a", 0, 2), bucket("global", 0, 3)]).await,
                RateCharge::Refused { full: vec![0] },
                "{backend}"
            );
        }
        assert_eq!(take(vec![bucket("ip:b", 0, 2), bucket("global", 0, 3)]).await, RateCharge::Taken, "{backend}");
        // Now both are full and both are named; ip:c, refused with them, keeps its room.
        assert_eq!(
            take(vec![bucket("ip:a", 0, 2), bucket("ip:c", 0, 1), bucket("global", 0, 3)]).await,
            RateCharge::Refused { full: vec![0, 2] },
            "{backend}"
        );
        assert_eq!(take(vec![bucket("ip:c", 0, 1)]).await, RateCharge::Taken, "{backend}");
        assert_eq!(take(vec![bucket("ip:a", 100_000, 2)]).await, RateCharge::Taken, "{backend}: a new window");
        assert_eq!(store.delete_old_rate_limit_windows(50_000).await.unwrap_or_else(|e| panic!("{e}")), 4, "{backend}");
        assert_eq!(take(vec![bucket("ip:a", 100_000, 2)]).await, RateCharge::Taken, "{backend}: the window was kept");
        assert_eq!(take(vec![bucket("ip:a", 100_000, 2)]).await, RateCharge::Refused { full: vec![0] }, "{backend}");
    }
}

#[tokio::test]
async fn concurrent_takers_never_take_more_than_a_bucket_holds() {
    for (backend, store, _db) in stores().await {
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let store = store.clone();
                // Shared buckets in different orders: still no deadlock, and still exactly ten.
                let mut buckets =
                    vec![bucket("global", 0, 50), bucket("email:victim", 0, 10), bucket(&format!("ip:{i}"), 0, 5)];
                if i % 2 == 0 {
                    buckets.reverse();
                }
                tokio::spawn(async move { store.take_rate_limits(&buckets).await })
            })
            .collect();
        let mut taken = 0;
        for task in tasks {
            if task.await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("{backend}: {e}"))
                == RateCharge::Taken
            {
                taken += 1;
            }
        }
        assert_eq!(taken, 10, "{backend}");
        // The 30 refused were not charged to the global bucket: exactly 40 more fit.
        for _ in 0..40 {
            if store.take_rate_limits(&[bucket("global", 0, 50)]).await.unwrap_or_else(|e| panic!("{e}"))
                != RateCharge::Taken
            {
                panic!("{backend}: the global bucket was charged for refused requests");
            }
        }
        let over = store.take_rate_limits(&[bucket("global", 0, 50)]).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(over, RateCharge::Refused { full: vec![0] }, "{backend}");
    }
}

fn new_request(email: &str, at: i64) -> lifeline::store::NewAssistanceRequest {
    lifeline::store::NewAssistanceRequest {
        reference: lifeline::domain::ReferenceId::from_code(&lifeline::crypto::typed_code(2)),
        submitted_email: email.into(),
        problem: lifeline::domain::ProblemType::LockedOut,
        description: None,
        client_ip: "81.2.69.142".into(),
        user_agent: String::new(),
        created_at: at,
    }
}

fn processed(joins: Option<(i64, i64)>, network: &str) -> lifeline::store::Processed {
    lifeline::store::Processed {
        person_id: None,
        account_id: None,
        dossier_json: "{}".into(),
        network: network.into(),
        country: Some("GB".into()),
        joins,
        notified: Vec::new(),
        emails: Vec::new(),
        digest_due_at: None,
    }
}

/// Intake charges its limits and stores the request in one transaction: of 30 concurrent submissions against a
/// window of 10, exactly 10 are stored and charged, and a refused one leaves neither a request nor a charge.
#[tokio::test]
async fn a_request_is_stored_with_its_charge_or_neither_under_concurrency() {
    for (backend, store, _db) in stores().await {
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let request = new_request(&format!("p{i}@example.org"), 100);
                    store.insert_assistance_request_charged(&[bucket("intake", 0, 10)], &request).await
                })
            })
            .collect();
        let mut taken = 0;
        for task in tasks {
            match task.await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("{backend}: {e}")) {
                RateCharge::Taken => taken += 1,
                RateCharge::Refused { full } => assert_eq!(full, [0], "{backend}"),
            }
        }
        assert_eq!(taken, 10, "{backend}");
        let mut stored = 0;
        while store.claim_received_request(200, 60).await.unwrap_or_else(|e| panic!("{e}")).is_some() {
            stored += 1;
        }
        assert_eq!(stored, 10, "{backend}: the refused stored nothing");
        // The window holds 10 charges, not 30: one more fits under a limit of 11.
        let one_more = store.take_rate_limits(&[bucket("intake", 0, 11)]).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one_more, RateCharge::Taken, "{backend}");
    }
}

#[tokio::test]
async fn a_repeat_joins_only_the_open_request_its_emails_were_composed_for() {
    use lifeline::store::ProcessOutcome;
    for (backend, store, _db) in stores().await {
        for at in [100, 101] {
            store
                .insert_assistance_request(&new_request("hank@example.org", at))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let claim = || async { store.claim_received_request(200, 60).await.unwrap_or_else(|e| panic!("{e}")) };
        let first = claim().await.unwrap_or_else(|| panic!("{backend}: first"));
        let outcome = store.complete_assistance_request(first.id, &processed(None, "AS1"), 0, 200).await;
        assert_eq!(outcome.unwrap_or_else(|e| panic!("{e}")), ProcessOutcome::Opened, "{backend}");
        let second = claim().await.unwrap_or_else(|| panic!("{backend}: second"));
        // Composed as if nothing were open, or for a stale repeat count: refused, nothing written.
        for stale in [None, Some((first.id, 1))] {
            let outcome = store.complete_assistance_request(second.id, &processed(stale, "AS2"), 0, 200).await;
            assert_eq!(outcome.unwrap_or_else(|e| panic!("{e}")), ProcessOutcome::Stale, "{backend}");
        }
        let outcome =
            store.complete_assistance_request(second.id, &processed(Some((first.id, 0)), "AS2"), 0, 200).await;
        assert_eq!(outcome.unwrap_or_else(|e| panic!("{e}")), ProcessOutcome::JoinedOpen { open_id: first.id });
        let submissions = store.assistance_submissions(first.id).await.unwrap_or_else(|e| panic!("{e}"));
        let seen: Vec<(&str, Option<&str>)> =
            submissions.iter().map(|r| (r.status.as_str(), r.network.as_deref())).collect();
        assert_eq!(seen, [("open", Some("AS1")), ("joined", Some("AS2"))], "{backend}");
        assert_eq!(submissions[0].repeat_count, 1, "{backend}");
    }
}

#[tokio::test]
async fn retention_removes_old_sign_in_events_and_closed_requests_and_keeps_the_audit_log() {
    use lifeline::config::RetentionSettings;
    use lifeline::retention::Removed;
    const DAY: i64 = 86_400;
    let now = 2_000_000_000;
    let settings = RetentionSettings { sign_in_events_days: 365, closed_requests_days: 180 };
    for (backend, store, _db) in stores().await {
        let hank = person(store.as_ref(), "hank").await;
        for at in [now - 400 * DAY, now - 10 * DAY] {
            store.record_sign_in(&attempt(hank, at, "success")).await.unwrap_or_else(|e| panic!("{e}"));
        }
        // Requests opened at `at` (each a repeat of the one before when `joins`), closed at `closed`.
        let mut references: Vec<(String, Option<i64>)> = Vec::new();
        for (email, at, joins, closed) in [
            ("old@example.org", now - 300 * DAY, false, Some(now - 200 * DAY)),
            ("old@example.org", now - 300 * DAY + 1, true, None),
            ("recent@example.org", now - 20 * DAY, false, Some(now - 10 * DAY)),
            ("open@example.org", now - 300 * DAY, false, None),
        ] {
            let request = new_request(email, at);
            store.insert_assistance_request(&request).await.unwrap_or_else(|e| panic!("{e}"));
            let claimed = store.claim_received_request(at, 60).await.unwrap_or_else(|e| panic!("{e}"));
            let claimed = claimed.unwrap_or_else(|| panic!("{backend}: claimed"));
            let joins = if joins {
                let open = store.assistance_request(&references[references.len() - 1].0).await;
                open.unwrap_or_else(|e| panic!("{e}")).map(|o| (o.id, o.repeat_count))
            } else {
                None
            };
            let outcome = store.complete_assistance_request(claimed.id, &processed(joins, "AS1"), 0, at).await;
            assert_ne!(outcome.unwrap_or_else(|e| panic!("{e}")), lifeline::store::ProcessOutcome::Stale, "{backend}");
            references.push((request.reference.to_string(), closed));
        }
        for (reference, closed) in &references {
            if let Some(at) = closed {
                let audit = AuditEntry::new(*at, &Actor::System, "assistance.resolve", "success");
                let done = store
                    .close_assistance_request(reference, lifeline::domain::RequestStatus::Resolved, "done", &audit)
                    .await;
                assert!(done.unwrap_or_else(|e| panic!("{e}")), "{backend}");
            }
        }
        let before = store.audit_records(0, 10_000).await.unwrap_or_else(|e| panic!("{e}"));

        let removed = lifeline::retention::run(store.as_ref(), &settings, now).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(removed, Removed { sign_in_events: 1, closed_requests: 2 }, "{backend}");
        let left = store.recent_sign_ins(hank, 10).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(left.iter().map(|e| e.at).collect::<Vec<_>>(), [now - 10 * DAY], "{backend}");
        let mut kept = Vec::new();
        for (reference, _) in &references {
            kept.push(store.assistance_request(reference).await.unwrap_or_else(|e| panic!("{e}")).is_some());
        }
        assert_eq!(kept, [false, false, true, true], "{backend}: the old closed request and its repeat went");

        // The audit log keeps every row it had, and gains one per kind removed; the chain still verifies.
        let after = store.audit_records(0, 10_000).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(after[..before.len()], before[..], "{backend}");
        let added: Vec<&str> = after[before.len()..].iter().map(|r| r.entry.action.as_str()).collect();
        assert_eq!(added, ["retention.sign_in_events", "retention.closed_requests"], "{backend}");
        let head = store.audit_head().await.unwrap_or_else(|e| panic!("{e}"));
        let key = keys().audit_key();
        let mut verifier = lifeline::audit::Verifier::new(&key);
        after.iter().for_each(|r| verifier.check(r));
        assert!(verifier.finish(&head).is_ok(), "{backend}");

        // Idempotent: a second run (another instance) removes and audits nothing.
        let again = lifeline::retention::run(store.as_ref(), &settings, now).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, Removed::default(), "{backend}");
        assert_eq!(store.audit_records(0, 10_000).await.unwrap_or_default().len(), after.len(), "{backend}");
    }
}

fn secret(
    account: AccountId,
    kind: lifeline::store::SecretKind,
    hash: &str,
    expires_at: i64,
) -> lifeline::store::NewSecret {
    lifeline::store::NewSecret {
        account,
        kind,
        hash: TokenHash(hash.into()),
        expires_at,
        multi_use: false,
        action: None,
        reference: None,
    }
}

fn redemption<'a>(
    hash: &'a TokenHash,
    kinds: &'a [lifeline::store::SecretKind],
    audit: &'a AuditEntry,
    now: i64,
) -> lifeline::store::Redemption<'a> {
    lifeline::store::Redemption {
        hash,
        kinds,
        account: None,
        effect: lifeline::store::RedeemEffect::Nothing,
        emails: &[],
        secrets: &[],
        audit,
        event: None,
        now,
    }
}

#[tokio::test]
async fn a_recovery_secret_is_redeemed_once_by_its_kind_until_it_expires_or_a_newer_one_replaces_it() {
    use lifeline::store::{RecoveryChange, SecretKind};
    for (label, store, db) in stores().await {
        let id = person(store.as_ref(), "sam").await;
        let issue = RecoveryChange::Issue { account: id };
        let a = secret(id, SecretKind::RecoveryCode, "code-a", 100);
        assert!(store.apply_recovery(&issue, &[a], &[], None, &audit(), 10).await.unwrap(), "{label}");
        let hash = TokenHash("code-a".into());
        let entry = audit();
        // Another kind does not redeem it; after its expiry nothing does.
        assert!(store.redeem(&redemption(&hash, &[SecretKind::AccessLink], &entry, 20)).await.unwrap().is_none());
        assert!(store.redeem(&redemption(&hash, &[SecretKind::RecoveryCode], &entry, 100)).await.unwrap().is_none());
        // Fifty at once: exactly one wins.
        let b = secret(id, SecretKind::RecoveryCode, "code-b", 1000);
        store.apply_recovery(&issue, &[b], &[], None, &audit(), 20).await.unwrap();
        let hash_b = TokenHash("code-b".into());
        let kinds = [SecretKind::RecoveryCode];
        let r = redemption(&hash_b, &kinds, &entry, 30);
        let tries = (0..50).map(|_| store.redeem(&r));
        let wins = futures::future::join_all(tries).await.into_iter().filter(|r| matches!(r, Ok(Some(_)))).count();
        assert_eq!(wins, 1, "{label}");
        // A newer secret of the kind revokes the live one.
        let c = secret(id, SecretKind::RecoveryCode, "code-c", 1000);
        let d = secret(id, SecretKind::RecoveryCode, "code-d", 1000);
        store.apply_recovery(&issue, &[c], &[], None, &audit(), 40).await.unwrap();
        store.apply_recovery(&issue, &[d], &[], None, &audit(), 41).await.unwrap();
        let hash_c = TokenHash("code-c".into());
        assert!(store.secret(&hash_c).await.unwrap().unwrap().revoked_at.is_some(), "{label}");
        assert!(store.redeem(&redemption(&hash_c, &kinds, &entry, 50)).await.unwrap().is_none(), "{label}");
        let hash_d = TokenHash("code-d".into());
        assert!(store.redeem(&redemption(&hash_d, &kinds, &entry, 50)).await.unwrap().is_some(), "{label}");
        // Nothing to change is no change, and writes no audit row.
        let unlock = RecoveryChange::Unlock { accounts: vec![id], unlocked_by: "system".into() };
        assert!(!store.apply_recovery(&unlock, &[], &[], None, &audit(), 60).await.unwrap(), "{label}");
        // A new password revokes every live secret but the "this wasn't me" link.
        let e = secret(id, SecretKind::MagicLink, "link-e", 1000);
        let f = secret(id, SecretKind::NotMe, "not-me-f", 1000);
        store.apply_recovery(&issue, &[e, f], &[], None, &audit(), 70).await.unwrap();
        store.set_password(id, "new-hash", false, None, 80, &audit(), &Default::default()).await.unwrap();
        for (hash, revoked) in [("link-e", true), ("not-me-f", false)] {
            let secret = store.secret(&TokenHash(hash.into())).await.unwrap().unwrap();
            assert_eq!(secret.revoked_at.is_some(), revoked, "{label}: {hash}");
        }
        // At most one live pass per person: one for their second account replaces the first account's.
        let person_id = store.account(id).await.unwrap().unwrap().person_id;
        let raw = SqlStore::connect(&db.url).await.unwrap();
        sqlx::query("INSERT INTO account (person_id, username, source, created_at) VALUES ($1, 'sam-two', 'local', 1)")
            .bind(person_id.0)
            .execute(raw.pool())
            .await
            .unwrap();
        raw.close().await;
        let second = store.account_by_login("sam-two").await.unwrap().unwrap().id;
        let g = secret(id, SecretKind::TemporaryAccessPass, "pass-g", 1000);
        store.apply_recovery(&issue, &[g], &[], None, &audit(), 90).await.unwrap();
        let h = secret(second, SecretKind::TemporaryAccessPass, "pass-h", 1000);
        store.apply_recovery(&RecoveryChange::Issue { account: second }, &[h], &[], None, &audit(), 91).await.unwrap();
        // So does a password reset with security questions.
        let i = secret(id, SecretKind::MagicLink, "link-i", 1000);
        store.apply_recovery(&issue, &[i], &[], None, &audit(), 92).await.unwrap();
        assert!(store.reset_password_by_qa(id, "qa-hash", 93, &audit(), &Default::default()).await.unwrap(), "{label}");
        for (hash, revoked) in [("pass-g", true), ("pass-h", false), ("link-i", true)] {
            let secret = store.secret(&TokenHash(hash.into())).await.unwrap().unwrap();
            assert_eq!(secret.revoked_at.is_some(), revoked, "{label}: {hash}");
        }
    }
}

#[tokio::test]
async fn twenty_concurrent_issuances_leave_one_live_secret_of_the_kind() {
    use lifeline::store::{RecoveryChange, SecretKind};
    for (label, store, db) in stores().await {
        let id = person(store.as_ref(), "sam").await;
        let issue = RecoveryChange::Issue { account: id };
        let secrets: Vec<_> =
            (0..20).map(|n| secret(id, SecretKind::TemporaryAccessPass, &format!("pass-{n}"), 10_000)).collect();
        let entries: Vec<_> = (0..20).map(|_| audit()).collect();
        let tries = secrets
            .iter()
            .zip(&entries)
            .map(|(s, e)| store.apply_recovery(&issue, std::slice::from_ref(s), &[], None, e, 100));
        for result in futures::future::join_all(tries).await {
            result.unwrap_or_else(|e| panic!("{label}: {e}"));
        }
        let raw = SqlStore::connect(&db.url).await.unwrap();
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_secret WHERE account_id = $1 AND kind = 'temporary_access_pass' \
             AND revoked_at IS NULL",
        )
        .bind(id.0)
        .fetch_one(raw.pool())
        .await
        .unwrap();
        raw.close().await;
        assert_eq!(live, 1, "{label}: one live pass");
    }
}

#[tokio::test]
async fn an_api_token_is_found_by_its_hash_only_while_live_and_revoked_once() {
    use lifeline::store::NewApiToken;
    for (label, store, _db) in stores().await {
        let id = person(store.as_ref(), "ada").await;
        let hash = TokenHash("token-hash-a".into());
        let new = NewApiToken { account: id, name: "ticketing bot", hash: &hash, expert: false, expires_at: 1_000 };
        let token = store.create_token(&new, 100, &audit()).await.unwrap();
        let found = store.use_token(&hash, 200).await.unwrap().unwrap_or_else(|| panic!("{label}: live"));
        assert_eq!((found.id, found.name.as_str(), found.last_used_at), (token, "ticketing bot", Some(200)), "{label}");
        assert!(store.use_token(&TokenHash("other".into()), 200).await.unwrap().is_none(), "{label}");
        // The last use is written again only a minute on: a busy token costs no write per call.
        assert_eq!(store.use_token(&hash, 259).await.unwrap().and_then(|t| t.last_used_at), Some(200), "{label}");
        assert_eq!(store.use_token(&hash, 260).await.unwrap().and_then(|t| t.last_used_at), Some(260), "{label}");
        assert!(store.use_token(&hash, 1_000).await.unwrap().is_none(), "{label}: expired at its time");
        assert_eq!(store.tokens(Some(id)).await.unwrap().len(), 1, "{label}");
        assert_eq!(store.tokens(None).await.unwrap().len(), 1, "{label}");
        assert!(store.revoke_token(token, 300, &audit()).await.unwrap(), "{label}");
        assert!(!store.revoke_token(token, 301, &audit()).await.unwrap(), "{label}: once");
        assert!(store.use_token(&hash, 400).await.unwrap().is_none(), "{label}: revoked");
        assert_eq!(store.token(token).await.unwrap().unwrap().revoked_at, Some(300), "{label}");
    }
}

#[tokio::test]
async fn the_waiting_queues_report_how_many_wait_and_since_when() {
    use lifeline::store::ProcessOutcome;
    for (backend, store, _db) in stores().await {
        assert_eq!(store.open_requests_waiting().await.unwrap_or_else(|e| panic!("{e}")), (0, None), "{backend}");
        assert_eq!(store.oldest_unsent_email_at().await.unwrap_or_else(|e| panic!("{e}")), None, "{backend}");
        for (email, at) in [("ivy@example.org", 100), ("jon@example.org", 150)] {
            store.insert_assistance_request(&new_request(email, at)).await.unwrap_or_else(|e| panic!("{e}"));
        }
        // The first is processed (open, one email queued at 200); the second is still only received.
        let first = store.claim_received_request(200, 60).await.unwrap_or_else(|e| panic!("{e}")).unwrap();
        let mut done = processed(None, "AS1");
        done.emails = vec![lifeline::email::OutgoingEmail::new(
            "example.org",
            "helpdesk@example.org",
            "Assistance requested",
            "text".into(),
            "<p>html</p>".into(),
        )];
        let outcome = store.complete_assistance_request(first.id, &done, 0, 200).await;
        assert_eq!(outcome.unwrap_or_else(|e| panic!("{e}")), ProcessOutcome::Opened, "{backend}");
        let waiting = store.open_requests_waiting().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(waiting, (1, Some(first.created_at)), "{backend}: only open requests wait for an admin");
        assert_eq!(store.oldest_unsent_email_at().await.unwrap_or_else(|e| panic!("{e}")), Some(200), "{backend}");
        let claimed = store.claim_due_emails(300, 60, 10).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claimed.len(), 1, "{backend}");
        store.mark_email_sent(claimed[0].id, 301).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.oldest_unsent_email_at().await.unwrap_or_else(|e| panic!("{e}")), None, "{backend}");
    }
}

/// A person managed by `manager` (an email), returned with their person id.
async fn report(store: &dyn Store, username: &str, manager: Option<&str>) -> (lifeline::domain::PersonId, AccountId) {
    let mut new = new_person(&format!("Report {username}"), &format!("{username}@example.org"), username);
    new.manager_email = manager.map(|m| lifeline::domain::EmailAddress::parse(m).unwrap());
    let (person, account) = store.create_person(&new, 1_000, &audit()).await.unwrap_or_else(|e| panic!("{e}"));
    (person.id, account.id)
}

#[tokio::test]
async fn a_reporting_line_reaches_indirect_reports_only_and_a_cycle_made_by_hand_ends() {
    for (backend, store, db) in stores().await {
        let (mona, _) = report(&*store, "mona", None).await;
        let (sam, _) = report(&*store, "sam", Some("mona@example.org")).await;
        let (ivy, _) = report(&*store, "ivy", Some("sam@example.org")).await;
        let (ola, _) = report(&*store, "ola", None).await;
        assert!(store.has_reports(mona).await.unwrap() && !store.has_reports(ivy).await.unwrap(), "{backend}");
        assert!(store.manages(mona, sam).await.unwrap(), "{backend}: direct");
        assert!(store.manages(mona, ivy).await.unwrap(), "{backend}: indirect");
        assert!(!store.manages(sam, mona).await.unwrap(), "{backend}: not upwards");
        assert!(!store.manages(mona, ola).await.unwrap() && !store.manages(mona, mona).await.unwrap(), "{backend}");
        let names = |hits: Vec<lifeline::store::PersonHit>| -> Vec<String> {
            hits.into_iter().map(|h| h.person.display_name.to_string()).collect()
        };
        assert_eq!(names(store.search_reports(mona, "report", 20).await.unwrap()), ["Report ivy", "Report sam"]);
        assert_eq!(names(store.search_reports(mona, "IVY@", 20).await.unwrap()), ["Report ivy"], "{backend}");
        assert!(store.search_reports(mona, "%", 20).await.unwrap().is_empty(), "{backend}: % is no wildcard");
        assert!(store.search_reports(sam, "ola", 20).await.unwrap().is_empty(), "{backend}");
        // A cycle (Mona reports to Ivy) is bounded, not endless, and nobody becomes their own report.
        sqlx::query("UPDATE person SET manager_id = $1 WHERE person_id = $2")
            .bind(ivy.0)
            .bind(mona.0)
            .execute(SqlStore::connect(&db.url).await.unwrap().pool())
            .await
            .unwrap();
        assert!(store.manages(sam, mona).await.unwrap(), "{backend}: in the cycle, Mona is under Sam too");
        let in_line = names(store.search_reports(mona, "report", 20).await.unwrap());
        assert_eq!(in_line, ["Report ivy", "Report sam"], "{backend}: not herself");
    }
}

#[tokio::test]
async fn a_secure_link_gives_its_sealed_password_once_under_concurrency_and_a_ticket_moves_only_from_where_it_was() {
    use lifeline::store::{ManagerResetChange, NewSecureLink, NewTicket, TicketChange, TicketKind, TicketStatus};
    for (backend, store, _db) in stores().await {
        let (manager, manager_account) = report(&*store, "mona", None).await;
        let (subject, account) = report(&*store, "sam", Some("mona@example.org")).await;
        let hash = lifeline::crypto::TokenHash("ab".repeat(32));
        let ticket = NewTicket {
            reference: "TK-TEST-0001".into(),
            kind: TicketKind::ManagerReset,
            requester: manager,
            subject,
            subject_account: Some(account),
            status: TicketStatus::Resolved,
            summary: "reset".into(),
            author: "mona".into(),
            note: "asked".into(),
            confirm_hash: None,
        };
        let link = NewSecureLink {
            hash: hash.clone(),
            manager_account,
            subject_account: account,
            sealed_password: vec![1, 2, 3],
            expires_at: 2_000,
        };
        let change = ManagerResetChange {
            account,
            password_hash: Some("$argon2id$fake".into()),
            password_until: Some(2_000),
            reset_mfa: true,
            device_authorization: false,
        };
        let id = store
            .apply_manager_reset(&change, &ticket, Some(&link), None, &[], &audit(), 1_000)
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        let stored = store.account(account).await.unwrap().unwrap();
        assert!(stored.required.change_password, "{backend}: a temporary password must be changed");
        assert_eq!(stored.temporary_password_until, Some(2_000), "{backend}");

        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (store, hash) = (store.clone(), hash.clone());
            tasks.push(tokio::spawn(async move { store.use_secure_link(&hash, 1_500, &audit()).await }));
        }
        let mut got = 0;
        for task in tasks {
            if let Some(sealed) = task.await.unwrap().unwrap_or_else(|e| panic!("{backend}: {e}")) {
                assert_eq!(sealed, vec![1, 2, 3]);
                got += 1;
            }
        }
        assert_eq!(got, 1, "{backend}");
        let used = store.secure_link(&hash).await.unwrap().unwrap();
        assert_eq!(used.used_at, Some(1_500), "{backend}");

        // Resolved → confirmed once; a second confirmation (from `resolved`) changes nothing.
        let confirm = |now| TicketChange {
            ticket: id,
            from: &[TicketStatus::Resolved],
            to: Some(TicketStatus::Confirmed),
            assignee: None,
            author: "link",
            note: "works",
            confirm_hash: Some(None),
            emails: &[],
            audit: &AUDIT,
            now,
        };
        static AUDIT: std::sync::LazyLock<AuditEntry> = std::sync::LazyLock::new(audit);
        assert!(store.change_ticket(&confirm(1_600)).await.unwrap(), "{backend}");
        assert!(!store.change_ticket(&confirm(1_700)).await.unwrap(), "{backend}");
        let t = store.ticket("TK-TEST-0001").await.unwrap().unwrap();
        assert_eq!((t.status, t.updated_at), (TicketStatus::Confirmed, 1_600), "{backend}");
        let notes = store.ticket_notes(id).await.unwrap();
        assert_eq!(notes.len(), 2, "{backend}: {notes:?}");
    }
}

/// A passkey's credential belongs to one account: a second registration of it (by anyone) is refused with
/// nothing written, and only its own account renames, uses or removes it.
#[tokio::test]
async fn a_passkey_is_registered_once_and_only_its_account_renames_or_removes_it() {
    use lifeline::store::NewPasskey;
    for (backend, store, _db) in stores().await {
        let ada = person(store.as_ref(), "ada").await;
        let bob = person(store.as_ref(), "bob").await;
        let new = |account, name| NewPasskey {
            account,
            credential_id: "Y3JlZC0x",
            name,
            credential: "{}",
            completes_enrolment: false,
        };
        let added =
            store.add_passkey(&new(ada, "Laptop"), 100, &audit(), &[], &[]).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((added.account, added.name.as_str(), added.created_at), (ada, "Laptop", 100), "{backend}");
        let again = store.add_passkey(&new(bob, "Mine now"), 101, &audit(), &[], &[]).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{backend}: {again:?}");
        assert!(store.passkeys(bob).await.unwrap_or_else(|e| panic!("{e}")).is_empty(), "{backend}");

        let changes = store.authenticator_changes(ada, 5).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((changes[0].0.as_str(), changes[0].1.as_str()), ("passkey", "bound"), "{backend}: the history");
        let record = store.authenticator_record(ada, 5).await.unwrap_or_else(|e| panic!("{e}"));
        let line = &record[0];
        assert_eq!(
            (line.kind.as_str(), line.change.as_str(), line.actor.as_str(), line.detail.as_deref()),
            ("passkey", "bound", audit().actor.as_str(), Some("Laptop")),
            "{backend}: the record names who bound which"
        );

        // A locked account's passkey completes no sign-in: nothing is written.
        store
            .lock_account(ada, lifeline::domain::LockReason::Admin, 110, &audit())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = attempt(ada, 120, "success");
        assert!(
            !store.use_passkey(added.id, "{}", "{\"counter\":9}", &refused).await.unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(store.recent_sign_ins(ada, 5).await.unwrap_or_else(|e| panic!("{e}")).is_empty(), "{backend}");
        store.unlock_account(ada, "test", 130, &audit()).await.unwrap_or_else(|e| panic!("{e}"));

        assert!(!store.rename_passkey(bob, added.id, "Stolen", &audit()).await.unwrap_or_else(|e| panic!("{e}")));
        assert!(store.rename_passkey(ada, added.id, "Work laptop", &audit()).await.unwrap_or_else(|e| panic!("{e}")));
        let event = attempt(ada, 150, "success");
        assert!(store.use_passkey(added.id, "{}", "{\"counter\":2}", &event).await.unwrap_or_else(|e| panic!("{e}")));
        // A second assertion read the credential as it was before the first: it lost the race.
        let late = attempt(ada, 151, "success");
        assert!(!store.use_passkey(added.id, "{}", "{\"counter\":2}", &late).await.unwrap_or_else(|e| panic!("{e}")));
        let found = store.passkey_by_credential("Y3JlZC0x").await.unwrap_or_else(|e| panic!("{e}"));
        let found = found.unwrap_or_else(|| panic!("{backend}: found by its credential id"));
        assert_eq!(
            (found.name.as_str(), found.credential.as_str(), found.last_used_at),
            ("Work laptop", "{\"counter\":2}", Some(150)),
            "{backend}"
        );
        let events = store.recent_sign_ins(ada, 5).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(events.len(), 1, "{backend}: the sign-in recorded with the use");

        assert!(!store.remove_passkey(bob, added.id, 200, &audit(), &[], &[]).await.unwrap_or_else(|e| panic!("{e}")));
        assert!(store.remove_passkey(ada, added.id, 200, &audit(), &[], &[]).await.unwrap_or_else(|e| panic!("{e}")));
        assert!(store.passkeys(ada).await.unwrap_or_else(|e| panic!("{e}")).is_empty(), "{backend}");
        assert!(!store.use_passkey(added.id, "{}", "{}", &event).await.unwrap_or_else(|e| panic!("{e}")), "{backend}");
    }
}

/// A WebAuthn ceremony finishes once: of 20 concurrent takers exactly one gets its state; taken as something
/// else it is spent; at its expiry it is gone.
#[tokio::test]
async fn a_ceremony_is_taken_once_only_for_its_purpose_and_before_it_expires() {
    use lifeline::store::CeremonyPurpose;
    for (backend, store, _db) in stores().await {
        let ada = person(store.as_ref(), "ada").await;
        let id = |n: &str| TokenHash::of(&keys(), "webauthn-ceremony", n);
        store
            .begin_ceremony(&id("one"), CeremonyPurpose::Register, Some(ada), "{\"rs\":1}", 500)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let takers: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                let hash = id("one");
                tokio::spawn(async move { store.take_ceremony(&hash, CeremonyPurpose::Register, 100).await })
            })
            .collect();
        let mut got = Vec::new();
        for t in takers {
            if let Some(taken) = t.await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("{e}")) {
                got.push(taken);
            }
        }
        assert_eq!(got, [(Some(ada), "{\"rs\":1}".to_string())], "{backend}: exactly one taker");

        store
            .begin_ceremony(&id("two"), CeremonyPurpose::SignIn, None, "{}", 500)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let wrong = store.take_ceremony(&id("two"), CeremonyPurpose::Register, 100).await;
        assert_eq!(wrong.unwrap_or_else(|e| panic!("{e}")), None, "{backend}: not a registration");
        let spent = store.take_ceremony(&id("two"), CeremonyPurpose::SignIn, 100).await;
        assert_eq!(spent.unwrap_or_else(|e| panic!("{e}")), None, "{backend}: spent by the wrong try");

        store
            .begin_ceremony(&id("three"), CeremonyPurpose::SignIn, None, "{}", 500)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let late = store.take_ceremony(&id("three"), CeremonyPurpose::SignIn, 500).await;
        assert_eq!(late.unwrap_or_else(|e| panic!("{e}")), None, "{backend}: expired at its lifetime");
    }
}
