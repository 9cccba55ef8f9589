//! Card sessions at the store: an order is taken in the transaction that records the
//! issuance (concurrent orders never overdraw a session, a taken key takes none, an
//! expired or foreign session gives none), one session per kiosk visit, the sweep
//! deletes expired ones; and the settings bound on their lifetime.

mod common;

use center::configuration::{ConfigError, Settings};
use center::db::{self, AuthorizedInsert, CardSessionRow, IssuanceRow, IssuanceState};
use center::lifecycle::sweep;
use common::{throwaway_challenge, TempStore};
use schemas::RequestId;

const T0_MS: i64 = 1_795_568_400_000;
const TTL_MS: i64 = 600_000;

/// Opens `row` as the center does (with a challenge of its own); `false` when the
/// kiosk's visit already has a session.
async fn insert_session(pool: &center::store::Store, row: &CardSessionRow) -> bool {
    let challenge = throwaway_challenge(
        &row.operator_id,
        &row.kiosk_id,
        &row.card_session_id,
        row.created_at_unix_ms,
    );
    match db::insert_card_session_with_challenge(pool, row, &challenge)
        .await
        .unwrap()
    {
        db::CardSessionInsert::Inserted => true,
        db::CardSessionInsert::VisitTaken => false,
        db::CardSessionInsert::ChallengeUsed => panic!("each session has its own challenge"),
    }
}

fn session(id: &str, kiosk: &str, visit_key: &str, max_orders: i64) -> CardSessionRow {
    CardSessionRow {
        card_session_id: id.into(),
        operator_id: "seven".into(),
        kiosk_id: kiosk.into(),
        visit_key: visit_key.into(),
        card_certificate: "{}".into(),
        municipality_code: "212113".into(),
        orders_used: 0,
        max_orders,
        created_at_unix_ms: T0_MS,
        expires_at_unix_ms: T0_MS + TTL_MS,
    }
}

fn order(kiosk: &str, key: &str) -> IssuanceRow {
    IssuanceRow {
        request_id: RequestId::new_random().to_string(),
        operator_id: "seven".into(),
        kiosk_id: kiosk.into(),
        idempotency_key: key.into(),
        order_digest: "aa".repeat(32),
        municipality_code: "212113".into(),
        card_digest: "bb".repeat(32),
        certificate_type: "resident_record".into(),
        copies: 1,
        state: IssuanceState::Authorized,
        refusal_reason: None,
        error_code: None,
        fee_yen_per_copy: None,
        total_fee_yen: None,
        document_sha256: None,
        page_count: None,
    }
}

async fn orders_used(pool: &center::store::Store, id: &str) -> i64 {
    db::find_card_session(pool, id)
        .await
        .unwrap()
        .expect("session")
        .orders_used
}

#[tokio::test]
async fn concurrent_orders_take_at_most_what_the_session_has_left() {
    let store = TempStore::new("card-session-race").await;
    assert!(insert_session(&store.pool, &session("s-1", "seven-0001", "visit-001", 3)).await);
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let pool = store.pool.clone();
            tokio::spawn(async move {
                let row = order("seven-0001", &format!("order-key-{i:03}"));
                db::insert_authorized_on_card_session(&pool, &row, "s-1", T0_MS + 1)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut inserted = 0;
    let mut spent = 0;
    for task in tasks {
        match task.await.unwrap() {
            AuthorizedInsert::Inserted => inserted += 1,
            AuthorizedInsert::SessionSpent => spent += 1,
            AuthorizedInsert::KeyTaken => panic!("every key is distinct"),
            AuthorizedInsert::ChallengeUsed => panic!("no challenge on a card session"),
        }
    }
    assert_eq!((inserted, spent), (3, 9));
    assert_eq!(orders_used(&store.pool, "s-1").await, 3);
    store.close().await;
}

#[tokio::test]
async fn a_taken_key_takes_no_order_and_a_spent_session_records_nothing() {
    let store = TempStore::new("card-session-key").await;
    insert_session(&store.pool, &session("s-1", "seven-0001", "visit-001", 2)).await;
    let first = order("seven-0001", "order-key-001");
    assert_eq!(
        db::insert_authorized_on_card_session(&store.pool, &first, "s-1", T0_MS + 1)
            .await
            .unwrap(),
        AuthorizedInsert::Inserted
    );
    // The same key again (a retry racing the replay lookup): not recorded, no order.
    let again = order("seven-0001", "order-key-001");
    assert_eq!(
        db::insert_authorized_on_card_session(&store.pool, &again, "s-1", T0_MS + 2)
            .await
            .unwrap(),
        AuthorizedInsert::KeyTaken
    );
    assert_eq!(orders_used(&store.pool, "s-1").await, 1);
    // The audit trail says which session carried the order.
    let details: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT event, detail FROM audit_events WHERE request_id = $1")
            .bind(&first.request_id)
            .fetch_all(store.pool.pool())
            .await
            .unwrap();
    assert_eq!(
        details,
        vec![("authorized".to_owned(), Some("card_session s-1".to_owned()))]
    );

    let second = order("seven-0001", "order-key-002");
    assert_eq!(
        db::insert_authorized_on_card_session(&store.pool, &second, "s-1", T0_MS + 3)
            .await
            .unwrap(),
        AuthorizedInsert::Inserted
    );
    // Spent: the issuance is not recorded either (the key stays free).
    let third = order("seven-0001", "order-key-003");
    assert_eq!(
        db::insert_authorized_on_card_session(&store.pool, &third, "s-1", T0_MS + 4)
            .await
            .unwrap(),
        AuthorizedInsert::SessionSpent
    );
    assert!(db::find_issuance(&store.pool, &third.request_id)
        .await
        .unwrap()
        .is_none());
    assert!(
        db::find_by_idempotency_key(&store.pool, "seven", "order-key-003")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(orders_used(&store.pool, "s-1").await, 2);
    store.close().await;
}

#[tokio::test]
async fn expired_or_foreign_sessions_give_no_order() {
    let store = TempStore::new("card-session-expired").await;
    insert_session(&store.pool, &session("s-1", "seven-0001", "visit-001", 10)).await;
    // Another kiosk of the same operator.
    let foreign = order("seven-0002", "order-key-001");
    assert_eq!(
        db::insert_authorized_on_card_session(&store.pool, &foreign, "s-1", T0_MS + 1)
            .await
            .unwrap(),
        AuthorizedInsert::SessionSpent
    );
    // At the expiry instant.
    let late = order("seven-0001", "order-key-002");
    assert_eq!(
        db::insert_authorized_on_card_session(&store.pool, &late, "s-1", T0_MS + TTL_MS)
            .await
            .unwrap(),
        AuthorizedInsert::SessionSpent
    );
    // An unknown session.
    let unknown = order("seven-0001", "order-key-003");
    assert_eq!(
        db::insert_authorized_on_card_session(&store.pool, &unknown, "s-9", T0_MS + 1)
            .await
            .unwrap(),
        AuthorizedInsert::SessionSpent
    );
    assert_eq!(orders_used(&store.pool, "s-1").await, 0);
    // Just before the expiry it still gives one.
    let in_time = order("seven-0001", "order-key-004");
    assert_eq!(
        db::insert_authorized_on_card_session(&store.pool, &in_time, "s-1", T0_MS + TTL_MS - 1)
            .await
            .unwrap(),
        AuthorizedInsert::Inserted
    );
    store.close().await;
}

#[tokio::test]
async fn one_session_per_visit_and_the_sweep_deletes_expired_ones() {
    let store = TempStore::new("card-session-visit").await;
    let first = session("s-1", "seven-0001", "visit-001", 10);
    assert!(insert_session(&store.pool, &first).await);
    // The same kiosk and visit: not inserted again; another kiosk may use the same key.
    assert!(!insert_session(&store.pool, &session("s-2", "seven-0001", "visit-001", 10)).await);
    let mut later = session("s-3", "seven-0002", "visit-001", 10);
    later.expires_at_unix_ms = T0_MS + 2 * TTL_MS;
    assert!(insert_session(&store.pool, &later).await);
    assert_eq!(
        db::find_card_session_by_visit(&store.pool, "seven-0001", "visit-001")
            .await
            .unwrap(),
        Some(first)
    );

    let timeouts = center::configuration::Timeouts::default();
    let summary = sweep(&store.pool, &timeouts, T0_MS + TTL_MS - 1)
        .await
        .unwrap();
    assert_eq!(summary.card_sessions_deleted, 0);
    let summary = sweep(&store.pool, &timeouts, T0_MS + TTL_MS).await.unwrap();
    assert_eq!(summary.card_sessions_deleted, 1);
    assert!(db::find_card_session(&store.pool, "s-1")
        .await
        .unwrap()
        .is_none());
    assert!(db::find_card_session(&store.pool, "s-3")
        .await
        .unwrap()
        .is_some());
    store.close().await;
}

/// Settings with `[timeouts]` holding `extra` (files are never read here).
fn settings_with_timeouts(extra: &str) -> Settings {
    let text = format!(
        r#"
kiosk_listen = "127.0.0.1:0"
database_url = "sqlite::memory:"
center_key_path = "/nonexistent/center.seed"
card_authority_public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
revocation_list_path = "/nonexistent/revocation.json"
verify_url = "https://127.0.0.1/verify"
[timeouts]
request_deadline_ms = 10000
adapter_timeout_ms = 8000
challenge_ttl_ms = 120000
{extra}
[kiosk_tls]
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"
ca = "/nonexistent/ca.pem"
[lgwan_tls]
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"
ca = "/nonexistent/ca.pem"
"#
    );
    toml::from_str(&text).unwrap()
}

#[test]
fn card_session_lifetime_defaults_to_ten_minutes_and_is_bounded() {
    let default = settings_with_timeouts("");
    assert_eq!(default.timeouts.card_session_ttl_ms, 600_000);
    default.validate().expect("the default is valid");

    let max_ms = schemas::MAX_CARD_SESSION_TTL_S * 1000;
    for good in [1, max_ms] {
        settings_with_timeouts(&format!("card_session_ttl_ms = {good}"))
            .validate()
            .unwrap_or_else(|e| panic!("{good} ms: {e}"));
    }
    for bad in [0, max_ms + 1] {
        match settings_with_timeouts(&format!("card_session_ttl_ms = {bad}")).validate() {
            Err(ConfigError::Invalid(message)) => {
                assert!(message.contains("card_session_ttl_ms"), "{message}")
            }
            other => panic!("{bad} ms: expected invalid settings, got {other:?}"),
        }
    }
}

/// The nonce is used in the transaction that records what it authorizes: when another
/// request used it first, neither a session nor an order is written.
#[tokio::test]
async fn a_used_challenge_records_neither_session_nor_order() {
    let store = TempStore::new("card-session-used-challenge").await;
    let challenge = throwaway_challenge("seven", "seven-0001", "once", T0_MS);
    assert!(db::use_challenge(&store.pool, &challenge, T0_MS)
        .await
        .unwrap());

    let opening = session("s-1", "seven-0001", "visit-001", 10);
    assert_eq!(
        db::insert_card_session_with_challenge(&store.pool, &opening, &challenge)
            .await
            .unwrap(),
        db::CardSessionInsert::ChallengeUsed
    );
    assert_eq!(
        db::find_card_session(&store.pool, "s-1").await.unwrap(),
        None
    );

    let signed = order("seven-0001", "order-key-001");
    assert_eq!(
        db::insert_authorized_with_challenge(&store.pool, &signed, &challenge, T0_MS + 1)
            .await
            .unwrap(),
        AuthorizedInsert::ChallengeUsed
    );
    assert_eq!(
        db::find_issuance(&store.pool, &signed.request_id)
            .await
            .unwrap(),
        None
    );
    store.close().await;
}
