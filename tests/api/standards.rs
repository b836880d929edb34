//! The standards map (`docs/standards.md`) kept honest: every requirement it must cover is there, each with one of
//! the three statuses, and every *met* row names tests that exist; and the small tests the map cites for password
//! fields.

use crate::helpers::*;
use reqwest::StatusCode;
use std::path::Path;

/// OWASP ASVS 5.0.0, chapters 6, 7, 8 and 16 at levels 1 and 2, and the level-3 items SPEC §10 names.
const ASVS: &[&str] = &[
    "6.1.1", "6.1.2", "6.1.3", "6.2.1", "6.2.2", "6.2.3", "6.2.4", "6.2.5", "6.2.6", "6.2.7", "6.2.8", "6.2.9",
    "6.2.10", "6.2.11", "6.2.12", "6.3.1", "6.3.2", "6.3.3", "6.3.4", "6.3.5", "6.3.7", "6.3.8", "6.4.1", "6.4.2",
    "6.4.3", "6.4.4", "6.4.6", "6.5.1", "6.5.2", "6.5.3", "6.5.4", "6.5.5", "6.6.1", "6.6.2", "6.6.3", "6.8.1",
    "6.8.2", "6.8.3", "6.8.4", "7.1.1", "7.1.2", "7.1.3", "7.2.1", "7.2.2", "7.2.3", "7.2.4", "7.3.1", "7.3.2",
    "7.4.1", "7.4.2", "7.4.3", "7.4.4", "7.4.5", "7.5.1", "7.5.2", "7.5.3", "7.6.1", "7.6.2", "8.1.1", "8.1.2",
    "8.2.1", "8.2.2", "8.2.3", "8.3.1", "8.4.1", "16.1.1", "16.2.1", "16.2.2", "16.2.3", "16.2.4", "16.2.5", "16.3.1",
    "16.3.2", "16.3.3", "16.3.4", "16.4.1", "16.4.2", "16.4.3", "16.5.1", "16.5.2", "16.5.3", "2.3.5",
];

/// NIST SP 800-63B-4, by the conformance criteria's identifiers, as issue 15 lists them.
const NIST: &[&str] = &[
    "ARM-1", "ARM-2", "SRC-1", "SRC-2", "SRC-3", "SRC-4", "SRC-5", "IRC-1", "IRC-2", "IRC-3", "IRC-4", "IRC-5",
    "IRC-6", "ACCRN-1", "ANOT-1", "ANOT-2", "ANOT-3", "ANOT-4", "ANOT-5", "ANOT-6", "ANOT-7", "BAA-2", "BAA-3",
    "AUTHB-2", "AUTHB-5", "RL-2", "RL-3", "RL-4", "RL-5", "RL-6", "PV-1", "PV-2", "PV-3", "PV-4", "PV-5", "PV-6",
    "PV-7", "PV-8", "PV-9", "PV-10", "PV-11", "PV-12", "PV-13", "PV-14", "PV-15", "PV-16", "PV-17",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where a cited test lives: `api::m::f` in tests/api/m.rs, `e2e::m::f` in tests/e2e/m.rs, `core::a::b::f` in
/// crates/core/src/a/b.rs (or a/b/mod.rs). `None` for a name of another shape.
fn test_file(name: &str) -> Option<(Vec<std::path::PathBuf>, String)> {
    let parts: Vec<&str> = name.split("::").collect();
    let (function, module) = parts.split_last()?;
    let function = (*function).to_owned();
    match module {
        ["api", m] => Some((vec![root().join(format!("tests/api/{m}.rs"))], function)),
        ["e2e", m] => Some((vec![root().join(format!("tests/e2e/{m}.rs"))], function)),
        ["core", path @ ..] if !path.is_empty() => {
            let path = path.join("/");
            let base = root().join("crates/core/src");
            Some((vec![base.join(format!("{path}.rs")), base.join(format!("{path}/mod.rs"))], function))
        }
        _ => None,
    }
}

/// Does `function` exist as a test in one of `files`: `fn name(` right after a test attribute?
fn is_test(files: &[std::path::PathBuf], function: &str) -> bool {
    files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).any(|source| {
        let lines: Vec<&str> = source.lines().collect();
        lines.iter().enumerate().any(|(i, line)| {
            let declares = line.contains(&format!("fn {function}("));
            let attribute = i > 0 && (lines[i - 1].contains("#[tokio::test") || lines[i - 1].contains("#[test]"));
            declares && attribute
        })
    })
}

#[test]
fn the_map_names_every_requirement_and_only_tests_that_exist() {
    let path = root().join("docs/standards.md");
    let map = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut seen = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    for (n, line) in map.lines().enumerate() {
        let cells: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let Some(id) = cells.first().map(|c| c.trim_start_matches('|').trim()) else { continue };
        if !ASVS.contains(&id) && !NIST.contains(&id) {
            continue;
        }
        if cells.len() < 4 {
            problems.push(format!("line {}: {id} has no status and evidence", n + 1));
            continue;
        }
        let (status, evidence) = (cells[2], cells[3..].join(" | "));
        if seen.insert(id.to_owned(), status.to_owned()).is_some() {
            problems.push(format!("line {}: {id} appears twice", n + 1));
        }
        match status {
            "met" => {
                let cited: Vec<&str> = evidence
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .filter(|c| c.starts_with("api::") || c.starts_with("e2e::") || c.starts_with("core::"))
                    .collect();
                if cited.is_empty() {
                    problems.push(format!("line {}: {id} is met but names no test", n + 1));
                }
                for name in cited {
                    match test_file(name) {
                        Some((files, function)) if is_test(&files, &function) => {}
                        _ => problems.push(format!("line {}: {id} names {name}, which is no test", n + 1)),
                    }
                }
            }
            "not applicable" | "gap" if evidence.trim().trim_end_matches('|').trim().len() >= 10 => {}
            "not applicable" | "gap" => problems.push(format!("line {}: {id} is {status} without a reason", n + 1)),
            other => problems.push(format!("line {}: {id} has the status {other:?}", n + 1)),
        }
        // Every document a row cites is there, and the tests it names in turn exist.
        for cited in evidence.split('`').skip(1).step_by(2).filter(|c| c.starts_with("docs/")) {
            let Ok(document) = std::fs::read_to_string(root().join(cited)) else {
                problems.push(format!("line {}: {id} cites {cited}, which does not exist", n + 1));
                continue;
            };
            for name in document.split('`').skip(1).step_by(2).filter(|c| test_file(c).is_some()) {
                match test_file(name) {
                    Some((files, function)) if is_test(&files, &function) => {}
                    _ => problems.push(format!("{cited} (cited for {id}) names {name}, which is no test")),
                }
            }
        }
    }
    for id in ASVS.iter().chain(NIST) {
        if !seen.contains_key(*id) {
            problems.push(format!("{id} is missing from the map"));
        }
    }
    assert!(problems.is_empty(), "docs/standards.md:\n{}", problems.join("\n"));
    let count = |s: &str| seen.values().filter(|v| *v == s).count();
    println!(
        "standards map: {} requirements, {} met, {} not applicable, {} gaps",
        seen.len(),
        count("met"),
        count("not applicable"),
        count("gap")
    );
}

/// ASVS 6.2.6–6.2.8 and NIST PV-2, PV-7, PV-13: the password field is masked and takes a password manager's or a
/// paste's input; a password is verified exactly as given (no truncation, no case folding); its length counts
/// code points, not bytes.
#[tokio::test]
async fn password_fields_are_masked_pasteable_and_verified_exactly() {
    each_backend(async |app: TestApp| {
        let page = browser().get(app.url("/signin")).send().await.unwrap_or_else(|e| panic!("{e}"));
        let html = page.text().await.unwrap_or_default();
        assert!(
            html.contains(r#"<input id="password" name="password" type="password" autocomplete="current-password""#),
            "{html}"
        );
        assert!(
            !html.contains("onpaste") && !html.contains("autocomplete=\"off\""),
            "nothing blocks a paste or a manager"
        );

        let password = "Fjällräven-Ölmühle-Straße-ĳsbeer-Ünïcödé-naïveté-crème-brûlée-2026-ok";
        let mut new = new_person("Una Code", "una@example.org", "una");
        new.status = lifeline::domain::PersonStatus::Active;
        app.state
            .directory
            .add_person(system(&app.state, None).await, new, Some(password))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let right = app.post_sign_in(&browser(), "una", password).await;
        assert_eq!(location(&right), "/signin/enroll", "the whole password, as given, signs in");
        let truncated: String = password.chars().take(64).collect();
        let folded = password.to_lowercase();
        for wrong in [truncated.as_str(), folded.as_str()] {
            let refused = app.post_sign_in(&browser(), "una", wrong).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{wrong}");
        }
        // Fourteen code points are too short where the minimum is 15, however many bytes they take.
        let short = "ÄÖÜäöüßÄÖÜäöüß";
        assert!(short.len() > 15 && short.chars().count() == 14);
        assert!(lifeline::policy::password::check(short, false, &[]).is_err());
    })
    .await;
}
