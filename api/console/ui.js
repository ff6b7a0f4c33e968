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

export function toast(text, tone = "ok") {
  const el = h("div", { class: `toast ${tone}` }, text);
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), 5000);
}

export function button(label, onclick, { tone = "", type = "button", ...rest } = {}) {
  return h("button", { type, class: `button ${tone}`.trim(), onclick, ...rest }, label);
}

/**
 * A modal dialog (the native <dialog>: focus stays inside, Escape closes, focus returns to the
 * opener). `body` is built with a `close` callback; resolves when closed.
 */
export function dialog(title, build, { wide = false } = {}) {
  const opener = document.activeElement;
  const titleId = nextId("dlg");
  const el = h("dialog", { class: wide ? "wide" : "", "aria-labelledby": titleId });
  return new Promise((resolve) => {
    // Removed at once, not on the (later) close event: a secret it showed leaves the page now.
    const close = (value) => { el.close(); el.remove(); resolve(value); };
    el.addEventListener("close", () => {
      el.remove();
      if (opener && opener.focus) opener.focus();
      resolve(undefined);
    });
    fill(el,
      h("div", { class: "dialog-head" },
        h("h2", { id: titleId }, title),
        h("button", { type: "button", class: "icon", "aria-label": "Close", onclick: () => close() }, "×")),
      build(close));
    document.body.append(el);
    el.showModal();
  });
}

/** Asks before something that cannot be undone. */
export function confirmAction(title, text, action = "Confirm") {
  return dialog(title, (close) => h("div", { class: "stack" },
    h("p", {}, text),
    h("div", { class: "actions" },
      button("Cancel", () => close(false)),
      button(action, () => close(true), { tone: "danger" })))).then(Boolean);
}

/** Runs `work` for a form, showing its failure in `errorEl`; the submit button waits meanwhile. */
export async function submitting(form, errorEl, work) {
  const submit = form.querySelector("[type=submit]");
  if (submit) submit.disabled = true;
  errorEl.textContent = "";
  try {
    return await work();
  } catch (e) {
    errorEl.textContent = describe(e);
    return undefined;
  } finally {
    if (submit) submit.disabled = false;
  }
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
