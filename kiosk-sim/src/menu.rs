//! The kiosk's own check of an order against the center's [`Menu`] (メニュー), made
//! before the resident is asked for the PIN: a type the municipality does not offer,
//! one not available right now, an option it does not offer or more copies than it
//! allows is refused at the screen, and the card never signs. The center enforces the
//! same catalogue again; this check only spares the resident a useless PIN entry.

use schemas::{
    CertificateOption, CertificateOrder, CertificateType, Menu, MenuItem, MunicipalityCode,
    RefusalReason, Route, RouteKind,
};

/// Why the kiosk refused an order locally.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MenuRefusal {
    /// The type is not on this municipality's menu for this route.
    #[error("{certificate} ({}) is not offered by {municipality} through the {} route", certificate.title_ja(), crate::client::route_kind_str(*route))]
    NotOffered {
        municipality: MunicipalityCode,
        route: RouteKind,
        certificate: CertificateType,
    },
    /// An option of the order (世帯全員, 本籍 printed, …) is not offered for the type.
    #[error("{certificate} ({}): option {} is not offered", certificate.title_ja(), option_str(*option))]
    OptionNotOffered {
        certificate: CertificateType,
        option: CertificateOption,
    },
    /// On the menu, but not now (out of hours, maintenance, closed day).
    #[error("{certificate} ({}) is not available now ({})", certificate.title_ja(), reason.map_or("closed", RefusalReason::as_str))]
    NotAvailableNow {
        certificate: CertificateType,
        reason: Option<RefusalReason>,
    },
    #[error("{certificate} ({}): {copies} copies asked, at most {max_copies}", certificate.title_ja())]
    TooManyCopies {
        certificate: CertificateType,
        copies: u8,
        max_copies: u8,
    },
}

impl MenuRefusal {
    /// A stable, machine-readable code (the center's refusal reason where one fits).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotOffered { .. } | Self::OptionNotOffered { .. } => "type_not_offered",
            Self::NotAvailableNow { .. } => "not_available_now",
            Self::TooManyCopies { .. } => "too_many_copies",
        }
    }
}

/// The snake_case wire name of an option.
pub fn option_str(option: CertificateOption) -> &'static str {
    match option {
        CertificateOption::Household => "household",
        CertificateOption::SelectedMembers => "selected_members",
        CertificateOption::Domicile => "domicile",
        CertificateOption::Relationship => "relationship",
        CertificateOption::PastFiscalYear => "past_fiscal_year",
    }
}

/// The municipality that answers `route` for a card of `card_municipality`.
pub fn answering_municipality(
    route: &Route,
    card_municipality: MunicipalityCode,
) -> MunicipalityCode {
    match route {
        Route::Residence => card_municipality,
        Route::Domicile { municipality_code } => *municipality_code,
    }
}

/// Checks `order` against `menu`; the menu item it matched when it may be ordered.
///
/// A specific fiscal year is not checked here: only the center knows which year is
/// the newest (it reports [`CertificateOption::PastFiscalYear`] itself).
pub fn check_order<'m>(
    menu: &'m Menu,
    order: &CertificateOrder,
) -> Result<&'m MenuItem, MenuRefusal> {
    let certificate = order.certificate.certificate_type();
    let item = menu
        .items
        .iter()
        .find(|item| item.certificate == certificate)
        .ok_or(MenuRefusal::NotOffered {
            municipality: menu.municipality_code,
            route: menu.route,
            certificate,
        })?;
    if let Some(option) = order
        .certificate
        .options_used()
        .into_iter()
        .find(|option| !item.options.contains(option))
    {
        return Err(MenuRefusal::OptionNotOffered {
            certificate,
            option,
        });
    }
    if !menu.open_now || !item.available_now {
        return Err(MenuRefusal::NotAvailableNow {
            certificate,
            reason: item.unavailable_reason,
        });
    }
    if order.copies > item.max_copies {
        return Err(MenuRefusal::TooManyCopies {
            certificate,
            copies: order.copies,
            max_copies: item.max_copies,
        });
    }
    Ok(item)
}
