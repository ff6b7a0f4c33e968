// What the webhooks tab's sections share: the event types, status badges, the section heading,
// asking before a deletion, when a pending delivery is next worth re-reading, and keeping focus
// on a row's control across a re-render.

import { describe } from "./api.js";
import { h, badge, dialog, button, busy } from "./ui.js";

/** The event types a subscription can listen to (README "Deliveries"), with when each happens. */
export const EVENT_TYPES = [
  ["key.created", "a key is issued"],
  ["key.changed", "a key's name, scopes, limits or IP rules change"],
  ["key.rotated", "a key gets a new secret"],
  ["key.revoked", "a key is revoked"],
  ["key.expiring", "7 days and 1 day before a key expires"],
  ["key.expired", "a key expired"],
  ["endpoint.activated", "an endpoint is activated"],
  ["endpoint.deactivated", "an endpoint is deactivated"],
  ["endpoint.deprecated", "an endpoint is deprecated"],
  ["token.created", "an admin token is created"],
  ["token.deleted", "an admin token is deleted"],
  ["usage.alert", "an alert rule fires"],
  ["webhook.disabled", "one of the tenant's subscriptions was disabled"],
];

export const KINDS = [
  ["DEFAULT", "Default"],
  ["SLACK", "Slack"],
  ["TEAMS", "Teams"],
  ["DISCORD", "Discord"],
  ["CUSTOM", "Custom"],
];

export const kindLabel = (kind) => (KINDS.find(([k]) => k === String(kind).toUpperCase()) || [null, kind])[1];

// Words beside colour, so the badge reads without it.
const TONES = {
  active: "ok", delivered: "ok", clear: "ok",
  paused: "warn", held: "warn", pending: "neutral",
  disabled: "bad", failed: "bad", breached: "bad",
};
const WORDS = {
  active: "Active", paused: "Paused", disabled: "Disabled",
  pending: "Pending", held: "Held", delivered: "Delivered", failed: "Failed",
  clear: "Clear", breached: "Breached",
};

export const statusBadge = (status) => badge(WORDS[status] || status, TONES[status] || "neutral");

/** A section's heading row: title, what it is for, and its main action when offered. */
export function sectionHead(title, intro, action) {
  return h("div", { class: "wh-head" },
    h("div", { class: "wh-head-text" }, h("h3", { tabindex: "-1" }, title), intro ? h("p", { class: "hint" }, intro) : null),
    action || null);
}

/** Pretty-prints a body when it is JSON; otherwise gives it back as it is. */
export function pretty(text) {
  if (text === null || text === undefined) return "";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text);
  }
}

/** A row's actions, wrapping on narrow screens. */
export const rowActions = (...buttons) => h("div", { class: "wh-row-actions" }, buttons);

/** How a subscription reads where its URL alone may not tell it apart: its description, or its id. */
export const subscriptionName = (s) => `${s.url} (${s.description || `id ${s.id.slice(0, 8)}`})`;

/**
 * Asks before an action that cannot be undone, and runs it inside the dialog: the dialog stays
 * open and its buttons wait until the server answers, so a second click cannot send it twice, and
 * a refusal is shown there. `text` may be an element to fill in later (a count being read).
 * Resolves with what `work` returned (true for nothing), or undefined when cancelled.
 */
export function confirmThen(title, text, action, work) {
  return dialog(title, (close) => {
    const error = h("p", { class: "error-text", role: "alert" });
    const go = button(action, async () => {
      error.textContent = "";
      // Closed after busy() lets go: a dialog cannot close while it is busy.
      const done = await busy(go, async () => {
        try {
          return { value: await work() };
        } catch (e) {
          error.textContent = describe(e);
          return null;
        }
      });
      if (done) close(done.value === undefined ? true : done.value);
    }, { tone: "danger" });
    return h("div", { class: "stack" },
      typeof text === "string" ? h("p", {}, text) : text,
      error,
      h("div", { class: "actions" }, button("Cancel", () => close(), { autofocus: true }), go));
  });
}

/**
 * Milliseconds until a pending delivery among `rows` is next worth re-reading: a little after the
 * soonest attempt due within a minute (one due later, or a held one, changes nothing soon).
 * `quiet` counts reads that changed nothing, so an attempt that hangs is asked about less and less.
 */
export function nextLook(rows, quiet = 0) {
  const now = Date.now();
  const due = rows.filter((d) => d.status === "pending").map((d) => (d.nextAttemptAt ? Date.parse(d.nextAttemptAt) : now));
  if (!due.length) return null;
  const wait = Math.min(...due) - now;
  if (wait > 60_000) return null;
  return Math.min(Math.max(wait + 1500, 2000 * 2 ** quiet), 60_000);
}

/**
 * Re-renders `work` while keeping the keyboard where it was: a focused control carrying
 * `data-key` gets focus back in its new copy (a Pause button that became Resume shares its key).
 * When that copy is gone or disabled, an enabled control of the same `data-group` takes it (the
 * other page button), else the section's heading, so focus never falls back to the page.
 */
export async function keepingFocus(container, work) {
  const was = document.activeElement && container.contains(document.activeElement) ? document.activeElement : null;
  const key = was ? was.dataset.key : null;
  const group = was ? was.dataset.group : null;
  await work();
  if (!was || container.contains(was)) return;
  const usable = (selector) => container.querySelector(`${selector}:not(:disabled)`);
  const again = (key && usable(`[data-key="${CSS.escape(key)}"]`)) || (group && usable(`[data-group="${CSS.escape(group)}"]`));
  const heading = container.closest("[role=tabpanel]") && container.closest("[role=tabpanel]").querySelector(".wh-head h3");
  if (again) again.focus();
  else if (heading) heading.focus();
}

/** "3 deliveries" / "1 delivery". */
export const plural = (n, one, many = `${one}s`) => `${Number(n).toLocaleString("en-US")} ${n === 1 ? one : many}`;

/** A datetime-local value (the browser's local time) for an instant. */
export function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** An instant to the second, in UTC: attempts minutes apart, or seconds, must read apart. */
export function exactly(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium", timeZone: "UTC" }) + " UTC";
}
