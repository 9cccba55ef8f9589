//! Printed back pages read back: composed by the production composer with random seals
//! (so the QR data varies from run to run), read from the PDF's drawing and from the
//! page rendered by poppler at 150 dpi, as a scanner would see it.

#[path = "../../composer/tests/common/mod.rs"]
mod common;

use common::{seals_for, six_member_front, VERIFY_URL};
use composer::{Composer, DocumentInput};
use schemas::{KeyPair, RequestId, Signed, TrustList, TRUST_LIST_FORMAT};

/// Random seals per run: enough to meet the data-dependent cases a fixed seal hides
/// (before the scan fallbacks about 1 page in 100 did not scan at 150 dpi).
const TRIALS: usize = 12;

#[test]
fn back_pages_scan_from_the_pdf_and_from_a_150_dpi_render() {
    let pdftoppm = std::path::Path::new("/usr/bin/pdftoppm");
    let render = pdftoppm.exists();
    if !render {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have poppler-utils (pdftoppm): scripts/test installs it"
        );
        eprintln!("pdftoppm not installed: only the PDF path is checked");
    }
    let composer = Composer::with_embedded_font().expect("font");
    let center = KeyPair::from_seed([1; 32]);
    // An empty list: every seal is read and judged (unknown_kid), which is all this
    // test needs to know that it was read.
    let list = Signed::sign(
        TrustList {
            format: TRUST_LIST_FORMAT.into(),
            version: 1,
            issued_at_unix_s: 0,
            next_update_unix_s: 4_000_000_000,
            keys: Vec::new(),
            revoked_documents: Vec::new(),
        },
        &center,
    )
    .expect("signed");
    let dir = std::env::temp_dir().join(format!("rendered-pages-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for trial in 0..TRIALS {
        let front = six_member_front();
        let request_id = RequestId::new_random();
        let seals = seals_for(&front, request_id, &KeyPair::generate());
        let input = DocumentInput {
            request_id,
            front: &front,
            seal_qr_texts: &seals,
            official_seal: None,
            copies: 1,
            verify_url: VERIFY_URL,
        };
        let pdf = composer.compose(&input).expect("composes");
        let answer =
            verifier::verify_input(verifier::Input::Pdf(&pdf.bytes), &list, &center.public(), 1);
        assert_eq!(answer.seals.len(), 1, "trial {trial}: seal {}", seals[0]);
        if !render {
            continue;
        }
        let path = dir.join("doc.pdf");
        std::fs::write(&path, &pdf.bytes).expect("written");
        let status = std::process::Command::new(pdftoppm)
            .args(["-r", "150", "-png", "-f", "2", "-l", "2", "-singlefile"])
            .arg(&path)
            .arg(dir.join("back"))
            .status()
            .expect("pdftoppm runs");
        assert!(status.success());
        let png = std::fs::read(dir.join("back.png")).expect("rendered");
        let texts = verifier::scan::seal_texts_in_image(&png)
            .unwrap_or_else(|e| panic!("trial {trial}: {e}; seal {}", seals[0]));
        assert_eq!(texts, vec![seals[0].clone()], "trial {trial}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
