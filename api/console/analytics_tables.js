// The analytics report's tables: top endpoints, the error breakdown with its trend against the
// range before, the latest errors and usage per key. Each says in words what a colour marks;
// endpoints and keys each offer to narrow the whole report to themselves.

import { h, table, number, percent, ms, when, badge, button } from "./ui.js";
import { OUTCOMES } from "./analytics_filters.js";
import { statusText } from "./words.js";

export const outcomeText = (outcome) => OUTCOMES[outcome] || outcome;

const ERROR_CLASS_WORDS = { green: "under 1 %", amber: "1 to 5 %", red: "above 5 %" };

const shortId = (id) => (id ? `${id.slice(0, 8)}…` : "—");

const endpointLabel = (r) => `${r.methods.join(", ")} ${r.path || `removed endpoint ${shortId(r.endpointId)}`}`;

function endpointCell(methods, path, id) {
  return h("span", { class: "an-endpoint" },
    h("span", { class: "method" }, methods.join(", ")), " ",
    path ? h("code", {}, path) : h("span", { class: "hint" }, `removed endpoint ${shortId(id)}`));
}

// The row action, left out where the report already shows only that row's key or endpoint.
function onlyColumn(already, label, pick) {
  return {
    label: "Filter",
    cell: (r) => (already(r) ? h("span", { class: "hint" }, "filtered") : button("Show only", () => pick(r), { tone: "small", "aria-label": label(r) })),
  };
}

/** `only(kind, id, label)` narrows the report to an endpoint or key; `active` is what it is narrowed to. */
export function topEndpoints(rows, active, only) {
  return table("Top endpoints", [
    { label: "Endpoint", cell: (r) => endpointCell(r.methods, r.path, r.endpointId) },
    { label: "Plugin", cell: (r) => r.plugin },
    { label: "Requests", class: "num", cell: (r) => number(r.requests) },
    { label: "Avg response time", class: "num", cell: (r) => ms(r.avgLatencyMs) },
    { label: "P95", class: "num", cell: (r) => ms(r.latency.p95Ms) },
    {
      label: "Error rate", class: "num",
      cell: (r) => h("span", { class: `badge ${r.errorClass}`, title: `Error rate ${ERROR_CLASS_WORDS[r.errorClass] || ""}`.trim() },
        percent(r.errorRate)),
    },
    onlyColumn((r) => r.endpointId === active.endpoint, (r) => `Show only ${endpointLabel(r)}`,
      (r) => only("endpoint", r.endpointId, endpointLabel(r))),
  ], rows, { empty: "No endpoint was called in this range." });
}

/** The change of a count against the range before, as the API gives it (0.5: half as many again). */
export function trend(change, previous, now) {
  if (change === null || change === undefined) {
    return previous === 0 && now > 0 ? { text: "new", arrow: "↑", tone: "warn" } : { text: "—", arrow: "", tone: "neutral" };
  }
  const pct = Math.round(change * 100);
  if (pct === 0) return { text: "±0 %", arrow: "→", tone: "neutral" };
  // U+2212, the minus sign, reads better than a hyphen beside the plus.
  return pct > 0 ? { text: `+${pct} %`, arrow: "↑", tone: "bad" } : { text: `−${-pct} %`, arrow: "↓", tone: "ok" };
}

function trendBadge(t) {
  return h("span", { class: `badge ${t.tone} an-trend` },
    t.arrow ? h("span", { "aria-hidden": "true" }, `${t.arrow} `) : null, t.text);
}

export function errorHeadline(report, rangeLabel) {
  const t = trend(report.errorChange, report.previousErrorCount, report.errorCount);
  return h("div", { class: "an-headline" },
    h("p", {},
      h("strong", { "data-testid": "error-count" }, number(report.errorCount)),
      ` ${report.errorCount === 1 ? "error" : "errors"} (4xx and 5xx) in the ${rangeLabel.toLowerCase()}, against `,
      h("strong", { "data-testid": "previous-error-count" }, number(report.previousErrorCount)),
      " in the range before."),
    h("span", { "data-testid": "error-change" }, trendBadge(t)));
}

export function errorsByStatus(rows, errorCount) {
  return table("Errors by status", [
    { label: "Status", cell: (r) => statusText(r.status) },
    { label: "Count", class: "num", cell: (r) => number(r.requests) },
    { label: "Share of errors", class: "num", cell: (r) => (errorCount ? percent(r.requests / errorCount) : "—") },
    { label: "Range before", class: "num", cell: (r) => number(r.previousRequests) },
    { label: "Trend", cell: (r) => trendBadge(trend(r.change, r.previousRequests, r.requests)) },
  ], rows, { empty: "No errors in this range or the one before." });
}

export function recentErrors(rows, keyNames) {
  return table("Recent errors", [
    { label: "Time", cell: (r) => h("time", { datetime: r.at, class: "an-nowrap" }, when(r.at)) },
    { label: "Status", cell: (r) => badge(String(r.status), r.status >= 500 ? "bad" : "warn") },
    { label: "Reason", cell: (r) => outcomeText(r.outcome) },
    { label: "Request", cell: (r) => h("span", { class: "an-endpoint" }, h("span", { class: "method" }, r.method), " ", h("code", {}, r.path)) },
    { label: "Key", cell: (r) => keyLabel(r.keyId, keyNames) },
    { label: "Plugin", cell: (r) => r.plugin || "—" },
  ], rows, { empty: "No errors in this range." });
}

function keyLabel(keyId, keyNames) {
  if (!keyId) return h("span", { class: "hint" }, "no known key");
  const name = keyNames.get(keyId);
  return name ? name : h("code", { title: keyId }, shortId(keyId));
}

export function usageByKey(rows, total, active, only) {
  const name = (r) => r.name || shortId(r.keyId);
  return table("Usage by key", [
    { label: "Key", cell: (r) => (r.name ? r.name : h("span", {}, h("code", { title: r.keyId }, shortId(r.keyId)), h("span", { class: "hint" }, " (name unavailable)"))) },
    { label: "Requests", class: "num", cell: (r) => number(r.requests) },
    { label: "Share", class: "num", cell: (r) => (total ? percent(r.requests / total) : "—") },
    onlyColumn((r) => r.keyId === active.key, (r) => `Show only key ${name(r)}`, (r) => only("key", r.keyId, name(r))),
  ], rows, { empty: "No key was used in this range: requests without a valid key are counted under their outcome only." });
}
