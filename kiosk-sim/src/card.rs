//! The simulated resident card (個人番号カード).
//!
//! Like the real IC card, the card itself checks the PIN and keeps the retry counter;
//! the kiosk never sees the key. The card's state is its personalisation file
//! ([`schemas::CardFile`], JSON), and the counter is written back to that file on every
//! attempt, so a locked card stays locked across runs and processes.
//!
//! Signing needs a [`PinSession`], which only [`SimCard::verify_pin`] can create after
//! a correct PIN: "the card never signs without the PIN" holds by construction.

use std::path::{Path, PathBuf};

use schemas::{
    CardAuthMessage, CardCertificate, CardFile, CardSerial, Digest32, KeyPair, MunicipalityCode,
    SignatureBytes, SignedMessage as _, SigningError, MAX_PIN_ATTEMPTS,
};

use crate::atomic_file;

/// Digits in the PIN of the card's user certificate (利用者証明用電子証明書の暗証番号).
pub const PIN_LENGTH: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("cannot read or write card file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("card file {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    /// Not 4 digits. Rejected before the card is asked, so it costs no attempt.
    #[error("a PIN is exactly {PIN_LENGTH} digits")]
    BadPinFormat,
    /// The PIN was wrong; at 0 the card has just locked.
    #[error("wrong PIN ({attempts_left} attempts left)")]
    WrongPin { attempts_left: u8 },
    /// Locked by earlier wrong PINs; only the municipality can reset it.
    #[error("card is locked after {MAX_PIN_ATTEMPTS} wrong PINs")]
    Locked,
    #[error("card cannot sign: {0}")]
    Signing(#[from] SigningError),
}

/// A resident card in the kiosk's reader.
pub struct SimCard {
    path: PathBuf,
    file: CardFile,
    key: KeyPair,
}

// Hand-written so that neither the PIN nor the key seed can reach a log.
impl std::fmt::Debug for SimCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCard")
            .field("path", &self.path)
            .field("label", &self.file.label)
            .field("serial", &self.serial())
            .field("pin_attempts_left", &self.file.pin_attempts_left)
            .finish_non_exhaustive()
    }
}

impl SimCard {
    /// Reads and checks the card file: the key must match the certificate, the PIN must
    /// be 4 digits and the counter within 0..=MAX.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CardError> {
        let path = path.as_ref().to_owned();
        let (file, key) = load(&path)?;
        Ok(Self { path, file, key })
    }

    pub fn certificate(&self) -> &CardCertificate {
        &self.file.certificate
    }

    pub fn serial(&self) -> &CardSerial {
        &self.file.certificate.payload.serial
    }

    /// 住所地 as certified by the card authority.
    pub fn municipality_code(&self) -> MunicipalityCode {
        self.file.certificate.payload.municipality_code
    }

    pub fn label(&self) -> &str {
        &self.file.label
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wrong PINs left as of the last read of the card file.
    pub fn attempts_left(&self) -> u8 {
        self.file.pin_attempts_left
    }

    pub fn is_locked(&self) -> bool {
        self.file.pin_attempts_left == 0
    }

    /// Verifies `pin` on the card and opens a signing session on success.
    ///
    /// The counter is re-read from the card file first, so a second handle on the same
    /// card (another process, a stale `SimCard`) cannot grant extra attempts. As on
    /// real cards, the decremented counter is persisted *before* the comparison: an
    /// attempt interrupted half-way (crash, pulled card) still counts, so guessing by
    /// cutting power is impossible. A correct PIN then resets the counter.
    pub fn verify_pin(&mut self, pin: &str) -> Result<PinSession<'_>, CardError> {
        if pin.len() != PIN_LENGTH || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::BadPinFormat);
        }
        self.reload()?;
        let attempts_left = self.file.pin_attempts_left;
        if attempts_left == 0 {
            return Err(CardError::Locked);
        }
        self.persist_attempts(attempts_left - 1)?;
        if !pins_equal(pin.as_bytes(), self.file.pin.as_bytes()) {
            // No serial in the log: it identifies a resident's card.
            tracing::info!(attempts_left = attempts_left - 1, "wrong PIN");
            return Err(CardError::WrongPin {
                attempts_left: attempts_left - 1,
            });
        }
        self.persist_attempts(MAX_PIN_ATTEMPTS)?;
        Ok(PinSession {
            key: &self.key,
            certificate: &self.file.certificate,
        })
    }

    fn reload(&mut self) -> Result<(), CardError> {
        let (file, key) = load(&self.path)?;
        if file.certificate.payload.serial != self.file.certificate.payload.serial {
            return Err(CardError::Malformed {
                path: self.path.clone(),
                reason: "the card file now holds another card".into(),
            });
        }
        self.file = file;
        self.key = key;
        Ok(())
    }

    fn persist_attempts(&mut self, attempts_left: u8) -> Result<(), CardError> {
        let mut updated = self.file.clone();
        updated.pin_attempts_left = attempts_left;
        let bytes = serde_json::to_vec_pretty(&updated).map_err(|e| CardError::Malformed {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        atomic_file::replace(&self.path, &bytes).map_err(|source| CardError::Io {
            path: self.path.clone(),
            source,
        })?;
        // Only after the write succeeded: memory never claims more than the disk.
        self.file = updated;
        Ok(())
    }
}

fn load(path: &Path) -> Result<(CardFile, KeyPair), CardError> {
    let malformed = |reason: String| CardError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|source| CardError::Io {
        path: path.to_owned(),
        source,
    })?;
    let file: CardFile = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    let key = KeyPair::from_seed_base64(&file.key_seed).map_err(|e| malformed(e.to_string()))?;
    if key.public() != file.certificate.payload.public_key {
        return Err(malformed(
            "the card key does not match its certificate".into(),
        ));
    }
    if file.pin.len() != PIN_LENGTH || !file.pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("the stored PIN is not 4 digits".into()));
    }
    if file.pin_attempts_left > MAX_PIN_ATTEMPTS {
        return Err(malformed(format!(
            "pin_attempts_left {} exceeds {MAX_PIN_ATTEMPTS}",
            file.pin_attempts_left
        )));
    }
    Ok((file, key))
}

/// Compares without an early exit, so timing does not reveal how many leading digits
/// were right (a habit worth keeping even in a simulator).
fn pins_equal(entered: &[u8], stored: &[u8]) -> bool {
    entered.len() == stored.len()
        && entered
            .iter()
            .zip(stored)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Proof that the PIN was verified on this card. Only [`SimCard::verify_pin`] creates
/// one, and it borrows the card, so it cannot outlive the card in the reader.
pub struct PinSession<'card> {
    key: &'card KeyPair,
    certificate: &'card CardCertificate,
}

impl std::fmt::Debug for PinSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinSession")
            .field("serial", &self.certificate.payload.serial)
            .finish_non_exhaustive()
    }
}

impl PinSession<'_> {
    pub fn certificate(&self) -> &CardCertificate {
        self.certificate
    }

    /// Signs [`CardAuthMessage`] `{nonce, order_digest}` with the card key: the
    /// resident's approval of exactly this order, bound to the center's challenge.
    pub fn sign_auth(
        &self,
        nonce: &[u8],
        order_digest: Digest32,
    ) -> Result<SignatureBytes, CardError> {
        let message = CardAuthMessage {
            nonce: nonce.to_vec().into(),
            order_digest,
        };
        Ok(self.key.sign(&message.signed_bytes()?))
    }
}

#[cfg(test)]
mod tests {
    use super::pins_equal;

    #[test]
    fn pin_comparison() {
        assert!(pins_equal(b"1234", b"1234"));
        assert!(!pins_equal(b"1234", b"1235"));
        assert!(!pins_equal(b"123", b"1234"));
    }
}
