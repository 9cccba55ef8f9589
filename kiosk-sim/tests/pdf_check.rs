//! The kiosk half of the binding guard: `check_document` accepts only a PDF whose
//! every page carries this request's id, with the announced digest and page count.

mod common;

use common::build_pdf;
use kiosk_sim::{check_document, DocumentCheckError};
use lopdf::{Document, Object, StringFormat};
use schemas::{Digest32, RequestId, PDF_PAGE_REQUEST_ID_KEY};

fn ids() -> (RequestId, RequestId) {
    (RequestId::new_random(), RequestId::new_random())
}

#[test]
fn accepts_a_document_whose_every_page_is_ours() {
    let (ours, _) = ids();
    let text = ours.to_string();
    let pdf = build_pdf(&[Some(text.clone()), Some(text.clone()), Some(text.clone())]);
    check_document(&pdf, &ours, &Digest32::of(&pdf), 3).unwrap();
}

#[test]
fn rejects_a_page_from_another_request() {
    let (ours, theirs) = ids();
    let (a, b) = (ours.to_string(), theirs.to_string());
    let pdf = build_pdf(&[Some(a.clone()), Some(b.clone()), Some(a.clone())]);
    let err = check_document(&pdf, &ours, &Digest32::of(&pdf), 3).unwrap_err();
    assert_eq!(
        err,
        DocumentCheckError::ForeignPage {
            page: 2,
            expected: ours,
            found: b
        }
    );
}

#[test]
fn rejects_a_page_without_the_key() {
    let (ours, _) = ids();
    let text = ours.to_string();
    let pdf = build_pdf(&[Some(text.clone()), None]);
    let err = check_document(&pdf, &ours, &Digest32::of(&pdf), 2).unwrap_err();
    assert_eq!(err, DocumentCheckError::MissingRequestId { page: 2 });
}

#[test]
fn rejects_a_wrong_digest_before_parsing() {
    let (ours, _) = ids();
    let text = ours.to_string();
    let pdf = build_pdf(&[Some(text.clone())]);
    let announced = Digest32::of(b"some other document");
    let err = check_document(&pdf, &ours, &announced, 1).unwrap_err();
    assert!(
        matches!(err, DocumentCheckError::DigestMismatch { expected, .. } if expected == announced)
    );
}

#[test]
fn rejects_a_wrong_page_count_and_garbage() {
    let (ours, _) = ids();
    let text = ours.to_string();
    let pdf = build_pdf(&[Some(text.clone()), Some(text.clone())]);
    assert_eq!(
        check_document(&pdf, &ours, &Digest32::of(&pdf), 3).unwrap_err(),
        DocumentCheckError::PageCountMismatch {
            expected: 3,
            actual: 2
        }
    );
    let garbage = b"%PDF-1.7\nnot really".to_vec();
    assert!(matches!(
        check_document(&garbage, &ours, &Digest32::of(&garbage), 1),
        Err(DocumentCheckError::Unreadable(_))
    ));
    let empty = build_pdf(&[]);
    assert_eq!(
        check_document(&empty, &ours, &Digest32::of(&empty), 0).unwrap_err(),
        DocumentCheckError::NoPages
    );
}

#[test]
fn rejects_a_name_instead_of_a_string_and_accepts_utf16() {
    let (ours, _) = ids();
    let text = ours.to_string();
    let mut doc =
        Document::load_mem(&build_pdf(&[Some(text.clone()), Some(text.clone())])).unwrap();
    let pages = doc.get_pages();
    let first = doc.get_dictionary_mut(pages[&1]).unwrap();
    let mut utf16 = vec![0xFE, 0xFF];
    utf16.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    first.set(
        PDF_PAGE_REQUEST_ID_KEY,
        Object::String(utf16, StringFormat::Hexadecimal),
    );
    let second = doc.get_dictionary_mut(pages[&2]).unwrap();
    second.set(PDF_PAGE_REQUEST_ID_KEY, Object::Name(text.into_bytes()));
    let mut pdf = Vec::new();
    doc.save_to(&mut pdf).unwrap();
    assert_eq!(
        check_document(&pdf, &ours, &Digest32::of(&pdf), 2).unwrap_err(),
        DocumentCheckError::RequestIdNotText { page: 2 }
    );
}
