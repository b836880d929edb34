//! `/api/openapi.json`: an OpenAPI 3.1 document generated from the handlers, with every API route in it.

use crate::helpers::*;

/// What the issue asks the API to have (and the console does): each must be an operation of the document.
const EXPECTED: &[(&str, &str)] = &[
    ("get", "/api/v1/tokens"),
    ("get", "/api/v1/people"),
    ("get", "/api/v1/people/{id}"),
    ("get", "/api/v1/people/{id}/activity"),
    ("post", "/api/v1/people/{id}/actions/{action}"),
    ("get", "/api/v1/approvals"),
    ("post", "/api/v1/approvals/{id}/approve"),
    ("post", "/api/v1/approvals/{id}/reject"),
    ("get", "/api/v1/assistance-requests"),
    ("post", "/api/v1/assistance-requests"),
    ("get", "/api/v1/assistance-requests/{reference}"),
    ("post", "/api/v1/assistance-requests/{reference}/close"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/tickets"),
    ("get", "/api/v1/tickets/{reference}"),
    ("post", "/api/v1/tickets/{reference}/notes"),
    ("post", "/api/v1/tickets/{reference}/status"),
];

fn operations(doc: &serde_json::Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.push((method.clone(), path.clone()));
        }
    }
    ops
}

/// Every `"/api/…"` string in the server's source: a route registered outside `routes!` shows up here.
fn api_paths_in_source() -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, _) in text.match_indices(".route(\"/api") {
                    let rest = &text[i + 8..];
                    found.push(rest[..rest.find('"').unwrap()].to_owned());
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn the_document_lists_every_api_route_and_each_answers() {
    each_backend(async |app| {
        let response = browser().get(app.url("/api/openapi.json")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let doc: serde_json::Value = response.json().await.unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["components"]["securitySchemes"]["token"]["scheme"], "bearer");

        let ops = operations(&doc);
        for (method, path) in EXPECTED {
            assert!(
                ops.iter().any(|(m, p)| m == method && p == path),
                "{} {path} is missing from /api/openapi.json",
                method.to_uppercase()
            );
        }
        // Every route is registered with its operation (routes!), never with a bare `.route`.
        assert_eq!(api_paths_in_source(), Vec::<String>::new(), "API routes registered outside routes!");

        // Every operation is routed: without a token it answers 401 (admin) or its own answer, never the
        // fallback's "no such endpoint"; and every error is a problem document the document lists.
        for (method, path) in &ops {
            let concrete =
                path.replace("{id}", "1").replace("{action}", "unlock").replace("{reference}", "AR-2222-2222");
            let request = browser().request(method.to_uppercase().parse().unwrap(), app.url(&concrete));
            let request = if method == "post" { request.json(&serde_json::json!({})) } else { request };
            let response = request.send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(!body.contains("There is no such endpoint"), "{method} {path} is in the document but not routed");
            let op = &doc["paths"][path][method];
            assert!(
                op["responses"].get(status.as_str()).is_some(),
                "{method} {path} answered {status}, which the document does not list"
            );
            if op["security"].as_array().is_some_and(|s| s.iter().all(|r| r.get("token").is_some())) {
                assert_eq!(status, 401, "{method} {path} without a token");
            }
        }

        // An unknown API path is a problem document too, not the HTML page.
        let response = browser().get(app.url("/api/v1/nothing-here")).send().await.unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        // So is a method an endpoint does not take.
        for (method, path) in
            [("DELETE", "/api/v1/tokens"), ("GET", "/api/v1/approvals/1/approve"), ("PUT", "/api/v1/people")]
        {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let response = browser().request(method.clone(), app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            assert_eq!(response.headers()["content-type"], "application/problem+json", "{method} {path}");
            let problem: serde_json::Value = response.json().await.unwrap();
            assert_eq!(problem["code"], "method_not_allowed");
        }
    })
    .await;
}

#[tokio::test]
async fn the_action_names_in_the_document_are_the_actions() {
    each_backend(async |app| {
        let doc: serde_json::Value =
            browser().get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
        let names: Vec<&str> = doc["components"]["schemas"]["ActionName"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let expected: Vec<&str> = lifeline::policy::permissions::RecoveryAction::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names, expected);
    })
    .await;
}
