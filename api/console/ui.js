// Small building blocks every tab shares: elements, formats, tables, dialogs, notices.

import { describe } from "./api.js";

/** An element: attributes (`on*` become listeners, `class`, `for`, booleans) and children. */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A fresh id for label/control pairs. */
export const nextId = (prefix = "f") => `${prefix}-${++uid}`;

export const number = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
export const percent = (n, digits = 1) => (n === null || n === undefined ? "—" : `${(n * 100).toFixed(digits)} %`);
export const ms = (n) => (n === null || n === undefined ? "—" : `${Number(n).toFixed(n < 10 ? 2 : 0)} ms`);

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" }) + " UTC";
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = Math.round((now - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A labelled control; `control` is an element whose id the label points at. */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId();
  const hintEl = hint ? h("small", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hintEl);
}

/** A data table: `columns` are [{ label, cell(row) → node|text, class? }]. */
export function table(caption, columns, rows, { empty = "Nothing here yet." } = {}) {
  if (!rows.length) return emptyState(empty);
  // The wrapper scrolls sideways on a phone: keyboard users must be able to reach it.
  return h("div", { class: "table-wrap", role: "region", "aria-label": caption, tabindex: "0" },
    h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(row))))))));
}

export const emptyState = (text) => h("p", { class: "empty" }, text);
export const badge = (text, tone = "neutral") => h("span", { class: `badge ${tone}` }, text);
export const card = (title, ...body) => h("section", { class: "card" }, h("h3", {}, title), ...body);
export const metric = (label, value, testid) =>
  h("div", { class: "metric" }, h("span", { class: "metric-label" }, label), h("strong", { class: "metric-value", "data-testid": testid }, value));

/** An error shown in words where the content would be. */
export function failure(error) {
  return h("div", { class: "notice error", role: "alert" }, describe(error));
}

/** A passing note; one about a failure stays until it is dismissed. */
export function toast(text, tone = "ok") {
  const el = h("div", { class: `toast ${tone}` }, text);
  if (tone === "bad") el.append(h("button", { type: "button", class: "icon", "aria-label": "Dismiss", onclick: () => el.remove() }, "×"));
  else setTimeout(() => el.remove(), 5000);
  toastsHere().append(el);
}

// A modal dialog puts the page behind it out of reach (and out of screen readers' hearing):
// while one is open its toasts go inside it.
function toastsHere() {
  const open = [...document.querySelectorAll("dialog[open]")].pop();
  if (!open) return document.getElementById("toasts");
  let box = open.querySelector(":scope > .toasts");
  if (!box) {
    box = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
    open.append(box);
  }
  return box;
}

export function button(label, onclick, { tone = "", type = "button", ...rest } = {}) {
  return h("button", { type, class: `button ${tone}`.trim(), onclick, ...rest }, label);
}

/**
 * A modal dialog (the native <dialog>: focus stays inside, Escape closes, focus returns to the
 * opener). `build(close)` makes its body; resolves with what `close` was given, or undefined.
 * While work started with `busy()` (or `submitting()`) runs inside it, the user cannot close it:
 * a secret the server is making would otherwise arrive with nobody to show it to. With
 * `dismissable: false` only its own buttons close it (Escape does nothing, there is no ×).
 */
export function dialog(title, build, { wide = false, dismissable = true } = {}) {
  const opener = document.activeElement;
  const titleId = nextId("dlg");
  const el = h("dialog", { class: wide ? "wide" : "", "aria-labelledby": titleId });
  return new Promise((resolve) => {
    // Removed at once, not on the (later) close event: a secret it showed leaves the page now.
    // Focus is back on the opener before the caller hears, so the caller may move it on.
    let done = false;
    const finish = (value) => {
      if (done) return;
      done = true;
      // Toasts it held outlive it.
      const held = el.querySelector(":scope > .toasts");
      if (held) document.getElementById("toasts").append(...held.children);
      el.remove();
      if (opener && opener.isConnected && opener.focus) opener.focus();
      resolve(value);
    };
    // While busy the user cannot close it (its buttons wait, Escape is refused); the work
    // itself may, once it has what it came for.
    const close = (value) => {
      el.close();
      finish(value);
    };
    el.addEventListener("cancel", (event) => { if (el.dataset.busy || !dismissable) event.preventDefault(); });
    el.addEventListener("close", () => finish(undefined));
    fill(el,
      h("div", { class: "dialog-head" },
        h("h2", { id: titleId }, title),
        dismissable ? h("button", { type: "button", class: "icon", "aria-label": "Close", "data-close": true, onclick: () => close() }, "×") : null),
      build(close));
    document.body.append(el);
    el.showModal();
  });
}

/** Runs `work` with `el`'s dialog (if any) held open and its buttons waiting. */
export async function busy(el, work) {
  const holder = el.closest("dialog");
  const buttons = [...(holder || el).querySelectorAll("button")].filter((b) => !b.disabled);
  if (holder) holder.dataset.busy = "1";
  if (!holder && el.tagName === "BUTTON") buttons.push(el);
  // A disabled button drops focus to the page: it goes back where it was, if that still stands.
  const focused = document.activeElement;
  for (const b of buttons) b.disabled = true;
  try {
    return await work();
  } finally {
    if (holder) delete holder.dataset.busy;
    for (const b of buttons) b.disabled = false;
    const lost = !document.activeElement || document.activeElement === document.body;
    if (lost && focused && focused.isConnected && focused.focus) focused.focus();
  }
}

/** Asks before something that cannot be undone; Cancel has the focus. */
export function confirmAction(title, text, action = "Confirm") {
  return dialog(title, (close) => h("div", { class: "stack" },
    h("p", {}, text),
    h("div", { class: "actions" },
      button("Cancel", () => close(false), { autofocus: true }),
      button(action, () => close(true), { tone: "danger" })))).then(Boolean);
}

/**
 * Runs `work` for a form, showing its failure in `errorEl` (and handing it to `onError`, which
 * may mark the field it is about); the form's dialog stays open and its buttons wait meanwhile.
 */
export async function submitting(form, errorEl, work, onError = () => {}) {
  errorEl.textContent = "";
  return busy(form, async () => {
    try {
      return await work();
    } catch (e) {
      errorEl.textContent = describe(e);
      onError(e);
      return undefined;
    }
  });
}

/**
 * The answer to wait for when requests may overlap (filters changed, a tab left): `next()`
 * before asking, `current(n)` after each await; `stop()` makes every answer in flight stale.
 */
export function latest() {
  let at = 0;
  return { next: () => ++at, current: (n) => n === at, stop: () => { at += 1; } };
}

/** A <select> of `options` ([{ value, label }]) with `value` chosen. */
export function select(options, value, attrs = {}) {
  return h("select", attrs, options.map((o) => h("option", { value: o.value, selected: String(o.value) === String(value) }, o.label)));
}

/**
 * Arrow keys, Home and End between the tabs of a tablist (the WAI-ARIA tabs pattern, with
 * manual activation: focus moves, Enter or Space selects, so passing over a tab loads nothing).
 */
export function tabKeys(event, tabs) {
  const index = tabs.indexOf(document.activeElement);
  if (index < 0) return;
  const to = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[event.key];
  if (to === undefined) return;
  event.preventDefault();
  tabs[(to + tabs.length) % tabs.length].focus();
}

/** Splits a text field of comma- or line-separated values. */
export const list = (text) => text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);

/** Copies text, saying so. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied to the clipboard.");
  } catch {
    toast("The browser did not allow copying; select the text and copy it.", "warn");
  }
}
