// How a key's fields read in the grid and in a key's past state.

import { h, badge, when } from "./ui.js";

/** The fields every key query asks for (never `key`: the plaintext is asked for only where it is shown once). */
export const KEY_FIELDS = `id tenant name environment prefix status scopes
  rateLimits { perSecond perMinute perHour perDay burst } ipAllow ipBlock
  expiresAt createdAt updatedAt revokedAt lastUsedAt totalRequests`;

const STATUS = {
  active: ["Active", "ok"],
  expired: ["Expired", "bad"],
  revoked: ["Revoked", "neutral"],
};

export function statusBadge(status) {
  const [text, tone] = STATUS[status] || [status, "neutral"];
  return badge(text, tone);
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;

/**
 * The advance warning for an active key, as the platform sends them: under 7 days, and a
 * stronger one under 1 day. None otherwise.
 */
function expiryWarning(key, now = Date.now()) {
  if (key.status !== "active" || !key.expiresAt) return null;
  const left = new Date(key.expiresAt).getTime() - now;
  if (left <= 0 || left >= 7 * DAY) return null;
  if (left >= DAY) {
    const days = Math.floor(left / DAY);
    return badge(`Expires in ${days} ${days === 1 ? "day" : "days"}`, "warn");
  }
  const hours = Math.floor(left / HOUR);
  const text = hours < 1 ? "Expires in under an hour" : `Expires in ${hours} ${hours === 1 ? "hour" : "hours"}`;
  return h("span", { class: "badge bad expiry-urgent" }, text);
}

export function expiryCell(key) {
  const warning = expiryWarning(key);
  return h("div", { class: "cell-stack" }, key.expiresAt ? when(key.expiresAt) : "Never", warning);
}

export function rateLimitsText(limits) {
  if (!limits) return "—";
  const parts = [
    limits.perSecond && `${limits.perSecond}/s`,
    limits.perMinute && `${limits.perMinute}/min`,
    limits.perHour && `${limits.perHour}/h`,
    limits.perDay && `${limits.perDay}/day`,
    limits.burst && `burst ${limits.burst}`,
  ].filter(Boolean);
  return parts.length ? parts.join(" · ") : "None";
}

export function ipRulesCell(key) {
  if (!key.ipAllow.length && !key.ipBlock.length) return h("span", { class: "hint" }, "Any address");
  return h("div", { class: "cell-stack" },
    key.ipAllow.length ? h("span", {}, "Allow: ", h("code", {}, key.ipAllow.join(", "))) : null,
    key.ipBlock.length ? h("span", {}, "Block: ", h("code", {}, key.ipBlock.join(", "))) : null);
}

export function scopesCell(scopes) {
  if (!scopes.length) return h("span", { class: "hint" }, "No scopes");
  return h("ul", { class: "scope-list" }, scopes.map((s) => h("li", {}, h("code", {}, s))));
}
