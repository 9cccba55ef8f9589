// The kiosk touch panel: a thin client of the kiosk control interface (/control/v1)
// and of the simulator's hands (/ui/v1: pick a card, take it back). No build step.
"use strict";

const T = {
  brand: ["コンビニ交付　行政サービス", "Convenience-store certificates"],
  start_title: ["行政サービス", "Government services"],
  start_button: ["証明書の交付", "Get a certificate"],
  start_sub: ["マイナンバーカードをお持ちの方", "With your My Number Card"],
  timeout_notice: ["一定時間操作がなかったため、最初の画面に戻りました。", "No one used the screen for a while, so it went back to the start."],
  card_title: ["カードを置いてください", "Place your card"],
  card_hint: ["お使いのカードを選んでください（シミュレーション）。", "Pick your card (simulated)."],
  route_title: ["どちらの証明書ですか", "Which municipality?"],
  route_residence: ["住所地", "Place of residence"],
  route_residence_sub: ["お住まいの市区町村の証明書", "Certificates of the municipality you live in"],
  route_domicile: ["本籍地", "Place of domicile"],
  route_domicile_sub: ["本籍のある市区町村の戸籍証明書", "Family register of your domicile municipality"],
  municipality_title: ["本籍地の市区町村を選んでください", "Choose your domicile municipality"],
  pin_title: ["暗証番号（数字4桁）を入力してください", "Enter your 4-digit PIN"],
  pin_clear: ["訂正", "Clear"],
  pin_ok: ["確定", "OK"],
  pin_attempts: ["あと{n}回間違えるとロックされます", "{n} more wrong PINs lock the card"],
  card_return_title: ["カードをお取りください", "Please take your card"],
  card_return_hint: ["カードをお返しします。お受け取りのうえ、続けてください。", "Your card is returned. Take it, then go on."],
  take_card_button: ["カードを取る", "Take the card"],
  menu_title: ["証明書の種類を選んでください", "Choose a certificate"],
  per_copy: ["1通 {fee}", "{fee} per copy"],
  unavailable_now: ["ただいま発行できません", "Not available now"],
  options_title: ["記載する内容を選んでください", "Choose what to include"],
  opt_scope: ["対象者", "Whose record"],
  opt_self: ["本人のみ", "You only"],
  opt_household: ["世帯全員", "Whole household"],
  opt_selected: ["世帯一部", "Some members"],
  opt_members: ["対象の方（世帯の中の順番、1人目は世帯主）", "Members (order in the household; No. 1 is the head)"],
  member_n: ["{n}人目", "No. {n}"],
  pick_members: ["対象の方を1人以上選んでください。", "Choose at least one member."],
  opt_domicile: ["本籍・筆頭者", "Domicile and head of register"],
  opt_relationship: ["世帯主・続柄", "Head of household and relationship"],
  opt_include: ["記載する", "Include"],
  opt_omit: ["記載しない", "Leave out"],
  opt_year: ["年度", "Fiscal year"],
  opt_newest: ["最新年度", "Newest year"],
  year: ["{y}年度", "FY {y}"],
  copies_title: ["通数を選んでください", "How many copies?"],
  copies_unit: ["{n}通", "{n}"],
  total: ["手数料 {fee}", "Fee {fee}"],
  next: ["次へ", "Next"],
  back: ["戻る", "Back"],
  cancel: ["取消", "Cancel"],
  ok: ["確認", "OK"],
  confirm_title: ["内容と手数料をご確認ください", "Check your order and the fee"],
  sum_certificate: ["証明書", "Certificate"],
  sum_municipality: ["市区町村", "Municipality"],
  sum_copies: ["通数", "Copies"],
  to_payment: ["お支払いへ", "Pay"],
  payment_title: ["お支払い", "Payment"],
  fee_label: ["手数料", "Fee"],
  inserted_label: ["投入金額", "Inserted"],
  remaining_label: ["残り", "Still to pay"],
  coins_title: ["硬貨・紙幣を入れてください", "Insert coins or notes"],
  emoney: ["電子マネー", "E-money"],
  printing_title: ["印刷しています", "Printing"],
  printing_hint: ["しばらくお待ちください。", "Please wait."],
  change: ["おつり {yen}", "Change: {yen}"],
  take_card_title: ["カードのお取り忘れにご注意ください", "Don't forget your card"],
  take_certificate_title: ["証明書のお取り忘れにご注意ください", "Don't forget your certificate"],
  take_certificate_button: ["証明書を取る", "Take the certificate"],
  reminder_card: ["カードをお取りください（{n}回目のお知らせ）", "Please take your card (reminder {n})"],
  reminder_certificate: ["証明書をお取りください（{n}回目のお知らせ）", "Please take your certificate (reminder {n})"],
  done_title: ["ご利用ありがとうございました", "Thank you"],
  open_pdf: ["印刷した証明書（PDF）を見る", "View the printed certificate (PDF)"],
  finish: ["終了", "Finish"],
  refused_title: ["発行できませんでした", "Not issued"],
  locked_title: ["暗証番号がロックされました", "The PIN is locked"],
  voided_title: ["取引を中止しました", "Cancelled"],
  error_title: ["ただいまお取り扱いできません", "Unavailable"],
  failed: ["通信できませんでした。店員にお知らせください。", "The kiosk could not be reached. Please tell the staff."],
};

const ui = {
  lang: "ja",
  screen: "start",
  cfg: { idle_timeout_s: 60, reminder_interval_s: 4 },
  control: null,
  route: null, // "residence" or { domicile: { municipality_code } }
  routeName: null,
  pin: "",
  menu: null,
  item: null,
  options: {},
  copies: 1,
  inserted: 0,
  requestId: null,
  printedThisVisit: false,
  changeYen: null,
  busy: false,
  lastActivityMs: Date.now(),
  reminderTimer: null,
  reminderCount: 0,
  cards: null,
  municipalities: null,
};

// Screens a resident may walk away from: the visit is cancelled after the idle time.
// Never the reminders (they repeat until acknowledged) or printing.
const IDLE_SCREENS = new Set(["card", "route", "municipality", "pin", "menu",
  "options", "copies", "confirm_fee", "payment", "refused", "locked", "voided", "error", "done"]);
const END_SCREENS = new Set(["refused", "locked", "voided", "error", "take_card", "take_certificate"]);
// Orders that ended without a certificate; with the card already out, `cancel` ends the visit.
const ENDED_SCREENS = ["refused", "voided", "error"];
// Re-announced until the resident acts (the card right after the PIN, and 取り忘れ).
const REMINDER_SCREENS = new Set(["card_return", "take_card", "take_certificate"]);
// Screens that show the kiosk's own line (wrong PIN, not on the menu, not enough money).
const MESSAGE_SCREENS = new Set(["pin", "menu", "confirm_fee", "payment"]);
const WIPED = ["#pin-dots", "#pin-attempts", "#card-list", "#municipality-list", "#menu-list",
  "#menu-municipality", "#options-groups", "#options-certificate", "#copies-certificate",
  "#copies-count", "#copies-fee", "#confirm-summary", "#confirm-fee", "#pay-fee", "#pay-inserted",
  "#pay-remaining", "[data-testid=change]", "[data-end-message]", "[data-announce]"].join(", ");
const MIN_PRINTING_MS = 1500;
const PIN_DIGITS = 4;

function t(key, vars) {
  const pair = T[key];
  let text = pair ? pair[ui.lang === "en" ? 1 : 0] : key;
  for (const [k, v] of Object.entries(vars || {})) text = text.replace("{" + k + "}", v);
  return text;
}

function yen(n) {
  return ui.lang === "en" ? n.toLocaleString("en") + " yen" : n.toLocaleString("ja") + "円";
}

function $(sel, root) { return (root || document).querySelector(sel); }
function $$(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }
function section(name) { return $(`section[data-screen="${name}"]`); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (_) { data = null; }
  if (!res.ok) {
    const err = new Error((data && data.message) || String(res.status));
    err.status = res.status;
    throw err;
  }
  if (data && data.screen) {
    ui.control = data;
    if (data.request_id) ui.requestId = data.request_id;
    if (data.change_yen !== null && data.change_yen !== undefined) ui.changeYen = data.change_yen;
  }
  return data;
}

function setMessage(text) { $("#message").textContent = text || ""; }

// The control interface's message in the chosen language (refusals: the generic one).
function controlMessage() {
  const s = ui.control;
  if (!s) return "";
  return (ui.lang === "en" ? s.message_en : s.message_ja) || "";
}

function show(name) {
  stopReminder();
  ui.screen = name;
  document.body.dataset.screen = name;
  for (const s of $$("main > section")) s.hidden = s.dataset.screen !== name;
  render();
  if (REMINDER_SCREENS.has(name)) startReminder(name);
  touch();
  // Keyboard users land on the screen's first control.
  const first = $("button:not([disabled]), a[href]", section(name));
  if (first) first.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function render() {
  document.documentElement.lang = ui.lang;
  $("#lang-toggle").textContent = ui.lang === "ja" ? "English" : "日本語";
  $("#lang-toggle").setAttribute("aria-label", ui.lang === "ja" ? "Switch to English" : "日本語に切り替え");
  for (const node of $$("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  const r = RENDER[ui.screen];
  if (r) r();
  // The kiosk's line, unless it only repeats the screen's heading.
  const line = MESSAGE_SCREENS.has(ui.screen) ? controlMessage() : "";
  const heading = $("h1", section(ui.screen));
  const same = heading && line.replace(/[。.]$/, "") === heading.textContent.replace(/[。.]$/, "");
  setMessage(same ? "" : line);
}

const RENDER = {
  start() { $("#timeout-notice").hidden = !ui.timedOut; },
  card() {
    const list = $("#card-list");
    list.replaceChildren(...(ui.cards || []).map((c) =>
      el("button", { type: "button", class: "secondary", "data-testid": `card-${c.id}`, onclick: () => placeCard(c.id) },
        el("span", { text: c.label || c.id }), el("small", { text: c.id }))));
  },
  municipality() {
    $("#municipality-list").replaceChildren(...(ui.municipalities || []).map((m) =>
      el("button", { type: "button", class: "secondary", "data-testid": `municipality-${m.code}`,
        onclick: () => chooseDomicile(m) }, el("span", { text: m.name }), el("small", { text: m.code }))));
  },
  pin() {
    const dots = $("#pin-dots");
    dots.replaceChildren(...Array.from({ length: PIN_DIGITS }, (_, i) =>
      el("span", { class: i < ui.pin.length ? "dot filled" : "dot" })));
    dots.setAttribute("aria-label", `${ui.pin.length} / ${PIN_DIGITS}`);
    const left = ui.control && ui.control.pin_attempts_left;
    $("#pin-attempts").textContent = left === null || left === undefined ? "" : t("pin_attempts", { n: left });
    $('[data-testid="pin-ok"]').disabled = ui.pin.length !== PIN_DIGITS || ui.busy;
  },
  menu() {
    const m = ui.menu;
    $("#menu-municipality").textContent = m ? m.municipality_name : "";
    $("#menu-list").replaceChildren(...((m && m.items) || []).map((item) => {
      const available = item.available_now && m.open_now !== false;
      return el("button", { type: "button", class: available ? "primary menu-item" : "menu-item unavailable",
        "data-testid": `cert-${item.certificate}`, disabled: !available, onclick: () => chooseItem(item) },
        el("span", { text: ui.lang === "en" ? item.title_en : item.title_ja }),
        el("small", { class: "fee-line", text: available ? t("per_copy", { fee: yen(item.fee_yen_per_copy) }) : t("unavailable_now") }));
    }));
  },
  options() {
    const item = ui.item;
    $("#options-certificate").textContent = title(item);
    const groups = optionGroups(item).map((g) =>
      el("fieldset", { class: "option-group" }, el("legend", { text: t(g.label) }),
        el("div", { class: "grid" }, ...g.choices.map((c) =>
          el("button", { type: "button", "data-testid": `opt-${g.key}-${c.id}`,
            "aria-pressed": String(g.multi ? ui.options[g.key].includes(c.value) : ui.options[g.key] === c.value),
            onclick: () => { chooseOption(g, c); render(); } }, el("span", { text: c.text }))))));
    $("#options-groups").replaceChildren(...groups);
  },
  copies() {
    const item = ui.item;
    $("#copies-certificate").textContent = title(item);
    $("#copies-count").textContent = t("copies_unit", { n: ui.copies });
    $("#copies-fee").textContent = t("total", { fee: yen(item.fee_yen_per_copy * ui.copies) });
    $('[data-testid="copies-minus"]').disabled = ui.copies <= 1;
    $('[data-testid="copies-plus"]').disabled = ui.copies >= item.max_copies;
  },
  confirm_fee() {
    const s = ui.control;
    const rows = [
      ["sum_certificate", title(ui.item)],
      ["sum_municipality", (ui.menu && ui.menu.municipality_name) || ""],
      ["sum_copies", t("copies_unit", { n: ui.copies })],
    ];
    $("#confirm-summary").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: t(k) }), el("dd", { text: v })]));
    $("#confirm-fee").textContent = t("total", { fee: yen(s.fee_yen || 0) });
  },
  payment() {
    const fee = (ui.control && ui.control.fee_yen) || 0;
    $("#pay-fee").textContent = yen(fee);
    $("#pay-inserted").textContent = yen(ui.inserted);
    $("#pay-remaining").textContent = yen(Math.max(0, fee - ui.inserted));
    for (const b of $$("[data-coin], [data-action=emoney], [data-action=pay-cancel]", section("payment"))) b.disabled = ui.busy;
  },
  printing() { showChange("#printing-change"); },
  card_return() { renderReminder(); },
  take_card() { showChange("#take-card-change"); renderReminder(); },
  take_certificate() { showChange("#take-cert-change"); renderReminder(); },
  done() {
    showChange("#done-change");
    const link = $("#open-pdf");
    if (ui.printedThisVisit && ui.requestId) {
      link.hidden = false;
      link.href = `/control/v1/documents/${encodeURIComponent(ui.requestId)}`;
    } else {
      link.hidden = true;
      link.removeAttribute("href");
    }
  },
  refused: renderEnd, locked: renderEnd, voided: renderEnd, error: renderEnd,
};

function renderEnd() {
  const node = $("[data-end-message]", section(ui.screen));
  node.textContent = controlMessage() || t(ui.screen + "_title");
  setMessage("");
}

function showChange(sel) {
  const node = $(sel);
  node.textContent = ui.changeYen ? t("change", { yen: yen(ui.changeYen) }) : "";
}

function title(item) { return item ? (ui.lang === "en" ? item.title_en : item.title_ja) : ""; }

// ---- options: what the municipality offers for this type ----

function chooseOption(group, choice) {
  if (!group.multi) {
    ui.options[group.key] = choice.value;
    return;
  }
  const chosen = ui.options[group.key];
  const at = chosen.indexOf(choice.value);
  if (at >= 0) chosen.splice(at, 1);
  else chosen.push(choice.value);
}

function newestFiscalYear() {
  const asOf = new Date(((ui.menu && ui.menu.as_of_unix_s) || Date.now() / 1000) * 1000);
  // Tax years switch over in June (年度切替); the adapter has the last word.
  return asOf.getUTCMonth() >= 5 ? asOf.getUTCFullYear() : asOf.getUTCFullYear() - 1;
}

function optionGroups(item) {
  const offered = new Set(item.options || []);
  const groups = [];
  const type = item.certificate;
  const yesNo = (key, label) => ({ key, label, choices: [
    { id: "no", value: false, text: t("opt_omit") }, { id: "yes", value: true, text: t("opt_include") }] });
  if (type === "resident_record" || type === "resident_record_items") {
    const choices = [{ id: "self", value: "self_only", text: t("opt_self") }];
    if (offered.has("household")) choices.push({ id: "household", value: "household", text: t("opt_household") });
    if (offered.has("selected_members")) choices.push({ id: "selected", value: "selected", text: t("opt_selected") });
    groups.push({ key: "scope", label: "opt_scope", choices });
    if (ui.options.scope === "selected") {
      // 世帯一部: members by their order in the household (the register's order, 世帯主
      // first); the municipality refuses a position the household does not have.
      const members = [];
      for (let n = 1; n <= MEMBER_CHOICES; n++) members.push({ id: String(n), value: n, text: t("member_n", { n }) });
      groups.push({ key: "members", label: "opt_members", choices: members, multi: true });
    }
  }
  if ((type === "resident_record" || type === "family_register_attachment") && offered.has("domicile")) {
    groups.push(yesNo("include_domicile", "opt_domicile"));
  }
  if ((type === "resident_record" || type === "resident_record_items") && offered.has("relationship")) {
    groups.push(yesNo("include_relationship", "opt_relationship"));
  }
  if ((type === "income_tax" || type === "tax_payment") && offered.has("past_fiscal_year")) {
    const newest = newestFiscalYear();
    const choices = [{ id: "newest", value: null, text: t("opt_newest") }];
    for (let y = newest - 1; y >= newest - 2; y--) choices.push({ id: String(y), value: y, text: t("year", { y }) });
    groups.push({ key: "fiscal_year", label: "opt_year", choices });
  }
  return groups;
}

function defaultOptions(item) {
  return { scope: "self_only", members: [], include_domicile: false, include_relationship: false, fiscal_year: null };
}

// How many household positions the 世帯一部 picker offers.
const MEMBER_CHOICES = 10;

function scopeKind(o) {
  return o.scope === "selected" ? { selected: { members: [...o.members].sort((a, b) => a - b) } } : o.scope;
}

// The order's certificate (schemas::CertificateKind).
function certificateKind() {
  const type = ui.item.certificate;
  const o = ui.options;
  switch (type) {
    case "resident_record":
      return { type, scope: scopeKind(o), include_domicile: o.include_domicile, include_relationship: o.include_relationship };
    case "resident_record_items":
      return { type, scope: scopeKind(o), include_relationship: o.include_relationship };
    case "income_tax":
    case "tax_payment":
      return { type, fiscal_year: o.fiscal_year };
    case "family_register_attachment":
      return { type, include_domicile: o.include_domicile };
    default:
      return { type };
  }
}

// ---- steps ----

function resetVisit() {
  Object.assign(ui, { route: null, routeName: null, pin: "", menu: null, item: null, options: {},
    copies: 1, inserted: 0, requestId: null, printedThisVisit: false, changeYen: null, busy: false,
    cards: null, municipalities: null, control: null });
  setMessage("");
  // Wipe what every screen showed (PIN dots, the menu, fees, change, messages).
  for (const node of $$(WIPED)) node.replaceChildren();
}

async function guarded(fn) {
  if (ui.busy) return;
  ui.busy = true;
  try {
    await fn();
  } catch (err) {
    console.error(err);
    setMessage(t("failed"));
  } finally {
    ui.busy = false;
    if (ui.screen === "pin" || ui.screen === "payment") render();
  }
}

// The screen that follows a control state that ended the visit's normal path.
function followEnd(s) {
  if (s.screen === "idle") {
    show(ui.printedThisVisit ? "done" : "start");
    return true;
  }
  if (END_SCREENS.has(s.screen)) {
    show(s.screen);
    return true;
  }
  return false;
}

async function startVisit() {
  ui.timedOut = false;
  resetVisit();
  const list = await api("GET", "/ui/v1/cards");
  ui.cards = list.cards;
  show("card");
}

async function placeCard(id) {
  await guarded(async () => {
    const s = await api("POST", `/ui/v1/cards/${encodeURIComponent(id)}/place`);
    if (s.screen === "card_placed") show("route");
    else followEnd(s);
  });
}

async function chooseResidence() {
  ui.route = "residence";
  ui.routeName = null;
  ui.pin = "";
  show("pin");
}

async function listMunicipalities() {
  await guarded(async () => {
    const dir = await api("GET", "/control/v1/municipalities");
    ui.municipalities = dir.municipalities || [];
    show("municipality");
  });
}

function chooseDomicile(m) {
  ui.route = { domicile: { municipality_code: m.code } };
  ui.routeName = m.name;
  ui.pin = "";
  show("pin");
}

function pinDigit(d) {
  if (ui.screen !== "pin" || ui.busy || ui.pin.length >= PIN_DIGITS) return;
  ui.pin += d;
  render();
}

function pinBackspace() {
  ui.pin = ui.pin.slice(0, -1);
  render();
}

async function submitPin() {
  if (ui.pin.length !== PIN_DIGITS) return;
  await guarded(async () => {
    const pin = ui.pin;
    ui.pin = "";
    const s = await api("POST", "/control/v1/pin", { pin });
    if (s.screen === "card_placed") { render(); return; }
    if (s.screen !== "route") { followEnd(s); return; }
    const r = await api("POST", "/control/v1/route", { route: ui.route });
    if (r.screen !== "menu") { followEnd(r); return; }
    ui.menu = await api("GET", "/control/v1/menu");
    // The card comes back at once when the center opened a card session.
    if (r.card_session_open && r.card_in_reader) show("card_return");
    else show("menu");
  });
}

async function takeCardEarly() {
  await guarded(async () => {
    const s = await api("POST", "/ui/v1/take-card");
    if (s.screen === "menu") show("menu");
    else followEnd(s);
  });
}

function chooseItem(item) {
  ui.item = item;
  ui.options = defaultOptions(item);
  ui.copies = 1;
  show(optionGroups(item).length ? "options" : "copies");
}

async function placeOrder() {
  await guarded(async () => {
    const s = await api("POST", "/control/v1/order", { certificate: certificateKind(), copies: ui.copies });
    if (s.screen === "confirm_fee") show("confirm_fee");
    else if (s.screen === "menu") show("menu");
    else followEnd(s);
  });
}

function toPayment() {
  ui.inserted = 0;
  show("payment");
}

async function insertCoin(value) {
  if (ui.busy) return;
  ui.inserted += value;
  const fee = (ui.control && ui.control.fee_yen) || 0;
  render();
  if (ui.inserted >= fee) await pay({ method: "coins", inserted_yen: ui.inserted });
}

async function pay(body) {
  await guarded(async () => {
    ui.changeYen = null;
    show("printing");
    const fill = $("#progress-fill");
    fill.style.width = "0";
    requestAnimationFrame(() => { fill.style.transition = `width ${MIN_PRINTING_MS}ms linear`; fill.style.width = "90%"; });
    const started = Date.now();
    const s = await api("POST", "/control/v1/payment", body);
    const rest = MIN_PRINTING_MS - (Date.now() - started);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    fill.style.width = "100%";
    if (s.printed && s.printed.some((p) => p.request_id === ui.requestId)) ui.printedThisVisit = true;
    if (s.screen === "paying") { ui.inserted = 0; show("payment"); return; }
    followEnd(s);
  });
}

async function payCancel() {
  await guarded(async () => {
    const s = await api("POST", "/control/v1/payment", { method: "cancel" });
    followEnd(s);
  });
}

async function cancelVisit() {
  await guarded(async () => {
    const s = await api("POST", "/control/v1/cancel");
    followEnd(s);
  });
}

async function takeCard() {
  await guarded(async () => {
    const s = await api("POST", "/ui/v1/take-card");
    followEnd(s);
  });
}

async function takeCertificate() {
  await guarded(async () => {
    const s = await api("POST", "/control/v1/take-certificate");
    followEnd(s);
  });
}

async function acknowledge() {
  await guarded(async () => {
    const s = ui.control ? await api("GET", "/control/v1/state") : null;
    if (s && s.card_in_reader) { show("take_card"); return; }
    if (s && ENDED_SCREENS.includes(s.screen)) {
      const after = await api("POST", "/control/v1/cancel");
      if (after.screen !== "idle" && followEnd(after)) return;
    } else if (s && s.certificate_in_tray) { show("take_certificate"); return; }
    resetVisit();
    show("start");
  });
}

function finish() {
  resetVisit();
  show("start");
}

// ---- 取り忘れ reminders: re-announced until acknowledged ----

function startReminder(name) {
  ui.reminderCount = 1;
  announce(name);
  ui.reminderTimer = setInterval(() => {
    ui.reminderCount += 1;
    announce(name);
  }, ui.cfg.reminder_interval_s * 1000);
}

function stopReminder() {
  if (ui.reminderTimer) clearInterval(ui.reminderTimer);
  ui.reminderTimer = null;
  ui.reminderCount = 0;
  if (window.speechSynthesis) { try { window.speechSynthesis.cancel(); } catch (_) { /* no voice */ } }
}

function reminderText(name) {
  return t(name === "take_certificate" ? "reminder_certificate" : "reminder_card", { n: ui.reminderCount });
}

function renderReminder() {
  const name = ui.screen;
  const node = $("[data-announce]", section(name));
  node.textContent = reminderText(name);
  section(name).dataset.reminderCount = String(ui.reminderCount);
}

function announce(name) {
  if (ui.screen !== name) return;
  renderReminder();
  if (window.speechSynthesis && window.SpeechSynthesisUtterance) {
    try {
      const u = new SpeechSynthesisUtterance(reminderText(name).replace(/（.*）|\(.*\)/, ""));
      u.lang = ui.lang === "en" ? "en-US" : "ja-JP";
      window.speechSynthesis.speak(u);
    } catch (_) { /* no voice on this machine */ }
  }
}

// ---- idle timeout: cancel the visit, wipe the screen, back to the start ----

function touch() { ui.lastActivityMs = Date.now(); }

async function idleTimeout() {
  ui.busy = true;
  try {
    let s = await api("GET", "/control/v1/state");
    if (["card_placed", "route", "menu"].includes(s.screen)) s = await api("POST", "/control/v1/cancel");
    else if (["confirm_fee", "paying"].includes(s.screen)) s = await api("POST", "/control/v1/payment", { method: "walk_away" });
    // The kiosk takes back a card left in the slot (the visit is over).
    if (s.card_in_reader && ["take_card", "refused", "locked", "voided", "error"].includes(s.screen)) {
      s = await api("POST", "/ui/v1/take-card");
    }
    if (!s.card_in_reader && ENDED_SCREENS.includes(s.screen)) await api("POST", "/control/v1/cancel");
  } catch (err) {
    console.error(err);
  } finally {
    ui.busy = false;
  }
  resetVisit();
  ui.timedOut = true;
  show("start");
}

setInterval(() => {
  if (!IDLE_SCREENS.has(ui.screen) || ui.busy) return;
  if (Date.now() - ui.lastActivityMs >= ui.cfg.idle_timeout_s * 1000) idleTimeout();
}, 250);

// ---- wiring ----

const ACTIONS = {
  "start": () => guarded(startVisit),
  "back-to-start": () => { resetVisit(); show("start"); },
  "route-residence": chooseResidence,
  "route-domicile": listMunicipalities,
  "back-to-route": () => show("route"),
  "cancel-visit": cancelVisit,
  "pin-clear": () => { ui.pin = ""; render(); },
  "pin-ok": submitPin,
  "take-card-early": takeCardEarly,
  "back-to-menu": () => show("menu"),
  "options-next": () => {
    if (ui.options.scope === "selected" && ui.options.members.length === 0) {
      setMessage(t("pick_members"));
      return;
    }
    setMessage("");
    show("copies");
  },
  "copies-minus": () => { ui.copies = Math.max(1, ui.copies - 1); render(); },
  "copies-plus": () => { ui.copies = Math.min(ui.item.max_copies, ui.copies + 1); render(); },
  "order": placeOrder,
  "to-payment": toPayment,
  "pay-cancel": payCancel,
  "emoney": () => pay({ method: "emoney" }),
  "take-card": takeCard,
  "take-certificate": takeCertificate,
  "finish": finish,
  "acknowledge": acknowledge,
};

document.addEventListener("click", (ev) => {
  touch();
  const button = ev.target.closest("button");
  if (!button || button.disabled) return;
  if (button.id === "lang-toggle") {
    ui.lang = ui.lang === "ja" ? "en" : "ja";
    render();
    return;
  }
  if (button.dataset.digit) { pinDigit(button.dataset.digit); return; }
  if (button.dataset.coin) { insertCoin(Number(button.dataset.coin)); return; }
  const action = ACTIONS[button.dataset.action];
  if (action) action();
});

document.addEventListener("keydown", (ev) => {
  touch();
  if (ui.screen !== "pin") return;
  if (/^[0-9]$/.test(ev.key)) { ev.preventDefault(); pinDigit(ev.key); }
  else if (ev.key === "Backspace") { ev.preventDefault(); pinBackspace(); }
  else if (ev.key === "Enter" && ui.pin.length === PIN_DIGITS) {
    // Enter confirms four digits, unless it presses 訂正 or 取消.
    const button = ev.target.closest("button");
    if (!button || button.dataset.digit || button.dataset.action === "pin-ok") {
      ev.preventDefault();
      submitPin();
    }
  }
});
document.addEventListener("pointerdown", touch);

async function boot() {
  try {
    ui.cfg = await api("GET", "/ui/v1/config");
  } catch (err) {
    console.error(err);
  }
  // A reload mid-visit: show what the kiosk shows (a card or pages left behind).
  try {
    const s = await api("GET", "/control/v1/state");
    if (s.screen === "idle") show("start");
    else if (!followEnd(s)) await idleTimeout();
    ui.timedOut = false;
    render();
  } catch (err) {
    console.error(err);
    show("start");
  }
  document.body.dataset.ready = "true";
}

boot();
