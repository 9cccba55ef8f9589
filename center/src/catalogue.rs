//! The municipalities' catalogues (メニュー) at the center: fetched over the closed
//! link with a center-signed [`CatalogueRequest`], accepted only when signed by one of
//! the municipality's registered keys, for that municipality, published at exactly
//! the requested instant and structurally valid; cached until `valid_until` by the
//! center's clock; and turned into the kiosk's [`Menu`].
//!
//! Replicas: the cache is derived only from signed data that every replica fetches
//! identically from the municipality, so two replicas may hold different copies for a
//! moment but never decide from state the other cannot reproduce; nothing in it is an
//! issuance decision that needs the database.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemas::{
    Catalogue, CatalogueRequest, ErrorCode, Kid, Menu, MenuItem, MunicipalityCode, PublicKey,
    RouteKind, Signed, SignedCatalogue,
};

use crate::adapter_client::UpstreamError;
use crate::directory::Municipality;
use crate::error::ApiError;
use crate::service_hours;
use crate::startup::AppState;

/// Upper bound on municipalities whose catalogue one center process holds.
pub const MAX_CACHED_CATALOGUES: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogueError {
    #[error("catalogue is not signed by a key registered for the municipality: {0}")]
    Signature(String),
    #[error("catalogue is for municipality {actual}, expected {expected}")]
    WrongMunicipality {
        expected: MunicipalityCode,
        actual: MunicipalityCode,
    },
    #[error("catalogue expired at {valid_until_unix_s} (now {now_unix_s})")]
    Stale {
        valid_until_unix_s: i64,
        now_unix_s: i64,
    },
    #[error(
        "catalogue was published at {published_at_unix_s}, requested at {requested_at_unix_s}"
    )]
    PublishedAt {
        published_at_unix_s: i64,
        requested_at_unix_s: i64,
    },
    #[error("catalogue is malformed: {0}")]
    Invalid(String),
}

/// Why no catalogue could be had.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueFetchError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Rejected(#[from] CatalogueError),
}

/// Checks a catalogue answered to a request made at `requested_at_unix_s` (the
/// center's clock) for municipality `code` with registered `keys`.
pub fn verify_catalogue(
    signed: &SignedCatalogue,
    code: MunicipalityCode,
    keys: &HashMap<Kid, PublicKey>,
    requested_at_unix_s: i64,
) -> Result<Catalogue, CatalogueError> {
    let key = keys
        .get(&signed.kid)
        .ok_or_else(|| CatalogueError::Signature(format!("unknown kid {}", signed.kid)))?;
    let catalogue = signed
        .verify(key)
        .map_err(|e| CatalogueError::Signature(e.to_string()))?;
    if catalogue.municipality_code != code {
        return Err(CatalogueError::WrongMunicipality {
            expected: code,
            actual: catalogue.municipality_code,
        });
    }
    if catalogue.valid_until_unix_s <= requested_at_unix_s {
        return Err(CatalogueError::Stale {
            valid_until_unix_s: catalogue.valid_until_unix_s,
            now_unix_s: requested_at_unix_s,
        });
    }
    if catalogue.published_at_unix_s != requested_at_unix_s {
        return Err(CatalogueError::PublishedAt {
            published_at_unix_s: catalogue.published_at_unix_s,
            requested_at_unix_s,
        });
    }
    catalogue.validate().map_err(CatalogueError::Invalid)?;
    Ok(catalogue.clone())
}

/// Verified catalogues by municipality, each until its `valid_until`.
#[derive(Debug)]
pub struct CatalogueCache {
    max_entries: usize,
    entries: Mutex<HashMap<MunicipalityCode, Arc<Catalogue>>>,
}

impl Default for CatalogueCache {
    fn default() -> Self {
        Self::new(MAX_CACHED_CATALOGUES)
    }
}

impl CatalogueCache {
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries: max_entries.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MunicipalityCode, Arc<Catalogue>>> {
        // A panic while holding the lock leaves only a map of immutable catalogues.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached catalogue if it is valid at `now_unix_s`: published at or before it
    /// (a clock moved back does not see a later catalogue) and not yet expired.
    pub fn get(&self, code: MunicipalityCode, now_unix_s: i64) -> Option<Arc<Catalogue>> {
        self.lock()
            .get(&code)
            .filter(|c| c.published_at_unix_s <= now_unix_s && now_unix_s < c.valid_until_unix_s)
            .cloned()
    }

    /// Stores a verified catalogue; when full, drops expired entries first, then the
    /// one that expires soonest.
    pub fn insert(&self, catalogue: Catalogue, now_unix_s: i64) -> Arc<Catalogue> {
        let catalogue = Arc::new(catalogue);
        let mut entries = self.lock();
        if !entries.contains_key(&catalogue.municipality_code) && entries.len() >= self.max_entries
        {
            entries.retain(|_, c| now_unix_s < c.valid_until_unix_s);
            if entries.len() >= self.max_entries {
                if let Some(code) = entries
                    .iter()
                    .min_by_key(|(_, c)| c.valid_until_unix_s)
                    .map(|(code, _)| *code)
                {
                    entries.remove(&code);
                }
            }
        }
        entries.insert(catalogue.municipality_code, Arc::clone(&catalogue));
        catalogue
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The valid cached catalogue, or a fresh one from `fetch(requested_at_unix_s)`,
    /// verified and cached. `fetch` is given `now_unix_s` as the request instant.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        code: MunicipalityCode,
        keys: &HashMap<Kid, PublicKey>,
        now_unix_s: i64,
        fetch: F,
    ) -> Result<Arc<Catalogue>, CatalogueFetchError>
    where
        F: FnOnce(i64) -> Fut,
        Fut: Future<Output = Result<SignedCatalogue, UpstreamError>>,
    {
        if let Some(cached) = self.get(code, now_unix_s) {
            return Ok(cached);
        }
        let signed = fetch(now_unix_s).await?;
        let catalogue = verify_catalogue(&signed, code, keys, now_unix_s)?;
        Ok(self.insert(catalogue, now_unix_s))
    }
}

/// The municipality's current catalogue at the center's clock (cached, or fetched
/// within `adapter_timeout_ms`). Anything short of a valid one is
/// `catalogue_unavailable`.
pub async fn current_catalogue(
    state: &AppState,
    municipality: &Municipality,
) -> Result<Arc<Catalogue>, ApiError> {
    let now_unix_s = state.clock.now_unix_s();
    let timeout = Duration::from_millis(state.timeouts.adapter_timeout_ms);
    let result = state
        .catalogues
        .get_or_fetch(
            municipality.code,
            &municipality.keys_usable_at(now_unix_s),
            now_unix_s,
            |requested_at_unix_s| async move {
                let request = Signed::sign(
                    CatalogueRequest {
                        municipality_code: municipality.code,
                        requested_at_unix_s,
                    },
                    &state.center_key,
                )
                .map_err(|e| UpstreamError::Malformed(format!("cannot sign request: {e}")))?;
                state
                    .adapters
                    .catalogue(&municipality.adapter_url, &request, timeout)
                    .await
            },
        )
        .await;
    result.map_err(|error| {
        match &error {
            CatalogueFetchError::Rejected(_) => tracing::error!(
                target: "alert",
                municipality = %municipality.code,
                %error,
                "catalogue rejected"
            ),
            CatalogueFetchError::Upstream(_) => tracing::warn!(
                municipality = %municipality.code,
                %error,
                "catalogue unavailable"
            ),
        }
        ApiError::new(
            ErrorCode::CatalogueUnavailable,
            format!("no valid catalogue for municipality {}", municipality.code),
        )
    })
}

/// The kiosk's menu for `route` at `now_unix_s`: the offerings that list the route
/// (the 本籍地 route carries 戸籍 types only), each with whether it can be ordered now.
pub fn build_menu(catalogue: &Catalogue, route: RouteKind, now_unix_s: i64) -> Menu {
    let at = service_hours::tokyo_time(now_unix_s);
    let open_now = at
        .as_ref()
        .is_some_and(|at| service_hours::general_availability(&catalogue.maintenance, at).is_ok());
    let mut items: Vec<MenuItem> = catalogue
        .offerings
        .iter()
        .filter(|o| o.routes.contains(&route))
        .filter(|o| route != RouteKind::Domicile || o.certificate.is_family_register())
        .map(|o| {
            let availability = match &at {
                Some(at) => service_hours::availability(
                    &o.hours,
                    &catalogue.closed_dates,
                    &catalogue.maintenance,
                    at,
                ),
                None => Err(schemas::RefusalReason::OutOfHours),
            };
            MenuItem {
                certificate: o.certificate,
                title_ja: o.certificate.title_ja().to_owned(),
                title_en: o.certificate.title_en().to_owned(),
                fee_yen_per_copy: o.fee_yen_per_copy,
                max_copies: o.max_copies,
                options: o.options.clone(),
                hours: o.hours,
                available_now: availability.is_ok(),
                unavailable_reason: availability.err(),
            }
        })
        .collect();
    items.sort_by_key(|item| item.certificate);
    Menu {
        municipality_code: catalogue.municipality_code,
        municipality_name: catalogue.municipality_name.clone(),
        route,
        as_of_unix_s: now_unix_s,
        open_now,
        items,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use schemas::{
        CertificateOption, CertificateType, KeyPair, MaintenanceWindow, Offering, RefusalReason,
        ServiceDays, ServiceHours, TimeOfDay,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(crate) fn code() -> MunicipalityCode {
        "212113".parse().unwrap()
    }

    pub(crate) fn other_code() -> MunicipalityCode {
        "215015".parse().unwrap()
    }

    pub(crate) fn offering(certificate: CertificateType, routes: &[RouteKind]) -> Offering {
        Offering {
            certificate,
            routes: routes.to_vec(),
            fee_yen_per_copy: 200,
            max_copies: 5,
            options: vec![],
            hours: ServiceHours::NATIONAL,
        }
    }

    /// Tuesday 2026-11-24 12:00 Asia/Tokyo.
    pub(crate) fn tuesday_noon() -> i64 {
        "2026-11-24T12:00:00+09:00"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_second()
    }

    pub(crate) fn catalogue(published_at: i64) -> Catalogue {
        Catalogue {
            municipality_code: code(),
            municipality_name: "美濃加茂市".into(),
            published_at_unix_s: published_at,
            valid_until_unix_s: published_at + 3600,
            offerings: vec![
                Offering {
                    options: vec![
                        CertificateOption::Household,
                        CertificateOption::Domicile,
                        CertificateOption::Relationship,
                    ],
                    ..offering(CertificateType::ResidentRecord, &[RouteKind::Residence])
                },
                Offering {
                    fee_yen_per_copy: 300,
                    max_copies: 3,
                    options: vec![CertificateOption::PastFiscalYear],
                    ..offering(CertificateType::IncomeTax, &[RouteKind::Residence])
                },
                Offering {
                    fee_yen_per_copy: 450,
                    hours: ServiceHours {
                        days: ServiceDays::Weekdays,
                        opens_at: TimeOfDay::hm(8, 30),
                        closes_at: TimeOfDay::hm(17, 15),
                    },
                    ..offering(
                        CertificateType::FamilyRegisterAll,
                        &[RouteKind::Residence, RouteKind::Domicile],
                    )
                },
            ],
            closed_dates: vec!["2026-11-23".into()],
            maintenance: vec![],
            tax_switchover: "06-01".into(),
        }
    }

    fn keys(key: &KeyPair) -> HashMap<Kid, PublicKey> {
        HashMap::from([(key.kid(), key.public())])
    }

    #[test]
    fn accepts_a_well_formed_catalogue() {
        let key = KeyPair::generate();
        let now = tuesday_noon();
        let signed = Signed::sign(catalogue(now), &key).unwrap();
        assert_eq!(
            verify_catalogue(&signed, code(), &keys(&key), now).unwrap(),
            catalogue(now)
        );
    }

    #[test]
    fn rejects_bad_catalogues() {
        let key = KeyPair::generate();
        let stranger = KeyPair::generate();
        let now = tuesday_noon();
        let registered = keys(&key);

        let by_stranger = Signed::sign(catalogue(now), &stranger).unwrap();
        assert!(matches!(
            verify_catalogue(&by_stranger, code(), &registered, now),
            Err(CatalogueError::Signature(_))
        ));

        let mut tampered = Signed::sign(catalogue(now), &key).unwrap();
        tampered.payload.offerings[0].fee_yen_per_copy = 1;
        assert!(matches!(
            verify_catalogue(&tampered, code(), &registered, now),
            Err(CatalogueError::Signature(_))
        ));

        let signed = Signed::sign(catalogue(now), &key).unwrap();
        assert!(matches!(
            verify_catalogue(&signed, other_code(), &registered, now),
            Err(CatalogueError::WrongMunicipality { .. })
        ));

        // An old catalogue replayed after it expired.
        let old = Signed::sign(catalogue(now - 7200), &key).unwrap();
        assert!(matches!(
            verify_catalogue(&old, code(), &registered, now),
            Err(CatalogueError::Stale { .. })
        ));

        // Still valid, but not the answer to this request.
        let earlier = Signed::sign(catalogue(now - 60), &key).unwrap();
        assert!(matches!(
            verify_catalogue(&earlier, code(), &registered, now),
            Err(CatalogueError::PublishedAt { .. })
        ));

        let mut twice = catalogue(now);
        twice.offerings.push(twice.offerings[0].clone());
        let twice = Signed::sign(twice, &key).unwrap();
        assert!(matches!(
            verify_catalogue(&twice, code(), &registered, now),
            Err(CatalogueError::Invalid(_))
        ));

        let mut long = catalogue(now);
        long.valid_until_unix_s = now + schemas::MAX_CATALOGUE_VALIDITY_S + 1;
        let long = Signed::sign(long, &key).unwrap();
        assert!(matches!(
            verify_catalogue(&long, code(), &registered, now),
            Err(CatalogueError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn caches_until_valid_until_then_refetches() {
        let key = KeyPair::generate();
        let registered = keys(&key);
        let cache = CatalogueCache::new(8);
        let calls = AtomicUsize::new(0);
        let fetch = |requested_at: i64| {
            calls.fetch_add(1, Ordering::SeqCst);
            let signed = Signed::sign(catalogue(requested_at), &key).unwrap();
            async move { Ok::<_, UpstreamError>(signed) }
        };
        let start = tuesday_noon();
        let first = cache
            .get_or_fetch(code(), &registered, start, fetch)
            .await
            .unwrap();
        assert_eq!(first.published_at_unix_s, start);
        let again = cache
            .get_or_fetch(code(), &registered, start + 3599, fetch)
            .await
            .unwrap();
        assert_eq!(again.published_at_unix_s, start);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let later = cache
            .get_or_fetch(code(), &registered, start + 3600, fetch)
            .await
            .unwrap();
        assert_eq!(later.published_at_unix_s, start + 3600);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // A clock moved back does not use the later catalogue.
        let earlier = cache
            .get_or_fetch(code(), &registered, start + 60, fetch)
            .await
            .unwrap();
        assert_eq!(earlier.published_at_unix_s, start + 60);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_rejected_catalogue_is_not_cached() {
        let key = KeyPair::generate();
        let stranger = KeyPair::generate();
        let cache = CatalogueCache::new(8);
        let now = tuesday_noon();
        let result = cache
            .get_or_fetch(code(), &keys(&key), now, |at| {
                let signed = Signed::sign(catalogue(at), &stranger).unwrap();
                async move { Ok::<_, UpstreamError>(signed) }
            })
            .await;
        assert!(matches!(
            result,
            Err(CatalogueFetchError::Rejected(CatalogueError::Signature(_)))
        ));
        assert!(cache.is_empty());
    }

    #[test]
    fn cache_is_bounded() {
        let cache = CatalogueCache::new(1);
        let now = tuesday_noon();
        cache.insert(catalogue(now), now);
        let mut other = catalogue(now);
        other.municipality_code = other_code();
        cache.insert(other, now);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(other_code(), now).is_some());
        assert!(cache.get(code(), now).is_none());
    }

    #[test]
    fn menu_lists_the_route_and_availability() {
        let now = tuesday_noon();
        let menu = build_menu(&catalogue(now), RouteKind::Residence, now);
        assert!(menu.open_now);
        let types: Vec<_> = menu.items.iter().map(|i| i.certificate).collect();
        assert_eq!(
            types,
            vec![
                CertificateType::ResidentRecord,
                CertificateType::IncomeTax,
                CertificateType::FamilyRegisterAll
            ]
        );
        assert!(menu.items.iter().all(|i| i.available_now));
        assert_eq!(menu.items[1].fee_yen_per_copy, 300);
        assert_eq!(menu.items[1].title_ja, "所得・課税証明書");

        let domicile = build_menu(&catalogue(now), RouteKind::Domicile, now);
        let types: Vec<_> = domicile.items.iter().map(|i| i.certificate).collect();
        assert_eq!(types, vec![CertificateType::FamilyRegisterAll]);
        assert_eq!(domicile.route, RouteKind::Domicile);
    }

    #[test]
    fn menu_marks_type_hours_and_national_hours() {
        // Tuesday 18:00: national hours open, 戸籍 (weekdays 08:30–17:15) closed.
        let evening = tuesday_noon() + 6 * 3600;
        let menu = build_menu(&catalogue(evening), RouteKind::Residence, evening);
        assert!(menu.open_now);
        let family = menu
            .items
            .iter()
            .find(|i| i.certificate == CertificateType::FamilyRegisterAll)
            .unwrap();
        assert!(!family.available_now);
        assert_eq!(family.unavailable_reason, Some(RefusalReason::OutOfHours));
        let resident = &menu.items[0];
        assert!(resident.available_now);
        assert_eq!(resident.unavailable_reason, None);

        // 23:30: nothing.
        let night = tuesday_noon() + 11 * 3600 + 1800;
        let menu = build_menu(&catalogue(night), RouteKind::Residence, night);
        assert!(!menu.open_now);
        assert!(menu
            .items
            .iter()
            .all(|i| i.unavailable_reason == Some(RefusalReason::OutOfHours)));
    }

    #[test]
    fn menu_marks_maintenance() {
        let now = tuesday_noon();
        let mut c = catalogue(now);
        c.maintenance.push(MaintenanceWindow {
            starts_at_unix_s: now - 60,
            ends_at_unix_s: now + 60,
            note: "システム保守".into(),
        });
        let menu = build_menu(&c, RouteKind::Residence, now);
        assert!(!menu.open_now);
        assert!(menu
            .items
            .iter()
            .all(|i| i.unavailable_reason == Some(RefusalReason::Maintenance)));
        let after = build_menu(&c, RouteKind::Residence, now + 60);
        assert!(after.open_now);
    }
}
