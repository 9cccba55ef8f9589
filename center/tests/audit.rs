//! The tamper-evident audit log on SQLite and PostgreSQL: the database refuses updates
//! and deletes; sealing chains signed Merkle batches, also with two sealers racing;
//! a batch larger than one insert statement's worth of members seals whole;
//! `center audit verify` finds altered, deleted, inserted and reordered records (after
//! the attacker dropped the guards), removed trailing batches against a published
//! head, and an event deleted before it was sealed; the seal queue holds exactly the
//! unsealed events (its migration queues those of an existing log); proofs check
//! offline; a municipality export holds only its own residents.

mod common;

use center::audit::{self, AuditError};
use center::store::Store;
use common::{fresh_url, Backend, Spec};
use schemas::audit::AuditProof;
use schemas::KeyPair;

const MINOKAMO: &str = "212113";
const SAKAHOGI: &str = "215015";

fn spec(municipality: &'static str) -> Spec {
    Spec {
        operator: "seven",
        kiosk: "seven-0001",
        municipality,
        certificate_type: "juminhyo",
        copies: 1,
        fee_yen_per_copy: 200,
    }
}

/// A center store with guards, a settings file and a few issuances of two municipalities.
struct World {
    backend: Backend,
    dir: std::path::PathBuf,
    pool: Store,
    url: String,
    config: std::path::PathBuf,
    key: KeyPair,
    minokamo: Vec<String>,
    sakahogi: Vec<String>,
}

impl World {
    async fn new(backend: Backend) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("center-audit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = fresh_url(backend, &dir).await?;
        let pool = center::db::connect(&url).await.unwrap();
        audit::install_guards(&pool).await.unwrap();
        // Idempotent: replicas install them at every start.
        audit::install_guards(&pool).await.unwrap();
        let key = KeyPair::generate();
        let config = common::settings_file(&dir, &url, &key, &[]);
        let at_ms = jiff::Timestamp::now().as_millisecond() - 600_000;
        let mut minokamo = Vec::new();
        let mut sakahogi = Vec::new();
        for i in 0..3 {
            minokamo.push(common::prepared(&pool, &spec(MINOKAMO), at_ms + i * 10).await);
            sakahogi.push(common::prepared(&pool, &spec(SAKAHOGI), at_ms + i * 10 + 5).await);
        }
        Some(Self {
            backend,
            dir,
            pool,
            url,
            config,
            key,
            minokamo,
            sakahogi,
        })
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut all: Vec<&str> = args.to_vec();
        let config = self.config.to_str().unwrap();
        all.extend(["--config", config]);
        common::center_cli(&all)
    }

    /// Seals everything in batches of `max_events`.
    async fn seal_all(&self, max_events: u32) -> u64 {
        let mut batches = 0;
        let now = jiff::Timestamp::now().as_millisecond();
        while audit::seal_pending(&self.pool, &self.key, now, max_events)
            .await
            .unwrap()
            .is_some()
        {
            batches += 1;
        }
        batches
    }

    /// The attacker with database rights: drops the append-only triggers.
    async fn drop_guards(&self) {
        for table in audit::GUARDED_TABLES {
            let statements = match self.backend {
                Backend::Sqlite => vec![
                    format!("DROP TRIGGER IF EXISTS {table}_no_update"),
                    format!("DROP TRIGGER IF EXISTS {table}_no_delete"),
                ],
                Backend::Postgres => vec![
                    format!("DROP TRIGGER IF EXISTS {table}_append_only ON {table}"),
                    format!("DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}"),
                ],
            };
            for sql in statements {
                sqlx::query(&sql).execute(self.pool.pool()).await.unwrap();
            }
        }
    }

    async fn exec(&self, sql: &str) {
        sqlx::query(sql).execute(self.pool.pool()).await.unwrap();
    }

    async fn event_ids(&self) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT m.event_id FROM audit_batch_members m ORDER BY m.batch_no, m.leaf_index",
        )
        .fetch_all(self.pool.pool())
        .await
        .unwrap()
    }

    fn verify(&self, extra: &[&str]) -> (i32, String) {
        let mut args = vec!["audit", "verify"];
        args.extend(extra);
        let (code, out, err) = self.cli(&args);
        (code, format!("{out}{err}"))
    }

    async fn close(self) {
        self.pool.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = self.url;
    }
}

async fn guards_refuse_update_and_delete(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    w.seal_all(4).await;
    for sql in [
        "UPDATE audit_events SET detail = 'x'",
        "DELETE FROM audit_events",
        "UPDATE audit_batches SET leaf_count = 0",
        "DELETE FROM audit_batches",
        "UPDATE audit_batch_members SET leaf_index = leaf_index + 100",
        "DELETE FROM audit_batch_members",
    ] {
        let error = sqlx::query(sql).execute(w.pool.pool()).await.unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{backend:?} {sql}: {error}"
        );
    }
    if backend == Backend::Postgres {
        let error = sqlx::query("TRUNCATE audit_events")
            .execute(w.pool.pool())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("append-only"), "{error}");
    }
    // Inserts still work: the flow keeps appending.
    common::prepared(
        &w.pool,
        &spec(MINOKAMO),
        jiff::Timestamp::now().as_millisecond(),
    )
    .await;
    w.close().await;
}

#[tokio::test]
async fn guards_refuse_update_and_delete_sqlite() {
    guards_refuse_update_and_delete(Backend::Sqlite).await;
}

#[tokio::test]
async fn guards_refuse_update_and_delete_postgres() {
    guards_refuse_update_and_delete(Backend::Postgres).await;
}

async fn seal_verify_prove(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    // Unsealed events older than the grace are suspicious.
    let (code, out) = w.verify(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("in no batch"), "{out}");

    let (code, out, err) = w.cli(&["audit", "seal", "--max-events", "5"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sealed 12 event(s); head batch 3"), "{out}");
    let (code, out, _) = w.cli(&["audit", "seal"]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to seal"), "{out}");

    let (code, out) = w.verify(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("INTACT"), "{out}");
    assert!(out.contains("3 batch(es), 12 sealed event(s)"), "{out}");
    let head = out
        .lines()
        .find_map(|l| l.strip_prefix("head "))
        .unwrap()
        .to_owned();
    assert!(head.starts_with("3:"), "{head}");
    let (code, out) = w.verify(&["--expect-head", &head]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = w.verify(&["--expect-head", &"ab".repeat(32)]);
    assert_eq!(code, 1, "{out}");

    // A proof for one request, checked offline with the public key alone.
    let request = &w.minokamo[1];
    let proof_path = w.dir.join("proof.json");
    let (code, out, err) = w.cli(&[
        "audit",
        "prove",
        "--request-id",
        request,
        "--out",
        proof_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let key_path = w.dir.join("center.pub");
    std::fs::write(
        &key_path,
        schemas::b64::Base64Bytes::encode(&w.key.public().0),
    )
    .unwrap();
    let check = |path: &std::path::Path| {
        common::center_cli(&[
            "audit",
            "check-proof",
            path.to_str().unwrap(),
            "--center-public-key",
            key_path.to_str().unwrap(),
        ])
    };
    let (code, out, err) = check(&proof_path);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("VALID") && out.contains("2 event(s)"), "{out}");
    let proof: AuditProof =
        serde_json::from_str(&std::fs::read_to_string(&proof_path).unwrap()).unwrap();
    assert_eq!(proof.events.len(), 2);
    // A forged event (other state) does not lead to the signed root.
    let mut forged = proof.clone();
    forged.events[1].event.to_state = Some("refused".into());
    let forged_path = w.dir.join("forged.json");
    std::fs::write(&forged_path, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (code, out, _) = check(&forged_path);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("INVALID") && out.contains("does not lead"),
        "{out}"
    );
    // Another key does not verify the headers.
    std::fs::write(
        &key_path,
        schemas::b64::Base64Bytes::encode(&KeyPair::generate().public().0),
    )
    .unwrap();
    let (code, out, _) = check(&proof_path);
    assert_eq!(code, 1, "{out}");
    w.close().await;
}

#[tokio::test]
async fn seal_verify_prove_sqlite() {
    seal_verify_prove(Backend::Sqlite).await;
}

#[tokio::test]
async fn seal_verify_prove_postgres() {
    seal_verify_prove(Backend::Postgres).await;
}

/// Seals, drops the guards, applies `tamper`, and expects verify to fail naming `expect`.
async fn detects(backend: Backend, case: &str) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    assert_eq!(w.seal_all(5).await, 3);
    let (code, out) = w.verify(&[]);
    assert_eq!(code, 0, "{out}");
    let head = out
        .lines()
        .find_map(|l| l.strip_prefix("head "))
        .unwrap()
        .to_owned();
    let ids = w.event_ids().await;
    assert_eq!(ids.len(), 12);
    w.drop_guards().await;
    let (args, expect): (Vec<String>, Vec<String>) = match case {
        "altered" => {
            w.exec(&format!(
                "UPDATE audit_events SET to_state = 'refused' WHERE event_id = '{}'",
                ids[6]
            ))
            .await;
            (
                vec![],
                vec!["batch 2 leaf 1".into(), ids[6].clone(), "altered".into()],
            )
        }
        "deleted" => {
            w.exec(&format!(
                "DELETE FROM audit_events WHERE event_id = '{}'",
                ids[2]
            ))
            .await;
            (
                vec![],
                vec!["batch 1 leaf 2".into(), ids[2].clone(), "deleted".into()],
            )
        }
        "inserted" => {
            let at = jiff::Timestamp::now().as_millisecond() - 300_000;
            w.exec(&format!(
                "INSERT INTO audit_events (event_id, request_id, at_unix_ms, event, from_state, \
                 to_state, detail) VALUES ('forged-event', '{}', {at}, 'refused', 'prepared', \
                 'refused', NULL)",
                w.minokamo[0]
            ))
            .await;
            (vec![], vec!["forged-event".into(), "in no batch".into()])
        }
        "reordered" => {
            // Swap leaves 0 and 1 of batch 1 (through a free index: (batch, leaf) is unique).
            for (id, index) in [(&ids[0], 99), (&ids[1], 0), (&ids[0], 1)] {
                w.exec(&format!(
                    "UPDATE audit_batch_members SET leaf_index = {index} WHERE event_id = '{id}'"
                ))
                .await;
            }
            (
                vec![],
                vec![
                    "batch 1 leaf 1".into(),
                    ids[0].clone(),
                    "out of order".into(),
                    "Merkle root".into(),
                ],
            )
        }
        "rewritten" => {
            // Rewrites the event and its stored leaf: the signed root still disagrees.
            w.exec(&format!(
                "UPDATE audit_events SET detail = 'forged' WHERE event_id = '{}'",
                ids[10]
            ))
            .await;
            let event: schemas::audit::AuditEvent = {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT event_id, request_id, at_unix_ms, event, from_state, to_state, detail \
                     FROM audit_events WHERE event_id = $1",
                )
                .bind(&ids[10])
                .fetch_one(w.pool.pool())
                .await
                .unwrap();
                schemas::audit::AuditEvent {
                    event_id: row.get("event_id"),
                    request_id: row.get("request_id"),
                    at_unix_ms: row.get("at_unix_ms"),
                    event: row.get("event"),
                    from_state: row.get("from_state"),
                    to_state: row.get("to_state"),
                    detail: row.get("detail"),
                }
            };
            w.exec(&format!(
                "UPDATE audit_batch_members SET leaf_hash = '{}' WHERE event_id = '{}'",
                hex::encode(event.leaf_hash().unwrap()),
                ids[10]
            ))
            .await;
            (vec![], vec!["batch 3: Merkle root".into()])
        }
        "deleted-unsealed" => {
            // Appended after the last seal and deleted before the next: in no batch, so
            // only the seal queue remembers it.
            let request_id = common::prepared(
                &w.pool,
                &spec(MINOKAMO),
                jiff::Timestamp::now().as_millisecond(),
            )
            .await;
            let gone: String = sqlx::query_scalar(
                "SELECT event_id FROM audit_events WHERE request_id = $1 \
                 ORDER BY at_unix_ms, event_id LIMIT 1",
            )
            .bind(&request_id)
            .fetch_one(w.pool.pool())
            .await
            .unwrap();
            w.exec(&format!(
                "DELETE FROM audit_events WHERE event_id = '{gone}'"
            ))
            .await;
            (vec![], vec![gone, "deleted before it was sealed".into()])
        }
        "truncated" => {
            // The whole last batch and its events vanish: consistent in itself, caught
            // only against the published head.
            for id in &ids[10..] {
                w.exec(&format!("DELETE FROM audit_events WHERE event_id = '{id}'"))
                    .await;
            }
            w.exec("DELETE FROM audit_batch_members WHERE batch_no = 3")
                .await;
            w.exec("DELETE FROM audit_batches WHERE batch_no = 3").await;
            let (code, out) = w.verify(&[]);
            assert_eq!(
                code, 0,
                "without a published head truncation is invisible: {out}"
            );
            (
                vec!["--expect-head".into(), head.clone()],
                vec!["published head".into(), "not in the chain".into()],
            )
        }
        other => panic!("unknown case {other}"),
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = w.verify(&args);
    assert_eq!(code, 1, "{backend:?} {case}: {out}");
    for needle in &expect {
        assert!(
            out.contains(needle.as_str()),
            "{backend:?} {case}: no {needle:?} in {out}"
        );
    }
    w.close().await;
}

#[tokio::test]
async fn verify_detects_tampering_sqlite() {
    for case in [
        "altered",
        "deleted",
        "deleted-unsealed",
        "inserted",
        "reordered",
        "rewritten",
        "truncated",
    ] {
        detects(Backend::Sqlite, case).await;
    }
}

#[tokio::test]
async fn verify_detects_tampering_postgres() {
    for case in [
        "altered",
        "deleted",
        "deleted-unsealed",
        "inserted",
        "reordered",
        "rewritten",
        "truncated",
    ] {
        detects(Backend::Postgres, case).await;
    }
}

/// Two replicas (own pools) seal the same store at once: losers fail cleanly, the chain
/// never forks, every event ends up in exactly one batch.
async fn concurrent_sealers(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let now = jiff::Timestamp::now().as_millisecond();
    for i in 0..40 {
        common::prepared(&w.pool, &spec(MINOKAMO), now - 100_000 + i).await;
    }
    let replica = center::db::connect(&w.url).await.unwrap();
    let mut conflicts = 0;
    // 15 rounds seal at most 90 of the 92 events: the sweep below has some left.
    for _round in 0..15 {
        let (a, b) = tokio::join!(
            audit::seal_pending(&w.pool, &w.key, now, 3),
            audit::seal_pending(&replica, &w.key, now, 3)
        );
        for result in [a, b] {
            match result {
                Ok(_) => {}
                Err(AuditError::Conflict { .. }) => conflicts += 1,
                Err(error) => panic!("{backend:?}: sealer failed uncleanly: {error}"),
            }
        }
    }
    // A running center's sealer round drains what is left, then finds nothing.
    assert!(
        audit::seal_in_rounds(&w.pool, &w.key, now, 10)
            .await
            .unwrap()
            > 0
    );
    assert_eq!(
        audit::seal_in_rounds(&replica, &w.key, now, 10)
            .await
            .unwrap(),
        0
    );
    // The two sealers did race (each round both read the same head).
    assert!(conflicts > 0, "{backend:?}: the sealers never collided");
    let report = audit::verify(&w.pool, &w.key.public(), now, 60_000, None)
        .await
        .unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.sealed_events, 92); // 12 + 80 events
    assert_eq!(report.unsealed_recent, 0);
    replica.close().await;
    w.close().await;
}

#[tokio::test]
async fn concurrent_sealers_sqlite() {
    concurrent_sealers(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_sealers_postgres() {
    concurrent_sealers(Backend::Postgres).await;
}

/// The sealer writes members many rows per statement: a batch of more than two such
/// statements' worth keeps every event, in order, and verifies; a proof from the last
/// statement's rows checks.
async fn a_large_batch_seals_whole(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let now = jiff::Timestamp::now().as_millisecond();
    // 12 events from the world + 2 per prepared issuance = 612 (256 + 256 + 100 rows).
    let mut last = String::new();
    for i in 0..300 {
        last = common::prepared(&w.pool, &spec(SAKAHOGI), now - 200_000 + i).await;
    }
    let sealed = audit::seal_pending(&w.pool, &w.key, now, audit::DEFAULT_BATCH_EVENTS)
        .await
        .unwrap()
        .expect("events wait")
        .payload
        .leaf_count;
    assert_eq!(sealed, 612, "{backend:?}: one batch takes every event");
    let leaf_indexes: Vec<i64> = sqlx::query_scalar(
        "SELECT leaf_index FROM audit_batch_members WHERE batch_no = 1 ORDER BY leaf_index",
    )
    .fetch_all(w.pool.pool())
    .await
    .unwrap();
    assert_eq!(leaf_indexes, (0..612).collect::<Vec<i64>>(), "{backend:?}");
    let report = audit::verify(&w.pool, &w.key.public(), now, 60_000, None)
        .await
        .unwrap();
    assert!(report.is_intact(), "{backend:?}: {:?}", report.problems);
    assert_eq!((report.batches, report.sealed_events), (1, 612));
    let proof = audit::prove(&w.pool, &last).await.unwrap();
    assert_eq!(proof.events.len(), 2, "{backend:?}");
    proof.verify(&w.key.public()).unwrap();
    w.close().await;
}

#[tokio::test]
async fn a_large_batch_seals_whole_sqlite() {
    a_large_batch_seals_whole(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_large_batch_seals_whole_postgres() {
    a_large_batch_seals_whole(Backend::Postgres).await;
}

async fn municipality_export(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let out = w.dir.join("minokamo.jsonl");
    let (code, stdout, err) = w.cli(&[
        "audit",
        "export",
        "--municipality",
        MINOKAMO,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("wrote 3 record(s)"), "{stdout}");
    let bytes = std::fs::read(&out).unwrap();
    let sig: schemas::settlement::DetachedSignature =
        serde_json::from_slice(&std::fs::read(w.dir.join("minokamo.jsonl.sig")).unwrap()).unwrap();
    let records = audit::verify_export(&bytes, &sig, &w.key.public()).unwrap();
    let mut ids: Vec<_> = records.iter().map(|r| r.request_id.clone()).collect();
    ids.sort();
    let mut expected = w.minokamo.clone();
    expected.sort();
    assert_eq!(ids, expected);
    let text = String::from_utf8(bytes.clone()).unwrap();
    for other in &w.sakahogi {
        assert!(!text.contains(other.as_str()), "{other} of 坂祝町 leaked");
    }
    for record in &records {
        assert_eq!(record.audit_event_ids.len(), 2, "{record:?}");
        assert_eq!(record.state, "prepared");
        assert_eq!(record.total_fee_yen, Some(200));
    }
    // One flipped byte breaks the signature.
    let mut tampered = bytes.clone();
    tampered[20] ^= 1;
    assert!(audit::verify_export(&tampered, &sig, &w.key.public()).is_err());
    // A date range before the records holds none (header and trailer only).
    let (code, stdout, err) = w.cli(&[
        "audit",
        "export",
        "--municipality",
        MINOKAMO,
        "--from",
        "2020-01-01",
        "--to",
        "2020-01-31",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("wrote 0 record(s)"), "{stdout}");
    w.close().await;
}

#[tokio::test]
async fn municipality_export_sqlite() {
    municipality_export(Backend::Sqlite).await;
}

#[tokio::test]
async fn municipality_export_postgres() {
    municipality_export(Backend::Postgres).await;
}

async fn queued(w: &World) -> Vec<String> {
    sqlx::query_scalar("SELECT event_id FROM audit_seal_queue ORDER BY at_unix_ms, event_id")
        .fetch_all(w.pool.pool())
        .await
        .unwrap()
}

async fn unsealed(w: &World) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT e.event_id FROM audit_events e WHERE NOT EXISTS \
         (SELECT 1 FROM audit_batch_members m WHERE m.event_id = e.event_id) \
         ORDER BY e.at_unix_ms, e.event_id",
    )
    .fetch_all(w.pool.pool())
    .await
    .unwrap()
}

/// The sealer reads its work from `audit_seal_queue`: every appended event is queued,
/// a seal takes exactly its members off, and the queue always equals the unsealed
/// events. The migration that adds the queue queues the unsealed events of a log that
/// predates it (re-run here on a store whose queue was removed).
async fn the_seal_queue_holds_exactly_the_unsealed_events(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let initial = queued(&w).await;
    assert_eq!(initial.len(), 12, "{backend:?}");
    assert_eq!(initial, unsealed(&w).await, "{backend:?}");
    let now = jiff::Timestamp::now().as_millisecond();
    let first = audit::seal_pending(&w.pool, &w.key, now, 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.payload.leaf_count, 5);
    let left = queued(&w).await;
    assert_eq!(left.len(), 7, "{backend:?}");
    assert_eq!(left, unsealed(&w).await, "{backend:?}");
    // The batch took the oldest five, in (time, id) order.
    let members: Vec<String> = sqlx::query_scalar(
        "SELECT m.event_id FROM audit_batch_members m JOIN audit_events e \
         ON e.event_id = m.event_id ORDER BY e.at_unix_ms, e.event_id",
    )
    .fetch_all(w.pool.pool())
    .await
    .unwrap();
    assert_eq!(members, initial[..5], "{backend:?}");
    // Events appended between seals queue behind the rest.
    let later = common::prepared(&w.pool, &spec(SAKAHOGI), now).await;
    let later_events: Vec<String> = sqlx::query_scalar(
        "SELECT event_id FROM audit_events WHERE request_id = $1 ORDER BY at_unix_ms, event_id",
    )
    .bind(&later)
    .fetch_all(w.pool.pool())
    .await
    .unwrap();
    let now_queued = queued(&w).await;
    assert_eq!(now_queued.len(), 9, "{backend:?}");
    assert_eq!(now_queued[..7], initial[5..], "{backend:?}");
    assert_eq!(now_queued[7..], later_events[..], "{backend:?}");
    assert_eq!(now_queued, unsealed(&w).await, "{backend:?}");
    assert_eq!(w.seal_all(4).await, 3, "{backend:?}: 9 events in 4 + 4 + 1");
    assert!(queued(&w).await.is_empty(), "{backend:?}");
    assert!(unsealed(&w).await.is_empty(), "{backend:?}");

    // A log from before the queue: two unsealed events, the queue table gone, and the
    // migration not yet applied. Opening the store applies it.
    common::prepared(&w.pool, &spec(MINOKAMO), now + 1).await;
    let waiting = unsealed(&w).await;
    assert_eq!(waiting.len(), 2, "{backend:?}");
    w.exec("DROP TABLE audit_seal_queue").await;
    w.exec("DELETE FROM _sqlx_migrations WHERE version = 20261204000009")
        .await;
    let reopened = center::db::connect(&w.url).await.unwrap();
    let requeued: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM audit_seal_queue ORDER BY at_unix_ms, event_id")
            .fetch_all(reopened.pool())
            .await
            .unwrap();
    assert_eq!(requeued, waiting, "{backend:?}");
    let sealed = audit::seal_in_rounds(&reopened, &w.key, now + 2, 8)
        .await
        .unwrap();
    assert_eq!(sealed, 2, "{backend:?}");
    let report = audit::verify(&reopened, &w.key.public(), now + 2, 60_000, None)
        .await
        .unwrap();
    assert!(report.is_intact(), "{backend:?}: {:?}", report.problems);
    assert_eq!((report.sealed_events, report.unsealed_recent), (16, 0));
    reopened.close().await;
    w.close().await;
}

#[tokio::test]
async fn the_seal_queue_holds_exactly_the_unsealed_events_sqlite() {
    the_seal_queue_holds_exactly_the_unsealed_events(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_seal_queue_holds_exactly_the_unsealed_events_postgres() {
    the_seal_queue_holds_exactly_the_unsealed_events(Backend::Postgres).await;
}
