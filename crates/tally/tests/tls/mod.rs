//! HTTPS for the tests that need it: `tally server` on a certificate made for the test.

use std::path::Path;

use crate::common::{server_with_flags, Backend, Running};

/// `tally server` in `dir` on a new database on `backend`, over HTTPS with a self-signed
/// certificate for 127.0.0.1 (in `dir` as `cert.pem`, for a client's `--ca-file`); the
/// server, and the certificate's PEM for a client to trust.
pub fn https_server(dir: &Path, backend: &Backend) -> (Running, String) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let flags = ["--tls-cert", "cert.pem", "--tls-key", "key.pem"];
    (server_with_flags(dir, backend, &flags), cert.pem())
}
