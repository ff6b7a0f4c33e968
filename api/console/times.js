// Times as the keys and tokens tabs read and show them. The console shows every time in UTC, so
// typed times are UTC too (a `datetime-local` input has no zone of its own).

import { h, when, ago } from "./ui.js";

/** A `datetime-local` input whose value is read as UTC. */
export function utcInput(attrs = {}) {
  return h("input", { type: "datetime-local", step: "1", ...attrs });
}

/** The ISO instant a UTC `datetime-local` value names: null when empty, undefined when unreadable. */
export function fromUtcInput(value) {
  if (!value) return null;
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  const date = new Date(`${withSeconds}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** A `datetime-local` value (UTC) for an instant. */
export function toUtcInput(date) {
  return new Date(date).toISOString().slice(0, 19);
}

export const UTC_HINT = "UTC. Leave empty for no expiry.";

/** Said both when the browser finds the expiry past and when the server does (its clock decides). */
export const PAST = "Expires: pick a time in the future (UTC), or leave it empty for no expiry.";

/** An Expires field's value: `{ at }` (null: never expires), or `{ error }` in words. */
export function readExpiry(input) {
  const at = fromUtcInput(input.value);
  if (at === undefined) return { error: "Expires: enter a date and time, or leave it empty." };
  if (at && new Date(at) <= new Date()) return { error: PAST };
  return { at };
}

/** "5 min ago", with the exact time on hover; "Never" when never used. */
export function lastUsedCell(iso, now = Date.now()) {
  return iso ? h("time", { datetime: iso, title: when(iso) }, ago(iso, now)) : "Never";
}
