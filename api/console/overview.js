// Overview: the summary cards, the seven-day health panel and the 24-hour request chart, kept
// current by the usage subscription (each usage record the edge stores re-reads the figures).
// Updates change the figures in place, so a person reading or tabbing through keeps their place.

import { gql, subscribe, describe } from "./api.js";
import { h, fill, number, percent, ms, card, metric, failure, latest } from "./ui.js";
import { timeChart } from "./charts.js";

const QUERY = `{ overview {
  totalKeys activeKeys requestsToday totalEndpoints deprecatedEndpoints requests24H
  last7Days { totalRequests successRate avgResponseMs rateLimitHits }
  hourlyRequests { hour requests } } }`;

const STATES = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", error: "Live updates unavailable" };

// Each render is a turn: a render, a re-read or a subscription from an older one (the tab left,
// Refresh pressed twice) sees it is no longer current and stops.
const turn = latest();
let unsubscribe = null;
let pending = null;

function quiet() {
  if (unsubscribe) unsubscribe();
  unsubscribe = null;
  clearTimeout(pending);
  pending = null;
}

export function leave() {
  turn.stop();
  quiet();
}

export async function render(panel) {
  quiet();
  const n = turn.next();
  const status = h("span", { class: "live", role: "status", "data-state": "connecting" }, STATES.connecting);
  const body = h("div", { class: "overview" }, h("p", { class: "loading" }, "Loading the overview…"));
  fill(panel, h("div", { class: "panel-head" }, h("h2", {}, "Overview"), status), body);
  let shown = null;
  const show = async () => {
    try {
      const { overview } = await gql(QUERY);
      if (!turn.current(n)) return;
      if (!shown) shown = build(body);
      shown.update(overview);
    } catch (e) {
      if (!turn.current(n)) return;
      if (shown) shown.trouble(e);
      else fill(body, failure(e));
    }
  };
  await show();
  if (!turn.current(n)) return;
  unsubscribe = subscribe("subscription { usage { __typename } }", {}, () => {
    // At most one re-read a second however busy the edge is: a timer already set covers
    // every record until it fires (a debounce would never fire under steady traffic).
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      if (turn.current(n)) show();
    }, 1000);
  }, (state) => {
    if (!turn.current(n)) return;
    status.dataset.state = state;
    status.textContent = STATES[state] || state;
  });
}

/** The overview's frame, drawn once; `update` puts new figures into it. */
function build(body) {
  const figure = (label, testid) => {
    const el = metric(label, "—", testid);
    return { el, value: el.querySelector(".metric-value") };
  };
  const f = {
    totalKeys: figure("Total keys", "total-keys"),
    activeKeys: figure("Active keys", "active-keys"),
    requestsToday: figure("Requests today", "requests-today"),
    totalEndpoints: figure("Endpoints", "total-endpoints"),
    deprecatedEndpoints: figure("Deprecated", "deprecated-endpoints"),
    healthRequests: figure("Total API requests", "health-requests"),
    healthSuccess: figure("Success rate", "health-success"),
    healthLatency: figure("Avg response time", "health-latency"),
  };
  const healthNote = h("p", { class: "hint" });
  const requests24 = h("span", { class: "chip", "data-testid": "requests-24h" });
  const chart = h("div", {});
  // A failed re-read keeps the last figures and says so until the next one works.
  const notice = h("div", {});
  fill(body,
    notice,
    h("div", { class: "cards" },
      card("API Keys", h("div", { class: "metrics" }, f.totalKeys.el, f.activeKeys.el, f.requestsToday.el)),
      card("Endpoints", h("div", { class: "metrics" }, f.totalEndpoints.el, f.deprecatedEndpoints.el)),
      card("System health (7 days)",
        h("div", { class: "metrics" }, f.healthRequests.el, f.healthSuccess.el, f.healthLatency.el),
        healthNote)),
    h("section", { class: "card chart-card" },
      h("div", { class: "chart-head" }, h("h3", {}, "Requests, last 24 hours (UTC)"), requests24),
      chart));

  let drawn = null;
  const set = (el, text) => { if (el.textContent !== text) el.textContent = text; };
  return {
    update(o) {
      const health = o.last7Days;
      set(f.totalKeys.value, number(o.totalKeys));
      set(f.activeKeys.value, number(o.activeKeys));
      set(f.requestsToday.value, number(o.requestsToday));
      set(f.totalEndpoints.value, number(o.totalEndpoints));
      set(f.deprecatedEndpoints.value, number(o.deprecatedEndpoints));
      set(f.healthRequests.value, number(health.totalRequests));
      set(f.healthSuccess.value, percent(health.successRate));
      set(f.healthLatency.value, ms(health.avgResponseMs));
      set(healthNote, healthLine(health));
      set(requests24, `${number(o.requests24H)} requests`);
      if (notice.firstChild) notice.replaceChildren();
      // Drawn again only when an hour's figure (or the width it is drawn for) changed.
      const points = o.hourlyRequests.map((p) => ({ label: `${new Date(p.hour).getUTCHours().toString().padStart(2, "0")}:00`, value: p.requests }));
      const key = `${window.innerWidth}|${o.requests24H}|${points.map((p) => `${p.label}=${p.value}`).join(",")}`;
      if (key === drawn) return;
      drawn = key;
      fill(chart, o.requests24H === 0
        ? h("p", { class: "empty" }, "No requests in the last 24 hours. Usage appears here as soon as a key is used through the edge.")
        : timeChart("Requests per hour, last 24 hours", points, { area: false }));
    },
    trouble(e) {
      const text = `The figures below are not up to date. ${describe(e)}`;
      if (notice.textContent !== text) fill(notice, h("div", { class: "notice error", role: "alert" }, text));
    },
  };
}

function healthLine(health) {
  if (!health.totalRequests) return "No requests through the edge in the last seven days.";
  if (health.successRate !== null && health.successRate < 0.95) return "More than 5 % of requests failed this week: see Analytics for which endpoints.";
  return `${number(health.rateLimitHits)} requests refused by rate limits this week.`;
}
