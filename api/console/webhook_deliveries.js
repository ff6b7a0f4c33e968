// The delivery log: figures over 24 hours, 7 and 30 days, and every delivery, newest first,
// filtered by subscription, status and event type, a page at a time. While a delivery in view is
// still pending the page re-reads itself, so a retry or a resend shows how it went.

import { gql } from "./api.js";
import { h, fill, table, button, field, number, percent, ms, card, metric, failure, emptyState, nextId } from "./ui.js";
import { sectionHead, everyPage, statusBadge, EVENT_TYPES, keepingFocus, exactly } from "./webhook_common.js";
import { deliveryDialog } from "./webhook_delivery_detail.js";

const PAGE_SIZE = 50;
const POLL_MS = 3000;
const LIST = `query($webhookId: String, $status: String, $eventType: String, $cursor: String) {
  webhookDeliveries(webhookId: $webhookId, status: $status, eventType: $eventType, limit: ${PAGE_SIZE}, cursor: $cursor) {
    data { id webhookId eventType status attempts nextAttemptAt lastStatusCode lastError createdAt updatedAt } nextCursor } }`;
const STATS = `query($webhookId: String) { webhookStats(webhookId: $webhookId) { periods {
  period deliveries delivered failed pending successRate attempts avgDurationMs p95DurationMs } } }`;
const SUBSCRIPTIONS = `query($cursor: String) { webhooks(limit: 200, cursor: $cursor) { data { id url status } nextCursor } }`;
const PERIODS = { "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days" };
const STATUSES = ["pending", "held", "delivered", "failed"];

let poll = null;

export function leave() {
  clearTimeout(poll);
  poll = null;
}

export async function render(panel, ctx, nav, options = {}) {
  leave();
  const write = ctx.can("API_MANAGEMENT_WRITE");
  const { rows: subs } = await everyPage(SUBSCRIPTIONS, "webhooks");
  const filters = { webhookId: options.webhookId || "", status: "", eventType: "" };
  const pages = [null]; // the cursor of each page read so far, for going back
  const stats = h("div", { class: "wh-stats" });
  const list = h("div", { class: "wh-body-area" });

  const select = (label, choices, key) => {
    const el = h("select", { id: nextId("flt"), onchange: () => { filters[key] = el.value; pages.length = 1; refresh(); } },
      choices.map(([value, text]) => h("option", { value, selected: filters[key] === value }, text)));
    return field(label, el);
  };
  const toolbar = h("div", { class: "toolbar wh-filters", role: "group", "aria-label": "Filter deliveries" },
    select("Subscription", [["", "All subscriptions"], ...subs.map((s) => [s.id, s.url])], "webhookId"),
    select("Status", [["", "Any status"], ...STATUSES.map((s) => [s, s.charAt(0).toUpperCase() + s.slice(1)])], "status"),
    select("Event type", [["", "Any event type"], ...EVENT_TYPES.map(([t]) => [t, t])], "eventType"),
    button("Reload", () => refresh(), { tone: "small wh-reload" }));

  const urlOf = (id) => (subs.find((s) => s.id === id) || {}).url;
  const showStats = async () => {
    try {
      const { webhookStats } = await gql(STATS, { webhookId: filters.webhookId || null });
      fill(stats, statsView(webhookStats.periods));
    } catch (e) {
      fill(stats, failure(e));
    }
  };
  const showList = () => keepingFocus(list, async () => {
    clearTimeout(poll);
    try {
      const cursor = pages[pages.length - 1];
      const { webhookDeliveries } = await gql(LIST, {
        webhookId: filters.webhookId || null, status: filters.status || null, eventType: filters.eventType || null, cursor,
      });
      const page = webhookDeliveries;
      if (!list.isConnected) return;
      fill(list, listView(page, { subs, urlOf, filters, pages, write, showList, refresh }));
      if (page.data.some((d) => d.status === "pending")) poll = setTimeout(refresh, POLL_MS);
    } catch (e) {
      fill(list, failure(e));
    }
  });
  // Not under an open dialog: its opener must stay in the page for focus to return to it.
  async function refresh() {
    clearTimeout(poll);
    if (document.querySelector("dialog[open]")) {
      poll = setTimeout(refresh, 1000);
      return;
    }
    await Promise.all([showStats(), showList()]);
  }

  fill(panel,
    sectionHead("Delivery log", "Every event sent to a subscription, each attempt, and how the receiver answered. Failed deliveries are retried on a schedule.", null),
    stats, toolbar, list);
  await refresh();
}

function statsView(periods) {
  return h("div", { class: "cards wh-stat-cards" }, periods.map((p) => card(PERIODS[p.period] || p.period,
    h("div", { class: "metrics" },
      metric("Deliveries", number(p.deliveries), `wh-deliveries-${p.period}`),
      metric("Success rate", percent(p.successRate), `wh-success-${p.period}`),
      metric("Attempts", number(p.attempts), `wh-attempts-${p.period}`),
      metric("Avg duration", ms(p.avgDurationMs), `wh-avg-${p.period}`),
      metric("P95 duration", ms(p.p95DurationMs), `wh-p95-${p.period}`)),
    h("p", { class: "hint" }, `${number(p.delivered)} delivered, ${number(p.failed)} failed, ${number(p.pending)} pending or held.`))));
}

function listView(page, { subs, urlOf, filters, pages, write, showList, refresh }) {
  const rows = page.data;
  if (!rows.length) return emptyState(emptyWords(subs, filters, pages.length > 1));
  const columns = [
    { label: "Time", cell: (d) => h("span", { class: "wh-time" }, exactly(d.createdAt)) },
    { label: "Event type", cell: (d) => h("code", {}, d.eventType) },
    { label: "Subscription", cell: (d) => h("code", { class: "wh-url" }, urlOf(d.webhookId) || "A deleted subscription") },
    { label: "Status", cell: (d) => statusBadge(d.status) },
    { label: "Last status code", class: "num", cell: (d) => (d.lastStatusCode === null ? (d.lastError ? "no answer" : "—") : String(d.lastStatusCode)) },
    { label: "Attempts", class: "num", cell: (d) => number(d.attempts) },
    { label: "Next retry", cell: (d) => (d.nextAttemptAt && (d.status === "pending" || d.status === "held") ? h("span", { class: "wh-time" }, exactly(d.nextAttemptAt)) : "—") },
    { label: "Details", cell: (d) => button("Details", () => deliveryDialog(d.id, { url: urlOf(d.webhookId), write, changed: refresh }), {
      tone: "small", "aria-label": `Details of the ${d.eventType} delivery, ${exactly(d.createdAt)}`, "data-key": `details:${d.id}` }) },
  ];
  const failing = rows.some((d) => d.status === "failed" || (d.status === "pending" && d.attempts > 0));
  return [
    failing ? h("div", { class: "notice warn" },
      h("strong", {}, "Some deliveries are failing. "),
      "Check that the receiving server is reachable and answers with a 2xx status, that the URL is right, and that it accepts the payload format. ",
      "A delivery's Details show each attempt's error and the receiver's answer.") : null,
    table("Webhook deliveries", columns, rows),
    pager(page, pages, showList),
  ];
}

function pager(page, pages, showList) {
  if (pages.length === 1 && !page.nextCursor) return null;
  const back = button("Previous page", () => { pages.pop(); showList(); }, { tone: "small", disabled: pages.length === 1, "data-key": "page-back", "data-group": "pager" });
  const next = button("Next page", () => { pages.push(page.nextCursor); showList(); }, { tone: "small", disabled: !page.nextCursor, "data-key": "page-next", "data-group": "pager" });
  return h("nav", { class: "wh-pager", "aria-label": "Delivery pages" }, back, h("span", { class: "hint" }, `Page ${pages.length}`), next);
}

function emptyWords(subs, filters, later) {
  if (later) return "No more deliveries: this is the end of the log.";
  if (!subs.length) return "No deliveries yet, and no subscriptions: deliveries appear once a subscription exists and an event it listens to happens. Create one under Subscriptions.";
  if (filters.webhookId || filters.status || filters.eventType) return "No deliveries match these filters. Choose Any or All to see more.";
  return "No deliveries yet: deliveries appear once an event a subscription listens to happens (issuing an API key sends key.created, for instance). Delivered and failed ones stay 30 days.";
}
