// Overview: the summary cards, the seven-day health panel and the 24-hour request chart, kept
// current by the usage subscription (each usage record the edge stores re-reads the figures).

import { gql, subscribe } from "./api.js";
import { h, fill, number, percent, ms, card, metric, failure } from "./ui.js";
import { timeChart } from "./charts.js";

const QUERY = `{ overview {
  totalKeys activeKeys requestsToday totalEndpoints deprecatedEndpoints requests24H
  last7Days { totalRequests successRate avgResponseMs rateLimitHits }
  hourlyRequests { hour requests } } }`;

let unsubscribe = null;
let pending = null;

export function leave() {
  if (unsubscribe) unsubscribe();
  unsubscribe = null;
  clearTimeout(pending);
  pending = null;
}

export async function render(panel) {
  leave();
  const body = h("div", { class: "overview" });
  const status = h("span", { class: "live", "data-state": "connecting" }, "Connecting…");
  fill(panel, h("div", { class: "panel-head" }, h("h2", {}, "Overview"), status), body);
  const show = async () => {
    try {
      const { overview } = await gql(QUERY);
      fill(body, view(overview));
    } catch (e) {
      fill(body, failure(e));
    }
  };
  await show();
  unsubscribe = subscribe("subscription { usage { __typename } }", {}, () => {
    // At most one re-read a second however busy the edge is: a timer already set covers
    // every record until it fires (a debounce would never fire under steady traffic).
    if (pending) return;
    pending = setTimeout(() => { pending = null; show(); }, 1000);
  }, (state) => {
    status.dataset.state = state;
    status.textContent = { live: "Live", reconnecting: "Reconnecting…", error: "Live updates unavailable" }[state] || state;
  });
}

function view(o) {
  const health = o.last7Days;
  const points = o.hourlyRequests.map((p) => ({ label: `${new Date(p.hour).getUTCHours().toString().padStart(2, "0")}:00`, value: p.requests }));
  return [
    h("div", { class: "cards" },
      card("API Keys",
        h("div", { class: "metrics" },
          metric("Total keys", number(o.totalKeys), "total-keys"),
          metric("Active keys", number(o.activeKeys), "active-keys"),
          metric("Requests today", number(o.requestsToday), "requests-today"))),
      card("Endpoints",
        h("div", { class: "metrics" },
          metric("Endpoints", number(o.totalEndpoints), "total-endpoints"),
          metric("Deprecated", number(o.deprecatedEndpoints), "deprecated-endpoints"))),
      card("System health (7 days)",
        h("div", { class: "metrics" },
          metric("Total API requests", number(health.totalRequests), "health-requests"),
          metric("Success rate", percent(health.successRate), "health-success"),
          metric("Avg response time", ms(health.avgResponseMs), "health-latency")),
        h("p", { class: "hint" }, healthLine(health)))),
    h("section", { class: "card chart-card" },
      h("div", { class: "chart-head" },
        h("h3", {}, "Requests, last 24 hours (UTC)"),
        h("span", { class: "chip", "data-testid": "requests-24h" }, `${number(o.requests24H)} requests`)),
      o.requests24H === 0
        ? h("p", { class: "empty" }, "No requests in the last 24 hours. Usage appears here as soon as a key is used through the edge.")
        : timeChart("Requests per hour, last 24 hours", points, { area: false })),
  ];
}

function healthLine(health) {
  if (!health.totalRequests) return "No requests through the edge in the last seven days.";
  if (health.successRate !== null && health.successRate < 0.95) return "More than 5 % of requests failed this week: see Analytics for which endpoints.";
  return `${number(health.rateLimitHits)} requests refused by rate limits this week.`;
}
