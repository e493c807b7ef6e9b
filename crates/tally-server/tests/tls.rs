//! HTTPS with rustls, and the per-client connection cap.

mod common;

use common::{open_store, start, Backend};
use tally_core::SiteCode;
use tally_server::config::Limits;
use tally_server::transport::{load_tls, MAX_CONNECTIONS_PER_CLIENT};
use tally_server::AppState;
use tokio::io::AsyncReadExt;

each_backend!(async
    https_is_served_and_verified_against_the_ca,
    one_client_cannot_hold_every_connection,
);

/// A self-signed certificate for localhost, written as PEM files.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = cert.cert.pem();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, &pem).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    (c, k, pem)
}

async fn https_is_served_and_verified_against_the_ca(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = certificate(dir.path());
    let tls = load_tls(&cert, &key).unwrap();
    let store = open_store(&backend, dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = AppState::new(store, SiteCode::parse("S01").unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        tally_server::serve_tls(listener, state, &Limits::default(), tls, async {
            let _ = stopped.await;
        })
        .await
    });
    let url = format!("https://localhost:{port}/healthz");

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let resp = trusting.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let untrusting = reqwest::Client::builder()
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let err = untrusting.get(&url).send().await.unwrap_err();
    assert!(err.is_connect(), "an unknown CA is refused: {err:?}");

    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(
        plain.is_err() || plain.unwrap().status() != 200,
        "no plain HTTP on the TLS port"
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn bad_certificate_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let e = load_tls(&missing, &missing).unwrap_err().to_string();
    assert!(e.contains("nope.pem") && e.contains("PEM"), "{e}");
    let (cert, _, _) = certificate(dir.path());
    let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
    let wrong_key = dir.path().join("wrong.pem");
    std::fs::write(&wrong_key, other.key_pair.serialize_pem()).unwrap();
    assert!(
        load_tls(&cert, &wrong_key).is_err(),
        "a key that does not match the certificate"
    );
}

async fn one_client_cannot_hold_every_connection(backend: Backend) {
    let server = start(backend).await;
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_CLIENT {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Give the server time to account for every accepted connection.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), extra.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the extra connection is closed: {read:?}"
    );
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let resp = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "slots come back when connections close");
}
