//! The kiosk's simulated payment unit and printer. Each is chosen per kiosk (or per
//! session) so tests and the CLI can walk every path of "no fee without a certificate,
//! no certificate without a recorded fee". The default is the happy path: the resident
//! pays, the printer prints.

use std::str::FromStr;

use schemas::outcome::{PaymentMethod, PaymentOutcome, PrintOutcome};

/// What the simulated resident does at the payment screen, after confirming the fee.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SimulatedPayment {
    /// Pays the full fee in cash.
    #[default]
    Pays,
    /// Presses 取消 (cancel) instead of paying.
    Cancels,
    /// Walks away: the kiosk's payment time runs out.
    TimesOut,
    /// Inserts coins and notes worth `inserted_yen`; the change is given back. Less
    /// than the fee never completes: the money is returned and the time runs out.
    Coins { inserted_yen: u32 },
    /// Pays exactly the fee with e-money.
    Emoney,
}

impl SimulatedPayment {
    /// The payment outcome for a fee of `fee_yen`.
    pub fn collect(self, fee_yen: u32) -> (PaymentOutcome, u32) {
        match self {
            Self::Pays | Self::Emoney => (PaymentOutcome::Paid, fee_yen),
            Self::Coins { inserted_yen } if inserted_yen >= fee_yen => {
                (PaymentOutcome::Paid, fee_yen)
            }
            Self::Coins { .. } | Self::TimesOut => (PaymentOutcome::TimedOut, 0),
            Self::Cancels => (PaymentOutcome::Cancelled, 0),
        }
    }

    /// Change given back for a fee of `fee_yen` (coins only; the whole amount when
    /// it was not enough).
    pub fn change_yen(self, fee_yen: u32) -> u32 {
        match self {
            Self::Coins { inserted_yen } if inserted_yen >= fee_yen => inserted_yen - fee_yen,
            Self::Coins { inserted_yen } => inserted_yen,
            _ => 0,
        }
    }

    pub fn method(self) -> PaymentMethod {
        match self {
            Self::Emoney => PaymentMethod::EMoney,
            _ => PaymentMethod::Cash,
        }
    }
}

impl FromStr for SimulatedPayment {
    type Err = String;

    /// `paid` | `cancel` | `timeout` (the CLI's `--payment`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "paid" => Ok(Self::Pays),
            "cancel" => Ok(Self::Cancels),
            "timeout" => Ok(Self::TimesOut),
            _ => Err(format!(
                "payment must be paid, cancel or timeout, got {text:?}"
            )),
        }
    }
}

/// How the simulated printer ends a job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SimulatedPrinter {
    /// Every page comes out.
    #[default]
    Prints,
    /// Paper jam before the first page: nothing usable came out (`failed`).
    JamsBeforeFirstPage,
    /// Power lost mid-job: the kiosk cannot tell what came out (`unknown`). The pages
    /// may be in the tray; the printer's answer after the restart is reported later
    /// with [`crate::Kiosk::resolve_print`].
    LosesPower,
}

impl SimulatedPrinter {
    /// What the kiosk learns from the printer.
    pub fn outcome(self) -> PrintOutcome {
        match self {
            Self::Prints => PrintOutcome::Ok,
            Self::JamsBeforeFirstPage => PrintOutcome::Failed,
            Self::LosesPower => PrintOutcome::Unknown,
        }
    }

    /// Whether pages reach the tray (the PDF file stands in for them).
    pub fn writes_pages(self) -> bool {
        !matches!(self, Self::JamsBeforeFirstPage)
    }
}

impl FromStr for SimulatedPrinter {
    type Err = String;

    /// `ok` | `jam` | `power-loss` (the CLI's `--printer`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ok" => Ok(Self::Prints),
            "jam" => Ok(Self::JamsBeforeFirstPage),
            "power-loss" => Ok(Self::LosesPower),
            _ => Err(format!(
                "printer must be ok, jam or power-loss, got {text:?}"
            )),
        }
    }
}
