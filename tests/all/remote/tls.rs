//! Mutual TLS between hosts: with it on, hosts whose certificates the
//! cluster's CA issued talk as usual, and nobody else gets in.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use wasmtime::component::Val;
use weir::{HostConfig, RpcError, TlsConfig};
use weir_tests::gateways::{CALLER, ECHO};
use weir_tests::process::{HostProcess, HostSpec};
use weir_tests::{artifacts, capture_logs, component, eventually, guest_ok, host_with, text};

use super::listening_config;

/// A CA, written to `dir`, that issues host certificates.
pub(crate) struct Authority {
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    pub(crate) fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.pem"), issuer.pem()).unwrap();
        Self { dir: dir.to_owned(), issuer }
    }

    /// A certificate for a host reached as 127.0.0.1, and its key.
    pub(crate) fn host(&self, name: &str) -> TlsConfig {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (self.dir.join(format!("{name}.pem")), self.dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, certificate.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        TlsConfig { ca: self.dir.join("ca.pem"), certificate: cert_path, key: key_path }
    }
}

fn tls_lines(tls: &TlsConfig) -> String {
    format!("tls = {{ ca = {:?}, certificate = {:?}, key = {:?} }}", tls.ca, tls.certificate, tls.key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_with_certificates_from_the_ca_talk_and_nobody_else_gets_in() {
    capture_logs();
    let dir = weir_tests::temp_dir("tls");
    let cluster = Authority::new(&dir.path().join("cluster"));
    let remote = HostProcess::start(
        &HostSpec::new().host(&tls_lines(&cluster.host("remote"))).endpoint("echo", artifacts::ECHO, "").endpoint(
            "caller",
            artifacts::CALLER,
            "",
        ),
    );

    // A host with the cluster's certificate calls in, and is called back.
    let host = host_with(HostConfig { tls: Some(cluster.host("home")), ..listening_config() });
    host.start("home-echo", &component(artifacts::ECHO), Default::default()).await.unwrap();
    let echo = host.connect(&remote.address("echo"), ECHO, None).await.unwrap();
    assert_eq!(echo.ask("ping", vec![Val::U64(5)]).await.unwrap(), Some(Val::U64(5)));
    let caller = host.connect(&remote.address("caller"), CALLER, None).await.unwrap();
    let reply = caller.ask("call-ping", vec![text(&host.address_of("home-echo")), Val::U64(6)]).await.unwrap();
    assert_eq!(guest_ok(reply), Some(Val::U64(6)));

    // Without TLS, or with a certificate from another CA: no connection.
    // A plain host is told that the other speaks TLS.
    let stranger = Authority::new(&dir.path().join("stranger"));
    for (who, tls, says) in [
        ("plain", None, "the peer speaks TLS and this host does not"),
        ("stranger", Some(stranger.host("stranger")), "TLS handshake failed"),
    ] {
        let outsider = host_with(HostConfig { tls, ..listening_config() });
        let error = outsider.connect(&remote.address("echo"), ECHO, None).await.unwrap_err();
        assert!(matches!(&error, RpcError::Unreachable { reason, .. } if reason.contains(says)), "{who}: {error}");
    }
    // A TLS host calling a plain one: each side says what to configure.
    let plain = HostProcess::start(&HostSpec::new().endpoint("echo", artifacts::ECHO, ""));
    let error = host.connect(&plain.address("echo"), ECHO, None).await.unwrap_err();
    assert!(error.to_string().contains("does the peer have `[host] tls` configured too?"), "{error}");
    eventually("the plain host to say why", || async {
        plain.logs().contains("the peer speaks TLS and this host does not").then_some(())
    })
    .await;
    eventually("the host to log the refused TLS handshakes", || async {
        (remote.logs().matches("TLS handshake failed").count() >= 2).then_some(())
    })
    .await;
    // The cluster's own connection was not disturbed.
    assert_eq!(echo.ask("ping", vec![Val::U64(7)]).await.unwrap(), Some(Val::U64(7)));
    drop(remote);
}

/// Unusable TLS files are errors that name the key and the cause, and
/// creating the host from inside a runtime does not panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_tls_files_are_clear_errors() {
    let temp = weir_tests::temp_dir("tls-bad");
    let dir = temp.path();
    let cluster = Authority::new(dir);
    let good = cluster.host("good");
    let other = cluster.host("other");
    std::fs::write(dir.join("garbage.pem"), "this is not PEM\n").unwrap();
    let cases = [
        (TlsConfig { ca: dir.join("missing.pem"), ..good.clone() }, ["`[host] tls.ca`", "No such file"]),
        (TlsConfig { key: other.key.clone(), ..good.clone() }, ["`[host] tls.key`", "do not go together"]),
        (
            TlsConfig { certificate: dir.join("garbage.pem"), ..good.clone() },
            ["`[host] tls.certificate`", "no PEM certificate"],
        ),
        (TlsConfig { key: dir.join("garbage.pem"), ..good.clone() }, ["`[host] tls.key`", "no PEM item"]),
    ];
    for (tls, expected) in cases {
        let config = HostConfig { tls: Some(tls), ..listening_config() };
        let error = weir::RpcService::new(config, weir_tests::engine().clone()).unwrap_err().to_string();
        assert!(expected.iter().all(|part| error.contains(part)), "{error}");
    }
}
