//! License certificates (issue 18, seed 003's "installed certificates"): vendor-signed
//! entitlement documents, the evidence behind a license. A certificate names its customer
//! (licensee), product, count, created and expiry days, key (its unique id), metric and issuer,
//! and carries the issuer's Ed25519 signature over [`canonical`] — a fixed text of those fields
//! — so a certificate changed by one character no longer verifies.
//!
//! Files are `field: value` lines (docs/certificates.md); everything here is pure: parsing,
//! the canonical form, signing and verifying, and the signed DAT payloads of
//! [`signed_payload`]. Keys travel as hex.

use chrono::NaiveDate;
use ed25519_dalek::{Signature, Signer, Verifier};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::limits::{MAX_NAME, MAX_QUANTITY};
use crate::Metric;

/// The first line of a certificate file and of its canonical form.
pub const CERTIFICATE_HEADER: &str = "tally-license-certificate: 1";
/// A certificate key: letters, digits and `-_.`; at most this long.
pub const MAX_KEY: usize = 64;

/// What a certificate's count measures: one of seed 002's license metrics, or one of the
/// figures the system-metering report measures (devices in relevant statuses, natural persons,
/// operators with write access), which make a custom-compare-values license whose compare
/// value the metering keeps up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    MeteredDevices,
    MeteredUsers,
    MeteredOperators,
}

impl Measure {
    pub const ALL: [Measure; 3] = [
        Measure::MeteredDevices,
        Measure::MeteredUsers,
        Measure::MeteredOperators,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Measure::MeteredDevices => "metered_devices",
            Measure::MeteredUsers => "metered_users",
            Measure::MeteredOperators => "metered_operators",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// A certificate's metric as written in the file: a license metric or a metering measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateMetric {
    License(Metric),
    Metered(Measure),
}

impl CertificateMetric {
    pub fn parse(s: &str) -> Option<Self> {
        Measure::parse(s)
            .map(Self::Metered)
            .or_else(|| Metric::parse(s).map(Self::License))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::License(m) => m.as_str(),
            Self::Metered(m) => m.as_str(),
        }
    }

    /// The metric of the license (and of a new application) the certificate registers.
    pub fn license_metric(self) -> Metric {
        match self {
            Self::License(m) => m,
            Self::Metered(_) => Metric::CustomCompareValues,
        }
    }

    /// The metering figure that keeps the application's compare value, if any.
    pub fn measure(self) -> Option<Measure> {
        match self {
            Self::Metered(m) => Some(m),
            Self::License(_) => None,
        }
    }
}

/// The signed fields of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Certificate {
    /// The licensee.
    pub customer: String,
    /// The certificate's name: the product it licenses (the application it registers).
    pub product: String,
    /// Number of licenses.
    pub count: i64,
    /// Issue day.
    pub created: NaiveDate,
    /// Last valid day; `None` = unlimited.
    pub expires: Option<NaiveDate>,
    /// The certificate's unique id.
    pub key: String,
    /// A license metric (`installations`, `users`, …) or a metering measure
    /// (`metered_devices`, `metered_users`, `metered_operators`).
    pub metric: String,
    /// The issuer's name, as in its trusted key file.
    pub issuer: String,
}

/// A certificate with its issuer's signature (hex of 64 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedCertificate {
    #[serde(flatten)]
    pub certificate: Certificate,
    pub signature: String,
}

/// A certificate as stored: verified, with the license it registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoredCertificate {
    pub id: i64,
    #[serde(flatten)]
    pub signed: SignedCertificate,
    /// The license it registered or updated (backed by it).
    pub license_id: Option<i64>,
    pub imported_at: chrono::DateTime<chrono::Utc>,
    pub imported_by: String,
}

impl StoredCertificate {
    pub fn certificate(&self) -> &Certificate {
        &self.signed.certificate
    }

    /// Expired on `day`: its last valid day is before it.
    pub fn expired_on(&self, day: NaiveDate) -> bool {
        self.certificate().expires.is_some_and(|e| e < day)
    }
}

/// A trusted issuer: its name and Ed25519 public key (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Issuer {
    pub name: String,
    pub public_key: String,
}

/// Why a certificate or key file is refused: the file, the line, the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {reason}")]
pub struct CertificateError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub reason: String,
}

/// What kind of refusal, for callers that tell them apart (tests, the API's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    UnknownIssuer,
    BadSignature,
    Duplicate,
}

impl Certificate {
    /// The canonical form the signature covers: the header line, then each field as
    /// `name=value` on its own line in this fixed order, each line ending in `\n`; an
    /// unlimited expiry is empty, days are `YYYY-MM-DD`.
    pub fn canonical(&self) -> String {
        let expires = self.expires.map(|d| d.to_string()).unwrap_or_default();
        format!(
            "{CERTIFICATE_HEADER}\ncustomer={}\nproduct={}\ncount={}\ncreated={}\nexpires={expires}\n\
             key={}\nmetric={}\nissuer={}\n",
            self.customer, self.product, self.count, self.created, self.key, self.metric, self.issuer
        )
    }

    /// The fingerprint recorded as an installation on the server's own device: a software
    /// title the application's recognition rule ([`fingerprint_pattern`]) matches.
    pub fn fingerprint(&self) -> String {
        format!("{} license certificate {}", self.product, self.key)
    }

    /// Signs it with the issuer's secret key.
    pub fn sign(self, key: &SigningKey) -> SignedCertificate {
        let signature = key.sign(self.canonical().as_bytes());
        SignedCertificate {
            certificate: self,
            signature: hex::encode(signature.to_bytes()),
        }
    }

    pub fn metric(&self) -> Option<CertificateMetric> {
        CertificateMetric::parse(&self.metric)
    }
}

/// The recognition pattern under which `product`'s certificates' fingerprints are recognised
/// as the application: `PRODUCT license certificate *`.
pub fn fingerprint_pattern(product: &str) -> String {
    format!("{product} license certificate *")
}

impl SignedCertificate {
    /// Whether the signature is the issuer's over the canonical form; the reason when not.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), String> {
        let bytes =
            hex::decode(&self.signature).map_err(|_| "the signature is not hex".to_string())?;
        let signature = Signature::from_slice(&bytes)
            .map_err(|_| "the signature is not 64 bytes".to_string())?;
        key.verify(self.certificate.canonical().as_bytes(), &signature)
            .map_err(|_| {
                "the signature does not match the certificate's fields: it was changed after \
                 signing, or signed with another key"
                    .to_string()
            })
    }

    /// The file text (docs/certificates.md).
    pub fn to_file(&self) -> String {
        let c = &self.certificate;
        let expires = c.expires.map(|d| d.to_string()).unwrap_or_default();
        format!(
            "{CERTIFICATE_HEADER}\ncustomer: {}\nproduct: {}\ncount: {}\ncreated: {}\n\
             expires: {expires}\nkey: {}\nmetric: {}\nissuer: {}\nsignature: {}\n",
            c.customer, c.product, c.count, c.created, c.key, c.metric, c.issuer, self.signature
        )
    }
}

/// `field: value` lines after a header line; every field once; `FILE:LINE: field: reason`.
struct Fields<'a> {
    file: &'a str,
    found: Vec<(&'a str, usize, &'a str)>,
}

impl<'a> Fields<'a> {
    fn parse(
        file: &'a str,
        text: &'a str,
        header: &str,
        known: &[&str],
    ) -> Result<Self, CertificateError> {
        let err = |line, field: &str, reason: String| CertificateError {
            file: file.to_string(),
            line,
            field: field.to_string(),
            reason,
        };
        if text.len() > 16 * 1024 {
            return Err(err(
                1,
                "file",
                "longer than 16 KiB: not a certificate".into(),
            ));
        }
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
        match lines.next() {
            Some((_, first)) if first.trim() == header => {}
            _ => {
                return Err(err(
                    1,
                    "header",
                    format!("the first line must be {header:?}"),
                ))
            }
        }
        let mut found: Vec<(&str, usize, &str)> = Vec::new();
        for (n, line) in lines {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(err(n, "line", "expected `field: value`".into()));
            };
            let name = name.trim();
            if !known.contains(&name) {
                return Err(err(
                    n,
                    name,
                    format!("unknown field; the fields are {}", known.join(", ")),
                ));
            }
            if found.iter().any(|(f, _, _)| *f == name) {
                return Err(err(n, name, "given twice".into()));
            }
            found.push((name, n, value.trim()));
        }
        Ok(Self { file, found })
    }

    fn err(&self, line: usize, field: &str, reason: impl Into<String>) -> CertificateError {
        CertificateError {
            file: self.file.to_string(),
            line,
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// The value and line of `field`; refused when missing (or empty unless `may_be_empty`).
    fn get(&self, field: &str, may_be_empty: bool) -> Result<(&'a str, usize), CertificateError> {
        let last = self.found.last().map(|f| f.1 + 1).unwrap_or(2);
        let (_, line, value) = self
            .found
            .iter()
            .find(|(f, _, _)| *f == field)
            .ok_or_else(|| self.err(last, field, "missing"))?;
        if value.is_empty() && !may_be_empty {
            return Err(self.err(*line, field, "empty"));
        }
        if value.chars().count() > MAX_NAME {
            return Err(self.err(*line, field, format!("longer than {MAX_NAME} characters")));
        }
        if value.chars().any(char::is_control) {
            return Err(self.err(*line, field, "holds a control character"));
        }
        Ok((value, *line))
    }

    fn day(&self, field: &str, may_be_empty: bool) -> Result<Option<NaiveDate>, CertificateError> {
        let (value, line) = self.get(field, may_be_empty)?;
        if value.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                self.err(
                    line,
                    field,
                    format!("{value:?} is not a day; write YYYY-MM-DD"),
                )
            })
    }

    fn hex_key<const N: usize>(&self, field: &str) -> Result<[u8; N], CertificateError> {
        let (value, line) = self.get(field, false)?;
        let bytes = hex::decode(value).map_err(|_| self.err(line, field, "not hex"))?;
        bytes.try_into().map_err(|_| {
            self.err(
                line,
                field,
                format!("must be {N} bytes ({} hex digits)", 2 * N),
            )
        })
    }
}

const CERT_FIELDS: [&str; 9] = [
    "customer",
    "product",
    "count",
    "created",
    "expires",
    "key",
    "metric",
    "issuer",
    "signature",
];

/// Reads a certificate file; `file` names it in the refusal.
pub fn parse_certificate(file: &str, text: &str) -> Result<SignedCertificate, CertificateError> {
    let f = Fields::parse(file, text, CERTIFICATE_HEADER, &CERT_FIELDS)?;
    let (count_text, count_line) = f.get("count", false)?;
    let count: i64 = count_text
        .parse()
        .ok()
        .filter(|c| (1..=MAX_QUANTITY).contains(c))
        .ok_or_else(|| {
            f.err(
                count_line,
                "count",
                format!("give a whole number from 1 to {MAX_QUANTITY}, not {count_text:?}"),
            )
        })?;
    let (key, key_line) = f.get("key", false)?;
    let key_ok = key.len() <= MAX_KEY
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !key_ok {
        return Err(f.err(
            key_line,
            "key",
            format!("letters, digits and -_. only, at most {MAX_KEY}"),
        ));
    }
    let (metric, metric_line) = f.get("metric", false)?;
    if CertificateMetric::parse(metric).is_none() {
        let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
        names.extend(Measure::ALL.iter().map(|m| m.as_str()));
        return Err(f.err(
            metric_line,
            "metric",
            format!("{metric:?} is none of {}", names.join(", ")),
        ));
    }
    let created = f.day("created", false)?.expect("not empty");
    let expires = f.day("expires", true)?;
    if let Some(e) = expires.filter(|e| *e < created) {
        let line = f.get("expires", true)?.1;
        return Err(f.err(
            line,
            "expires",
            format!("{e} is before the created day {created}"),
        ));
    }
    f.hex_key::<64>("signature")?;
    Ok(SignedCertificate {
        certificate: Certificate {
            customer: f.get("customer", false)?.0.to_string(),
            product: f.get("product", false)?.0.to_string(),
            count,
            created,
            expires,
            key: key.to_string(),
            metric: metric.to_string(),
            issuer: f.get("issuer", false)?.0.to_string(),
        },
        signature: f.get("signature", false)?.0.to_string(),
    })
}

/// The first line of an issuer's public key file.
pub const PUBLIC_KEY_HEADER: &str = "tally-issuer-public-key: 1";
/// The first line of an issuer's secret key file.
pub const SECRET_KEY_HEADER: &str = "tally-issuer-secret-key: 1";

/// Reads an issuer's public key file: `issuer: NAME` and `public_key: HEX`.
pub fn parse_public_key(file: &str, text: &str) -> Result<Issuer, CertificateError> {
    let f = Fields::parse(file, text, PUBLIC_KEY_HEADER, &["issuer", "public_key"])?;
    let bytes = f.hex_key::<32>("public_key")?;
    let line = f.get("public_key", false)?.1;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| f.err(line, "public_key", "not an Ed25519 public key"))?;
    Ok(Issuer {
        name: f.get("issuer", false)?.0.to_string(),
        public_key: hex::encode(bytes),
    })
}

/// Reads an issuer's secret key file: `issuer: NAME` and `secret_key: HEX`.
pub fn parse_secret_key(file: &str, text: &str) -> Result<(String, SigningKey), CertificateError> {
    let f = Fields::parse(file, text, SECRET_KEY_HEADER, &["issuer", "secret_key"])?;
    let bytes = f.hex_key::<32>("secret_key")?;
    Ok((
        f.get("issuer", false)?.0.to_string(),
        SigningKey::from_bytes(&bytes),
    ))
}

/// The two key files of a new issuer key made from 32 random bytes: (public, secret).
pub fn issuer_key_files(issuer: &str, secret: [u8; 32]) -> (String, String) {
    let key = SigningKey::from_bytes(&secret);
    (
        format!(
            "{PUBLIC_KEY_HEADER}\nissuer: {issuer}\npublic_key: {}\n",
            hex::encode(key.verifying_key().to_bytes())
        ),
        format!(
            "{SECRET_KEY_HEADER}\nissuer: {issuer}\nsecret_key: {}\n",
            hex::encode(secret)
        ),
    )
}

/// A public key given as hex (as `tally site key` prints it).
pub fn verifying_key(hex_text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("a public key is 64 hex digits (tally site key prints it)")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key".to_string())
}

/// The line that ends a signed DAT file: this prefix, then the signature in hex.
pub const SIGNATURE_LINE: &str = "signature-ed25519: ";

/// `payload` (text, ending in a newline) followed by a line with the site key's signature
/// over exactly those bytes.
pub fn signed_payload(payload: &str, key: &SigningKey) -> String {
    let mut payload = payload.to_string();
    if !payload.ends_with('\n') {
        payload.push('\n');
    }
    let signature = key.sign(payload.as_bytes());
    format!(
        "{payload}{SIGNATURE_LINE}{}\n",
        hex::encode(signature.to_bytes())
    )
}

/// The payload of a signed DAT file when its last line is `key`'s signature over the rest;
/// otherwise why not.
pub fn verify_payload<'t>(text: &'t str, key: &VerifyingKey) -> Result<&'t str, String> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let at = body
        .rfind(SIGNATURE_LINE)
        .filter(|at| *at == 0 || body.as_bytes()[at - 1] == b'\n')
        .ok_or("no signature line: this is not a signed Tally report")?;
    let (payload, line) = body.split_at(at);
    let hex_sig = &line[SIGNATURE_LINE.len()..];
    let signature = hex::decode(hex_sig)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or("the signature line does not hold 64 bytes of hex")?;
    key.verify(payload.as_bytes(), &signature).map_err(|_| {
        "the signature does not match: the file was changed after it was signed, or another \
         installation's key signed it"
            .to_string()
    })?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> Certificate {
        Certificate {
            customer: "Contoso Ltd".into(),
            product: "Tally Devices".into(),
            count: 250,
            created: "2026-01-01".parse().unwrap(),
            expires: None,
            key: "TLY-0001".into(),
            metric: "metered_devices".into(),
            issuer: "Tally Vendor".into(),
        }
    }

    #[test]
    fn a_signed_certificate_reads_back_and_verifies_and_a_changed_field_does_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = cert().sign(&key);
        let back = parse_certificate("c.cert", &signed.to_file()).unwrap();
        assert_eq!(back, signed);
        back.verify(&key.verifying_key()).unwrap();
        let mut changed = back.clone();
        changed.certificate.count = 2500;
        let e = changed.verify(&key.verifying_key()).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(back.verify(&other.verifying_key()).is_err());
    }

    #[test]
    fn the_canonical_form_is_fixed() {
        assert_eq!(
            cert().canonical(),
            "tally-license-certificate: 1\ncustomer=Contoso Ltd\nproduct=Tally Devices\n\
             count=250\ncreated=2026-01-01\nexpires=\nkey=TLY-0001\nmetric=metered_devices\n\
             issuer=Tally Vendor\n"
        );
    }

    #[test]
    fn malformed_files_name_the_line_and_field() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let good = cert().sign(&key).to_file();
        let cases = [
            (good.replace("count: 250", "count: many"), "c:4: count"),
            (
                good.replace("created: 2026-01-01", "created: 1.1.2026"),
                "c:5: created",
            ),
            (
                good.replace("metric: metered_devices", "metric: seats"),
                "c:8: metric",
            ),
            (good.replace("key: TLY-0001", "key: a b"), "c:7: key"),
            (
                good.replace("tally-license-certificate: 1", "hello"),
                "c:1: header",
            ),
            (
                good.replace("issuer: Tally Vendor\n", ""),
                "issuer: missing",
            ),
            (
                format!("{good}colour: red\n"),
                "c:11: colour: unknown field",
            ),
            (
                good.replace("expires: ", "expires: 2025-01-01"),
                "before the created day",
            ),
        ];
        for (text, want) in cases {
            let e = parse_certificate("c", &text).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn a_signed_payload_verifies_and_a_tampered_one_is_refused() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let dat = signed_payload("{\"devices\":3}", &key);
        assert_eq!(
            verify_payload(&dat, &key.verifying_key()).unwrap(),
            "{\"devices\":3}\n"
        );
        let tampered = dat.replace("3", "2");
        assert!(verify_payload(&tampered, &key.verifying_key()).is_err());
        assert!(verify_payload("{}", &key.verifying_key()).is_err());
    }

    #[test]
    fn key_files_read_back() {
        let (public, secret) = issuer_key_files("Vendor", [3; 32]);
        let issuer = parse_public_key("p", &public).unwrap();
        let (name, key) = parse_secret_key("s", &secret).unwrap();
        assert_eq!((issuer.name.as_str(), name.as_str()), ("Vendor", "Vendor"));
        assert_eq!(
            issuer.public_key,
            hex::encode(key.verifying_key().to_bytes())
        );
        assert!(parse_public_key("p", &secret).is_err());
    }
}
