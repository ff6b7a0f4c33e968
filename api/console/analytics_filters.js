// The analytics tab's selections: what each control offers, how they persist between sessions
// (local storage, so they outlive the signed-in tab), the query they make and the export of the
// report on screen.

export const STORAGE_KEY = "keyledger.analytics";

export const RANGES = [
  { value: "24h", label: "Last 24 hours" },
  { value: "7d", label: "Last 7 days" },
  { value: "30d", label: "Last 30 days" },
  { value: "90d", label: "Last 90 days" },
];

export const PERIODS = [
  { value: "day", label: "Daily" },
  { value: "hour", label: "Hourly" },
];

const PERIOD_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

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

// `key` and `endpoint` are ids, set from a table row; their labels name them in the filter chips.
const NARROWING = { plugin: "", outcome: "", statusClass: "", key: "", keyLabel: "", endpoint: "", endpointLabel: "" };
const DEFAULTS = { range: "7d", period: "day", groupBy: "key" };

/** The saved selections, each checked against what the controls offer (a stale or edited entry falls back). */
export function restore() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}") || {};
  } catch { /* unreadable: start from the defaults */ }
  const pick = (value, allowed, fallback) => (typeof value === "string" && allowed(value) ? value : fallback);
  const any = () => true;
  return {
    range: pick(saved.range, (v) => RANGES.some((r) => r.value === v), DEFAULTS.range),
    period: pick(saved.period, (v) => PERIODS.some((p) => p.value === v), DEFAULTS.period),
    // Plugins, keys and endpoints may have changed since: any value is kept, and a filter that
    // now matches nothing says so in the report.
    plugin: pick(saved.plugin, any, ""),
    outcome: pick(saved.outcome, (v) => v === "" || v in OUTCOMES, ""),
    statusClass: pick(saved.statusClass, (v) => v === "" || STATUS_CLASSES.includes(v), ""),
    key: pick(saved.key, any, ""),
    keyLabel: pick(saved.keyLabel, any, ""),
    endpoint: pick(saved.endpoint, any, ""),
    endpointLabel: pick(saved.endpointLabel, any, ""),
    groupBy: pick(saved.groupBy, (v) => GROUPINGS.some((g) => g.value === v), DEFAULTS.groupBy),
  };
}

export function save(state) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(state));
  } catch { /* storage full or disabled: the selection still applies to this view */ }
}

export const narrowed = (state) => Boolean(state.plugin || state.outcome || state.statusClass || state.key || state.endpoint);

export function clearNarrowing(state) {
  Object.assign(state, NARROWING);
}

/** The GraphQL variables for `analytics`; an empty filter is sent as null, which means "any". */
export function variables(state) {
  return {
    range: state.range,
    period: state.period,
    plugin: state.plugin || null,
    outcome: state.outcome || null,
    statusClass: state.statusClass || null,
    key: state.key || null,
    endpoint: state.endpoint || null,
  };
}

/**
 * The billing export of a report on screen: its own window (its first period's start to its last
 * period's end, as the server drew it) and the filters it was asked with (`variables`), so the
 * CSV adds up to the figures shown. Null when the report has no periods.
 */
export function exportPath(report, asked, groupBy) {
  const volume = report.volume;
  if (!volume.length) return null;
  const from = new Date(volume[0].start);
  const to = new Date(new Date(volume[volume.length - 1].start).getTime() + PERIOD_MS[report.period]);
  const query = new URLSearchParams({ from: stamp(from), to: stamp(to), group_by: groupBy, format: "csv" });
  const params = { plugin: asked.plugin, outcome: asked.outcome, status_class: asked.statusClass, key: asked.key, endpoint: asked.endpoint };
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
  const name = `usage-${stamp(from)}-to-${stamp(to)}-by-${groupBy}.csv`.replaceAll(":", "");
  return { path: `/v1/usage/export?${query}`, filename: name };
}

// A date when at midnight (what the export's docs show), else a whole UTC hour in RFC 3339.
function stamp(d) {
  const iso = d.toISOString();
  return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : `${iso.slice(0, 13)}:00:00Z`;
}
