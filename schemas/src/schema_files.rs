//! The JSON Schema files checked in under `schemas/json/`, generated from the types.
//! `cargo test -p schemas` fails when they are stale; `UPDATE_SCHEMAS=1 cargo test -p
//! schemas` rewrites them.

use schemars::schema_for;

/// (file name, pretty JSON) for every top-level wire message.
pub fn all() -> Vec<(&'static str, String)> {
    fn pretty(schema: schemars::Schema) -> String {
        let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        text.push('\n');
        text
    }
    vec![
        (
            "ChallengeRequest.json",
            pretty(schema_for!(crate::ChallengeRequest)),
        ),
        (
            "ChallengeResponse.json",
            pretty(schema_for!(crate::ChallengeResponse)),
        ),
        (
            "CardSessionRequest.json",
            pretty(schema_for!(crate::CardSessionRequest)),
        ),
        (
            "CardSessionResponse.json",
            pretty(schema_for!(crate::CardSessionResponse)),
        ),
        (
            "IssuanceRequest.json",
            pretty(schema_for!(crate::IssuanceRequest)),
        ),
        (
            "IssuanceResponse.json",
            pretty(schema_for!(crate::IssuanceResponse)),
        ),
        ("ErrorBody.json", pretty(schema_for!(crate::ErrorBody))),
        (
            "ConformanceReport.json",
            pretty(schema_for!(crate::conformance::ConformanceReport)),
        ),
        (
            "ControlState.json",
            pretty(schema_for!(crate::kiosk_control::ControlState)),
        ),
        (
            "ControlInfo.json",
            pretty(schema_for!(crate::kiosk_control::ControlInfo)),
        ),
        (
            "PlaceCard.json",
            pretty(schema_for!(crate::kiosk_control::PlaceCard)),
        ),
        (
            "EnterPin.json",
            pretty(schema_for!(crate::kiosk_control::EnterPin)),
        ),
        (
            "ChooseRoute.json",
            pretty(schema_for!(crate::kiosk_control::ChooseRoute)),
        ),
        (
            "ChooseOrder.json",
            pretty(schema_for!(crate::kiosk_control::ChooseOrder)),
        ),
        ("Pay.json", pretty(schema_for!(crate::kiosk_control::Pay))),
        (
            "SetPrinter.json",
            pretty(schema_for!(crate::kiosk_control::SetPrinter)),
        ),
        (
            "CardCertificate.json",
            pretty(schema_for!(crate::CardCertificate)),
        ),
        (
            "RevocationList.json",
            pretty(schema_for!(crate::RevocationList)),
        ),
        (
            "CardAuthMessage.json",
            pretty(schema_for!(crate::CardAuthMessage)),
        ),
        (
            "SignedCertificateFetch.json",
            pretty(schema_for!(crate::SignedCertificateFetch)),
        ),
        (
            "SignedCertificateAnswer.json",
            pretty(schema_for!(crate::SignedCertificateAnswer)),
        ),
        ("AdapterInfo.json", pretty(schema_for!(crate::AdapterInfo))),
        (
            "SignedIssuanceNotice.json",
            pretty(schema_for!(crate::SignedIssuanceNotice)),
        ),
        (
            "IssuanceNoticeAck.json",
            pretty(schema_for!(crate::IssuanceNoticeAck)),
        ),
        (
            "SignedTrustList.json",
            pretty(schema_for!(crate::SignedTrustList)),
        ),
        (
            "SettlementReportLine.json",
            pretty(schema_for!(crate::settlement::ReportLine)),
        ),
        (
            "DetachedSignature.json",
            pretty(schema_for!(crate::settlement::DetachedSignature)),
        ),
        (
            "OperatorTransaction.json",
            pretty(schema_for!(crate::settlement::OperatorTransaction)),
        ),
        (
            "MatchLine.json",
            pretty(schema_for!(crate::settlement::MatchLine)),
        ),
        (
            "MatchSummary.json",
            pretty(schema_for!(crate::settlement::MatchSummary)),
        ),
        (
            "SignedCatalogueRequest.json",
            pretty(schema_for!(crate::SignedCatalogueRequest)),
        ),
        (
            "SignedCatalogue.json",
            pretty(schema_for!(crate::SignedCatalogue)),
        ),
        (
            "MunicipalityDirectory.json",
            pretty(schema_for!(crate::MunicipalityDirectory)),
        ),
        ("Menu.json", pretty(schema_for!(crate::Menu))),
        (
            "PaymentReport.json",
            pretty(schema_for!(crate::PaymentReport)),
        ),
        ("PrintReport.json", pretty(schema_for!(crate::PrintReport))),
        ("OutcomeAck.json", pretty(schema_for!(crate::OutcomeAck))),
        (
            "DomicileRegistrationRequest.json",
            pretty(schema_for!(crate::DomicileRegistrationRequest)),
        ),
        (
            "DomicileRegistrationResponse.json",
            pretty(schema_for!(crate::DomicileRegistrationResponse)),
        ),
        (
            "SignedDomicileRegistrationSubmit.json",
            pretty(schema_for!(crate::SignedDomicileRegistrationSubmit)),
        ),
        (
            "SignedDomicileRegistrationReceipt.json",
            pretty(schema_for!(crate::SignedDomicileRegistrationReceipt)),
        ),
    ]
}
