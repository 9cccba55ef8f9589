//! Both links are mutual TLS with the deployment CA, and the binding guard stops any
//! answer that is not bound to the request and card it claims.

use e2e::*;
use kiosk_sim::{IssueOutcome, KioskError};
use schemas::{ErrorCode, HouseholdScope};

fn client_with(files: mtls::TlsFiles) -> reqwest::Client {
    mtls::http_client(&files, std::time::Duration::from_secs(5)).expect("client")
}

fn port_of(sb: &TestSandbox, adapter: &str) -> u16 {
    sb.running
        .adapter_ports
        .iter()
        .find(|(n, _)| n == adapter)
        .map(|(_, p)| *p)
        .expect("adapter port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_unknown_ca_are_refused_on_both_links() {
    let Some(sb) = spawn_sandbox(Backend::Sqlite).await else {
        return;
    };
    let pki = sb.dir.join("pki");
    let ca = pki.join("ca.pem");
    let rogue_dir = sb.dir.join("rogue");
    std::fs::create_dir_all(&rogue_dir).unwrap();
    let rogue = sandbox::pki::Ca::generate("rogue CA").unwrap();
    rogue.write_cert(&rogue_dir.join("rogue-ca.pem")).unwrap();
    let rogue_operator = rogue
        .issue_client(
            "seven",
            &format!("{}seven", mtls::URI_OPERATOR_PREFIX),
            &rogue_dir,
            "rogue-operator",
        )
        .unwrap();
    let rogue_center = rogue
        .issue_client("center", mtls::URI_CENTER, &rogue_dir, "rogue-center")
        .unwrap();

    let center = format!("https://127.0.0.1:{}/health", sb.running.center_port);
    let adapter_port = port_of(&sb, "minokamo-sakahogi");
    let adapter = format!("https://127.0.0.1:{adapter_port}/health");

    // Sanity: the right certificates get through on both links.
    let operator = client_with(mtls::TlsFiles {
        cert: pki.join("operator-seven.pem"),
        key: pki.join("operator-seven.key.pem"),
        ca: ca.clone(),
    });
    assert!(operator
        .get(&center)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let lgwan = client_with(mtls::TlsFiles {
        cert: pki.join("center-lgwan.pem"),
        key: pki.join("center-lgwan.key.pem"),
        ca: ca.clone(),
    });
    assert!(lgwan
        .get(&adapter)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());

    // Plaintext HTTP gets no answer from either server.
    let plain = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    for port in [sb.running.center_port, adapter_port] {
        let result = plain
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await;
        assert!(
            result.is_err() || !result.unwrap().status().is_success(),
            "plaintext accepted on {port}"
        );
    }

    // A client certificate from an unknown CA fails the handshake on both links.
    let rogue_kiosk = client_with(mtls::TlsFiles {
        cert: rogue_operator.cert,
        key: rogue_operator.key,
        ca: ca.clone(),
    });
    assert!(
        rogue_kiosk.get(&center).send().await.is_err(),
        "kiosk link accepted an unknown CA"
    );
    let rogue_lgwan = client_with(mtls::TlsFiles {
        cert: rogue_center.cert,
        key: rogue_center.key,
        ca: ca.clone(),
    });
    assert!(
        rogue_lgwan.get(&adapter).send().await.is_err(),
        "adapter link accepted an unknown CA"
    );

    // A server from an unknown CA is refused by the clients on both links.
    let trusting_rogue = client_with(mtls::TlsFiles {
        cert: pki.join("operator-seven.pem"),
        key: pki.join("operator-seven.key.pem"),
        ca: rogue_dir.join("rogue-ca.pem"),
    });
    assert!(
        trusting_rogue.get(&center).send().await.is_err(),
        "kiosk trusted a server outside its CA"
    );

    // A certificate of the right CA but the wrong role: the center's LGWAN client
    // certificate cannot call the kiosk API.
    let wrong_role = client_with(mtls::TlsFiles {
        cert: pki.join("center-lgwan.pem"),
        key: pki.join("center-lgwan.key.pem"),
        ca: ca.clone(),
    });
    let response = wrong_role
        .post(format!(
            "https://127.0.0.1:{}/v1/challenges",
            sb.running.center_port
        ))
        .json(&serde_json::json!({"kiosk_id": "seven-0001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let body: schemas::ErrorBody = response.json().await.unwrap();
    assert_eq!(body.code, ErrorCode::ClientNotAuthorized);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn center_refuses_an_adapter_certificate_from_an_unknown_ca() {
    // The adapter serves a certificate from a rogue CA (with the right host names).
    let Some(sb) = spawn_sandbox_with(Backend::Sqlite, |layout| {
        let pki = layout.dir.join("pki");
        let rogue = sandbox::pki::Ca::generate("rogue CA").unwrap();
        rogue
            .issue_server(
                "minokamo-sakahogi",
                &["localhost", "127.0.0.1"],
                Some("urn:kofu:adapter:minokamo-sakahogi"),
                &pki,
                "adapter-minokamo-sakahogi",
            )
            .unwrap();
    })
    .await
    else {
        return;
    };
    let card = sb
        .printable_resident_cards()
        .into_iter()
        .find(|c| c.municipality.to_string() == "212113")
        .unwrap();
    let error = sb
        .issue(card, resident_record(HouseholdScope::SelfOnly))
        .await
        .unwrap_err();
    // The first thing the center asks the adapter for is its signed catalogue (the
    // kiosk's menu, then the order check): the handshake fails, so none is trusted.
    assert_eq!(
        center_code(&error),
        Some(ErrorCode::CatalogueUnavailable),
        "{error}"
    );
    let direct = sb
        .direct_issue(card, resident_record(HouseholdScope::SelfOnly))
        .await
        .unwrap_err();
    assert_eq!(direct.error_code(), Some(ErrorCode::CatalogueUnavailable));
    assert_eq!(pdfs_in(&sb.out), 0);
    sb.stop().await;
}

/// Sets a fault mode in every adapter's settings file before start.
fn with_fault(mode: &'static str) -> impl FnOnce(&sandbox::Layout) {
    move |layout| set_adapter_fault(layout, mode, 0)
}

macro_rules! guard_test {
    ($name:ident, $mode:literal, $code:expr) => {
        mod $name {
            use super::*;
            async fn run(backend: Backend) {
                let Some(sb) = spawn_sandbox_with(backend, with_fault($mode)).await else {
                    return;
                };
                let card = sb.printable_resident_cards()[0];
                let result = sb
                    .issue(card, resident_record(HouseholdScope::Household))
                    .await;
                match result {
                    Err(KioskError::Center(client)) => {
                        assert_eq!(client.error_code(), Some($code), "{client}")
                    }
                    Err(other) => panic!("expected the center to refuse, got {other}"),
                    Ok(IssueOutcome::Printed(doc)) => {
                        panic!("printed {} despite fault {}", doc.request_id, $mode)
                    }
                    Ok(other) => panic!("unexpected {other:?}"),
                }
                assert_eq!(pdfs_in(&sb.out), 0, "nothing printed");
                sb.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Backend::Postgres).await
            }
        }
    };
}

guard_test!(
    guard_wrong_request_id,
    "wrong_request_id",
    ErrorCode::BindingMismatch
);
guard_test!(
    guard_wrong_card_digest,
    "wrong_card_digest",
    ErrorCode::BindingMismatch
);
guard_test!(
    guard_foreign_front,
    "foreign_front",
    ErrorCode::BindingMismatch
);
guard_test!(
    guard_bad_signature,
    "bad_signature",
    ErrorCode::UpstreamSignatureInvalid
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_municipality_aborts_the_whole_request() {
    // The adapter answers after 2.5 s; the center's whole-request deadline is 1 s.
    let Some(sb) = spawn_sandbox_with(Backend::Sqlite, |layout| {
        set_adapter_fault(layout, "none", 2_500);
        set_center_timeouts(
            layout,
            &[
                ("request_deadline_ms", 1_000),
                ("adapter_timeout_ms", 1_000),
            ],
        );
    })
    .await
    else {
        return;
    };
    let card = sb.printable_resident_cards()[0];
    let mut kiosk = sb.kiosk();
    let started = std::time::Instant::now();
    let error = kiosk
        .issue(
            &card.path,
            &pin_of(card),
            resident_record(HouseholdScope::SelfOnly),
            &sb.out,
        )
        .await
        .unwrap_err();
    assert_eq!(
        center_code(&error),
        Some(ErrorCode::UpstreamTimeout),
        "{error}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2_400),
        "the center did not wait for the late answer"
    );
    let request_id = error
        .request_id()
        .expect("the center names the request")
        .to_string();
    // Let the late answer arrive; it must change nothing.
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    let row = center::db::find_issuance(&sb.running.center_pool, &request_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, center::db::IssuanceState::Expired);
    assert_eq!(row.total_fee_yen, None);
    assert_eq!(pdfs_in(&sb.out), 0);
    sb.stop().await;
}
