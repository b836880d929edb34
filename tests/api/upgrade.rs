//! A database written by the code before issue 8 (the workspace and the new RustCrypto, rand and sqlx
//! generations) opens with today's code: it is migrated, its key gets a fingerprint on first start, and people
//! sign in with their old password hashes, their old sealed TOTP secrets and their old backup codes.
//! The fixture and how it was made: `tests/data/pre-issue-8/README.md`.

use crate::helpers::*;
use lifeline::totp::TotpSecret;
use reqwest::StatusCode;
use std::path::Path;

const PASSWORD: &str = "orchid-lantern-meadow-97";

/// Today's Lifeline over a copy of the fixture (the fixture itself is never written).
async fn open_old_database() -> TestApp {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pre-issue-8");
    for file in ["lifeline.db", "lifeline.key"] {
        std::fs::copy(fixture.join(file), dir.path().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let settings = test_settings(dir.path());
    let db = existing_sqlite(&dir.path().join("lifeline.db"));
    spawn_in(dir, settings, db).await
}

fn old(username: &str, totp: Option<&str>) -> Person {
    Person {
        email: format!("{username}@example.org"),
        username: username.into(),
        password: PASSWORD.into(),
        totp: totp.map(|s| TotpSecret::from_base32(s).unwrap_or_else(|| panic!("a base32 secret"))),
        backup_codes: Vec::new(),
        account_id: lifeline::domain::AccountId(0),
    }
}

#[tokio::test]
async fn people_sign_in_with_what_the_code_before_the_upgrade_stored() {
    let app = open_old_database().await;
    // The key was given a fingerprint on this first start: a wrong key would now be refused.
    let fingerprints: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_fingerprint")
        .fetch_one(app.db.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fingerprints, 1);

    // An old argon2 hash and an old sealed TOTP secret.
    let olga = old("olga", Some("D652QCLIYU6VQBKO3CGN5X2V42EXKAWD"));
    let browser = browser();
    let response = app.post_sign_in(&browser, "olga", PASSWORD).await;
    assert_eq!(location(&response), "/signin/mfa");
    let secret = olga.totp.as_ref().unwrap_or_else(|| panic!("totp"));
    let response = app.post_code(&browser, &code(secret, 0)).await;
    assert_eq!((response.status(), location(&response)), (StatusCode::SEE_OTHER, "/".to_owned()));
    let home = browser.get(app.url("/")).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(home.text().await.unwrap_or_default().contains("Hello, Olga Older"));

    // An old hashed backup code.
    let browser = crate::helpers::browser();
    let response = app.post_sign_in(&browser, "olga", PASSWORD).await;
    assert_eq!(location(&response), "/signin/mfa");
    let response = app.post_code(&browser, "T2MG-M4YK-EZSQ-3JM9").await;
    assert_eq!((response.status(), location(&response)), (StatusCode::SEE_OTHER, "/".to_owned()));

    // A password alone, and a wrong one still refused.
    let pat = old("pat", None);
    let response = app.post_sign_in(&crate::helpers::browser(), &pat.username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_ne!(location(&response), "/signin");
    let wrong = app.post_sign_in(&crate::helpers::browser(), "pat", "orchid-lantern-meadow-98").await;
    assert!(wrong.text().await.unwrap_or_default().contains(INVALID));
}
