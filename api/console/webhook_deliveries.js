// The delivery log: figures over 24 hours, 7 and 30 days, and every delivery, newest first,
// filtered by subscription, status and event type, a page at a time. While a delivery in view has
// an attempt due within the minute, the page looks again once it is due, so a retry shows how it
// went; otherwise it waits for Reload.

import { gql, everyPage } from "./api.js";
import { h, fill, table, button, field, number, percent, ms, metric, failure, emptyState, select, latest } from "./ui.js";
import { sectionHead, statusBadge, EVENT_TYPES, keepingFocus, exactly, subscriptionName, nextLook } from "./webhook_common.js";
import { deliveryDialog } from "./webhook_delivery_detail.js";

const PAGE_SIZE = 50;
const LIST = `query($webhookId: String, $status: String, $eventType: String, $cursor: String) {
  webhookDeliveries(webhookId: $webhookId, status: $status, eventType: $eventType, limit: ${PAGE_SIZE}, cursor: $cursor) {
    data { id webhookId eventType status attempts nextAttemptAt lastStatusCode lastError createdAt updatedAt } nextCursor } }`;
const STATS = `query($webhookId: String) { webhookStats(webhookId: $webhookId) { periods {
  period deliveries delivered failed pending successRate attempts avgDurationMs p95DurationMs } } }`;
const SUBSCRIPTIONS = `query($cursor: String) { webhooks(limit: 200, cursor: $cursor) { data { id url description status } nextCursor } }`;
const PERIODS = { "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days" };
const STATUSES = ["pending", "held", "delivered", "failed"];

// Only the newest answer is shown, and none once the section is left. The figures and the list
// are asked for apart: a look at the list alone must not make figures read for a filter stale.
const statsTurn = latest();
const listTurn = latest();
let timer = null;
let whenVisible = null;

export function leave() {
  statsTurn.stop();
  listTurn.stop();
  stopLooking();
}

function stopLooking() {
  clearTimeout(timer);
  timer = null;
  if (whenVisible) document.removeEventListener("visibilitychange", whenVisible);
  whenVisible = null;
}

export async function render(panel, ctx, nav, options = {}) {
  leave();
  const write = ctx.can("API_MANAGEMENT_WRITE");
  const opened = listTurn.next();
  const known = await everyPage(SUBSCRIPTIONS, "webhooks");
  if (!listTurn.current(opened)) return;
  let subs = known.rows;
  let subsComplete = !known.truncated;
  const filters = { webhookId: options.webhookId || "", status: "", eventType: "" };
  const pages = [null]; // the cursor of each page read so far, for going back
  const statsTitle = h("h4", { class: "wh-stats-title" });
  const stats = h("div", { class: "wh-stats" });
  const list = h("div", { class: "wh-body-area" });
  let drawn = null; // what the list shows, to leave it alone when a look finds nothing new
  let quiet = 0;

  const subOptions = () => [{ value: "", label: "All subscriptions" }, ...subs.map((s) => ({ value: s.id, label: subscriptionName(s) }))];
  const choose = (key) => ({ onchange: (event) => { filters[key] = event.target.value; pages.length = 1; refresh(); } });
  const subSelect = select(subOptions(), filters.webhookId, choose("webhookId"));
  const toolbar = h("div", { class: "toolbar wh-filters", role: "group", "aria-label": "Filter deliveries" },
    field("Subscription", subSelect),
    field("Status", select([{ value: "", label: "Any status" }, ...STATUSES.map((s) => ({ value: s, label: s.charAt(0).toUpperCase() + s.slice(1) }))], "", choose("status"))),
    field("Event type", select([{ value: "", label: "Any event type" }, ...EVENT_TYPES.map(([t]) => ({ value: t, label: t }))], "", choose("eventType"))),
    button("Reload", () => refresh(), { tone: "small wh-reload" }));

  const subOf = (id) => subs.find((s) => s.id === id);
  const urlOf = (id) => (subOf(id) || {}).url;
  // A delivery to a subscription made since the tab opened: read the subscriptions again, once
  // for each id not known (a deleted one stays unknown).
  const looked = new Set();
  const learn = async (rows, n) => {
    const unknown = rows.map((d) => d.webhookId).filter((id) => !subOf(id) && !looked.has(id));
    if (!unknown.length) return;
    for (const id of unknown) looked.add(id);
    try {
      const again = await everyPage(SUBSCRIPTIONS, "webhooks");
      if (!listTurn.current(n)) return;
      subs = again.rows;
      subsComplete = !again.truncated;
      fill(subSelect, [...select(subOptions(), filters.webhookId).options]);
    } catch {
      subsComplete = false; // the names are a courtesy: the deliveries show without them
    }
  };
  const showStats = async (n) => {
    const url = urlOf(filters.webhookId);
    statsTitle.textContent = filters.webhookId ? `Figures for ${url || "this subscription"}` : "Figures for every subscription";
    try {
      const { webhookStats } = await gql(STATS, { webhookId: filters.webhookId || null });
      if (statsTurn.current(n)) fill(stats, statsView(webhookStats.periods));
    } catch (e) {
      if (statsTurn.current(n)) fill(stats, failure(e));
    }
  };
  const showList = (n) => keepingFocus(list, async () => {
    stopLooking();
    let page;
    try {
      page = (await gql(LIST, {
        webhookId: filters.webhookId || null, status: filters.status || null, eventType: filters.eventType || null, cursor: pages[pages.length - 1],
      })).webhookDeliveries;
      if (!listTurn.current(n)) return;
      await learn(page.data, n);
    } catch (e) {
      if (listTurn.current(n)) { drawn = null; fill(list, failure(e)); }
      return;
    }
    if (!listTurn.current(n)) return;
    const seen = JSON.stringify(page);
    quiet = seen === drawn ? quiet + 1 : 0;
    if (seen !== drawn) {
      drawn = seen;
      fill(list, listView(page, { subs, subsComplete, urlOf, filters, pages, turn: () => showList(listTurn.next()), details }));
    }
    const wait = nextLook(page.data, quiet);
    if (wait !== null) timer = setTimeout(look, wait);
  });
  // A look re-reads the page in view only; the figures wait for Reload. Not while the page is
  // hidden, and not under an open dialog (the opener it returns focus to must stay in the page).
  function look() {
    if (document.hidden) {
      whenVisible = () => { if (!document.hidden) { stopLooking(); look(); } };
      document.addEventListener("visibilitychange", whenVisible);
    } else if (document.querySelector("dialog[open]")) {
      timer = setTimeout(look, 2000);
    } else {
      showList(listTurn.next());
    }
  }
  async function refresh() {
    drawn = null;
    await Promise.all([showStats(statsTurn.next()), showList(listTurn.next())]);
  }
  async function details(d) {
    const sub = subOf(d.webhookId);
    const resent = await deliveryDialog(d.id, { url: sub && sub.url, subscription: sub ? sub.status : null, write });
    if (resent) await refresh();
  }

  fill(panel,
    sectionHead("Delivery log", "Every event sent to a subscription, each attempt, and how the receiver answered. Failed deliveries are retried on a schedule.", null),
    statsTitle, stats, toolbar, list);
  await refresh();
}

function statsView(periods) {
  return h("div", { class: "cards wh-stat-cards" }, periods.map((p) => h("section", { class: "card" },
    h("h5", {}, PERIODS[p.period] || p.period),
    h("div", { class: "metrics" },
      metric("Deliveries", number(p.deliveries), `wh-deliveries-${p.period}`),
      metric("Success rate", percent(p.successRate), `wh-success-${p.period}`),
      metric("Attempts", number(p.attempts), `wh-attempts-${p.period}`),
      metric("Avg duration", ms(p.avgDurationMs), `wh-avg-${p.period}`),
      metric("P95 duration", ms(p.p95DurationMs), `wh-p95-${p.period}`)),
    h("p", { class: "hint" }, `${number(p.delivered)} delivered, ${number(p.failed)} failed, ${number(p.pending)} pending or held.`))));
}

function listView(page, { subs, subsComplete, urlOf, filters, pages, turn, details }) {
  const rows = page.data;
  if (!rows.length) return emptyState(emptyWords(subs, filters, pages.length > 1));
  // Read again just now without it: it was deleted (unless the list of subscriptions was cut short).
  const gone = subsComplete ? "A deleted subscription" : "Unknown subscription";
  const columns = [
    { label: "Time", cell: (d) => h("span", { class: "wh-time" }, exactly(d.createdAt)) },
    { label: "Event type", cell: (d) => h("code", {}, d.eventType) },
    { label: "Subscription", cell: (d) => (urlOf(d.webhookId) ? h("code", { class: "wh-url" }, urlOf(d.webhookId)) : h("span", { class: "hint" }, gone)) },
    { label: "Status", cell: (d) => statusBadge(d.status) },
    { label: "Last status code", class: "num", cell: (d) => (d.lastStatusCode === null ? (d.lastError ? "no answer" : "—") : String(d.lastStatusCode)) },
    { label: "Attempts", class: "num", cell: (d) => number(d.attempts) },
    { label: "Next retry", cell: (d) => (d.nextAttemptAt && d.status === "pending" ? h("span", { class: "wh-time" }, exactly(d.nextAttemptAt)) : "—") },
    { label: "Details", cell: (d) => button("Details", () => details(d), {
      tone: "small", "aria-label": `Details of the ${d.eventType} delivery, ${exactly(d.createdAt)}`, "data-key": `details:${d.id}` }) },
  ];
  const failing = rows.some((d) => d.status === "failed" || (d.status === "pending" && d.attempts > 0));
  return [
    failing ? h("div", { class: "notice warn" },
      h("strong", {}, "Some deliveries are failing. "),
      "Check that the receiving server is reachable and answers with a 2xx status, that the URL is right, and that it accepts the payload format. ",
      "A delivery's Details show each attempt's error and the receiver's answer.") : null,
    table("Webhook deliveries", columns, rows),
    pager(page, pages, turn),
  ];
}

function pager(page, pages, turn) {
  if (pages.length === 1 && !page.nextCursor) return null;
  const back = button("Previous page", () => { pages.pop(); turn(); }, { tone: "small", disabled: pages.length === 1, "data-key": "page-back", "data-group": "pager" });
  const next = button("Next page", () => { pages.push(page.nextCursor); turn(); }, { tone: "small", disabled: !page.nextCursor, "data-key": "page-next", "data-group": "pager" });
  return h("nav", { class: "wh-pager", "aria-label": "Delivery pages" }, back, h("span", { class: "hint" }, `Page ${pages.length}`), next);
}

function emptyWords(subs, filters, later) {
  if (later) return "No more deliveries: this is the end of the log.";
  if (!subs.length) return "No deliveries yet, and no subscriptions: deliveries appear once a subscription exists and an event it listens to happens. Create one under Subscriptions.";
  if (filters.webhookId || filters.status || filters.eventType) return "No deliveries match these filters. Choose Any or All to see more.";
  return "No deliveries yet: deliveries appear once an event a subscription listens to happens (issuing an API key sends key.created, for instance). Delivered and failed ones stay 30 days.";
}
