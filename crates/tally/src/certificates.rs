//! `tally certificates`: trust an issuer, import and list certificates over the API; and,
//! on this machine alone, make an issuer key, sign a certificate, and verify a signed
//! system-metering DAT file (docs/certificates.md).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use chrono::NaiveDate;
use clap::Subcommand;
use serde::Serialize;
use tally_api::{CertificateView, TextFile};
use tally_core::certificates::{
    issuer_key_files, parse_secret_key, verify_payload, verifying_key, Certificate,
    CertificateMetric,
};

use crate::admin::ApiArgs;
use crate::output::{print, print_lines};

#[derive(Subcommand, Debug)]
pub enum CertificatesCmd {
    /// List the stored certificates (the default): customer, product, count, created,
    /// expires, key, and the license each backs.
    List,
    /// Trust an issuer: register its public key file (made by `tally certificates keygen`).
    Trust { key_file: PathBuf },
    /// Verify certificate files against the trusted issuers and store them, each registering
    /// or updating its license; any refusal stores none of them.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Make an issuer key pair: PREFIX.pub (to give to customers, for `trust`) and PREFIX.key
    /// (secret, owner-only, for `sign`). Local: no server needed.
    Keygen {
        /// The issuer's name, as certificates will name it.
        #[arg(long)]
        issuer: String,
        /// Path prefix of the two files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue a certificate signed with an issuer's secret key. Local: no server needed.
    Sign {
        /// The issuer's secret key file.
        #[arg(long)]
        key: PathBuf,
        /// The licensee.
        #[arg(long)]
        customer: String,
        /// The product (the application it registers).
        #[arg(long)]
        product: String,
        /// The number of licenses.
        #[arg(long)]
        count: i64,
        /// Issue day, YYYY-MM-DD.
        #[arg(long)]
        created: NaiveDate,
        /// Last valid day, YYYY-MM-DD [default: unlimited].
        #[arg(long)]
        expires: Option<NaiveDate>,
        /// The certificate's unique id.
        #[arg(long)]
        cert_key: String,
        /// A license metric (installations, users, devices, …) or metered_devices,
        /// metered_users, metered_operators.
        #[arg(long)]
        metric: String,
        /// Where to write it [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify a signed System_Metering_Report.dat against a site's public key (`tally site
    /// key`): exit 0 when it came unaltered from that installation. Local: no server needed.
    VerifyReport {
        file: PathBuf,
        /// The site's public key (hex), or a file holding it.
        #[arg(long)]
        key: String,
    },
}

fn read_text(path: &Path) -> Result<TextFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(TextFile {
        file: path.display().to_string(),
        text,
    })
}

#[derive(Serialize)]
struct Line<'a> {
    customer: &'a str,
    product: &'a str,
    count: i64,
    created: NaiveDate,
    expires: String,
    key: &'a str,
    license: &'a str,
}

fn line(view: &CertificateView) -> Line<'_> {
    let c = &view.certificate;
    let expires = match (c.expires, view.expired) {
        (None, _) => String::new(),
        (Some(d), true) => format!("{d} (expired)"),
        (Some(d), false) => d.to_string(),
    };
    Line {
        customer: &c.customer,
        product: &c.product,
        count: c.count,
        created: c.created,
        expires,
        key: &c.key,
        license: view.license.as_deref().unwrap_or(""),
    }
}

const COLUMNS: [&str; 7] = [
    "customer", "product", "count", "created", "expires", "key", "license",
];

pub async fn certificates(api: &ApiArgs, cmd: Option<CertificatesCmd>) -> Result<()> {
    match cmd.unwrap_or(CertificatesCmd::List) {
        CertificatesCmd::List => {
            let rows = api.client()?.certificates().await?;
            print_lines(&rows, &COLUMNS, api.format, line)?;
        }
        CertificatesCmd::Trust { key_file } => {
            let issuer = api.client()?.trust_issuer(read_text(&key_file)?).await?;
            print(&[issuer], &["name", "public_key"], api.format)?;
        }
        CertificatesCmd::Import { files } => {
            let files = files.iter().map(|f| read_text(f)).collect::<Result<_>>()?;
            let rows = api.client()?.import_certificates(files).await?;
            print_lines(&rows, &COLUMNS, api.format, line)?;
        }
        CertificatesCmd::Keygen { issuer, out } => keygen(&issuer, &out)?,
        CertificatesCmd::Sign {
            key,
            customer,
            product,
            count,
            created,
            expires,
            cert_key,
            metric,
            out,
        } => {
            let certificate = Certificate {
                customer,
                product,
                count,
                created,
                expires,
                key: cert_key,
                metric,
                issuer: String::new(),
            };
            sign(&key, certificate, out.as_deref())?
        }
        CertificatesCmd::VerifyReport { file, key } => verify_report(&file, &key)?,
    }
    Ok(())
}

fn keygen(issuer: &str, out: &Path) -> Result<()> {
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut secret);
    let (public, secret) = issuer_key_files(issuer, secret);
    let public_path = out.with_extension("pub");
    let secret_path = out.with_extension("key");
    crate::serve::write_private(&secret_path, secret.trim_end())
        .with_context(|| format!("cannot write {}", secret_path.display()))?;
    std::fs::write(&public_path, public)
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    println!(
        "public key: {} (give it to customers: tally certificates trust FILE)\nsecret key: {} (keep it: tally certificates sign --key FILE)",
        public_path.display(),
        secret_path.display()
    );
    Ok(())
}

fn sign(key_file: &Path, mut certificate: Certificate, out: Option<&Path>) -> Result<()> {
    let text = std::fs::read_to_string(key_file)
        .with_context(|| format!("cannot read {}", key_file.display()))?;
    let (issuer, key) = parse_secret_key(&key_file.display().to_string(), &text)?;
    certificate.issuer = issuer;
    if CertificateMetric::parse(&certificate.metric).is_none() {
        bail!("--metric: {:?} is no license metric nor metered_devices, metered_users, metered_operators", certificate.metric);
    }
    let file = certificate.sign(&key).to_file();
    // The text must read back: the same checks `import` makes, before anyone gets it.
    tally_core::certificates::parse_certificate("the certificate", &file)?;
    match out {
        Some(path) => std::fs::write(path, &file)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{file}"),
    }
    Ok(())
}

fn verify_report(file: &Path, key: &str) -> Result<()> {
    let key_text = match Path::new(key).is_file() {
        true => std::fs::read_to_string(key)?,
        false => key.to_string(),
    };
    let key = verifying_key(&key_text).map_err(|e| anyhow!("--key: {e}"))?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    verify_payload(&text, &key).map_err(|e| anyhow!("{}: refused: {e}", file.display()))?;
    let key = hex::encode(key.to_bytes());
    println!("{}: verified: signed by the site key {key}", file.display());
    Ok(())
}
