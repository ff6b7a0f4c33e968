// Analytics: a range's usage (GraphQL `analytics`) with its controls, summary cards, charts and
// tables, and the billing export (REST /v1/usage/export) of the same window and filters.

import { gql, download, describe } from "./api.js";
import { h, fill, field, button, number, percent, ms, metric, failure, toast } from "./ui.js";
import { timeChart, pieChart } from "./charts.js";
import * as filters from "./analytics_filters.js";
import * as tables from "./analytics_tables.js";

const QUERY = `query Analytics($range: String, $period: String, $plugin: String, $outcome: String, $statusClass: String) {
  analytics(range: $range, period: $period, plugin: $plugin, outcome: $outcome, statusClass: $statusClass) {
    range period totalRequests successRate avgLatencyMs errorCount
    latency { p50Ms p95Ms p99Ms }
    volume { start requests }
    byPlugin { name requests }
    byOutcome { name requests }
    previousErrorCount errorChange
    errorsByStatus { status requests previousRequests change }
    recentErrors { id at keyId plugin method path status outcome latencyMs }
    topEndpoints { endpointId methods path plugin requests avgLatencyMs errorRate errorClass latency { p95Ms } }
    byKey { keyId name requests }
    emptyReason } }`;

// The plugin filter offers the catalogue's plugins, not only those with traffic in the range.
const PLUGINS = "{ endpoints(limit: 200) { data { plugin } } }";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// Bumped by each load and by leave(): an answer that arrives after a newer request, or after the
// user left the tab, is dropped instead of overwriting what is shown.
let generation = 0;

export function leave() {
  generation++;
}

export async function render(panel, ctx) {
  leave();
  const state = filters.restore();
  const body = h("div", { class: "an-body" });
  const status = h("p", { class: "hint an-status", role: "status" });
  const exportError = h("p", { class: "error-text an-export-error", role: "alert" });

  const change = (prop) => (event) => {
    state[prop] = event.target.value;
    filters.save(state);
    if (prop !== "groupBy") load();
  };
  const pluginSelect = select(pluginOptions([], state.plugin), state.plugin, change("plugin"));
  const exportButton = button("Export CSV for billing", () => exportCsv(), { tone: "primary" });

  async function load() {
    const mine = ++generation;
    body.setAttribute("aria-busy", "true");
    status.textContent = "Loading…";
    try {
      const { analytics } = await gql(QUERY, filters.variables(state));
      if (mine !== generation) return;
      fill(body, view(analytics, state, ctx, clearFilters));
      status.textContent = `Updated ${new Date().toLocaleTimeString("en-GB", { timeZone: "UTC" })} UTC.`;
    } catch (e) {
      if (mine !== generation) return;
      fill(body, failure(e));
      status.textContent = "";
    } finally {
      if (mine === generation) body.removeAttribute("aria-busy");
    }
  }

  function clearFilters() {
    state.plugin = state.outcome = state.statusClass = "";
    filters.save(state);
    for (const el of panel.querySelectorAll("select[data-filter]")) el.value = "";
    load();
  }

  async function exportCsv() {
    exportButton.disabled = true;
    exportError.textContent = "";
    try {
      const { path, filename } = filters.exportPath(state);
      await download(path, filename);
      toast("The usage export was downloaded.");
    } catch (e) {
      exportError.textContent = `The export failed: ${describe(e)}`;
    } finally {
      exportButton.disabled = false;
    }
  }

  fill(panel,
    h("div", { class: "panel-head" },
      h("h2", {}, "Analytics"),
      h("div", { class: "an-export" },
        field("Group export by", select(filters.GROUPINGS, state.groupBy, change("groupBy"))),
        exportButton)),
    exportError,
    h("div", { class: "toolbar an-controls" },
      field("Time range", select(filters.RANGES, state.range, change("range"))),
      field("Period", select(filters.PERIODS, state.period, change("period"))),
      field("Plugin", tag(pluginSelect)),
      field("Outcome", tag(select(outcomeOptions(), state.outcome, change("outcome")))),
      field("Status class", tag(select(statusOptions(), state.statusClass, change("statusClass")))),
      button("Refresh", () => load())),
    h("p", { class: "hint an-scope" }, scopeLine(ctx), " The billing export covers the same window and filters, in whole UTC hours or days."),
    status,
    body);

  gql(PLUGINS).then(({ endpoints }) => {
    const names = [...new Set(endpoints.data.map((e) => e.plugin))];
    fill(pluginSelect, pluginOptions(names, state.plugin).map(option));
    pluginSelect.value = state.plugin;
  }).catch(() => { /* the filter keeps what it has; the report shows any failure in words */ });

  await load();
}

function scopeLine(ctx) {
  return ctx.superuser
    ? "As a superuser you see every tenant's usage, as the API reports it."
    : `Usage of tenant ${ctx.me.tenant}.`;
}

const tag = (el) => { el.dataset.filter = "true"; return el; };

function select(options, value, onchange) {
  const el = h("select", { onchange }, options.map(option));
  el.value = value;
  return el;
}

const option = (o) => h("option", { value: o.value }, o.label);

function pluginOptions(names, current) {
  const all = [...new Set([...names, ...(current ? [current] : [])])].sort();
  return [{ value: "", label: "All plugins" }, ...all.map((n) => ({ value: n, label: n }))];
}

const outcomeOptions = () => [{ value: "", label: "All outcomes" },
  ...Object.entries(filters.OUTCOMES).map(([value, label]) => ({ value, label }))];

const statusOptions = () => [{ value: "", label: "All statuses" },
  ...filters.STATUS_CLASSES.map((c) => ({ value: c, label: c }))];

function view(report, state, ctx, clearFilters) {
  const range = filters.RANGES.find((r) => r.value === report.range) || filters.RANGES[0];
  if (!report.totalRequests) return empty(report, state, clearFilters);
  const perDay = report.period === "day";
  const points = report.volume.map((p) => ({ label: label(p.start, perDay), value: p.requests }));
  const keyNames = new Map(report.byKey.filter((k) => k.name).map((k) => [k.keyId, k.name]));
  const errorShare = report.errorCount / report.totalRequests;
  return [
    h("div", { class: "an-cards" },
      summary("Total Requests", number(report.totalRequests), "total-requests", range.label.toLowerCase()),
      summary("Success Rate", percent(report.successRate), "success-rate", "answered 2xx"),
      summary("Avg Response Time", ms(report.avgLatencyMs), "avg-response", "edge arrival to answer"),
      summary("Error Requests", number(report.errorCount), "error-requests", `${percent(errorShare)} of requests, 4xx and 5xx`),
      h("section", { class: "card an-latency" },
        h("h3", {}, "Latency percentiles"),
        h("div", { class: "metrics" },
          metric("P50", ms(report.latency.p50Ms), "latency-p50"),
          metric("P95", ms(report.latency.p95Ms), "latency-p95"),
          metric("P99", ms(report.latency.p99Ms), "latency-p99")))),
    h("section", { class: "card an-section" },
      h("div", { class: "chart-head" },
        h("h3", {}, "Request Volume"),
        h("span", { class: "chip" }, `${perDay ? "Per day" : "Per hour"}, UTC · ${peakLine(points)}`)),
      timeChart(`Requests per ${perDay ? "day" : "hour"}, ${range.label.toLowerCase()}`, points, { area: true })),
    h("div", { class: "an-pair" },
      h("section", { class: "card" },
        h("h3", {}, "Plugin Usage Distribution"),
        pieChart("Usage distribution", report.byPlugin.map((p) => ({ label: p.name, value: p.requests })))),
      h("section", { class: "card" },
        h("h3", {}, "Outcomes"),
        h("p", { class: "hint" }, "Valid requests against each reason the edge refused one."),
        pieChart("Edge decisions", report.byOutcome.map((o) => ({ label: tables.outcomeText(o.name), value: o.requests }))))),
    h("section", { class: "card an-section" },
      h("h3", {}, "Top Endpoints"),
      h("p", { class: "hint" }, "Error rate: green under 1 %, amber 1 to 5 %, red above 5 %."),
      tables.topEndpoints(report.topEndpoints)),
    h("section", { class: "card an-section" },
      h("h3", {}, "Error Breakdown"),
      tables.errorHeadline(report, range.label),
      tables.errorsByStatus(report.errorsByStatus, report.errorCount),
      h("h4", { class: "an-subhead" }, "Recent errors"),
      tables.recentErrors(report.recentErrors, keyNames)),
    h("section", { class: "card an-section" },
      h("h3", {}, "Usage by Key"),
      tables.usageByKey(report.byKey, report.totalRequests)),
  ];
}

function summary(title, value, testid, sub) {
  return h("section", { class: "card an-summary" },
    h("h3", {}, title),
    h("strong", { class: "metric-value", "data-testid": testid }, value),
    h("span", { class: "hint" }, sub));
}

function peakLine(points) {
  const peak = Math.max(0, ...points.map((p) => p.value));
  const avg = points.length ? points.reduce((s, p) => s + p.value, 0) / points.length : 0;
  const mean = avg > 0 && avg < 0.1 ? "under 0.1" : number(Math.round(avg * 10) / 10);
  return `${mean} avg, ${number(peak)} peak`;
}

function label(iso, perDay) {
  const d = new Date(iso);
  const day = `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
  return perDay ? day : `${day} ${String(d.getUTCHours()).padStart(2, "0")}:00`;
}

function empty(report, state, clearFilters) {
  const reason = (report.emptyReason || "").replace(/^No analytics data available:?\s*/i, "");
  const narrowed = filters.narrowed(state);
  return h("div", { class: "empty an-empty", "data-testid": "analytics-empty" },
    h("p", { class: "an-empty-title" }, "No analytics data available."),
    reason ? h("p", {}, `${reason.charAt(0).toUpperCase()}${reason.slice(1)}.`) : null,
    narrowed
      ? h("p", {}, "The plugin, outcome or status filters may be hiding requests. ", button("Clear filters", clearFilters, { tone: "small" }))
      : null,
    narrowed
      ? null
      : h("p", {}, "Usage is collected when API keys are used through the edge. Make a few test requests with a key ",
        "(create one in the API Keys tab, or try an endpoint in the API Explorer), then press Refresh."));
}
