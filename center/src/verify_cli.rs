//! `center verify`: what a relying party (a bank, a judicial scrivener, a landlord)
//! runs to check a printed certificate's seal offline against the center's trust list.
//! Exit status: 0 VALID, 1 INVALID, 2 UNKNOWN (including an unreadable input or list).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use schemas::{PublicKey, SignedTrustList};
use verifier::{Verdict, Verification};

pub const EXIT_VALID: u8 = 0;
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_UNKNOWN: u8 = 2;

/// Upper bound on a trust list file (10,000 keys and a million revoked documents stay
/// well below it).
const MAX_TRUST_LIST_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Args)]
pub struct VerifyArgs {
    /// A scan or photo of a page (PNG or JPEG): every QR code in it is checked.
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
    let size = std::fs::metadata(&args.trust_list)
        .with_context(|| format!("reading {}", args.trust_list.display()))?
        .len();
    anyhow::ensure!(
        size <= MAX_TRUST_LIST_BYTES,
        "{} is larger than {MAX_TRUST_LIST_BYTES} bytes",
        args.trust_list.display()
    );
    let text = std::fs::read_to_string(&args.trust_list)
        .with_context(|| format!("reading {}", args.trust_list.display()))?;
    let list = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a signed trust list", args.trust_list.display()))?;
    Ok((list, key))
}

pub fn run(args: VerifyArgs) -> anyhow::Result<std::process::ExitCode> {
    let (list, key) = match load(&args) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("UNKNOWN: {error:#}");
            return Ok(std::process::ExitCode::from(EXIT_UNKNOWN));
        }
    };
    let texts = match seal_texts(&args) {
        Ok(texts) => texts,
        Err(error) => {
            eprintln!("UNKNOWN: {error:#}");
            return Ok(std::process::ExitCode::from(EXIT_UNKNOWN));
        }
    };
    let now_unix_s = jiff::Timestamp::now().as_second();
    let mut worst = Verdict::Valid;
    for text in &texts {
        // Scanners add line ends; the seal alphabet has no whitespace at either end.
        let verification = verifier::verify_seal(text.trim(), &list, &key, now_unix_s);
        if args.json {
            println!("{}", serde_json::to_string(&verification)?);
        } else {
            print!("{}", human(&verification));
        }
        worst = match (worst, verification.verdict) {
            (Verdict::Invalid, _) | (_, Verdict::Invalid) => Verdict::Invalid,
            (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
            _ => Verdict::Valid,
        };
    }
    Ok(std::process::ExitCode::from(match worst {
        Verdict::Valid => EXIT_VALID,
        Verdict::Invalid => EXIT_INVALID,
        Verdict::Unknown => EXIT_UNKNOWN,
    }))
}

/// The QR texts to check: the one given, or every one found in the image.
fn seal_texts(args: &VerifyArgs) -> anyhow::Result<Vec<String>> {
    if let Some(text) = &args.qr {
        return Ok(vec![text.clone()]);
    }
    let path = args
        .input
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("give an image file or --qr"))?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
    {
        anyhow::bail!(
            "PDF input is not supported yet: render the page (e.g. pdftoppm -png -r 150) and give the image"
        );
    }
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    anyhow::ensure!(
        size <= verifier::scan::MAX_IMAGE_BYTES as u64,
        "{} is larger than {} bytes",
        path.display(),
        verifier::scan::MAX_IMAGE_BYTES
    );
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(verifier::scan::seal_texts_in_image(&bytes)?)
}

fn jst(unix_s: u64) -> String {
    i64::try_from(unix_s)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .and_then(|t| {
            jiff::tz::TimeZone::get("Asia/Tokyo")
                .ok()
                .map(|tz| t.to_zoned(tz).strftime("%Y-%m-%d %H:%M JST").to_string())
        })
        .unwrap_or_else(|| format!("{unix_s} s"))
}

/// The verdict, the reason, and the signed fields for comparison with the front.
pub fn human(v: &Verification) -> String {
    let mut out = format!("{} ({})\n", v.verdict, v.reason.as_str());
    if let Some(f) = &v.fields {
        let title =
            schemas::CertificateType::from_seal_doc_type(f.doc_type).map_or("?", |t| t.title_ja());
        let birth = format!(
            "{:04}-{:02}-{:02}",
            f.birth_date / 10_000,
            f.birth_date / 100 % 100,
            f.birth_date % 100
        );
        out.push_str(&format!(
            "  document      {title} (page {}/{})\n  issuer        {}\n  serial        {}\n  name          {}\n  date of birth {birth}\n",
            f.page, f.page_count, f.issuer, f.serial, f.name
        ));
        if let Some(address) = &f.address {
            out.push_str(&format!("  address       {address}\n"));
        }
        if let Some(number) = &f.seal_registration_number {
            out.push_str(&format!("  seal reg. no. {number}\n"));
        }
        out.push_str(&format!(
            "  issued        {}\n  verify until  {}\n",
            jst(f.issued_at_unix_s),
            jst(f.verify_until_unix_s)
        ));
    }
    if let Some(kid) = v.kid {
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
