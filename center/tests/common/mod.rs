//! Shared by the center's store-level tests: a temporary SQLite store and issuances
//! inserted the way the issuance flow inserts them.

#![allow(dead_code)] // each test file uses its own subset

use center::db::{self, IssuanceRow, IssuanceState, TransitionFields};
use schemas::RequestId;
use sqlx::AnyPool;

/// A center store in a temporary SQLite file, removed by `close`.
pub struct TempStore {
    pub pool: AnyPool,
    pub path: std::path::PathBuf,
}

impl TempStore {
    pub async fn new(tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("center-{tag}-{}.sqlite", uuid::Uuid::new_v4()));
        let pool = db::connect(&Self::url_of(&path)).await.expect("connect");
        Self { pool, path }
    }

    pub fn url_of(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    pub fn url(&self) -> String {
        Self::url_of(&self.path)
    }

    pub async fn close(self) {
        self.pool.close().await;
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(self.path.with_extension("sqlite-wal"));
        let _ = std::fs::remove_file(self.path.with_extension("sqlite-shm"));
    }
}

/// Who asked for what: the parts of an issuance the money side looks at.
#[derive(Clone, Debug)]
pub struct Spec {
    pub operator: &'static str,
    pub kiosk: &'static str,
    pub municipality: &'static str,
    pub certificate_type: &'static str,
    pub copies: i64,
    pub fee_yen_per_copy: i64,
}

/// Inserts a new issuance in `authorized` at `at_ms`.
pub async fn authorized(pool: &AnyPool, spec: &Spec, at_ms: i64) -> String {
    let request_id = RequestId::new_random().to_string();
    let row = IssuanceRow {
        request_id: request_id.clone(),
        operator_id: spec.operator.into(),
        kiosk_id: spec.kiosk.into(),
        idempotency_key: uuid::Uuid::new_v4().to_string(),
        order_digest: "aa".repeat(32),
        municipality_code: spec.municipality.into(),
        card_digest: "bb".repeat(32),
        certificate_type: spec.certificate_type.into(),
        copies: spec.copies,
        state: IssuanceState::Authorized,
        refusal_reason: None,
        error_code: None,
        fee_yen_per_copy: None,
        total_fee_yen: None,
        document_sha256: None,
        page_count: None,
    };
    assert!(db::insert_authorized(pool, &row, at_ms).await.unwrap());
    request_id
}

/// Inserts a new issuance and moves it to `prepared` (authorized 1 ms before `at_ms`).
pub async fn prepared(pool: &AnyPool, spec: &Spec, at_ms: i64) -> String {
    let request_id = authorized(pool, spec, at_ms - 1).await;
    db::transition(
        pool,
        &request_id,
        IssuanceState::Authorized,
        IssuanceState::Prepared,
        &TransitionFields {
            fee_yen_per_copy: Some(spec.fee_yen_per_copy),
            total_fee_yen: Some(spec.fee_yen_per_copy * spec.copies),
            document_sha256: Some(&"cc".repeat(32)),
            page_count: Some(2),
            ..TransitionFields::default()
        },
        at_ms,
    )
    .await
    .unwrap();
    request_id
}
