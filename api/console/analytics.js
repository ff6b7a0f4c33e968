// Analytics: a range's usage (GraphQL `analytics`) with its controls, summary cards, charts and
// tables, and the billing export (REST /v1/usage/export) of the report on screen.

import { gql, download, describe } from "./api.js";
import { h, fill, number, percent, ms, card, metric, failure, toast, busy, latest, button } from "./ui.js";
import { timeChart, pieChart } from "./charts.js";
import * as filters from "./analytics_filters.js";
import * as tables from "./analytics_tables.js";
import { controls } from "./analytics_controls.js";
import { pluginNames } from "./plugins.js";
import { sentence } from "./words.js";

const QUERY = `query Analytics($range: String, $period: String, $plugin: String, $outcome: String, $statusClass: String, $key: String, $endpoint: String) {
  analytics(range: $range, period: $period, plugin: $plugin, outcome: $outcome, statusClass: $statusClass, key: $key, endpoint: $endpoint) {
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

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// An answer that arrives after a newer request, or after the user left the tab, is dropped
// instead of overwriting what is shown.
const reports = latest();
const scans = latest();

export function leave() {
  reports.stop();
  scans.stop();
}

export async function render(panel, ctx) {
  leave();
  const state = filters.restore();
  const body = h("div", { class: "an-body" });
  const status = h("p", { class: "hint an-status", role: "status" });
  const exportError = h("p", { class: "error-text an-export-error", role: "alert" });
  // The report on screen with the variables it was asked with: what the export repeats.
  let shown = null;

  const ui = controls(state, { changed: () => load(), exportCsv });
  const narrow = (change, focus) => {
    change();
    filters.save(state);
    ui.update();
    load();
    // The control that was used is gone with the old report.
    ui.focusFilters(focus);
  };
  const actions = {
    clear: () => narrow(() => filters.clearNarrowing(state)),
    only: (kind, id, label) => narrow(() => { state[kind] = id; state[`${kind}Label`] = label; }, kind),
  };

  async function load() {
    const mine = reports.next();
    const asked = filters.variables(state);
    body.setAttribute("aria-busy", "true");
    status.textContent = "Loading…";
    try {
      const { analytics } = await gql(QUERY, asked);
      if (!reports.current(mine)) return;
      shown = { report: analytics, asked };
      fill(body, view(analytics, state, actions));
      status.textContent = `Updated ${new Date().toLocaleTimeString("en-GB", { timeZone: "UTC" })} UTC.`;
    } catch (e) {
      if (!reports.current(mine)) return;
      shown = null;
      fill(body, failure(e));
      status.textContent = "";
    } finally {
      if (reports.current(mine)) body.removeAttribute("aria-busy");
    }
  }

  async function exportCsv(control) {
    exportError.textContent = "";
    const target = shown && filters.exportPath(shown.report, shown.asked, state.groupBy);
    if (!target) {
      exportError.textContent = "There is no report on screen to export. Press Refresh, and export once the report shows.";
      return;
    }
    await busy(control, async () => {
      try {
        await download(target.path, target.filename);
        toast("The usage export was downloaded.");
      } catch (e) {
        exportError.textContent = `The export failed: ${describe(e)}`;
      }
    });
  }

  fill(panel,
    h("div", { class: "panel-head" }, h("h2", {}, "Analytics"), ui.head),
    exportError,
    ui.toolbar,
    h("p", { class: "hint an-scope" }, scopeLine(ctx), " The billing export covers the report on screen: its window, in whole UTC hours or days, and its filters."),
    status,
    body);

  const scan = scans.next();
  pluginNames().then(({ names }) => {
    if (scans.current(scan)) ui.plugins(names);
  }).catch((e) => {
    if (scans.current(scan)) ui.pluginsFailed(describe(e));
  });

  await load();
}

function scopeLine(ctx) {
  return ctx.superuser
    ? "As a superuser you see every tenant's usage, as the API reports it."
    : `Usage of tenant ${ctx.me.tenant}.`;
}

function view(report, state, actions) {
  const range = filters.RANGES.find((r) => r.value === report.range) || filters.RANGES[0];
  if (!report.totalRequests) return empty(report, state, actions.clear);
  const perDay = report.period === "day";
  const points = report.volume.map((p) => ({ label: label(p.start, perDay), value: p.requests }));
  const keyNames = new Map(report.byKey.filter((k) => k.name).map((k) => [k.keyId, k.name]));
  const errorShare = report.errorCount / report.totalRequests;
  const active = { key: state.key, endpoint: state.endpoint };
  return [
    h("div", { class: "an-cards" },
      summary("Total Requests", number(report.totalRequests), "total-requests", range.label.toLowerCase()),
      summary("Success Rate", percent(report.successRate), "success-rate", "answered 2xx"),
      summary("Avg Response Time", ms(report.avgLatencyMs), "avg-response", "edge arrival to answer"),
      summary("Error Requests", number(report.errorCount), "error-requests", `${percent(errorShare)} of requests, 4xx and 5xx`),
      classed(card("Latency percentiles",
        h("div", { class: "metrics" },
          metric("P50", ms(report.latency.p50Ms), "latency-p50"),
          metric("P95", ms(report.latency.p95Ms), "latency-p95"),
          metric("P99", ms(report.latency.p99Ms), "latency-p99"))), "an-latency")),
    h("section", { class: "card an-section" },
      h("div", { class: "chart-head" },
        h("h3", {}, "Request Volume"),
        h("span", { class: "chip" }, `${perDay ? "Per day" : "Per hour"}, UTC · ${peakLine(points)}`)),
      timeChart(`Requests per ${perDay ? "day" : "hour"}, ${range.label.toLowerCase()}`, points, { area: true })),
    h("div", { class: "an-pair" },
      card("Plugin Usage Distribution",
        pieChart("Usage distribution", report.byPlugin.map((p) => ({ label: p.name, value: p.requests })))),
      card("Outcomes",
        h("p", { class: "hint" }, "Valid requests against each reason the edge refused one."),
        pieChart("Edge decisions", report.byOutcome.map((o) => ({ label: tables.outcomeText(o.name), value: o.requests }))))),
    classed(card("Top Endpoints",
      h("p", { class: "hint" }, "Error rate: green under 1 %, amber 1 to 5 %, red above 5 %. “Show only” narrows the whole report to one endpoint or key."),
      tables.topEndpoints(report.topEndpoints, active, actions.only)), "an-section"),
    classed(card("Error Breakdown",
      tables.errorHeadline(report, range.label),
      tables.errorsByStatus(report.errorsByStatus, report.errorCount),
      h("h4", { class: "an-subhead" }, "Recent errors"),
      tables.recentErrors(report.recentErrors, keyNames)), "an-section"),
    classed(card("Usage by Key",
      tables.usageByKey(report.byKey, report.totalRequests, active, actions.only)), "an-section"),
  ];
}

const classed = (el, name) => { el.classList.add(name); return el; };

const summary = (title, value, testid, sub) => classed(card(title,
  h("strong", { class: "metric-value", "data-testid": testid }, value),
  h("span", { class: "hint" }, sub)), "an-summary");

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
    reason ? h("p", {}, sentence(reason)) : null,
    narrowed
      ? h("p", {}, "The filters (plugin, outcome, status class, key or endpoint) may be hiding requests. ",
        button("Clear filters", clearFilters, { tone: "small" }))
      : h("p", {}, "Usage is collected when API keys are used through the edge. Make a few test requests with a key ",
        "(create one in the API Keys tab, or try an endpoint in the API Explorer), then press Refresh."));
}
