//! The bodies of every front layout except 住民票の写し (which lives in the parent
//! module with the shared member-block code): what sits between the title and the
//! attestation. Each function draws its page's slice and returns the body's bottom edge,
//! which the caller checks against the page's floor.

use super::{
    centered_baseline, frame_sides, lay_out_household_rows, lay_out_label_rows,
    lay_out_member_number, lay_out_name_row, Align, FrontPage, Item, NameRow, PageBuilder, RectPt,
    BLOCK_ROW_HEIGHTS_PT, CELL_PAD_PT, LABEL_SIZE_PT, NAME_MIN_SIZE_PT, NAME_SIZE_PT,
    TABLE_LEFT_PT, TABLE_RIGHT_PT, TABLE_TOP_PT, TOP_VALUE_SIZE_PT, VALUE_MIN_SIZE_PT,
    VALUE_SIZE_PT,
};
use crate::ComposeError;
use schemas::{
    AmountLine, FamilyRegisterAttachmentFront, FamilyRegisterFront, IncomeTaxFront, RegisterEvent,
    ResidentRecordItemsFront, SealRegistrationFront, TaxPaymentFront,
};

const LABEL_REGISTRATION_NUMBER: &str = "登録番号";
const LABEL_KANA: &str = "ふりがな";
const LABEL_NAME: &str = "氏　名";
const LABEL_BIRTH: &str = "生年月日";
const LABEL_SEX: &str = "性　別";
const LABEL_ADDRESS: &str = "住　所";
const LABEL_REGISTERED_ON: &str = "登録年月日";
const LABEL_IMPRESSION: &str = "印　影";
const LABEL_FISCAL_YEAR: &str = "年　度";
const LABEL_INCOME_YEAR: &str = "所得の年分";
const LABEL_INCOME_LINES: &str = "所得・控除等";
const LABEL_TAX_LINES: &str = "税　額";
const LABEL_AMOUNT: &str = "金　額";
const LABEL_TAX_NAME: &str = "税　目";
const LABEL_ASSESSED: &str = "税　額";
const LABEL_PAID: &str = "納付済額";
const LABEL_UNPAID: &str = "未納額";
const LABEL_DOMICILE: &str = "本　籍";
const LABEL_HEAD: &str = "筆頭者";
const LABEL_HEAD_NAME: &str = "氏　名";
const LABEL_NUMBER: &str = "番号";
const LABEL_SINCE: &str = "住所を定めた年月日";
const SECTION_REGISTER: &str = "戸籍事項";
const SECTION_PERSON: &str = "戸籍に記録されている者";
const SECTION_EVENTS: &str = "身分事項";
const REMOVED_MARK: &str = "除籍";
const ITEM_NAME: &str = "【名】";
const ITEM_BIRTH: &str = "【生年月日】";
const ITEM_SEX: &str = "【性別】";
const ITEM_FATHER: &str = "【父】";
const ITEM_MOTHER: &str = "【母】";
const ITEM_RELATIONSHIP: &str = "【続柄】";
/// Characters [`format_yen`] adds.
const YEN_MARKS: &str = "△,円";

/// Every string these layouts print on their own account (checked at start-up).
pub(super) const STATIC_TEXTS: [&str; 33] = [
    LABEL_REGISTRATION_NUMBER,
    LABEL_KANA,
    LABEL_NAME,
    LABEL_BIRTH,
    LABEL_SEX,
    LABEL_ADDRESS,
    LABEL_REGISTERED_ON,
    LABEL_IMPRESSION,
    LABEL_FISCAL_YEAR,
    LABEL_INCOME_YEAR,
    LABEL_INCOME_LINES,
    LABEL_TAX_LINES,
    LABEL_AMOUNT,
    LABEL_TAX_NAME,
    LABEL_ASSESSED,
    LABEL_PAID,
    LABEL_UNPAID,
    LABEL_DOMICILE,
    LABEL_HEAD,
    LABEL_HEAD_NAME,
    LABEL_NUMBER,
    LABEL_SINCE,
    SECTION_REGISTER,
    SECTION_PERSON,
    SECTION_EVENTS,
    REMOVED_MARK,
    ITEM_NAME,
    ITEM_BIRTH,
    ITEM_SEX,
    ITEM_FATHER,
    ITEM_MOTHER,
    ITEM_RELATIONSHIP,
    YEN_MARKS,
];

/// Integer yen with thousands separators, as certificates print amounts:
/// 3450000 → 「3,450,000円」; a negative amount (a loss carried in 所得) gets the
/// 「△」 mark Japanese tax documents use for minus: −12000 → 「△12,000円」.
pub(crate) fn format_yen(amount_yen: i64) -> String {
    let digits = amount_yen.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() * 2 + 6);
    if amount_yen < 0 {
        out.push('△');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out.push('円');
    out
}

/// [`format_yen`] for the unsigned amounts of 納税証明書; an amount beyond `i64` (which
/// no tax reaches) is refused rather than wrapped.
fn format_unsigned_yen(field: &str, amount_yen: u64) -> Result<String, ComposeError> {
    i64::try_from(amount_yen)
        .map(format_yen)
        .map_err(|_| ComposeError::InvalidInput(format!("{field} is out of range")))
}

/// 住民票記載事項証明書: 住所, 世帯主, then one 氏名・生年月日・性別・続柄 row per member.
pub(super) fn resident_items(
    p: &mut PageBuilder<'_>,
    front: &ResidentRecordItemsFront,
    page: &FrontPage<'_>,
) -> Result<f32, ComposeError> {
    let members = front
        .members
        .get(page.rows.clone())
        .ok_or_else(|| ComposeError::InvalidInput("page rows outside the member list".into()))?;
    let mut y = lay_out_household_rows(p, &front.address, front.household_head.as_deref())?;
    let block_height = BLOCK_ROW_HEIGHTS_PT[0];
    for (offset, row) in members.iter().enumerate() {
        let index = page.rows.start + offset;
        lay_out_member_number(p, index, y, block_height)?;
        y = lay_out_name_row(
            p,
            &NameRow {
                name: &row.name,
                name_kana: &row.name_kana,
                birth_date_wareki: &row.birth_date_wareki,
                sex: &row.sex,
                relationship: row.relationship.as_deref(),
            },
            index,
            y,
        )?;
        p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, y);
    }
    frame_sides(p, y, TABLE_TOP_PT);
    Ok(y)
}

// 印鑑登録証明書 geometry: holder rows on the left, the framed 印影 box on the right.
const IMPRESSION_BOX_WIDTH_PT: f32 = 150.0;
const IMPRESSION_LABEL_HEIGHT_PT: f32 = 16.0;
/// The impression is fitted (aspect kept) in a square of this edge: about 35 mm, the
/// size of the largest registrable seal (25 mm) with a margin.
const IMPRESSION_MAX_EDGE_PT: f32 = 100.0;
const HOLDER_LABEL_WIDTH_PT: f32 = 80.0;
const HOLDER_ROW_HEIGHT_PT: f32 = 26.0;

/// 印鑑登録証明書: 登録番号, ふりがな, 氏名, 生年月日, 性別 beside the 印影 box; then
/// 住所 and 登録年月日 across the table.
pub(super) fn seal_registration(
    p: &mut PageBuilder<'_>,
    front: &SealRegistrationFront,
    impression_px: Option<(u32, u32)>,
) -> Result<f32, ComposeError> {
    let top = TABLE_TOP_PT;
    let split_x = TABLE_RIGHT_PT - IMPRESSION_BOX_WIDTH_PT;
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, top);
    let rows: [(&'static str, &str, &str, f32, f32); 5] = [
        (
            LABEL_REGISTRATION_NUMBER,
            "registration_number",
            &front.registration_number,
            TOP_VALUE_SIZE_PT,
            7.0,
        ),
        (LABEL_KANA, "name_kana", &front.name_kana, 8.0, 5.0),
        (
            LABEL_NAME,
            "name",
            &front.name,
            NAME_SIZE_PT,
            NAME_MIN_SIZE_PT,
        ),
        (
            LABEL_BIRTH,
            "birth_date_wareki",
            &front.birth_date_wareki,
            TOP_VALUE_SIZE_PT,
            7.0,
        ),
        (LABEL_SEX, "sex", &front.sex, TOP_VALUE_SIZE_PT, 7.0),
    ];
    let mut y = top;
    for (label, field, value, size, min_size) in rows {
        let bottom = y - HOLDER_ROW_HEIGHT_PT;
        p.label(
            label,
            TABLE_LEFT_PT,
            HOLDER_LABEL_WIDTH_PT,
            bottom,
            HOLDER_ROW_HEIGHT_PT,
        )?;
        let value_x = TABLE_LEFT_PT + HOLDER_LABEL_WIDTH_PT;
        p.cell_text(
            field,
            value,
            value_x,
            split_x - value_x,
            centered_baseline(bottom, HOLDER_ROW_HEIGHT_PT, size),
            size,
            min_size,
            Align::Left,
        )?;
        p.vline(false, value_x, bottom, y);
        p.hline(false, TABLE_LEFT_PT, split_x, bottom);
        y = bottom;
    }
    let holder_bottom = y;

    // The framed 印影 box: a label strip, then the impression centred below it.
    p.vline(true, split_x, holder_bottom, top);
    let label_bottom = top - IMPRESSION_LABEL_HEIGHT_PT;
    p.label(
        LABEL_IMPRESSION,
        split_x,
        IMPRESSION_BOX_WIDTH_PT,
        label_bottom,
        IMPRESSION_LABEL_HEIGHT_PT,
    )?;
    p.hline(false, split_x, TABLE_RIGHT_PT, label_bottom);
    let Some((w_px, h_px)) = impression_px else {
        return Err(ComposeError::InvalidImage(
            "印鑑登録証明書 without its seal impression".into(),
        ));
    };
    let (w_px, h_px) = (w_px.max(1) as f32, h_px.max(1) as f32);
    let box_height = label_bottom - holder_bottom;
    let edge = IMPRESSION_MAX_EDGE_PT.min(box_height - 2.0 * CELL_PAD_PT);
    let scale = edge / w_px.max(h_px);
    let (w, h) = (w_px * scale, h_px * scale);
    let area = RectPt {
        x_pt: split_x + (IMPRESSION_BOX_WIDTH_PT - w) / 2.0,
        y_pt: holder_bottom + (box_height - h) / 2.0,
        width_pt: w,
        height_pt: h,
    };
    p.overlay.push(Item::SealImpression { area });
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, holder_bottom);

    let y = lay_out_label_rows(
        p,
        &[
            (LABEL_ADDRESS, "address", &front.address),
            (
                LABEL_REGISTERED_ON,
                "registered_on_wareki",
                &front.registered_on_wareki,
            ),
        ],
        holder_bottom,
        HOLDER_LABEL_WIDTH_PT,
        HOLDER_ROW_HEIGHT_PT,
    )?;
    frame_sides(p, y, top);
    Ok(y)
}

// Amount tables (所得・課税証明書, 納税証明書).
const AMOUNT_LABEL_WIDTH_PT: f32 = 90.0;
const AMOUNT_HEAD_ROW_HEIGHT_PT: f32 = 20.0;
const AMOUNT_ROW_HEIGHT_PT: f32 = 19.0;
const AMOUNT_COLUMN_WIDTH_PT: f32 = 150.0;
const TAX_COLUMN_WIDTH_PT: f32 = 110.0;

/// 所得・課税証明書: the taxpayer, then the 所得・控除 lines and the 税額 lines with
/// their amounts right-aligned.
pub(super) fn income_tax(
    p: &mut PageBuilder<'_>,
    front: &IncomeTaxFront,
) -> Result<f32, ComposeError> {
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, TABLE_TOP_PT);
    let mut y = lay_out_label_rows(
        p,
        &[
            (
                LABEL_FISCAL_YEAR,
                "fiscal_year_wareki",
                &front.fiscal_year_wareki,
            ),
            (
                LABEL_INCOME_YEAR,
                "income_year_wareki",
                &front.income_year_wareki,
            ),
            (LABEL_NAME, "name", &front.name),
            (LABEL_BIRTH, "birth_date_wareki", &front.birth_date_wareki),
            (LABEL_ADDRESS, "address", &front.address),
        ],
        TABLE_TOP_PT,
        AMOUNT_LABEL_WIDTH_PT,
        super::TOP_ROW_HEIGHT_PT,
    )?;
    for (heading, field, lines) in [
        (LABEL_INCOME_LINES, "income_lines", &front.income_lines),
        (LABEL_TAX_LINES, "tax_lines", &front.tax_lines),
    ] {
        if !lines.is_empty() {
            y = amount_section(p, heading, field, lines, y)?;
        }
    }
    frame_sides(p, y, TABLE_TOP_PT);
    Ok(y)
}

/// A heading row (heading | 金額), then one label | amount row per line.
fn amount_section(
    p: &mut PageBuilder<'_>,
    heading: &'static str,
    field: &str,
    lines: &[AmountLine],
    top_pt: f32,
) -> Result<f32, ComposeError> {
    let amount_x = TABLE_RIGHT_PT - AMOUNT_COLUMN_WIDTH_PT;
    let head_bottom = top_pt - AMOUNT_HEAD_ROW_HEIGHT_PT;
    p.label(
        heading,
        TABLE_LEFT_PT,
        amount_x - TABLE_LEFT_PT,
        head_bottom,
        AMOUNT_HEAD_ROW_HEIGHT_PT,
    )?;
    p.label(
        LABEL_AMOUNT,
        amount_x,
        AMOUNT_COLUMN_WIDTH_PT,
        head_bottom,
        AMOUNT_HEAD_ROW_HEIGHT_PT,
    )?;
    p.hline(false, TABLE_LEFT_PT, TABLE_RIGHT_PT, head_bottom);
    let mut y = head_bottom;
    for (i, line) in lines.iter().enumerate() {
        let bottom = y - AMOUNT_ROW_HEIGHT_PT;
        let baseline = centered_baseline(bottom, AMOUNT_ROW_HEIGHT_PT, VALUE_SIZE_PT);
        p.cell_text(
            &format!("{field}[{i}].label"),
            &line.label,
            TABLE_LEFT_PT + 12.0,
            amount_x - TABLE_LEFT_PT - 12.0,
            baseline,
            VALUE_SIZE_PT,
            VALUE_MIN_SIZE_PT,
            Align::Left,
        )?;
        p.cell_text(
            &format!("{field}[{i}].amount_yen"),
            &format_yen(line.amount_yen),
            amount_x,
            AMOUNT_COLUMN_WIDTH_PT,
            baseline,
            VALUE_SIZE_PT,
            VALUE_MIN_SIZE_PT,
            Align::Right,
        )?;
        p.hline(false, TABLE_LEFT_PT, TABLE_RIGHT_PT, bottom);
        y = bottom;
    }
    p.vline(false, amount_x, y, top_pt);
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, y);
    Ok(y)
}

/// 納税証明書: the taxpayer, then 税目 | 税額 | 納付済額 | 未納額 per tax item.
pub(super) fn tax_payment(
    p: &mut PageBuilder<'_>,
    front: &TaxPaymentFront,
) -> Result<f32, ComposeError> {
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, TABLE_TOP_PT);
    let table_top = lay_out_label_rows(
        p,
        &[
            (
                LABEL_FISCAL_YEAR,
                "fiscal_year_wareki",
                &front.fiscal_year_wareki,
            ),
            (LABEL_NAME, "name", &front.name),
            (LABEL_ADDRESS, "address", &front.address),
        ],
        TABLE_TOP_PT,
        AMOUNT_LABEL_WIDTH_PT,
        super::TOP_ROW_HEIGHT_PT,
    )?;
    let amounts_x = TABLE_RIGHT_PT - 3.0 * TAX_COLUMN_WIDTH_PT;
    let columns = [
        amounts_x,
        amounts_x + TAX_COLUMN_WIDTH_PT,
        amounts_x + 2.0 * TAX_COLUMN_WIDTH_PT,
    ];
    let head_bottom = table_top - AMOUNT_HEAD_ROW_HEIGHT_PT;
    p.label(
        LABEL_TAX_NAME,
        TABLE_LEFT_PT,
        amounts_x - TABLE_LEFT_PT,
        head_bottom,
        AMOUNT_HEAD_ROW_HEIGHT_PT,
    )?;
    for (x, label) in columns
        .iter()
        .zip([LABEL_ASSESSED, LABEL_PAID, LABEL_UNPAID])
    {
        p.label(
            label,
            *x,
            TAX_COLUMN_WIDTH_PT,
            head_bottom,
            AMOUNT_HEAD_ROW_HEIGHT_PT,
        )?;
    }
    p.hline(false, TABLE_LEFT_PT, TABLE_RIGHT_PT, head_bottom);
    let mut y = head_bottom;
    for (i, line) in front.lines.iter().enumerate() {
        let bottom = y - AMOUNT_ROW_HEIGHT_PT;
        let baseline = centered_baseline(bottom, AMOUNT_ROW_HEIGHT_PT, VALUE_SIZE_PT);
        p.cell_text(
            &format!("lines[{i}].tax_name"),
            &line.tax_name,
            TABLE_LEFT_PT,
            amounts_x - TABLE_LEFT_PT,
            baseline,
            VALUE_SIZE_PT,
            VALUE_MIN_SIZE_PT,
            Align::Left,
        )?;
        for (x, (name, amount)) in columns.iter().zip([
            ("assessed_yen", line.assessed_yen),
            ("paid_yen", line.paid_yen),
            ("unpaid_yen", line.unpaid_yen),
        ]) {
            let field = format!("lines[{i}].{name}");
            p.cell_text(
                &field,
                &format_unsigned_yen(&field, amount)?,
                *x,
                TAX_COLUMN_WIDTH_PT,
                baseline,
                VALUE_SIZE_PT,
                VALUE_MIN_SIZE_PT,
                Align::Right,
            )?;
        }
        p.hline(false, TABLE_LEFT_PT, TABLE_RIGHT_PT, bottom);
        y = bottom;
    }
    for x in columns {
        p.vline(false, x, y, table_top);
    }
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, y);
    frame_sides(p, y, TABLE_TOP_PT);
    Ok(y)
}

// 戸籍 geometry: section title | item label | value, as the computerised 戸籍 prints.
const REGISTER_HEADER_LABEL_WIDTH_PT: f32 = 64.0;
const REGISTER_HEADER_ROW_HEIGHT_PT: f32 = 22.0;
const SECTION_COLUMN_WIDTH_PT: f32 = 100.0;
const ITEM_LABEL_WIDTH_PT: f32 = 86.0;
/// Part of the value column the 【生年月日】 value keeps when 【性別】 shares its line.
const SHARED_VALUE_WIDTH_PT: f32 = 170.0;
const SHARED_LABEL_WIDTH_PT: f32 = 52.0;
const SECTION_PAD_PT: f32 = 3.0;
/// Line pitch when everything fits comfortably, and the smallest accepted: the number
/// of persons per page is fixed by the shared pagination rule, so a page with many
/// long 身分事項 is set tighter instead of spilling onto a page the seal count does
/// not have; below the minimum it is refused.
const REGISTER_PITCH_PT: f32 = 13.0;
const REGISTER_MIN_PITCH_PT: f32 = 7.5;
const REGISTER_TEXT_TO_PITCH: f32 = 0.7;
const REGISTER_MIN_TEXT_PT: f32 = 5.0;

/// One printed line of a 戸籍 section.
struct RegisterLine<'a> {
    /// (field name, text) in the item-label column: 【名】 or an event label.
    label: Option<(String, &'a str)>,
    value_field: String,
    value: &'a str,
    /// A second labelled value sharing the line (【性別】 beside 【生年月日】).
    extra: Option<(&'static str, String, &'a str)>,
}

struct RegisterSection<'a> {
    title: &'static str,
    /// Person sections are separated by a heavy rule, 身分事項 by a light one.
    heavy_rule: bool,
    /// 除籍: the person was removed; marked under the section title.
    removed: bool,
    lines: Vec<RegisterLine<'a>>,
}

fn event_lines<'a>(field: &str, events: &'a [RegisterEvent]) -> Vec<RegisterLine<'a>> {
    let mut out = Vec::new();
    for (i, event) in events.iter().enumerate() {
        for (j, line) in event.lines.iter().enumerate() {
            out.push(RegisterLine {
                label: (j == 0).then(|| (format!("{field}[{i}].label"), event.label.as_str())),
                value_field: format!("{field}[{i}].lines[{j}]"),
                value: line,
                extra: None,
            });
        }
    }
    out
}

fn static_line<'a>(label: &'static str, field: String, value: &'a str) -> RegisterLine<'a> {
    RegisterLine {
        label: Some((label.to_owned(), label)),
        value_field: field,
        value,
        extra: None,
    }
}

/// 戸籍全部事項証明書 / 戸籍個人事項証明書: 本籍 and 氏名 (筆頭者) on every page, 戸籍事項
/// on the first, then this page's persons with their 身分事項.
pub(super) fn family_register(
    p: &mut PageBuilder<'_>,
    front: &FamilyRegisterFront,
    page: &FrontPage<'_>,
) -> Result<f32, ComposeError> {
    let persons = front
        .persons
        .get(page.rows.clone())
        .ok_or_else(|| ComposeError::InvalidInput("page rows outside the person list".into()))?;
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, TABLE_TOP_PT);
    let header_bottom = lay_out_label_rows(
        p,
        &[
            (LABEL_DOMICILE, "domicile", &front.domicile),
            (LABEL_HEAD_NAME, "head_name", &front.head_name),
        ],
        TABLE_TOP_PT,
        REGISTER_HEADER_LABEL_WIDTH_PT,
        REGISTER_HEADER_ROW_HEIGHT_PT,
    )?;

    let mut sections = Vec::new();
    if page.sheet == 0 && !front.register_events.is_empty() {
        sections.push(RegisterSection {
            title: SECTION_REGISTER,
            heavy_rule: true,
            removed: false,
            lines: event_lines("register_events", &front.register_events),
        });
    }
    for (offset, person) in persons.iter().enumerate() {
        let k = page.rows.start + offset;
        let field = |name: &str| format!("persons[{k}].{name}");
        let mut lines = vec![
            static_line(ITEM_NAME, field("name"), &person.name),
            RegisterLine {
                extra: Some((ITEM_SEX, field("sex"), &person.sex)),
                ..static_line(
                    ITEM_BIRTH,
                    field("birth_date_wareki"),
                    &person.birth_date_wareki,
                )
            },
        ];
        if let Some(father) = &person.father {
            lines.push(static_line(ITEM_FATHER, field("father"), father));
        }
        if let Some(mother) = &person.mother {
            lines.push(static_line(ITEM_MOTHER, field("mother"), mother));
        }
        lines.push(static_line(
            ITEM_RELATIONSHIP,
            field("relationship"),
            &person.relationship,
        ));
        sections.push(RegisterSection {
            title: SECTION_PERSON,
            heavy_rule: true,
            removed: person.removed,
            lines,
        });
        if !person.events.is_empty() {
            sections.push(RegisterSection {
                title: SECTION_EVENTS,
                heavy_rule: false,
                removed: false,
                lines: event_lines(&format!("persons[{k}].events"), &person.events),
            });
        }
    }

    // One pitch for the whole page, as tight as the page's content needs.
    let line_count: usize = sections.iter().map(|s| s.lines.len()).sum();
    let available = header_bottom - page.body_floor_pt();
    let padding = sections.len() as f32 * 2.0 * SECTION_PAD_PT;
    let pitch = if line_count == 0 {
        REGISTER_PITCH_PT
    } else {
        ((available - padding) / line_count as f32).min(REGISTER_PITCH_PT)
    };
    if pitch < REGISTER_MIN_PITCH_PT {
        return Err(ComposeError::FieldTooLong {
            field: format!("persons[{}..{}]", page.rows.start, page.rows.end),
            width_pt: padding + line_count as f32 * REGISTER_MIN_PITCH_PT,
            max_width_pt: available,
        });
    }
    let size = (pitch * REGISTER_TEXT_TO_PITCH).min(VALUE_SIZE_PT);
    let min_size = REGISTER_MIN_TEXT_PT.min(size);

    let section_x = TABLE_LEFT_PT;
    let label_x = section_x + SECTION_COLUMN_WIDTH_PT;
    let value_x = label_x + ITEM_LABEL_WIDTH_PT;
    let mut y = header_bottom;
    for (s, section) in sections.iter().enumerate() {
        if s > 0 {
            p.hline(section.heavy_rule, TABLE_LEFT_PT, TABLE_RIGHT_PT, y);
        }
        let section_top = y;
        y -= SECTION_PAD_PT;
        let first_baseline = centered_baseline(y - pitch, pitch, size);
        p.cell_text(
            section.title,
            section.title,
            section_x,
            SECTION_COLUMN_WIDTH_PT,
            first_baseline,
            size.min(LABEL_SIZE_PT),
            min_size.min(LABEL_SIZE_PT),
            Align::Left,
        )?;
        if section.removed {
            removed_mark(p, section_x, y - pitch, pitch, size)?;
        }
        for line in &section.lines {
            let bottom = y - pitch;
            let baseline = centered_baseline(bottom, pitch, size);
            if let Some((field, label)) = &line.label {
                p.cell_text(
                    field,
                    label,
                    label_x,
                    ITEM_LABEL_WIDTH_PT,
                    baseline,
                    size,
                    min_size,
                    Align::Left,
                )?;
            }
            let value_width = if line.extra.is_some() {
                SHARED_VALUE_WIDTH_PT
            } else {
                TABLE_RIGHT_PT - value_x
            };
            p.cell_text(
                &line.value_field,
                line.value,
                value_x,
                value_width,
                baseline,
                size,
                min_size,
                Align::Left,
            )?;
            if let Some((label, field, value)) = &line.extra {
                let x = value_x + SHARED_VALUE_WIDTH_PT;
                p.cell_text(
                    label,
                    label,
                    x,
                    SHARED_LABEL_WIDTH_PT,
                    baseline,
                    size,
                    min_size,
                    Align::Left,
                )?;
                let x = x + SHARED_LABEL_WIDTH_PT;
                p.cell_text(
                    field,
                    value,
                    x,
                    TABLE_RIGHT_PT - x,
                    baseline,
                    size,
                    min_size,
                    Align::Left,
                )?;
            }
            y = bottom;
        }
        y -= SECTION_PAD_PT;
        p.vline(false, label_x, y, section_top);
    }
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, y);
    frame_sides(p, y, TABLE_TOP_PT);
    Ok(y)
}

/// The boxed 除籍 mark in the section column, in the line band below the title.
fn removed_mark(
    p: &mut PageBuilder<'_>,
    x_pt: f32,
    band_top_pt: f32,
    pitch_pt: f32,
    size_pt: f32,
) -> Result<(), ComposeError> {
    let mark_size = (size_pt * 1.1).min(pitch_pt * 0.8);
    let width = p.font.text_width_pt(REMOVED_MARK, mark_size, 0.0)?;
    let band_bottom = band_top_pt - pitch_pt;
    let baseline = centered_baseline(band_bottom, pitch_pt, mark_size);
    let left = x_pt + 2.0 * CELL_PAD_PT;
    p.push_text(left + 2.0, baseline, mark_size, 0.0, REMOVED_MARK);
    // The frame: the glyph box (≈ −0.12 em to +0.88 em) with a little air.
    let (x1, x2) = (left, left + width + 4.0);
    let (y1, y2) = (baseline - mark_size * 0.2, baseline + mark_size * 0.96);
    p.hline(true, x1, x2, y1);
    p.hline(true, x1, x2, y2);
    p.vline(true, x1, y1, y2);
    p.vline(true, x2, y1, y2);
    Ok(())
}

// 戸籍の附票の写し geometry.
const ATTACHMENT_LABEL_WIDTH_PT: f32 = 80.0;
const ATTACHMENT_NUMBER_WIDTH_PT: f32 = 28.0;
const ATTACHMENT_SINCE_WIDTH_PT: f32 = 140.0;
const ATTACHMENT_ROW_HEIGHT_PT: f32 = 26.0;

/// 戸籍の附票の写し: 本籍 and 筆頭者 (when asked for), 氏名, 生年月日, then this page's
/// slice of the address history with 住所を定めた年月日.
pub(super) fn attachment(
    p: &mut PageBuilder<'_>,
    front: &FamilyRegisterAttachmentFront,
    page: &FrontPage<'_>,
) -> Result<f32, ComposeError> {
    let addresses = front
        .addresses
        .get(page.rows.clone())
        .ok_or_else(|| ComposeError::InvalidInput("page rows outside the address list".into()))?;
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, TABLE_TOP_PT);
    let mut rows: Vec<(&'static str, &str, &str)> = Vec::with_capacity(4);
    if let Some(domicile) = &front.domicile {
        rows.push((LABEL_DOMICILE, "domicile", domicile));
    }
    if let Some(head) = &front.head_name {
        rows.push((LABEL_HEAD, "head_name", head));
    }
    rows.push((LABEL_NAME, "name", &front.name));
    rows.push((LABEL_BIRTH, "birth_date_wareki", &front.birth_date_wareki));
    let table_top = lay_out_label_rows(
        p,
        &rows,
        TABLE_TOP_PT,
        ATTACHMENT_LABEL_WIDTH_PT,
        super::TOP_ROW_HEIGHT_PT,
    )?;

    let address_x = TABLE_LEFT_PT + ATTACHMENT_NUMBER_WIDTH_PT;
    let since_x = TABLE_RIGHT_PT - ATTACHMENT_SINCE_WIDTH_PT;
    let head_bottom = table_top - AMOUNT_HEAD_ROW_HEIGHT_PT;
    for (label, x, width) in [
        (LABEL_NUMBER, TABLE_LEFT_PT, ATTACHMENT_NUMBER_WIDTH_PT),
        (LABEL_ADDRESS, address_x, since_x - address_x),
        (LABEL_SINCE, since_x, ATTACHMENT_SINCE_WIDTH_PT),
    ] {
        p.label(label, x, width, head_bottom, AMOUNT_HEAD_ROW_HEIGHT_PT)?;
    }
    p.hline(false, TABLE_LEFT_PT, TABLE_RIGHT_PT, head_bottom);
    let mut y = head_bottom;
    for (offset, entry) in addresses.iter().enumerate() {
        let i = page.rows.start + offset;
        let bottom = y - ATTACHMENT_ROW_HEIGHT_PT;
        let baseline = centered_baseline(bottom, ATTACHMENT_ROW_HEIGHT_PT, TOP_VALUE_SIZE_PT);
        p.cell_text(
            "address number",
            &(i + 1).to_string(),
            TABLE_LEFT_PT,
            ATTACHMENT_NUMBER_WIDTH_PT,
            baseline,
            VALUE_SIZE_PT,
            6.0,
            Align::Center,
        )?;
        p.cell_text(
            &format!("addresses[{i}].address"),
            &entry.address,
            address_x,
            since_x - address_x,
            baseline,
            TOP_VALUE_SIZE_PT,
            7.0,
            Align::Left,
        )?;
        p.cell_text(
            &format!("addresses[{i}].since_wareki"),
            &entry.since_wareki,
            since_x,
            ATTACHMENT_SINCE_WIDTH_PT,
            baseline,
            TOP_VALUE_SIZE_PT,
            7.0,
            Align::Left,
        )?;
        p.hline(false, TABLE_LEFT_PT, TABLE_RIGHT_PT, bottom);
        y = bottom;
    }
    p.vline(false, address_x, y, table_top);
    p.vline(false, since_x, y, table_top);
    p.hline(true, TABLE_LEFT_PT, TABLE_RIGHT_PT, y);
    frame_sides(p, y, TABLE_TOP_PT);
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::format_yen;

    #[test]
    fn yen_amounts_get_thousands_separators_and_the_minus_mark() {
        assert_eq!(format_yen(0), "0円");
        assert_eq!(format_yen(999), "999円");
        assert_eq!(format_yen(1_000), "1,000円");
        assert_eq!(format_yen(3_450_000), "3,450,000円");
        assert_eq!(format_yen(-12_000), "△12,000円");
        assert_eq!(format_yen(i64::MIN), "△9,223,372,036,854,775,808円");
    }
}
