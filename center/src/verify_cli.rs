//! `center verify`: what a relying party (a bank, a judicial scrivener, a landlord)
//! runs to check a printed certificate's seal offline against the center's trust list.
//! Exit status: 0 VALID, 1 INVALID, 2 UNKNOWN (including an unreadable input or list).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use schemas::{PublicKey, SignedTrustList};
use verifier::{DocumentVerification, Input, Verdict};

pub const EXIT_VALID: u8 = 0;
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_UNKNOWN: u8 = 2;

/// Upper bound on a trust list file (10,000 keys and a million revoked documents stay
/// well below it).
const MAX_TRUST_LIST_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Args)]
pub struct VerifyArgs {
    /// The certificate's PDF, or a scan or photo of a page (PNG or JPEG); told apart
    /// by content, not by name. Every seal in it is checked.
    #[arg(required_unless_present = "qr", conflicts_with = "qr")]
    input: Option<PathBuf>,
    /// The QR text read from the back side (`KC1:…`).
    #[arg(long)]
    qr: Option<String>,
    /// The center's signed trust list (JSON, `GET /v1/trust-list`).
    #[arg(long)]
    trust_list: PathBuf,
    /// The center's public key, base64 (obtained out of band).
    #[arg(long)]
    center_key: String,
    /// Judge as of this instant (RFC 3339) instead of now: for a demo whose clock was
    /// moved, or to re-run a past check. Relying parties leave it out.
    #[arg(long)]
    at: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn load(args: &VerifyArgs) -> anyhow::Result<(SignedTrustList, PublicKey)> {
    let raw = schemas::b64::Base64Bytes::decode(args.center_key.trim())
        .context("--center-key is not base64")?;
    let key = PublicKey(
        raw.try_into()
            .map_err(|_| anyhow::anyhow!("--center-key must be 32 bytes"))?,
    );
    let text = read_bounded(&args.trust_list, MAX_TRUST_LIST_BYTES)?;
    let text = String::from_utf8(text)
        .with_context(|| format!("{} is not UTF-8", args.trust_list.display()))?;
    let list = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a signed trust list", args.trust_list.display()))?;
    Ok((list, key))
}

fn read_bounded(path: &std::path::Path, max_bytes: u64) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    anyhow::ensure!(
        size <= max_bytes,
        "{} is larger than {max_bytes} bytes",
        path.display()
    );
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn now_unix_s(args: &VerifyArgs) -> anyhow::Result<i64> {
    match &args.at {
        None => Ok(jiff::Timestamp::now().as_second()),
        Some(text) => Ok(text
            .parse::<jiff::Timestamp>()
            .with_context(|| format!("--at {text:?} is not an RFC 3339 instant"))?
            .as_second()),
    }
}

pub fn run(args: VerifyArgs) -> anyhow::Result<std::process::ExitCode> {
    let unknown = |error: anyhow::Error| {
        eprintln!("UNKNOWN: {error:#}");
        Ok(std::process::ExitCode::from(EXIT_UNKNOWN))
    };
    let (list, key) = match load(&args) {
        Ok(loaded) => loaded,
        Err(error) => return unknown(error),
    };
    let now_unix_s = match now_unix_s(&args) {
        Ok(now) => now,
        Err(error) => return unknown(error),
    };
    let bytes = match &args.input {
        Some(path) => match read_bounded(path, verifier::document::MAX_INPUT_BYTES as u64) {
            Ok(bytes) => bytes,
            Err(error) => return unknown(error),
        },
        None => Vec::new(),
    };
    let input = match (&args.qr, &args.input) {
        (Some(text), _) => Input::QrText(text),
        (None, Some(path)) => match Input::sniff(&bytes) {
            Some(input) => input,
            None => {
                return unknown(anyhow::anyhow!(
                    "{} is neither a PDF nor a PNG or JPEG image",
                    path.display()
                ))
            }
        },
        (None, None) => return unknown(anyhow::anyhow!("give a PDF, an image file or --qr")),
    };
    let verification = verifier::verify_input(input, &list, &key, now_unix_s);
    if args.json {
        println!("{}", serde_json::to_string(&verification)?);
    } else {
        print!("{}", human(&verification));
    }
    Ok(std::process::ExitCode::from(match verification.verdict {
        Verdict::Valid => EXIT_VALID,
        Verdict::Invalid => EXIT_INVALID,
        Verdict::Unknown => EXIT_UNKNOWN,
    }))
}

/// The verdict, the reason, and the signed fields for comparison with the front.
pub fn human(v: &DocumentVerification) -> String {
    let mut out = format!("{} ({})\n", v.verdict, v.reason.as_str());
    if let Some(detail) = &v.detail {
        out.push_str(&format!("  why           {detail}\n"));
    }
    if let (Some(pages), Some(copies)) = (v.pdf_pages, v.copies) {
        out.push_str(&format!(
            "  PDF           {pages} pages, {copies} cop{}\n",
            if copies == 1 { "y" } else { "ies" }
        ));
    }
    for seal in &v.seals {
        let s = &seal.verification;
        let at = seal
            .pdf_page
            .map_or_else(String::new, |p| format!(" on PDF page {p}"));
        out.push_str(&format!(
            "  seal{at}: {} ({})\n",
            s.verdict,
            s.reason.as_str()
        ));
    }
    if let Some(f) = v.fields() {
        let title =
            schemas::CertificateType::from_seal_doc_type(f.doc_type).map_or("?", |t| t.title_ja());
        let birth = format!(
            "{:04}-{:02}-{:02}",
            f.birth_date / 10_000,
            f.birth_date / 100 % 100,
            f.birth_date % 100
        );
        out.push_str(&format!(
            "  document      {title} ({} page{})\n  issuer        {}\n  serial        {}\n  name          {}\n  date of birth {birth}\n",
            f.page_count, if f.page_count == 1 { "" } else { "s" }, f.issuer, f.serial, f.name
        ));
        if let Some(address) = &f.address {
            out.push_str(&format!("  address       {address}\n"));
        }
        if let Some(number) = &f.seal_registration_number {
            out.push_str(&format!("  seal reg. no. {number}\n"));
        }
        out.push_str(&format!(
            "  issued        {}\n  verify until  {}\n",
            center::clock::format_jst(f.issued_at_unix_s),
            center::clock::format_jst(f.verify_until_unix_s)
        ));
    }
    if let Some(kid) = v.seals.iter().find_map(|s| s.verification.kid) {
        out.push_str(&format!("  key id        {kid}\n"));
    }
    if let (Some(version), Some(age_s)) = (v.trust_list_version, v.trust_list_age_s) {
        out.push_str(&format!(
            "  trust list    version {version}, {age_s} s old\n"
        ));
    }
    out.push_str(
        "  A valid seal shows the content is genuine, not that this sheet is the original \
         or that the bearer is the person named.\n",
    );
    out
}
