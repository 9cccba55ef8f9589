#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| konbini_fuzz::pdf_verifier(data));
