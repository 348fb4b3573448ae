//! Flight SQL over TLS: a self-signed certificate made at test time with the
//! `openssl` command-line tool (no certificate crate in the build), a TLS
//! server on a free port, arrow-flight's client over a TLS channel.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use arrow_flight::sql::client::FlightSqlServiceClient;
use civlink_catalog::config::CatalogConfig;
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use civlink_flight::{Error, FlightConfig, TlsConfig};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::fixture::{Fixture, PEOPLE, query, scalar_i64};

/// How long a connection attempt that must fail may take (it fails at once;
/// this only keeps a regression from hanging the suite).
const FAIL_WITHIN: Duration = Duration::from_secs(20);

/// A self-signed (non-CA) certificate for `localhost` / `127.0.0.1` and its
/// key, as `name.crt` / `name.key` in `dir`.
fn self_signed(dir: &Path, name: &str) -> TlsConfig {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // openssl marks a self-signed certificate as a CA by default, and
        // rustls will not accept a CA certificate as the server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .output();
    match output {
        Ok(output) => assert!(
            output.status.success(),
            "openssl could not make a self-signed certificate ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "the TLS tests need the `openssl` command-line tool (OpenSSL 1.1.1 or later) on PATH to make a \
             self-signed certificate; install it (Debian/Ubuntu: `apt-get install openssl`)"
        ),
        Err(e) => panic!("cannot run openssl: {e}"),
    }
    TlsConfig { cert, key }
}

/// A TLS channel to `addr` trusting `ca` (PEM) and expecting the name `localhost`.
async fn tls_channel(addr: SocketAddr, ca: Option<&Path>) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().domain_name("localhost");
    if let Some(ca) = ca {
        tls = tls.ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()));
    }
    Channel::from_shared(format!("https://{addr}")).unwrap().tls_config(tls)?.connect().await
}

/// A handshake over `channel` (or the error of getting that far), bounded in time.
async fn try_handshake(channel: impl Future<Output = Result<Channel, tonic::transport::Error>>, token: &str) -> String {
    let attempt = async {
        let mut client = FlightSqlServiceClient::new(channel.await.map_err(|e| format!("connect: {e:?}"))?);
        client.handshake("county", token).await.map_err(|e| format!("handshake: {e}"))?;
        Ok::<_, String>(())
    };
    match tokio::time::timeout(FAIL_WITHIN, attempt).await {
        Ok(Ok(())) => panic!("the connection should have been refused"),
        Ok(Err(e)) => e,
        Err(_) => panic!("the connection attempt neither succeeded nor failed within {FAIL_WITHIN:?}"),
    }
}

#[tokio::test]
async fn flight_sql_over_tls_with_a_self_signed_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let tls = self_signed(certs.path(), "server");
    let fx = Fixture::with_tls(tls.clone()).await;
    let count = format!("SELECT count(*) FROM {PEOPLE}");

    // A client trusting the certificate: handshake, then a scoped query.
    let channel = tls_channel(fx.addr, Some(&tls.cert)).await.unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake("county", &fx.county).await.unwrap();
    assert_eq!(scalar_i64(&query(&mut client, &count).await), 4);

    // Plain HTTP/2 against the TLS port gets nowhere.
    let plain = async { Channel::from_shared(format!("http://{}", fx.addr)).unwrap().connect().await };
    let error = try_handshake(plain, &fx.county).await;
    assert!(!error.is_empty());

    // Nor does TLS from a client that does not trust the certificate.
    let error = try_handshake(tls_channel(fx.addr, None), &fx.county).await;
    assert!(error.starts_with("connect"), "{error}");

    // Failed handshakes do not disturb the server or the open connection.
    assert_eq!(scalar_i64(&query(&mut client, &count).await), 4);
    let mut again = FlightSqlServiceClient::new(tls_channel(fx.addr, Some(&tls.cert)).await.unwrap());
    again.set_token(fx.township.clone());
    assert_eq!(scalar_i64(&query(&mut again, &count).await), 2);
    drop(client);
    drop(again);
    fx.stop().await;
}

/// `bind` over an empty temporary catalog with this TLS configuration.
async fn bind_error(tls: TlsConfig) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = CatalogConfig::local(dir.path()).unwrap();
    let store = MetadataStore::connect(&config.metadata_url).await.unwrap();
    let tables = TableStore::new(&config).unwrap();
    let config = FlightConfig { addr: "127.0.0.1:0".parse().unwrap(), tls: Some(tls) };
    let factory = civlink_query::SessionFactory::builder(store, tables).build().await.unwrap();
    match civlink_flight::bind(config, factory, civlink_flight::PreEncoded::default()).await {
        Err(Error::Config { message }) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test]
async fn unusable_certificates_and_keys_are_configuration_errors() {
    let certs = tempfile::tempdir().unwrap();
    let server = self_signed(certs.path(), "server");
    let other = self_signed(certs.path(), "other");

    // A key that is not the certificate's.
    let message = bind_error(TlsConfig { cert: server.cert.clone(), key: other.key.clone() }).await;
    assert!(message.contains(&shown(&server.cert)) && message.contains(&shown(&other.key)), "{message}");

    // Certificate and key swapped: neither file holds what it should.
    let message = bind_error(TlsConfig { cert: server.key.clone(), key: server.cert.clone() }).await;
    assert!(message.contains(&shown(&server.key)), "{message}");

    // A missing key file is named.
    let missing = certs.path().join("no-such.key");
    let message = bind_error(TlsConfig { cert: server.cert.clone(), key: missing.clone() }).await;
    assert!(message.contains(&shown(&missing)), "{message}");
}
