//! Authentication: health without it, 401 problem documents for every kind
//! of bad credentials, Basic user:token like the Flight handshake, and
//! failed attempts audited.

use civlink_catalog::policy::{AuditAction, OutcomeKind, UNAUTHENTICATED};

use crate::fixture::{Fixture, request};

#[tokio::test]
async fn health_needs_no_token() {
    let f = Fixture::start().await;
    let reply = request(f.addr, "GET", "/api/v1/health", &[], None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), serde_json::json!({"status": "ok"}));
    f.stop().await;
}

#[tokio::test]
async fn bad_credentials_are_401_problems_with_a_challenge_and_no_echo() {
    let f = Fixture::start().await;
    let path = "/api/v1/datasets";

    let reply = request(f.addr, "GET", path, &[], None).await;
    let body = reply.problem(401);
    assert!(reply.header("www-authenticate").is_some_and(|c| c.starts_with("Bearer")), "{:?}", reply.headers);
    assert!(body["detail"].as_str().unwrap().contains("missing credentials"));

    // A well-formed token whose secret is wrong, garbage, an unknown id, a revoked token.
    let county = &f.tokens.county;
    let last = county.chars().last().unwrap();
    let wrong_secret = format!("{}{}", &county[..county.len() - 1], if last == '0' { '1' } else { '0' });
    let unknown_id = format!("clk_0000000000000000_{}", "a".repeat(64));
    for (token, detail) in [
        (wrong_secret.as_str(), "invalid token"),
        ("not-a-token", "invalid token"),
        (unknown_id.as_str(), "invalid token"),
        (f.tokens.revoked.as_str(), "revoked"),
    ] {
        let reply = f.get(token, path).await;
        let body = reply.problem(401);
        assert!(body["detail"].as_str().unwrap().contains(detail), "{body}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"civlink\", error=\"invalid_token\""));
        assert!(!reply.text().contains(token), "the token is echoed: {}", reply.text());
    }

    // Other schemes and malformed headers.
    for header in ["Token abc", "Bearer", "Basic !!!"] {
        let reply = request(f.addr, "GET", path, &[("Authorization", header)], None).await;
        reply.problem(401);
    }
    f.stop().await;
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let f = Fixture::start().await;
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let token = f.store.create_token("township", Some(expires)).await.unwrap().secret;
    assert_eq!(f.get(&token, "/api/v1/datasets").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let body = f.get(&token, "/api/v1/datasets").await.problem(401);
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
    f.stop().await;
}

#[tokio::test]
async fn basic_user_and_token_works_like_the_flight_handshake() {
    let f = Fixture::start().await;
    let basic = |user: &str| format!("Basic {}", base64(&format!("{user}:{}", f.tokens.township)));
    let ok = request(f.addr, "GET", "/api/v1/datasets", &[("Authorization", &basic("township"))], None).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // No user name is fine; someone else's is not.
    let ok = request(f.addr, "GET", "/api/v1/datasets", &[("Authorization", &basic(""))], None).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let reply = request(f.addr, "GET", "/api/v1/datasets", &[("Authorization", &basic("admin"))], None).await;
    let body = reply.problem(401);
    assert!(body["detail"].as_str().unwrap().contains("user name"), "{body}");

    // The failure is audited, the name it claimed kept only as a claim.
    let entries = f.store.audit_entries(None).await.unwrap();
    let failed = entries
        .iter()
        .find(|e| {
            e.entry.principal == UNAUTHENTICATED
                && e.entry.outcome.kind == OutcomeKind::Unauthenticated
                && e.entry.sql_text.as_deref() == Some("claimed user \"admin\"")
        })
        .expect("an audit entry for the failed attempt");
    assert_eq!(failed.entry.action, AuditAction::RestList);
    assert!(entries.iter().any(|e| e.entry.principal == "township" && e.entry.outcome.is_ok()));
    assert!(f.store.verify_audit().await.unwrap().intact());
    f.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems_too() {
    let f = Fixture::start().await;
    f.get(&f.tokens.admin, "/api/v1/nothing-here").await.problem(404);
    f.get(&f.tokens.admin, "/").await.problem(404);
    let auth = format!("Bearer {}", f.tokens.admin);
    let reply = request(f.addr, "DELETE", "/api/v1/datasets", &[("Authorization", &auth)], None).await;
    reply.problem(405);
    let reply = f.post(&f.tokens.admin, "/api/v1/datasets", "{}").await;
    reply.problem(405);
    f.stop().await;
}

/// Standard base64 with padding (for Basic credentials).
fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_known_vectors() {
    assert_eq!(base64("foobar"), "Zm9vYmFy");
    assert_eq!(base64("fooba"), "Zm9vYmE=");
    assert_eq!(base64("foob"), "Zm9vYg==");
}

#[tokio::test]
async fn a_body_is_not_read_before_its_request_authenticates() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = Fixture::start().await;
    // Announce 100 MB and send none of it: the answer comes without the body.
    let mut stream = tokio::net::TcpStream::connect(f.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/standards HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
        f.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut reply))
        .await
        .expect("an answer without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&reply[..n]);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    let entries = f.store.audit_entries(None).await.unwrap();
    assert!(
        entries.iter().any(|e| e.entry.action == AuditAction::RestRequest
            && e.entry.outcome.kind == OutcomeKind::Unauthenticated),
        "{entries:?}"
    );
    f.stop().await;
}

#[tokio::test]
async fn connections_per_client_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limits = civlink_query::Limits {
        connections: civlink_query::connections::ConnectionLimits { per_client: 2, total: 100 },
        ..Default::default()
    };
    let f = Fixture::with_limits(limits).await;
    let first = tokio::net::TcpStream::connect(f.addr).await.unwrap();
    let second = tokio::net::TcpStream::connect(f.addr).await.unwrap();
    // Wait until both are counted, then a third from the same address is closed unread.
    for _ in 0..100 {
        if f.factory.connections().open() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(f.factory.connections().open(), 2);
    let mut third = tokio::net::TcpStream::connect(f.addr).await.unwrap();
    let _ = third.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), third.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "the third connection was served: {read:?}");
    drop((first, second));
    let mut answered = false;
    for _ in 0..100 {
        let mut stream = tokio::net::TcpStream::connect(f.addr).await.unwrap();
        let _ = stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        if raw.starts_with(b"HTTP/1.1 200") {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(answered, "closed connections free their places");
    f.stop().await;
}
