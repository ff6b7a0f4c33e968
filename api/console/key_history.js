// A key's history: its events in words (oldest first, as recorded), and the key as it was at
// any instant (`apiKey(id, asOf)`), read back from those events.

import { gql, describe } from "./api.js";
import { h, fill, field, dialog, button, table, when, failure } from "./ui.js";
import { KEY_FIELDS, statusBadge, rateLimitsText, ipRulesCell, scopesCell } from "./key_cells.js";
import { utcInput, fromUtcInput, toUtcInput } from "./times.js";

const LABELS = {
  KeyIssued: "Issued",
  KeyRenamed: "Renamed",
  KeyScopesChanged: "Scopes changed",
  KeyRateLimitsChanged: "Rate limits changed",
  KeyIpRulesChanged: "IP rules changed",
  KeyRotated: "Rotated",
  KeyRevoked: "Revoked",
  KeyExpiryWarned: "Expiry warning",
  KeyExpired: "Expired",
};

// Events carry snake_case fields (the stored event), the API camelCase.
const limitsOf = (r = {}) => rateLimitsText({ perSecond: r.per_second, perMinute: r.per_minute, perHour: r.per_hour, perDay: r.per_day, burst: r.burst });
const scopesText = (s = []) => (s.length ? s.join(", ") : "none");

function rulesText(rules = {}) {
  const allow = rules.allow || [];
  const block = rules.block || [];
  if (!allow.length && !block.length) return "any address";
  return [allow.length && `allow ${allow.join(", ")}`, block.length && `block ${block.join(", ")}`].filter(Boolean).join("; ");
}

/** One sentence for an event's data. */
function summary(type, d = {}) {
  switch (type) {
    case "KeyIssued":
      return `${d.environment === "test" ? "Test" : "Live"} key "${d.name}" of tenant ${d.tenant}; scopes: ${scopesText(d.scopes)}; rate limits: ${limitsOf(d.rate_limits)}; IP rules: ${rulesText(d.ip_rules)}; ${d.expires_at ? `expires ${when(d.expires_at)}` : "never expires"}.`;
    case "KeyRenamed": return `New name: "${d.name}".`;
    case "KeyScopesChanged": return `Scopes now: ${scopesText(d.scopes)}.`;
    case "KeyRateLimitsChanged": return `Rate limits now: ${limitsOf(d.rate_limits)}.`;
    case "KeyIpRulesChanged": return `IP rules now: ${rulesText(d.ip_rules)}.`;
    case "KeyRotated":
      return `New secret (lookup id ${d.lookup_id}); the previous one (${d.previous_lookup_id}) stays valid until ${when(d.previous_valid_until)}.`;
    case "KeyRevoked": return d.reason ? `Reason: ${d.reason}` : "No reason given.";
    case "KeyExpiryWarned":
      return `${d.warning === "one_day" ? "1 day" : d.warning === "seven_days" ? "7 days" : d.warning} before expiry (${when(d.expires_at)}).`;
    case "KeyExpired": return "The key reached its expiry and stopped working.";
    default:
      return Object.entries(d).filter(([k]) => k !== "at")
        .map(([k, v]) => `${k.replace(/_/g, " ")}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ") || "—";
  }
}

/** Admin token names by id, for the actor column; empty when the token may not list tokens. */
async function tokenNames(ctx) {
  const names = new Map();
  if (!ctx.can("TENANT_ADMIN")) return names;
  try {
    const { adminTokens } = await gql(`query($tenant: String) { adminTokens(tenant: $tenant, limit: 200) { data { id name } } }`,
      { tenant: ctx.superuser ? null : ctx.me.tenant });
    for (const t of adminTokens.data) names.set(t.id, t.name);
  } catch { /* the id alone still says who */ }
  return names;
}

function actorText(actor, names, ctx) {
  const [kind, id] = actor.split(":");
  if (kind !== "admin_token" || !id) return actor;
  const you = id === ctx.me.tokenId ? " (you)" : "";
  return names.has(id) ? `Admin token "${names.get(id)}"${you}` : `Admin token ${id.slice(0, 8)}…${you}`;
}

/** Up to the next whole second, so "as of" a sub-second event includes it. */
function ceilSecond(iso) {
  const t = new Date(iso).getTime();
  return new Date(Math.ceil(t / 1000) * 1000);
}

function stateView(key, asOf) {
  const row = (term, value) => [h("dt", {}, term), h("dd", {}, value)];
  return h("div", { class: "key-state" },
    h("h3", {}, `As it was at ${asOf.slice(0, 19).replace("T", " ")} UTC`),
    h("dl", { class: "facts" },
      row("Name", key.name),
      row("Status", statusBadge(key.status)),
      row("Environment", key.environment),
      row("Prefix", h("code", {}, key.prefix)),
      row("Scopes", scopesCell(key.scopes)),
      row("Rate limits", rateLimitsText(key.rateLimits)),
      row("IP rules", ipRulesCell(key)),
      row("Expires", key.expiresAt ? when(key.expiresAt) : "Never"),
      key.revokedAt ? row("Revoked", when(key.revokedAt)) : null,
      row("Last changed", when(key.updatedAt))));
}

export function showHistory(ctx, key) {
  return dialog(`History of ${key.name}`, () => {
    const events = h("div", {}, h("p", { class: "loading" }, "Loading the history…"));
    const asOf = utcInput({ value: toUtcInput(Date.now()), required: true });
    const state = h("div", { class: "state-out", "aria-live": "polite" });
    const show = async () => {
      const at = fromUtcInput(asOf.value);
      if (!at) {
        fill(state, h("p", { class: "error-text", role: "alert" }, "As of: enter a date and time (UTC)."));
        return;
      }
      fill(state, h("p", { class: "loading" }, "Reading…"));
      try {
        const { apiKey } = await gql(`query($id: String!, $asOf: DateTime) { apiKey(id: $id, asOf: $asOf) { ${KEY_FIELDS} } }`, { id: key.id, asOf: at });
        fill(state, stateView(apiKey, at));
      } catch (e) {
        fill(state, e.code === "not_found"
          ? h("p", { class: "notice warn", role: "alert" }, `The key did not exist yet at ${when(at)}: it was created ${when(key.createdAt)}.`)
          : h("p", { class: "notice error", role: "alert" }, describe(e)));
      }
    };
    const form = h("form", { class: "toolbar as-of", novalidate: true },
      field("As of", asOf, "UTC, to the second."),
      button("Show state", null, { type: "submit" }));
    form.addEventListener("submit", (event) => { event.preventDefault(); show(); });

    Promise.all([
      gql(`query($id: String!) { apiKeyHistory(id: $id) { sequence eventType occurredAt actor requestId data } }`, { id: key.id }),
      tokenNames(ctx),
    ]).then(([{ apiKeyHistory }, names]) => {
      fill(events, table(`Events of ${key.name}`, [
        { label: "#", class: "num", cell: (e) => e.sequence },
        { label: "Time (UTC)", cell: (e) => h("span", { class: "nowrap" }, when(e.occurredAt)) },
        { label: "Event", cell: (e) => h("div", { class: "cell-stack" }, h("strong", {}, LABELS[e.eventType] || e.eventType), h("code", { class: "hint" }, e.eventType)) },
        { label: "Actor", cell: (e) => actorText(e.actor, names, ctx) },
        { label: "Details", class: "wrap", cell: (e) => summary(e.eventType, e.data) },
        {
          label: "State", cell: (e) => (e.occurredAt ? button("Use time", () => {
            asOf.value = toUtcInput(ceilSecond(e.occurredAt));
            show();
          }, { tone: "small", "aria-label": `Use time of event ${e.sequence}` }) : "—"),
        },
      ], apiKeyHistory, { empty: "No events recorded for this key." }));
    }, (e) => fill(events, failure(e)));

    return h("div", { class: "stack key-history" },
      events,
      h("section", { class: "as-of-box" },
        h("h3", {}, "The key at an instant"),
        h("p", { class: "hint" }, "Pick a time to see the key's name, scopes, limits and status as they were then; \"Use time\" on an event picks the moment just after it."),
        form,
        state));
  }, { wide: true });
}
