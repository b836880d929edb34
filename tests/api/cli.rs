//! The `lifeline` binary as an operator runs it, and TOTP checked against `oathtool`.

use crate::helpers::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// An operator's shell: a working directory (key file, CSV files) and a fresh database.
pub struct Shell {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
}

/// Run `test` once per database in `databases()`.
async fn each_shell(test: impl AsyncFn(Shell)) {
    for db in databases().await {
        println!("--- on {}", db.label);
        test(Shell { dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")), db }).await;
    }
}

impl Shell {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run the `lifeline` binary here, with `stdin` as its input and `env` on top of this shell's.
    fn lifeline(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
        run_lifeline(self.path(), &self.db.url, args, stdin, env)
    }
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(o), stderr(o)))
}

#[tokio::test]
async fn a_code_from_oathtool_signs_in_a_person_added_with_totp() {
    each_shell(async |shell: Shell| {
        let added = shell.lifeline(
            &["person", "add", "--email", "olga@example.org", "--name", "Olga Oath", "--totp", "--json"],
            &format!("{PASSWORD}\n"),
            &[],
        );
        assert!(added.status.success(), "{}", stderr(&added));
        let added = json(&added);
        let uri = added["otpauth_uri"].as_str().unwrap_or_default();
        assert!(uri.starts_with("otpauth://totp/Lifeline:olga?secret="), "{uri}");
        assert_eq!(added["backup_codes"].as_array().map(Vec::len), Some(10));
        let secret = uri.split("secret=").nth(1).and_then(|s| s.split('&').next()).unwrap_or_default();

        let oathtool = Command::new("oathtool").args(["--totp", "-b", secret]).output().unwrap_or_else(|e| {
            panic!("oathtool is needed for this test (apt-get install oathtool; .ci/run installs it): {e}")
        });
        assert!(oathtool.status.success(), "{}", stderr(&oathtool));
        let code = stdout(&oathtool).trim().to_owned();
        assert_eq!(code.len(), 6);

        let mut settings = test_settings(shell.path());
        settings.database_url = shell.db.url.clone();
        let app = spawn_in(shell.dir, settings, shell.db).await;
        let browser = browser();
        assert_eq!(location(&app.post_sign_in(&browser, "olga", PASSWORD).await), "/signin/mfa");
        assert_eq!(location(&app.post_code(&browser, &code).await), "/");
    })
    .await;
}

#[tokio::test]
async fn init_creates_the_first_administrator_once() {
    each_shell(async |shell: Shell| {
        let init = shell.lifeline(
            &["init", "--email", "root@example.org", "--name", "Root Admin"],
            &format!("{PASSWORD}\n"),
            &[],
        );
        assert!(init.status.success(), "{}", stderr(&init));
        let shown = json(&shell.lifeline(&["person", "show", "root@example.org", "--json"], "", &[]));
        assert_eq!(shown["permissions"]["dpa_level"], 3);
        assert_eq!(shown["permissions"]["expert_mode"], true);
        assert_eq!(shown["permissions"]["directory_admin"], true);
        assert_eq!(shown["rank"], 5);
        let again =
            shell.lifeline(&["init", "--email", "other@example.org", "--name", "Other"], &format!("{PASSWORD}\n"), &[]);
        assert!(!again.status.success());
        assert!(stderr(&again).contains("already has an administrator"));
        // The key file was created private.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(shell.path().join("lifeline.key"))
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
    })
    .await;
}

#[tokio::test]
async fn person_show_and_grant_report_status_locks_mfa_and_permissions() {
    each_shell(async |shell: Shell| {
        let add = shell.lifeline(
            &["person", "add", "--email", "Hal@Example.org", "--name", "Hal Help", "--username", "hal"],
            &format!("{PASSWORD}\n"),
            &[],
        );
        assert!(add.status.success(), "{}", stderr(&add));
        let grant = shell.lifeline(&["person", "grant", "hal@example.org", "--dpa", "2", "--expert"], "", &[]);
        assert!(grant.status.success(), "{}", stderr(&grant));
        let shown = json(&shell.lifeline(&["person", "show", "HAL@example.org", "--json"], "", &[]));
        assert_eq!(shown["email"], "hal@example.org");
        assert_eq!(shown["status"], "active");
        assert_eq!(shown["permissions"]["dpa_level"], 2);
        assert_eq!(shown["permissions"]["expert_mode"], true);
        assert_eq!(shown["rank"], 3);
        let account = &shown["accounts"][0];
        assert_eq!(account["username"], "hal");
        assert_eq!(account["source"], "local");
        assert_eq!(account["locked"], false);
        assert_eq!(account["locked_at"], serde_json::Value::Null);
        assert_eq!(account["mfa"]["totp_enabled"], false);
        assert_eq!(account["mfa"]["backup_codes_unused"], 0);
    })
    .await;
}

#[tokio::test]
async fn bad_cli_input_gets_a_clear_message_and_a_non_zero_exit() {
    each_shell(async |shell: Shell| {
        // (arguments, stdin, environment, what the message must mention)
        type Case<'a> = (Vec<&'a str>, &'a str, Vec<(&'a str, &'a str)>, &'a str);
        let cases: Vec<Case> = vec![
            (vec!["person", "add", "--email", "not-an-email", "--name", "X"], PASSWORD, vec![], "email"),
            (vec!["person", "add", "--email", "x@example.org", "--name", "X"], "", vec![], "password on stdin"),
            (
                vec!["person", "add", "--email", "x@example.org", "--name", "X"],
                "password\n",
                vec![],
                "too easy to guess",
            ),
            (
                vec!["person", "add", "--email", "x@example.org", "--name", "X", "--source", "ldap"],
                PASSWORD,
                vec![],
                "local, synchronized, sso",
            ),
            (
                vec!["person", "add", "--email", "x@example.org", "--name", "X", "--manager", "nobody@example.org"],
                PASSWORD,
                vec![],
                "manager",
            ),
            (vec!["person", "show", "ghost@example.org"], "", vec![], "no person"),
            (vec!["person", "grant", "ghost@example.org", "--dpa", "7"], "", vec![], "dpa"),
            (vec!["person", "frobnicate"], "", vec![], "frobnicate"),
            (
                vec!["migrate"],
                "",
                vec![("LIFELINE_LOCKOUT__FAILED_ATTEMPTS_BEFORE_LOCK", "lots")],
                "failed_attempts_before_lock",
            ),
            (vec!["migrate"], "", vec![("LIFELINE_LISTEN", "nowhere")], "listen"),
            (vec!["migrate"], "", vec![("LIFELINE_CONFIG", "/no/such/lifeline.toml")], "/no/such/lifeline.toml"),
            (vec!["migrate"], "", vec![("LIFELINE_NO_SUCH_SETTING", "1")], "no_such_setting"),
            (vec!["migrate"], "", vec![("LIFELINE_DATABASE_URL", "mysql://x")], "database_url"),
            (vec!["serve"], "", vec![("LIFELINE_GEOIP_CITY", "/no/such.mmdb")], "/no/such.mmdb"),
        ];
        for (args, input, env, needle) in cases {
            let out = shell.lifeline(&args, input, &env);
            assert!(!out.status.success(), "{args:?} should fail");
            let message = stderr(&out).to_lowercase();
            assert!(message.contains(&needle.to_lowercase()), "{args:?}: {message}");
            assert!(!message.contains("panicked"), "{args:?}: {message}");
        }
        // Nothing was half-created along the way.
        let shown = shell.lifeline(&["person", "show", "x@example.org"], "", &[]);
        assert!(!shown.status.success());
    })
    .await;
}

#[tokio::test]
async fn import_writes_all_rows_or_none_and_names_the_bad_lines() {
    each_shell(async |shell: Shell| {
        let write = |name: &str, text: &str| {
            let path = shell.path().join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            path.display().to_string()
        };

        let unknown = write("unknown.csv", "email,display_name,shoe_size\na@example.org,A,42\n");
        let out = shell.lifeline(&["person", "import", &unknown], "", &[]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("unknown column(s) shoe_size"), "{}", stderr(&out));

        let bad = write(
            "bad.csv",
            "email,display_name,manager_email,source\n\
         mia@example.org,Mia Manager,,local\n\
         not-an-email,Broken Row,,local\n\
         rex@example.org,Rex Report,mia@example.org,wizard\n\
         mia@example.org,Mia Again,,local\n\
         tom@example.org,Tom,ghost@example.org,local\n",
        );
        let out = shell.lifeline(&["person", "import", &bad], "", &[]);
        assert!(!out.status.success());
        let message = stderr(&out);
        for needle in [
            "line 3: email",
            "line 4: source",
            "line 5: email mia@example.org appears twice",
            "line 6: manager ghost@example.org",
            "nothing was imported",
        ] {
            assert!(message.contains(needle), "{needle:?} in {message}");
        }
        assert!(
            !shell.lifeline(&["person", "show", "mia@example.org"], "", &[]).status.success(),
            "nothing half-imported"
        );

        // Reports may come before their manager in the file.
        let good = write(
            "good.csv",
            "email,display_name,manager_email,department,source\n\
         rex@example.org,Rex Report,mia@example.org,Sales,synchronized\n\
         mia@example.org,Mia Manager,,Sales,local\n\
         \"o'neil@example.org\",\"O'Neil, Pat\",mia@example.org,,sso\n",
        );
        let out = shell.lifeline(&["person", "import", &good], "", &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("Imported 3 people"));
        let rex = json(&shell.lifeline(&["person", "show", "rex@example.org", "--json"], "", &[]));
        assert_eq!(rex["manager_email"], "mia@example.org");
        assert_eq!(rex["accounts"][0]["source"], "synchronized");
        let pat = json(&shell.lifeline(&["person", "show", "o'neil@example.org", "--json"], "", &[]));
        assert_eq!(pat["display_name"], "O'Neil, Pat");

        // Importing the same file again conflicts with what exists, and changes nothing.
        let again = shell.lifeline(&["person", "import", &good], "", &[]);
        assert!(!again.status.success());
        assert!(stderr(&again).contains("already exists"));

        // A large file goes in hundreds of rows per statement: managers from the directory, from an earlier
        // batch and from the same one; the audit chain still verifies and later additions get fresh ids.
        let mut big = String::from("email,display_name,manager_email\n");
        for i in 0..1_200 {
            let manager = match i % 3 {
                0 => "mia@example.org".to_owned(),
                _ => format!("bulk{}@example.org", i - i % 3),
            };
            big.push_str(&format!("bulk{i}@example.org,Bulk Person {i},{manager}\n"));
        }
        let big = write("big.csv", &big);
        let out = shell.lifeline(&["person", "import", &big], "", &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("Imported 1200 people"), "{}", stdout(&out));
        let last = json(&shell.lifeline(&["person", "show", "bulk1199@example.org", "--json"], "", &[]));
        assert_eq!(last["manager_email"], "bulk1197@example.org");
        assert_eq!(last["accounts"][0]["username"], "bulk1199");
        let verify = shell.lifeline(&["audit", "verify"], "", &[]);
        assert!(verify.status.success(), "{}", stderr(&verify));
        let added = shell.lifeline(
            &["person", "add", "--email", "after@example.org", "--name", "After Import"],
            "pw-after-import-lantern\n",
            &[],
        );
        assert!(added.status.success(), "{}", stderr(&added));
    })
    .await;
}

#[tokio::test]
async fn migrate_is_idempotent() {
    each_shell(async |shell: Shell| {
        let first = shell.lifeline(&["migrate"], "", &[]);
        assert!(first.status.success(), "{}", stderr(&first));
        assert!(
            stdout(&first).contains("applied 0001_directory_and_credentials")
                && stdout(&first).contains("applied 0002_audit")
        );
        let second = shell.lifeline(&["migrate"], "", &[]);
        assert!(stdout(&second).contains("up to date"));
    })
    .await;
}

#[tokio::test]
async fn copy_db_moves_a_directory_to_another_backend_and_back_unchanged() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let source = format!("sqlite://{}", dir.path().join("source.db").display());
    let run = |url: &str, args: &[&str], stdin: &str| run_lifeline(dir.path(), url, args, stdin, &[]);
    let added = run(
        &source,
        &["person", "add", "--email", "ada@example.org", "--name", "Ada", "--totp", "--json"],
        &format!("{PASSWORD}\n"),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let uri = json(&added)["otpauth_uri"].as_str().unwrap_or_default().to_owned();
    let csv = dir.path().join("people.csv");
    // The report comes first, so the manager gets the larger id: the copy must still link them.
    std::fs::write(&csv, "email,display_name,manager_email,source\nrex@example.org,Rex,mia@example.org,synchronized\nmia@example.org,Mia,,local\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(run(&source, &["person", "import", &csv.display().to_string()], "").status.success());
    assert!(run(&source, &["person", "grant", "mia@example.org", "--dpa", "2", "--auditor"], "").status.success());
    let people = ["ada@example.org", "rex@example.org", "mia@example.org"];
    let before: Vec<serde_json::Value> =
        people.iter().map(|p| json(&run(&source, &["person", "show", p, "--json"], ""))).collect();

    for middle in databases().await {
        println!("--- through {}", middle.label);
        let there = run(&source, &["copy-db", "--from", &source, "--to", &middle.url], "");
        assert!(there.status.success(), "{}: {}", middle.label, stderr(&there));
        assert!(stdout(&there).contains("person: 3 rows"));
        let back = format!("sqlite://{}", dir.path().join(format!("back-{}.db", middle.label)).display());
        let home = run(&source, &["copy-db", "--from", &middle.url, "--to", &back], "");
        assert!(home.status.success(), "{}", stderr(&home));
        let after: Vec<serde_json::Value> =
            people.iter().map(|p| json(&run(&back, &["person", "show", p, "--json"], ""))).collect();
        assert_eq!(before, after, "{}: a round trip changes nothing", middle.label);
        let verify = run(&back, &["audit", "verify"], "");
        assert!(verify.status.success(), "{}: the copied audit log verifies: {}", middle.label, stderr(&verify));
        let exported = |url: &str| stdout(&run(url, &["audit", "export"], ""));
        assert_eq!(exported(&source), exported(&back), "{}: the same audit rows", middle.label);

        let again = run(&source, &["copy-db", "--from", &source, "--to", &middle.url], "");
        assert!(!again.status.success() && stderr(&again).contains("not empty"), "{}", stderr(&again));

        // The copy is live: the TOTP secret opens with the same key file, and new rows get fresh keys.
        let mut settings = test_settings(dir.path());
        settings.database_url = middle.url.clone();
        let app = spawn_in(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")), settings, middle).await;
        let secret = lifeline::totp::TotpSecret::from_base32(
            uri.split("secret=").nth(1).and_then(|s| s.split('&').next()).unwrap_or_default(),
        )
        .unwrap_or_else(|| panic!("secret"));
        let browser = browser();
        assert_eq!(location(&app.post_sign_in(&browser, "ada", PASSWORD).await), "/signin/mfa");
        assert_eq!(location(&app.post_code(&browser, &code(&secret, 0)).await), "/");
        app.add_person("newcomer", true).await;
    }
}

#[tokio::test]
async fn instances_starting_together_migrate_once() {
    each_shell(async |shell: Shell| {
        let children: Vec<_> = (0..4)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_lifeline"))
                    .arg("migrate")
                    .current_dir(shell.path())
                    .env("LIFELINE_DATABASE_URL", &shell.db.url)
                    .env_remove("LIFELINE_CONFIG")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let outputs: Vec<Output> =
            children.into_iter().map(|c| c.wait_with_output().unwrap_or_else(|e| panic!("{e}"))).collect();
        for out in &outputs {
            assert!(out.status.success(), "{}", stderr(out));
        }
        let applied = outputs.iter().filter(|o| stdout(o).contains("applied 0001")).count();
        assert_eq!(applied, 1, "exactly one migrator applied the schema");
    })
    .await;
}

/// `lifeline serve` in `dir` on `db_url` with `env`; its exit status, or a panic if it is still serving
/// after `seconds` (it was expected to refuse to start).
fn serve_must_stop(dir: &Path, db_url: &str, env: &[(&str, &str)], seconds: u64) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    command
        .arg("serve")
        .current_dir(dir)
        .env("LIFELINE_DATABASE_URL", db_url)
        .env("LIFELINE_KEY_FILE", dir.join("lifeline.key"))
        .env("LIFELINE_LISTEN", "127.0.0.1:0")
        .env_remove("LIFELINE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            return (status.code(), err);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started although its key does not belong to the database");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_key_that_does_not_belong_to_the_database_stops_every_command_and_no_key_is_made() {
    each_shell(async |shell: Shell| {
        let added = shell.lifeline(
            &["person", "add", "--email", "ada@example.org", "--name", "Ada", "--totp"],
            "amber-falcon-harbour-42\n",
            &[],
        );
        assert!(added.status.success(), "{}", stderr(&added));
        let elsewhere = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let there = |args: &[&str], env: &[(&str, &str)]| run_lifeline(elsewhere.path(), &shell.db.url, args, "", env);

        // From another directory, with no key file there: refused, and no key file is made.
        let missing = there(&["person", "show", "ada@example.org"], &[]);
        assert_eq!(missing.status.code(), Some(1), "{}", stderr(&missing));
        assert!(stderr(&missing).contains("was set up with a key"), "{}", stderr(&missing));
        assert!(!elsewhere.path().join("lifeline.key").exists(), "no new key for a database that has one");

        // Another key file: refused, naming the key file and the database.
        std::fs::write(elsewhere.path().join("lifeline.key"), hex::encode(rand::random::<[u8; 32]>()))
            .unwrap_or_else(|e| panic!("{e}"));
        for args in [
            &["person", "show", "ada@example.org"][..],
            &["audit", "verify"],
            &["person", "unlock", "ada@example.org", "--reason", "test run"],
        ] {
            let wrong = there(args, &[]);
            assert_eq!(wrong.status.code(), Some(1), "{args:?}: {}", stderr(&wrong));
            let message = stderr(&wrong);
            assert!(message.contains("does not belong to the database"), "{args:?}: {message}");
            assert!(message.contains(&elsewhere.path().join("lifeline.key").display().to_string()), "{message}");
        }
        let (code, message) = serve_must_stop(elsewhere.path(), &shell.db.url, &[], 30);
        assert_eq!(code, Some(1), "{message}");
        assert!(message.contains("does not belong to the database"), "{message}");

        // A wrong LIFELINE_SECRET_KEY, even beside the right key file: refused too.
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let wrong = shell.lifeline(&["person", "show", "ada@example.org"], "", &[("LIFELINE_SECRET_KEY", &secret)]);
        assert_eq!(wrong.status.code(), Some(1));
        assert!(stderr(&wrong).contains("LIFELINE_SECRET_KEY does not belong"), "{}", stderr(&wrong));

        // The right key still works.
        assert!(shell.lifeline(&["person", "show", "ada@example.org"], "", &[]).status.success());
    })
    .await;
}

#[tokio::test]
async fn a_database_from_before_fingerprints_takes_one_only_from_the_key_that_opens_its_secrets() {
    each_shell(async |shell: Shell| {
        let added = shell.lifeline(
            &["person", "add", "--email", "ada@example.org", "--name", "Ada", "--totp"],
            "amber-falcon-harbour-42\n",
            &[],
        );
        assert!(added.status.success(), "{}", stderr(&added));
        // As a database written before this change: no fingerprint.
        let store = lifeline::store::SqlStore::connect(&shell.db.url).await.unwrap_or_else(|e| panic!("{e}"));
        sqlx::query("DELETE FROM key_fingerprint").execute(store.pool()).await.unwrap_or_else(|e| panic!("{e}"));

        let elsewhere = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = run_lifeline(elsewhere.path(), &shell.db.url, &["person", "show", "ada@example.org"], "", &[]);
        assert_eq!(missing.status.code(), Some(1), "{}", stderr(&missing));
        assert!(!elsewhere.path().join("lifeline.key").exists(), "a database with data gets no new key");
        std::fs::write(elsewhere.path().join("lifeline.key"), hex::encode(rand::random::<[u8; 32]>()))
            .unwrap_or_else(|e| panic!("{e}"));
        let wrong = run_lifeline(elsewhere.path(), &shell.db.url, &["person", "show", "ada@example.org"], "", &[]);
        assert_eq!(wrong.status.code(), Some(1), "a key that cannot open the sealed secrets is not recorded");
        use lifeline::store::KeyStore;
        assert_eq!(store.key_fingerprint().await.unwrap_or_else(|e| panic!("{e}")), None);

        let right = shell.lifeline(&["person", "show", "ada@example.org"], "", &[]);
        assert!(right.status.success(), "{}", stderr(&right));
        assert!(store.key_fingerprint().await.unwrap_or_else(|e| panic!("{e}")).is_some(), "recorded on first use");
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn audit_verify_on_a_database_that_is_not_there_says_so_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("nothing-here.db");
    let url = format!("sqlite://{}", missing.display());
    let out = run_lifeline(dir.path(), &url, &["audit", "verify"], "", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("there is no database at"), "{}", stderr(&out));
    assert!(!missing.exists(), "nothing was created");
}

#[tokio::test]
async fn tokens_are_printed_once_stored_hashed_listed_without_secrets_and_revoked() {
    each_backend(async |app: TestApp| {
        let ada = app.add_admin("ada", 3).await;
        let run = |args: &[&str]| run_lifeline(app.dir(), &app.db_url(), args, "", &[]);
        let out = run(&["token", "create", "--person", &ada.email, "--name", "ticketing bot", "--expires", "30d"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let secret = stdout(&out).trim().to_owned();
        assert!(secret.starts_with("llt_") && secret.len() >= 40, "{secret}");
        assert!(stderr(&out).contains("shown once"), "{}", stderr(&out));

        // Only a keyed hash is kept: the secret is in no table.
        let stored: Vec<(String,)> =
            sqlx::query_as("SELECT token_hash FROM api_token").fetch_all(app.db.pool()).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].0.contains(&secret) && !stored[0].0.contains(&secret[4..]));

        let list = run(&["token", "list", "--person", &ada.email, "--json"]);
        assert!(list.status.success(), "{}", stderr(&list));
        let listed: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
        assert_eq!(listed[0]["name"], "ticketing bot");
        assert_eq!(listed[0]["state"], "live");
        assert!(!stdout(&list).contains(&secret[4..]), "no secret in the list");
        let id = listed[0]["id"].as_i64().unwrap().to_string();

        // Bad input: clear messages, nothing made.
        for (args, says) in [
            (vec!["token", "create", "--person", &ada.email, "--name", "x", "--expert", "--expires", "2h"], "at most"),
            (vec!["token", "create", "--person", &ada.email, "--name", "x", "--expires", "soon"], "--expires"),
            (vec!["token", "create", "--person", &ada.email, "--name", "x", "--expires", "0d"], "--expires"),
            (vec!["token", "create", "--person", &ada.email, "--name", "x", "--expires", "400d"], "at most"),
            (vec!["token", "create", "--person", &ada.email, "--name", " "], "name"),
            (vec!["token", "create", "--person", "nobody@example.org", "--name", "x"], "no person"),
            (vec!["token", "revoke", "999999"], "no such token"),
        ] {
            let out = run(&args);
            assert!(!out.status.success(), "{args:?}");
            assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        }
        let expert = run(&["token", "create", "--person", &ada.email, "--name", "chat bot", "--expert"]);
        assert!(expert.status.success(), "{}", stderr(&expert));

        let revoked = run(&["token", "revoke", &id]);
        assert!(revoked.status.success(), "{}", stderr(&revoked));
        let again = run(&["token", "revoke", &id]);
        assert!(!again.status.success() && stderr(&again).contains("revoked already"));
        let list = run(&["token", "list", "--json"]);
        let listed: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
        assert_eq!(listed.as_array().map(Vec::len), Some(2));
        let actions: Vec<String> =
            sqlx::query_scalar("SELECT action FROM audit_event WHERE action LIKE 'token.%' ORDER BY audit_event_id")
                .fetch_all(app.db.pool())
                .await
                .unwrap();
        assert_eq!(actions, ["token.create", "token.create", "token.revoke"]);
        let out = run(&["audit", "verify"]);
        assert!(out.status.success(), "{}", stderr(&out));
    })
    .await;
}
