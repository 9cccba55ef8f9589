//! The verification page for relying parties (a bank, a judicial scrivener, a landlord)
//! and its machine API, served on the public listener only (DESIGN.md §5):
//!
//! - `GET /verify`: the form (upload a PDF, PNG or JPEG, or paste the QR text);
//! - `POST /verify` (`multipart/form-data`): the verdict in very large type, the reason
//!   in plain words, the signed fields to compare with the paper, the issuing
//!   municipality, the trust list's version and age, and always the warning of what a
//!   valid seal does not show;
//! - `POST /v1/verify`: raw PDF/PNG/JPEG bytes, or `text/plain` QR text →
//!   `verifier::DocumentVerification` as JSON (200 whatever the verdict).
//!
//! Japanese first; `?lang=en` for English. Server-rendered HTML, no script, no external
//! asset; every value is escaped (names and addresses are resident data).

use std::fmt::Write as _;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use schemas::{CertificateType, ErrorCode, SealPayload};
use verifier::{DocumentVerification, Input, Reason, Verdict};

use crate::error::ApiError;
use crate::startup::AppState;

/// Upper bound on pasted QR text (a seal is at most a few hundred characters; the
/// verifier refuses longer ones itself with `too_long`).
pub const MAX_QR_TEXT_BYTES: usize = 8 * 1024;
/// Upper bound on an uploaded file (the verifier's own bound).
pub const MAX_UPLOAD_BYTES: usize = verifier::document::MAX_INPUT_BYTES;
/// Room for the multipart boundaries, part headers and the small fields.
const MULTIPART_OVERHEAD_BYTES: usize = 64 * 1024;
/// Parts a form may have (it has two; a few more are tolerated and ignored).
const MAX_FORM_PARTS: usize = 8;
/// Upper bound on a part that is neither the file nor the QR text.
const MAX_OTHER_PART_BYTES: usize = 1024;
/// Reading a body must finish within this time (actix's `client_request_timeout`
/// bounds only the request head).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Verifications (decoding an image or a PDF) run at once; more wait their turn, so
/// memory stays bounded by this many bodies of [`MAX_UPLOAD_BYTES`].
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 4;

/// Admission to a verification (shared by the page and the API).
pub struct VerifyGate {
    slots: tokio::sync::Semaphore,
}

impl Default for VerifyGate {
    fn default() -> Self {
        Self {
            slots: tokio::sync::Semaphore::new(MAX_CONCURRENT_VERIFICATIONS),
        }
    }
}

/// The page's language: Japanese unless `?lang=en`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn of(request: &HttpRequest) -> Self {
        let english = request
            .query_string()
            .split('&')
            .any(|pair| pair.eq_ignore_ascii_case("lang=en"));
        if english {
            Self::En
        } else {
            Self::Ja
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    fn pick(self, ja: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::Ja => ja,
            Self::En => en,
        }
    }

    /// The query that keeps this language on the next request.
    fn query(self) -> &'static str {
        match self {
            Self::Ja => "",
            Self::En => "?lang=en",
        }
    }
}

/// Why an input was not accepted (before anything was verified).
#[derive(Debug, PartialEq, Eq)]
enum InputError {
    Empty,
    Both,
    TooLarge,
    Unsupported,
    NotUtf8,
    Malformed(String),
    Timeout,
}

impl InputError {
    fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Empty | Self::Both | Self::NotUtf8 | Self::Malformed(_) => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    fn message(&self, lang: Lang) -> String {
        let text = match self {
            Self::Empty => lang.pick(
                "ファイルを選ぶか、QRコードの文字列を貼り付けてください。",
                "Choose a file or paste the QR text.",
            ),
            Self::Both => lang.pick(
                "ファイルとQRコードの文字列のどちらか一方だけを送ってください。",
                "Send either a file or the QR text, not both.",
            ),
            Self::TooLarge => lang.pick(
                "ファイルが大きすぎます（64 MiB まで）。",
                "The file is too large (64 MiB at most).",
            ),
            Self::Unsupported => lang.pick(
                "PDF、PNG、JPEG のいずれかのファイルを選んでください。",
                "Choose a PDF, PNG or JPEG file.",
            ),
            Self::NotUtf8 => lang.pick(
                "QRコードの文字列が正しい文字ではありません。",
                "The QR text is not valid text.",
            ),
            Self::Malformed(_) => lang.pick(
                "送信された内容を読み取れませんでした。もう一度お試しください。",
                "The submitted form could not be read. Please try again.",
            ),
            Self::Timeout => lang.pick(
                "送信に時間がかかりすぎました。もう一度お試しください。",
                "The upload took too long. Please try again.",
            ),
        };
        text.to_owned()
    }

    fn api_error(&self) -> ApiError {
        match self {
            Self::Empty => ApiError::new(
                ErrorCode::BadRequest,
                "empty body: send PDF/PNG/JPEG bytes or text/plain QR text",
            ),
            Self::Both => ApiError::new(ErrorCode::BadRequest, "send one input"),
            Self::TooLarge => {
                ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
            }
            Self::Unsupported => ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the body is neither a PDF, a PNG, a JPEG nor text/plain QR text",
            ),
            Self::NotUtf8 => ApiError::new(ErrorCode::BadRequest, "the QR text is not UTF-8"),
            Self::Malformed(detail) => {
                ApiError::new(ErrorCode::BadRequest, format!("unreadable body: {detail}"))
            }
            Self::Timeout => ApiError::new(
                ErrorCode::BadRequest,
                "the request body was not received in time",
            ),
        }
    }
}

/// What the relying party gave, owned (verification runs on a blocking thread).
enum OwnedInput {
    QrText(String),
    File(Vec<u8>),
}

impl OwnedInput {
    /// A file must be a PDF, PNG or JPEG by its first bytes.
    fn file(bytes: Vec<u8>) -> Result<Self, InputError> {
        if bytes.is_empty() {
            return Err(InputError::Empty);
        }
        if Input::sniff(&bytes).is_none() {
            return Err(InputError::Unsupported);
        }
        Ok(Self::File(bytes))
    }

    fn qr_text(bytes: Vec<u8>) -> Result<Self, InputError> {
        let text = String::from_utf8(bytes).map_err(|_| InputError::NotUtf8)?;
        if text.trim().is_empty() {
            return Err(InputError::Empty);
        }
        Ok(Self::QrText(text))
    }
}

/// Fails early on a declared length above `limit`.
fn check_declared_length(request: &HttpRequest, limit: usize) -> Result<(), InputError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(InputError::TooLarge),
        _ => Ok(()),
    }
}

/// The body, at most `limit` bytes.
async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, InputError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| InputError::Malformed(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(InputError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The raw body of `POST /v1/verify`: `text/plain` is QR text, anything else must be a
/// PDF, PNG or JPEG by its first bytes (content types of files are not trusted).
async fn read_api_body(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<OwnedInput, InputError> {
    let is_text = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/plain"));
    let limit = if is_text {
        MAX_QR_TEXT_BYTES
    } else {
        MAX_UPLOAD_BYTES
    };
    check_declared_length(request, limit)?;
    let body = read_limited(payload, limit).await?;
    if body.is_empty() {
        return Err(InputError::Empty);
    }
    if is_text {
        OwnedInput::qr_text(body)
    } else {
        OwnedInput::file(body)
    }
}

/// The page's form: a `file` part and a `qr` part (either may be empty; browsers send
/// an empty file part when no file was chosen). Exactly one must carry something.
async fn read_form(request: &HttpRequest, payload: web::Payload) -> Result<OwnedInput, InputError> {
    let total_limit = MAX_UPLOAD_BYTES + MAX_QR_TEXT_BYTES + MULTIPART_OVERHEAD_BYTES;
    check_declared_length(request, total_limit)?;
    // Count every byte of the body, part headers included, against the total.
    let mut seen_bytes = 0usize;
    let counted = payload.map(move |chunk| {
        let chunk = chunk?;
        seen_bytes = seen_bytes.saturating_add(chunk.len());
        if seen_bytes > total_limit {
            return Err(actix_web::error::PayloadError::Overflow);
        }
        Ok(chunk)
    });
    let mut multipart = actix_multipart::Multipart::new(request.headers(), counted);
    let mut file: Option<Vec<u8>> = None;
    let mut qr: Option<Vec<u8>> = None;
    let mut parts = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(multipart_error)?;
        parts += 1;
        if parts > MAX_FORM_PARTS {
            return Err(InputError::Malformed("too many form parts".into()));
        }
        let (limit, slot) = match field.name() {
            Some("file") => (MAX_UPLOAD_BYTES, Some(&mut file)),
            Some("qr") => (MAX_QR_TEXT_BYTES, Some(&mut qr)),
            _ => (MAX_OTHER_PART_BYTES, None),
        };
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            if data.len() + chunk.len() > limit {
                return Err(InputError::TooLarge);
            }
            data.extend_from_slice(&chunk);
        }
        if let Some(slot) = slot {
            if slot.is_some() {
                return Err(InputError::Malformed("a form part is repeated".into()));
            }
            *slot = Some(data);
        }
    }
    let file = file.filter(|bytes| !bytes.is_empty());
    let qr = qr.filter(|bytes| !String::from_utf8_lossy(bytes).trim().is_empty());
    match (file, qr) {
        (Some(_), Some(_)) => Err(InputError::Both),
        (Some(bytes), None) => OwnedInput::file(bytes),
        (None, Some(text)) => OwnedInput::qr_text(text),
        (None, None) => Err(InputError::Empty),
    }
}

fn multipart_error(error: actix_multipart::MultipartError) -> InputError {
    use actix_multipart::MultipartError as E;
    match error {
        E::Payload(actix_web::error::PayloadError::Overflow) => InputError::TooLarge,
        E::ContentTypeMissing | E::ContentTypeParse | E::ContentTypeIncompatible => {
            InputError::Unsupported
        }
        other => InputError::Malformed(other.to_string()),
    }
}

/// Verifies `input` against the center's current trust list, on a blocking thread (an
/// image or a PDF takes CPU time), at most [`MAX_CONCURRENT_VERIFICATIONS`] at once.
async fn verify(
    state: &AppState,
    gate: &VerifyGate,
    input: OwnedInput,
) -> Result<DocumentVerification, ApiError> {
    let now_unix_s = state.clock.now_unix_ms().div_euclid(1000);
    let list = super::trust_list::current(state, now_unix_s)?;
    let center_public = state.center_key.public();
    let _permit = gate.slots.acquire().await.map_err(ApiError::internal)?;
    web::block(move || {
        let input = match &input {
            OwnedInput::QrText(text) => Input::QrText(text),
            OwnedInput::File(bytes) => match Input::sniff(bytes) {
                Some(input) => input,
                // Checked when read; kept total rather than unwrapped.
                None => Input::Image(bytes),
            },
        };
        verifier::verify_input(input, &list, &center_public, now_unix_s)
    })
    .await
    .map_err(ApiError::internal)
}

/// `POST /v1/verify`: the machine API.
pub async fn api(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    gate: web::Data<VerifyGate>,
) -> Result<HttpResponse, ApiError> {
    let input = tokio::time::timeout(BODY_READ_TIMEOUT, read_api_body(&request, payload))
        .await
        .map_err(|_| InputError::Timeout.api_error())?
        .map_err(|e| e.api_error())?;
    let answer = verify(&state, &gate, input).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(&answer))
}

/// `GET /verify`: the form.
pub async fn form(request: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&request);
    page(StatusCode::OK, lang, &render_form(lang, None))
}

/// `POST /verify`: the form's answer.
pub async fn submit(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    gate: web::Data<VerifyGate>,
) -> HttpResponse {
    let lang = Lang::of(&request);
    let input = match tokio::time::timeout(BODY_READ_TIMEOUT, read_form(&request, payload)).await {
        Ok(Ok(input)) => input,
        Ok(Err(error)) => {
            let body = render_form(lang, Some(&error.message(lang)));
            return page(error.status(), lang, &body);
        }
        Err(_) => {
            let error = InputError::Timeout;
            let body = render_form(lang, Some(&error.message(lang)));
            return page(error.status(), lang, &body);
        }
    };
    match verify(&state, &gate, input).await {
        Ok(answer) => {
            let mut body = render_result(lang, &answer, &state);
            body.push_str(&render_form(lang, None));
            page(StatusCode::OK, lang, &body)
        }
        Err(_) => {
            let message = lang.pick(
                "内部エラーのため検証できませんでした。しばらくしてからもう一度お試しください。",
                "An internal error prevented the verification. Please try again later.",
            );
            let body = render_form(lang, Some(message));
            page(StatusCode::INTERNAL_SERVER_ERROR, lang, &body)
        }
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The warning shown on every page.
pub const WARNING_JA: &str = "有効な封印は内容が真正であることを示します。この用紙が原本であること、持参した人が記載された本人であることを示すものではありません。";
pub const WARNING_EN: &str = "A valid seal shows the content is genuine, not that this sheet is the original or that the bearer is the person named.";

/// The verdict's words: (Japanese, English).
pub fn verdict_words(verdict: Verdict) -> (&'static str, &'static str) {
    match verdict {
        Verdict::Valid => ("有効", "VALID"),
        Verdict::Invalid => ("無効", "INVALID"),
        Verdict::Unknown => ("判定不能", "UNKNOWN"),
    }
}

/// Each reason in plain words: (Japanese, English). No wildcard arm: a new reason does
/// not compile until it is explained here.
pub fn explain(reason: Reason) -> (&'static str, &'static str) {
    match reason {
        Reason::Ok => (
            "封印の署名は、センターが信頼するこの自治体の鍵で、その使用期間内に付けられたものと確認できました。",
            "The seal's signature verifies under a key the center trusts for this municipality, used within its period.",
        ),
        Reason::TrustListInvalid => (
            "センターの信頼リストを確認できないため、判定できません。",
            "The center's trust list could not be authenticated, so nothing was decided.",
        ),
        Reason::TrustListStale => (
            "信頼リストが古いため、判定できません。しばらくしてからもう一度お試しください。",
            "The trust list is out of date, so nothing was decided. Please try again later.",
        ),
        Reason::Prefix => (
            "このQRコードは本サービスの封印の形式ではありません。",
            "This QR code is not one of this service's seals.",
        ),
        Reason::Base45 => (
            "QRコードの文字列が壊れています（文字の変更や欠落）。",
            "The QR text is damaged (characters changed or missing).",
        ),
        Reason::Cbor => (
            "封印の中身を読み取れません（改ざんまたは破損）。",
            "The seal's content cannot be decoded (altered or damaged).",
        ),
        Reason::TrailingBytes => (
            "封印の後ろに余分なデータがあります（改ざん）。",
            "Extra data follows the seal (tampering).",
        ),
        Reason::NonCanonical => (
            "封印が正規の符号化になっていません（作り直された可能性があります）。",
            "The seal is not in its one canonical encoding (it may have been re-encoded).",
        ),
        Reason::DuplicateKey => (
            "封印に同じ項目が二度含まれています（改ざん）。",
            "The seal lists a field twice (tampering).",
        ),
        Reason::UnknownField => (
            "封印にこの形式にない項目が含まれています。",
            "The seal holds a field this format does not have.",
        ),
        Reason::Field => (
            "封印の項目の値が正しくありません。",
            "A field of the seal has an invalid value.",
        ),
        Reason::Algorithm => (
            "署名方式が認められたもの（Ed25519）ではありません。",
            "The signature algorithm is not the one allowed (Ed25519).",
        ),
        Reason::Version => (
            "この版の封印の形式には対応していません。",
            "This version of the seal format is not supported.",
        ),
        Reason::UnknownKid => (
            "署名した鍵が信頼リストにありません（偽造の可能性があります）。",
            "The signing key is not in the trust list (possibly forged).",
        ),
        Reason::WrongMunicipality => (
            "署名した鍵は、記載された発行自治体のものではありません。",
            "The signing key belongs to another municipality than the issuer named.",
        ),
        Reason::BadSignature => (
            "署名が内容と一致しません（内容が書き換えられています）。",
            "The signature does not match the content (the content was altered).",
        ),
        Reason::KeyNotValidAtIssue => (
            "記載された発行日時に、その鍵は使用期間外でした。",
            "The key was outside its period of use at the stated issue time.",
        ),
        Reason::Expired => (
            "検証期限を過ぎています。",
            "The document is past its verify-until date.",
        ),
        Reason::KeyRevoked => (
            "署名した鍵は失効しています（鍵の漏えい以後の発行です）。",
            "The signing key was revoked: this document was issued after the key was compromised.",
        ),
        Reason::DocumentRevoked => (
            "この証明書は発行後に取り消されています。",
            "This certificate was withdrawn after it was issued.",
        ),
        Reason::TooLong => (
            "QRコードの文字列が封印としては長すぎます。",
            "The QR text is longer than any seal.",
        ),
        Reason::IssuedInFuture => (
            "記載された発行日時が現在より後です。",
            "The stated issue time is in the future.",
        ),
        Reason::Unreadable => (
            "入力を読み取れませんでした（PDF・PNG・JPEGでない、QRコードが見つからない、ファイルが壊れているなど）。",
            "The input could not be read (not a PDF, PNG or JPEG, no QR code found, or a damaged file).",
        ),
        Reason::NoSeal => (
            "封印（QRコード）を読み取れないページがあります。",
            "A page carries no readable seal.",
        ),
        Reason::PageMismatch => (
            "ページが一つの証明書として正しく揃っていません（別の証明書のページの差し替え、順序の入れ替え、欠落など）。",
            "The pages do not make up one certificate in order (a page from another certificate, pages reordered or missing).",
        ),
        Reason::FrontDigestMismatch => (
            "おもて面のデータが、封印が署名した内容と一致しません。",
            "The front data does not match what the seal signed.",
        ),
        Reason::FrontTextMismatch => (
            "印刷されたおもて面の氏名・生年月日・住所が、封印の内容と一致しません。",
            "The printed front does not show the signed name, date of birth or address.",
        ),
    }
}

/// 和暦 eras, newest first: (name, first day as yyyymmdd, Gregorian year of 元年). 明治
/// starts at 1873-01-01 here (the adoption of the Gregorian calendar): earlier dates are
/// shown in ISO only.
#[allow(clippy::inconsistent_digit_grouping)] // yyyy_mm_dd reads as a date
const ERAS: [(&str, u32, i32); 5] = [
    ("令和", 2019_05_01, 2019),
    ("平成", 1989_01_08, 1989),
    ("昭和", 1926_12_25, 1926),
    ("大正", 1912_07_30, 1912),
    ("明治", 1873_01_01, 1868),
];

/// A signed date of birth: ISO, and in Japanese also 和暦 (e.g. 昭和55年4月1日).
fn birth_date(yyyymmdd: u32, lang: Lang) -> String {
    let (year, month, day) = (yyyymmdd / 10_000, yyyymmdd / 100 % 100, yyyymmdd % 100);
    let iso = format!("{year:04}-{month:02}-{day:02}");
    if lang == Lang::En {
        return iso;
    }
    let era = ERAS.iter().find(|(_, first_day, _)| yyyymmdd >= *first_day);
    match era {
        Some((name, _, first_year)) => {
            let era_year = i64::from(year) - i64::from(*first_year) + 1;
            let era_year = if era_year == 1 {
                "元".to_owned()
            } else {
                era_year.to_string()
            };
            format!("{name}{era_year}年{month}月{day}日（{iso}）")
        }
        None => iso,
    }
}

/// A trust list's age in words.
fn age(age_s: i64, lang: Lang) -> String {
    let age_s = age_s.max(0);
    let (days, hours, minutes) = (age_s / 86_400, age_s / 3_600 % 24, age_s / 60 % 60);
    match lang {
        Lang::Ja if days > 0 => format!("{days}日{hours}時間前"),
        Lang::Ja if hours > 0 => format!("{hours}時間{minutes}分前"),
        Lang::Ja if minutes > 0 => format!("{minutes}分前"),
        Lang::Ja => format!("{age_s}秒前"),
        Lang::En if days > 0 => format!("{days} d {hours} h ago"),
        Lang::En if hours > 0 => format!("{hours} h {minutes} min ago"),
        Lang::En if minutes > 0 => format!("{minutes} min ago"),
        Lang::En => format!("{age_s} s ago"),
    }
}

fn document_title(doc_type: u64, lang: Lang) -> String {
    match CertificateType::from_seal_doc_type(doc_type) {
        Some(t) => match lang {
            Lang::Ja => t.title_ja().to_owned(),
            Lang::En => format!("{} ({})", t.title_en(), t.title_ja()),
        },
        None => lang.pick("不明な種類", "unknown type").to_owned(),
    }
}

fn row(out: &mut String, label: &str, value_html: &str) {
    let _ = write!(
        out,
        "<tr><th scope=\"row\">{label}</th><td>{value_html}</td></tr>"
    );
}

/// The signed fields, in large type, in the order a person reads the front.
fn render_fields(out: &mut String, lang: Lang, fields: &SealPayload, state: &AppState) {
    let municipality = state
        .directory
        .municipality(&fields.issuer)
        .map(|m| m.name.clone());
    out.push_str("<table class=\"fields\">");
    row(
        out,
        lang.pick("書類の種類", "Document"),
        &escape(&document_title(fields.doc_type, lang)),
    );
    row(
        out,
        lang.pick("氏名", "Name"),
        &format!("<span class=\"name\">{}</span>", escape(&fields.name)),
    );
    row(
        out,
        lang.pick("生年月日", "Date of birth"),
        &escape(&birth_date(fields.birth_date, lang)),
    );
    if let Some(address) = &fields.address {
        row(out, lang.pick("住所", "Address"), &escape(address));
    }
    if let Some(number) = &fields.seal_registration_number {
        row(
            out,
            lang.pick("印鑑登録番号", "Seal registration no."),
            &escape(number),
        );
    }
    let issuer = match municipality {
        Some(name) => format!("{}（{}）", escape(&name), fields.issuer),
        None => format!(
            "{} ({})",
            fields.issuer,
            lang.pick("名称不明", "name unknown")
        ),
    };
    row(
        out,
        lang.pick("発行自治体", "Issuing municipality"),
        &issuer,
    );
    row(
        out,
        lang.pick("ページ", "Page"),
        &format!("{} / {}", fields.page, fields.page_count),
    );
    row(
        out,
        lang.pick("発行番号", "Serial"),
        &format!(
            "<span class=\"serial\">{}</span>",
            escape(&fields.serial.to_string())
        ),
    );
    row(
        out,
        lang.pick("発行日時", "Issued"),
        &escape(&crate::clock::format_jst(fields.issued_at_unix_s)),
    );
    row(
        out,
        lang.pick("検証期限", "Verify until"),
        &escape(&crate::clock::format_jst(fields.verify_until_unix_s)),
    );
    out.push_str("</table>");
}

/// The verdict, the reason and what was signed.
fn render_result(lang: Lang, answer: &DocumentVerification, state: &AppState) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let (ja, en) = verdict_words(answer.verdict);
    let class = match answer.verdict {
        Verdict::Valid => "valid",
        Verdict::Invalid => "invalid",
        Verdict::Unknown => "unknown",
    };
    let (main, other) = match lang {
        Lang::Ja => (ja, en),
        Lang::En => (en, ja),
    };
    let _ = write!(
        out,
        "<section class=\"verdict {class}\" role=\"status\"><p class=\"word\">{main}</p><p class=\"other\">{other}</p></section>"
    );
    let (why_ja, why_en) = explain(answer.reason);
    let why = match lang {
        Lang::Ja => why_ja,
        Lang::En => why_en,
    };
    let _ = write!(
        out,
        "<section class=\"reason\"><h2>{}</h2><p class=\"why\">{why}</p><p>{} <code>{}</code></p>",
        lang.pick("理由", "Reason"),
        lang.pick("理由コード:", "Reason code:"),
        answer.reason.as_str(),
    );
    if let Some(detail) = &answer.detail {
        let _ = write!(
            out,
            "<p class=\"detail\">{} {}</p>",
            lang.pick("詳細（英語）:", "Detail:"),
            escape(detail)
        );
    }
    out.push_str("</section>");

    if let Some(fields) = answer.fields() {
        let heading = if answer.verdict == Verdict::Valid {
            lang.pick(
                "署名された内容 — 用紙のおもて面と見比べてください",
                "What was signed — compare it with the front of the paper",
            )
        } else {
            lang.pick(
                "署名された内容（参考）— この書類は有効ではありません",
                "What was signed (for reference) — this document is not valid",
            )
        };
        let _ = write!(out, "<section class=\"signed\"><h2>{heading}</h2>");
        render_fields(&mut out, lang, fields, state);
        out.push_str("</section>");
    }

    if answer.seals.len() > 1 {
        let _ = write!(
            out,
            "<section><h2>{}</h2><table class=\"seals\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            lang.pick("読み取った封印", "Seals read"),
            lang.pick("PDFのページ", "PDF page"),
            lang.pick("封印のページ", "Seal page"),
            lang.pick("判定", "Verdict"),
            lang.pick("理由コード", "Reason code"),
        );
        for seal in &answer.seals {
            let v = &seal.verification;
            let (ja, en) = verdict_words(v.verdict);
            let pdf_page = seal
                .pdf_page
                .map_or_else(|| "-".to_owned(), |p| p.to_string());
            let seal_page = v.fields.as_ref().map_or_else(
                || "-".to_owned(),
                |f| format!("{} / {}", f.page, f.page_count),
            );
            let _ = write!(
                out,
                "<tr><td>{pdf_page}</td><td>{seal_page}</td><td>{}</td><td><code>{}</code></td></tr>",
                lang.pick(ja, en),
                v.reason.as_str()
            );
        }
        out.push_str("</table></section>");
    }

    out.push_str("<section class=\"list\"><p>");
    match (answer.trust_list_version, answer.trust_list_age_s) {
        (Some(version), Some(age_s)) => {
            let _ = match lang {
                Lang::Ja => write!(out, "信頼リスト 版 {version}（{}）", age(age_s, lang)),
                Lang::En => write!(out, "Trust list version {version} ({})", age(age_s, lang)),
            };
        }
        _ => out.push_str(lang.pick("信頼リスト: 使用されていません", "Trust list: not used")),
    }
    if let Some(pages) = answer.pdf_pages {
        let _ = write!(
            out,
            " · {} {pages}",
            lang.pick("PDFのページ数", "PDF pages")
        );
    }
    if let Some(copies) = answer.copies {
        let _ = write!(out, " · {} {copies}", lang.pick("部数", "copies"));
    }
    out.push_str("</p></section>");
    out
}

/// The form (and, when given, why the last submission was not accepted).
fn render_form(lang: Lang, error: Option<&str>) -> String {
    let mut out = String::with_capacity(2048);
    if let Some(error) = error {
        let _ = write!(
            out,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(error)
        );
    }
    let _ = write!(
        out,
        "<form method=\"post\" action=\"/verify{query}\" enctype=\"multipart/form-data\">\
         <h2>{heading}</h2>\
         <p><label for=\"file\">{file_label}</label><br>\
         <input type=\"file\" id=\"file\" name=\"file\" accept=\"application/pdf,image/png,image/jpeg\"></p>\
         <p><label for=\"qr\">{qr_label}</label><br>\
         <textarea id=\"qr\" name=\"qr\" rows=\"4\" spellcheck=\"false\" autocomplete=\"off\" placeholder=\"KC1:…\"></textarea></p>\
         <p><button type=\"submit\">{submit}</button></p></form>",
        query = lang.query(),
        heading = lang.pick("証明書を確認する", "Check a certificate"),
        file_label = lang.pick(
            "PDF、またはうら面をスキャン・撮影した画像（PNG・JPEG）を選ぶ",
            "Choose the PDF, or a scan or photo of the back side (PNG, JPEG)",
        ),
        qr_label = lang.pick(
            "または、うら面のQRコードを読み取った文字列（KC1:…）を貼り付ける",
            "or paste the text read from the back side's QR code (KC1:…)",
        ),
        submit = lang.pick("確認する", "Verify"),
    );
    out
}

/// The whole page around `body`.
fn page(status: StatusCode, lang: Lang, body: &str) -> HttpResponse {
    let (title, switch) = match lang {
        Lang::Ja => (
            "証明書の封印の確認",
            "<a href=\"/verify?lang=en\" lang=\"en\" hreflang=\"en\">English</a>",
        ),
        Lang::En => (
            "Certificate seal verification",
            "<a href=\"/verify\" lang=\"ja\" hreflang=\"ja\">日本語</a>",
        ),
    };
    let warning = match lang {
        Lang::Ja => format!("<p>{WARNING_JA}</p><p lang=\"en\">{WARNING_EN}</p>"),
        Lang::En => format!("<p>{WARNING_EN}</p><p lang=\"ja\">{WARNING_JA}</p>"),
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang_code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\
         <header><h1>{title}</h1><nav>{switch}</nav></header><main>{body}\
         <aside class=\"warning\">{warning}</aside></main></body></html>\n",
        lang_code = lang.code(),
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // Results carry resident data: never cached, never framed, no script at all.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html)
}

/// Inline CSS: large type, high contrast (WCAG AA or better), no horizontal scrolling
/// from 1024×768 down to a phone.
const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font-family:system-ui,'Hiragino Sans','Noto Sans CJK JP','Yu Gothic',sans-serif;font-size:18px;line-height:1.5;color:#111;background:#fff}\
header{display:flex;justify-content:space-between;align-items:center;gap:1em;padding:.5em 1em;background:#0b2545;color:#fff}\
header h1{font-size:1.4em;margin:0}\
header a{color:#fff;font-weight:bold}\
main{max-width:960px;margin:0 auto;padding:1em}\
h2{font-size:1.3em;margin:.8em 0 .4em}\
.verdict{text-align:center;border-radius:8px;padding:.3em 1em;margin:.5em 0}\
.verdict .word{font-size:96px;font-weight:bold;line-height:1.1;margin:.1em 0}\
.verdict .other{font-size:32px;font-weight:bold;margin:0 0 .2em}\
.valid{background:#0b6b2e;color:#fff}\
.invalid{background:#a4001d;color:#fff}\
.unknown{background:#ffd54f;color:#1a1a1a;border:4px solid #5c4500}\
.why{font-size:1.3em;font-weight:bold}\
.detail{color:#333;overflow-wrap:anywhere}\
table{border-collapse:collapse;width:100%}\
th,td{border:1px solid #888;padding:.3em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
.fields th{width:11em;font-size:20px;background:#eef1f5}\
.fields td{font-size:28px;font-weight:bold}\
.fields .name{font-size:36px}\
.fields .serial{font-family:ui-monospace,monospace;font-size:22px}\
.error{background:#fde7ea;color:#7a0015;border:2px solid #a4001d;padding:.5em;font-weight:bold}\
.warning{border:3px solid #5c4500;background:#fff8e1;padding:.5em 1em;margin-top:1.5em;font-weight:bold}\
form{border:1px solid #888;border-radius:8px;padding:.5em 1em;margin-top:1.5em}\
textarea{width:100%;font-family:ui-monospace,monospace;font-size:16px}\
input[type=file]{font-size:18px;max-width:100%}\
button{font-size:20px;padding:.4em 2em;background:#0b2545;color:#fff;border:0;border-radius:6px;cursor:pointer}\
code{font-size:1em;background:#eef1f5;padding:0 .2em}\
";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_reason_is_explained_in_both_languages() {
        let mut seen_ja = HashSet::new();
        let mut seen_en = HashSet::new();
        for reason in Reason::ALL {
            let (ja, en) = explain(reason);
            assert!(!ja.is_empty() && !en.is_empty(), "{reason}");
            assert!(!ja.is_ascii(), "{reason}: Japanese text expected");
            assert!(en.is_ascii(), "{reason}: English text expected");
            assert!(seen_ja.insert(ja), "{reason}: same words as another reason");
            assert!(seen_en.insert(en), "{reason}: same words as another reason");
        }
    }

    #[test]
    fn escaping_covers_markup_and_attributes() {
        assert_eq!(
            escape(r#"<script>alert('x')</script> & "q""#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn birth_dates_in_wareki_and_iso() {
        assert_eq!(
            birth_date(19_800_401, Lang::Ja),
            "昭和55年4月1日（1980-04-01）"
        );
        assert_eq!(
            birth_date(20_190_501, Lang::Ja),
            "令和元年5月1日（2019-05-01）"
        );
        assert_eq!(
            birth_date(20_190_430, Lang::Ja),
            "平成31年4月30日（2019-04-30）"
        );
        assert_eq!(
            birth_date(19_890_107, Lang::Ja),
            "昭和64年1月7日（1989-01-07）"
        );
        assert_eq!(birth_date(19_800_401, Lang::En), "1980-04-01");
        assert_eq!(birth_date(18_600_101, Lang::Ja), "1860-01-01");
    }

    #[test]
    fn language_from_the_query() {
        let en = actix_web::test::TestRequest::default()
            .uri("/verify?x=1&lang=en")
            .to_http_request();
        assert_eq!(Lang::of(&en), Lang::En);
        let ja = actix_web::test::TestRequest::default()
            .uri("/verify?lang=fr")
            .to_http_request();
        assert_eq!(Lang::of(&ja), Lang::Ja);
    }
}
