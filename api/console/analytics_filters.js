// The analytics tab's selections: what each control offers, how they persist between sessions
// (local storage, so they outlive the signed-in tab) and the query they make.

export const STORAGE_KEY = "keyledger.analytics";

export const RANGES = [
  { value: "7d", label: "Last 7 days", days: 7 },
  { value: "30d", label: "Last 30 days", days: 30 },
  { value: "90d", label: "Last 90 days", days: 90 },
];

export const PERIODS = [
  { value: "day", label: "Daily" },
  { value: "hour", label: "Hourly" },
];

// The edge's outcomes (README: Analytics), in words a person reads in a legend.
export const OUTCOMES = {
  VALID: "Valid",
  INVALID_KEY: "Invalid key",
  KEY_REVOKED: "Key revoked",
  KEY_EXPIRED: "Key expired",
  IP_FORBIDDEN: "IP not allowed",
  INSUFFICIENT_SCOPE: "Insufficient scope",
  RATE_LIMITED: "Rate limited",
  ENDPOINT_NOT_FOUND: "Endpoint not found",
  UPSTREAM_UNREACHABLE: "Upstream unreachable",
};

export const STATUS_CLASSES = ["2xx", "3xx", "4xx", "5xx"];

export const GROUPINGS = [
  { value: "key", label: "Key" },
  { value: "endpoint", label: "Endpoint" },
  { value: "day", label: "Day" },
];

const DEFAULTS = { range: "7d", period: "day", plugin: "", outcome: "", statusClass: "", groupBy: "key" };

/** The saved selections, each checked against what the controls offer (a stale or edited entry falls back). */
export function restore() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}") || {};
  } catch { /* unreadable: start from the defaults */ }
  const pick = (value, allowed, fallback) => (typeof value === "string" && allowed(value) ? value : fallback);
  return {
    range: pick(saved.range, (v) => RANGES.some((r) => r.value === v), DEFAULTS.range),
    period: pick(saved.period, (v) => PERIODS.some((p) => p.value === v), DEFAULTS.period),
    // Plugins come from the catalogue, which may have changed: any name is kept.
    plugin: pick(saved.plugin, () => true, DEFAULTS.plugin),
    outcome: pick(saved.outcome, (v) => v === "" || v in OUTCOMES, DEFAULTS.outcome),
    statusClass: pick(saved.statusClass, (v) => v === "" || STATUS_CLASSES.includes(v), DEFAULTS.statusClass),
    groupBy: pick(saved.groupBy, (v) => GROUPINGS.some((g) => g.value === v), DEFAULTS.groupBy),
  };
}

export function save(state) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(state));
  } catch { /* storage full or disabled: the selection still applies to this view */ }
}

export const narrowed = (state) => Boolean(state.plugin || state.outcome || state.statusClass);

/** The GraphQL variables for `analytics`; empty filters are left out rather than sent as "". */
export function variables(state) {
  return {
    range: state.range,
    period: state.period,
    plugin: state.plugin || null,
    outcome: state.outcome || null,
    statusClass: state.statusClass || null,
  };
}

/**
 * The window the report covers, as the server draws it (domain/src/usage/period.rs): the range's
 * periods ending with the one now falls in. The export asks for exactly that, so the CSV adds up
 * to the figures on screen.
 */
export function reportWindow(state, now = new Date()) {
  const days = RANGES.find((r) => r.value === state.range).days;
  const end = new Date(now.getTime());
  if (state.period === "day") end.setUTCHours(24, 0, 0, 0);
  else end.setUTCHours(end.getUTCHours() + 1, 0, 0, 0);
  const start = new Date(end.getTime() - days * 86_400_000);
  return { from: stamp(start), to: stamp(end) };
}

// A date when at midnight (what the export's docs show), else a whole UTC hour in RFC 3339.
function stamp(d) {
  const iso = d.toISOString();
  return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : `${iso.slice(0, 13)}:00:00Z`;
}

/** The billing export's address for the selections: the same window and filters as the report. */
export function exportPath(state, now = new Date()) {
  const { from, to } = reportWindow(state, now);
  const query = new URLSearchParams({ from, to, group_by: state.groupBy, format: "csv" });
  if (state.plugin) query.set("plugin", state.plugin);
  if (state.outcome) query.set("outcome", state.outcome);
  if (state.statusClass) query.set("status_class", state.statusClass);
  return { path: `/v1/usage/export?${query}`, filename: `usage-${from}-to-${to}-by-${state.groupBy}.csv`.replaceAll(":", "") };
}
