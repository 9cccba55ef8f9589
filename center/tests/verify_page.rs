//! The public listener over real HTTPS, with a client that presents no certificate (a
//! bank, a landlord): the trust list, the verification page in Japanese and English, the
//! verdicts for pasted QR text and a PNG scan, escaping of resident data, the JSON API
//! and its body bounds, and that nothing of the kiosk API is reachable there while the
//! kiosk listener still refuses a client without a certificate.

mod common;

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Duration;

use center::configuration::Settings;
use center::routes::verify_page::{explain, WARNING_EN, WARNING_JA};
use center::startup::{AppHandle, Application};
use schemas::b64::Base64Bytes;
use schemas::{
    ErrorBody, ErrorCode, KeyPair, MunicipalityCode, RequestId, RevocationListBody, SealPayload,
    Signed, SignedSeal, SignedTrustList,
};

const MINOKAMO: &str = "212113";

fn now_s() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_second()).unwrap()
}

/// A center with a public listener, on temporary files.
struct TestCenter {
    dir: PathBuf,
    kiosk_url: String,
    public_url: String,
    center: KeyPair,
    municipality: KeyPair,
    /// Trusts the deployment CA, presents no certificate.
    public_client: reqwest::Client,
    /// A chain operator's client (mTLS), for the kiosk listener.
    operator_client: reqwest::Client,
    handle: AppHandle,
}

impl TestCenter {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("verify-page-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();

        // The deployment CA, the center's server certificate (both listeners), an
        // operator's client certificate and the center's LGWAN client certificate.
        let ca = common::TestCa::new(&dir);
        ca.issue("server", &["127.0.0.1", "localhost"], None, true);
        ca.issue(
            "operator",
            &[],
            Some(&format!("{}seven", mtls::URI_OPERATOR_PREFIX)),
            false,
        );
        ca.issue("lgwan", &[], Some(mtls::URI_CENTER), false);

        let center = KeyPair::generate();
        let municipality = KeyPair::generate();
        let card_authority = KeyPair::generate();
        std::fs::write(dir.join("center.seed"), center.seed_base64()).unwrap();
        let revocation = Signed::sign(
            RevocationListBody {
                issued_at_unix_s: i64::try_from(now_s()).unwrap() - 60,
                next_update_unix_s: i64::try_from(now_s()).unwrap() + 86_400,
                revoked: vec![],
            },
            &card_authority,
        )
        .unwrap();
        std::fs::write(
            dir.join("revocation.json"),
            serde_json::to_string(&revocation).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join("seal.png"),
            composer::render_official_seal_png("美濃加茂市長之印", 128).unwrap(),
        )
        .unwrap();

        let p = |name: &str| dir.join(name).display().to_string();
        let text = format!(
            r#"
kiosk_listen = "127.0.0.1:0"
public_listen = "127.0.0.1:0"
database_url = "sqlite://{db}?mode=rwc"
center_key_path = "{center_key}"
card_authority_public_key = "{card_authority}"
revocation_list_path = "{revocation}"
verify_url = "https://127.0.0.1/verify"
[kiosk_tls]
cert = "{server}"
key = "{server_key}"
ca = "{ca}"
[lgwan_tls]
cert = "{lgwan}"
key = "{lgwan_key}"
ca = "{ca}"
[[municipalities]]
code = "{MINOKAMO}"
name = "美濃加茂市"
adapter_url = "https://127.0.0.1:1"
public_keys = ["{municipality_key}"]
seal_image_path = "{seal}"
[[operators]]
id = "seven"
kiosks = ["seven-0001"]
"#,
            db = p("center.db"),
            center_key = p("center.seed"),
            card_authority = Base64Bytes::encode(&card_authority.public().0),
            revocation = p("revocation.json"),
            server = p("server.pem"),
            server_key = p("server.key.pem"),
            ca = p("ca.pem"),
            lgwan = p("lgwan.pem"),
            lgwan_key = p("lgwan.key.pem"),
            municipality_key = Base64Bytes::encode(&municipality.public().0),
            seal = p("seal.png"),
        );
        let settings: Settings = toml::from_str(&text).unwrap();
        let app = Application::build(settings).await.expect("center starts");
        let kiosk_url = format!("https://127.0.0.1:{}", app.port());
        let public_url = format!(
            "https://127.0.0.1:{}",
            app.public_port().expect("a public listener")
        );
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());

        let public_client = reqwest::Client::builder()
            .use_preconfigured_tls(
                mtls::client_config_without_client_auth(&dir.join("ca.pem")).unwrap(),
            )
            .https_only(true)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let operator_client = mtls::http_client(
            &mtls::TlsFiles {
                cert: dir.join("operator.pem"),
                key: dir.join("operator.key.pem"),
                ca: dir.join("ca.pem"),
            },
            Duration::from_secs(30),
        )
        .unwrap();
        Self {
            dir,
            kiosk_url,
            public_url,
            center,
            municipality,
            public_client,
            operator_client,
            handle,
        }
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// A seal signed by this deployment's municipality key.
    fn genuine_seal(&self, name: &str) -> String {
        seal(&self.municipality, name)
    }

    async fn trust_list(&self) -> SignedTrustList {
        let response = self
            .public_client
            .get(format!("{}/v1/trust-list", self.public_url))
            .send()
            .await
            .expect("trust list answered without a client certificate");
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.expect("a signed trust list")
    }

    /// `POST /verify` with a multipart form: (status, HTML).
    async fn submit(&self, query: &str, parts: &[Part<'_>]) -> (u16, String) {
        let (content_type, body) = multipart(parts);
        let response = self
            .public_client
            .post(format!("{}/verify{query}", self.public_url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the page answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// `POST /v1/verify` with a raw body.
    async fn api(&self, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.public_client
            .post(format!("{}/v1/verify", self.public_url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the API answers")
    }
}

fn seal(key: &KeyPair, name: &str) -> String {
    let now = now_s();
    let payload = SealPayload {
        doc_type: schemas::CertificateType::ResidentRecord.seal_doc_type(),
        issuer: MunicipalityCode::parse(MINOKAMO).unwrap(),
        serial: RequestId::new_random(),
        issued_at_unix_s: now - 60,
        verify_until_unix_s: now + 90 * 86_400,
        page: 1,
        page_count: 2,
        name: name.to_owned(),
        birth_date: 19_800_401,
        address: Some("岐阜県美濃加茂市太田町1番地".to_owned()),
        seal_registration_number: None,
        front_digest: [7; 32],
    };
    SignedSeal::sign(&payload, key).to_qr_text()
}

/// The seal's QR as a scan shows it (PNG bytes): black modules on white, a 4-module
/// quiet zone, 4 pixels per module.
fn qr_png(text: &str) -> Vec<u8> {
    let matrix = composer::encode_seal_qr(text).unwrap();
    let (px, quiet) = (4u32, 4u32);
    let modules = u32::try_from(matrix.width_modules).unwrap() + 2 * quiet;
    let image = image::GrayImage::from_fn(modules * px, modules * px, |x, y| {
        let (mx, my) = (x / px, y / px);
        let inside =
            (quiet..modules - quiet).contains(&mx) && (quiet..modules - quiet).contains(&my);
        let dark = inside && matrix.is_dark((mx - quiet) as usize, (my - quiet) as usize);
        image::Luma([if dark { 0 } else { 255 }])
    });
    png_bytes(image)
}

fn png_bytes(image: image::GrayImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(image)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// One part of a `multipart/form-data` body: (name, file name, content).
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----verify-page-test-boundary-7c1f";
    let mut body = Vec::new();
    for (name, file_name, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file_name) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The QR text field as a browser sends it, with the empty file part of an unused
/// file input.
fn pasted(text: &str) -> Vec<Part<'_>> {
    vec![("file", Some(""), b""), ("qr", None, text.as_bytes())]
}

async fn error_body(response: reqwest::Response) -> (u16, ErrorBody) {
    let status = response.status().as_u16();
    let body: ErrorBody = response.json().await.expect("an ErrorBody");
    (status, body)
}

#[tokio::test]
async fn the_trust_list_is_served_to_a_client_without_a_certificate() {
    let center = TestCenter::start().await;
    let list = center.trust_list().await;
    let payload = list
        .verify(&center.center.public())
        .expect("signed by the center's key");
    assert_eq!(payload.version, 1);
    assert!(payload
        .keys
        .iter()
        .any(|k| k.public_key == center.municipality.public()));
    let health = center
        .public_client
        .get(format!("{}/health", center.public_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    center.stop().await;
}

#[tokio::test]
async fn the_form_is_japanese_first_with_english_on_request() {
    let center = TestCenter::start().await;
    let get = |query: &'static str| {
        let client = center.public_client.clone();
        let url = format!("{}/verify{query}", center.public_url);
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            assert!(response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/html")));
            assert_eq!(
                response
                    .headers()
                    .get("cache-control")
                    .and_then(|v| v.to_str().ok()),
                Some("no-store")
            );
            response.text().await.unwrap()
        }
    };
    let ja = get("").await;
    assert!(ja.contains("<html lang=\"ja\">"), "{ja}");
    assert!(ja.contains("証明書の封印の確認"), "{ja}");
    assert!(ja.contains("enctype=\"multipart/form-data\""), "{ja}");
    assert!(ja.contains("action=\"/verify\""), "{ja}");
    assert!(
        ja.contains("name=\"file\"") && ja.contains("name=\"qr\""),
        "{ja}"
    );
    assert!(ja.contains("href=\"/verify?lang=en\""), "{ja}");
    assert!(ja.contains(WARNING_JA), "{ja}");
    assert!(!ja.contains("<script"), "{ja}");

    let en = get("?lang=en").await;
    assert!(en.contains("<html lang=\"en\">"), "{en}");
    assert!(en.contains("Certificate seal verification"), "{en}");
    // The form keeps the language; a link leads back to Japanese.
    assert!(en.contains("action=\"/verify?lang=en\""), "{en}");
    assert!(en.contains("href=\"/verify\""), "{en}");
    assert!(en.contains(WARNING_EN), "{en}");
    center.stop().await;
}

#[tokio::test]
async fn pasted_seals_get_their_verdict_reason_and_fields() {
    let center = TestCenter::start().await;
    let genuine = center.genuine_seal("美濃 太郎");

    // Genuine, with a scanner's line end: 有効 and the signed fields to compare.
    let text = format!("{genuine}\r\n");
    let (status, html) = center.submit("", &pasted(&text)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<p class=\"word\">有効</p>"), "{html}");
    assert!(html.contains("VALID"), "{html}");
    assert!(html.contains("<code>ok</code>"), "{html}");
    for expected in [
        "美濃 太郎",
        "住民票の写し",
        "昭和55年4月1日（1980-04-01）",
        "岐阜県美濃加茂市太田町1番地",
        "美濃加茂市（212113）",
        "1 / 2",
        "JST",
        "信頼リスト 版 1",
        WARNING_JA,
    ] {
        assert!(html.contains(expected), "{expected} missing: {html}");
    }

    // The same in English.
    let (status, html) = center.submit("?lang=en", &pasted(&genuine)).await;
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("<p class=\"word\">VALID</p>"), "{html}");
    assert!(
        html.contains("Date of birth") && html.contains("1980-04-01"),
        "{html}"
    );
    assert!(html.contains("Trust list version 1"), "{html}");
    assert!(html.contains(WARNING_EN), "{html}");

    // Altered: one character of the QR text changed. 無効, the reason the verifier
    // gives, explained, and no resident data shown.
    let list = center.trust_list().await;
    let position = genuine.len() - 10;
    let replacement = if &genuine[position..=position] == "A" {
        "B"
    } else {
        "A"
    };
    let altered = format!(
        "{}{replacement}{}",
        &genuine[..position],
        &genuine[position + 1..]
    );
    let expected = verifier::verify_seal(
        &altered,
        &list,
        &center.center.public(),
        i64::try_from(now_s()).unwrap(),
    );
    assert_eq!(expected.verdict, verifier::Verdict::Invalid);
    let (status, html) = center.submit("", &pasted(&altered)).await;
    assert_eq!(status, 200);
    assert!(html.contains("<p class=\"word\">無効</p>"), "{html}");
    assert!(
        html.contains(&format!("<code>{}</code>", expected.reason.as_str())),
        "{html}"
    );
    assert!(html.contains(explain(expected.reason).0), "{html}");
    assert!(!html.contains("美濃 太郎"), "{html}");

    // Signed by a key the trust list does not hold: 無効 unknown_kid.
    let forged = seal(&KeyPair::generate(), "美濃 太郎");
    let (_, html) = center.submit("", &pasted(&forged)).await;
    assert!(html.contains("<p class=\"word\">無効</p>"), "{html}");
    assert!(html.contains("<code>unknown_kid</code>"), "{html}");
    assert!(
        html.contains(explain(verifier::Reason::UnknownKid).0),
        "{html}"
    );
    assert!(!html.contains("美濃 太郎"), "{html}");
    center.stop().await;
}

#[tokio::test]
async fn uploaded_scans_are_read() {
    let center = TestCenter::start().await;
    let png = qr_png(&center.genuine_seal("加茂 一郎"));
    let (status, html) = center
        .submit("", &[("file", Some("scan.png"), &png), ("qr", None, b"")])
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<p class=\"word\">有効</p>"), "{html}");
    assert!(html.contains("加茂 一郎"), "{html}");

    // A picture without a QR code: 判定不能, unreadable.
    let blank = png_bytes(image::GrayImage::from_pixel(200, 200, image::Luma([255])));
    let (status, html) = center
        .submit("", &[("file", Some("blank.png"), &blank)])
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<p class=\"word\">判定不能</p>"), "{html}");
    assert!(html.contains("<code>unreadable</code>"), "{html}");

    // Not a PDF, PNG or JPEG; nothing at all; both at once: the form again with why.
    let (status, html) = center
        .submit("", &[("file", Some("notes.txt"), b"hello")])
        .await;
    assert_eq!(status, 415, "{html}");
    assert!(html.contains("PDF、PNG、JPEG"), "{html}");
    let (status, html) = center.submit("", &pasted("")).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("ファイルを選ぶか"), "{html}");
    let (status, _) = center
        .submit(
            "",
            &[("file", Some("scan.png"), &png), ("qr", None, b"KC1:X")],
        )
        .await;
    assert_eq!(status, 400);
    center.stop().await;
}

#[tokio::test]
async fn resident_data_and_pasted_text_are_escaped() {
    let center = TestCenter::start().await;
    // A genuinely signed name carrying markup (resident data is data, never markup).
    let hostile = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    let (status, html) = center
        .submit("", &pasted(&center.genuine_seal(hostile)))
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<p class=\"word\">有効</p>"), "{html}");
    assert!(
        html.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"
        ),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );

    // Pasted markup: refused as a seal, and not echoed as markup.
    let (status, html) = center
        .submit("", &pasted("<script>alert(3)</script>"))
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<p class=\"word\">無効</p>"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("alert(3)</"),
        "{html}"
    );
    center.stop().await;
}

#[tokio::test]
async fn the_api_answers_json_and_bounds_bodies() {
    let center = TestCenter::start().await;
    let genuine = center.genuine_seal("坂祝 花子");

    let response = center
        .api("text/plain; charset=utf-8", genuine.clone().into_bytes())
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["verdict"], "VALID");
    assert_eq!(json["reason"], "ok");
    assert_eq!(json["input"], "qr_text");
    assert_eq!(json["seals"][0]["fields"]["name"], "坂祝 花子");
    assert_eq!(json["trust_list_version"], 1);

    let response = center.api("image/png", qr_png(&genuine)).await;
    assert_eq!(response.status().as_u16(), 200);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["verdict"], "VALID");
    assert_eq!(json["input"], "image");

    // A forged seal is still 200: the verdict is the answer.
    let response = center
        .api("text/plain", seal(&KeyPair::generate(), "x").into_bytes())
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["verdict"], "INVALID");
    assert_eq!(json["reason"], "unknown_kid");

    let (status, body) = error_body(center.api("application/pdf", Vec::new()).await).await;
    assert_eq!((status, body.code), (400, ErrorCode::BadRequest));
    let (status, body) = error_body(
        center
            .api("application/octet-stream", b"GIF89a....".to_vec())
            .await,
    )
    .await;
    assert_eq!((status, body.code), (415, ErrorCode::UnsupportedMediaType));
    let (status, body) = error_body(center.api("text/plain", vec![b'A'; 64 * 1024]).await).await;
    assert_eq!((status, body.code), (413, ErrorCode::PayloadTooLarge));
    let oversized = vec![0u8; verifier::document::MAX_INPUT_BYTES + 1];
    let (status, body) = error_body(center.api("application/pdf", oversized).await).await;
    assert_eq!((status, body.code), (413, ErrorCode::PayloadTooLarge));

    // The page's form is bounded the same way.
    let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
    big.resize(verifier::document::MAX_INPUT_BYTES + 1, 0);
    let (status, html) = center.submit("", &[("file", Some("big.png"), &big)]).await;
    assert_eq!(status, 413, "{html}");
    assert!(html.contains("64 MiB"), "{html}");
    center.stop().await;
}

#[tokio::test]
async fn the_kiosk_api_is_not_public_and_the_kiosk_listener_still_wants_a_certificate() {
    let center = TestCenter::start().await;
    for (method, path) in [
        (reqwest::Method::POST, "/v1/issuances"),
        (reqwest::Method::POST, "/v1/challenges"),
        (reqwest::Method::GET, "/v1/menu?municipality=212113"),
        (reqwest::Method::GET, "/v1/municipalities"),
        (reqwest::Method::POST, "/v1/domicile-registrations"),
        (reqwest::Method::POST, "/v1/issuances/x/payment"),
        (reqwest::Method::GET, "/ready"),
    ] {
        let response = center
            .public_client
            .request(method.clone(), format!("{}{path}", center.public_url))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let (status, body) = error_body(response).await;
        assert_eq!(
            (status, body.code),
            (404, ErrorCode::NotFound),
            "{method} {path}"
        );
    }

    // The kiosk listener: an operator is served; a client without a certificate is
    // refused during the TLS handshake.
    let response = center
        .operator_client
        .get(format!("{}/v1/municipalities", center.kiosk_url))
        .send()
        .await
        .expect("an operator reaches the kiosk listener");
    assert_eq!(response.status().as_u16(), 200);
    let refused = center
        .public_client
        .get(format!("{}/health", center.kiosk_url))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // And the page is not on the kiosk listener.
    let response = center
        .operator_client
        .get(format!("{}/verify", center.kiosk_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    center.stop().await;
}
