// Usage alert rules: a figure of one key, one endpoint or the whole tenant over the last minutes,
// above a threshold, fires a `usage.alert` event once per breach (which a subscription to
// usage.alert turns into a delivery).

import { gql, everyPage } from "./api.js";
import { h, fill, table, button, dialog, field, toast, failure, emptyState, submitting, nextId, number, when, select } from "./ui.js";
import { sectionHead, statusBadge, rowActions, keepingFocus, plural, confirmThen } from "./webhook_common.js";

const LIST = `query($cursor: String) { alertRules(limit: 200, cursor: $cursor) {
  data { id name metric threshold windowMinutes keyId endpointId state fired lastFiredAt lastValue createdAt } nextCursor } }`;
// Revoked keys too: a rule about a key revoked since still names it.
const KEYS = `query($cursor: String) { apiKeys(includeRevoked: true, limit: 200, cursor: $cursor) { data { id name prefix status } nextCursor } }`;
const ENDPOINTS = `query($cursor: String) { endpoints(limit: 200, cursor: $cursor) { data { id path methods } nextCursor } }`;
const CREATE = `mutation($input: CreateAlertRuleInput!) { createAlertRule(input: $input) { id name } }`;
const DELETE = `mutation($id: String!) { deleteAlertRule(id: $id) }`;

const METRICS = [
  { value: "rate_limit_hits", label: "Rate-limit hits", unit: "requests refused", hint: "Requests refused by a rate limit in the window; fires above the threshold." },
  { value: "error_rate", label: "Error rate", unit: "%", hint: "4xx and 5xx answers as a percentage of the window's requests (0 to 100); a window without requests never fires." },
  { value: "requests", label: "Requests", unit: "requests", hint: "Requests in the window; fires above the threshold." },
  { value: "key_expiry", label: "Key expiry", unit: "hours left", hint: "Hours until the key expires; fires when fewer remain. Needs a key." },
];
const metricOf = (value) => METRICS.find((m) => m.value === value) || { label: value, unit: "" };
/** "12.5 %", "150 requests". */
const amount = (value, metricName) => {
  const { unit } = metricOf(metricName);
  return `${number(value)}${unit === "%" ? " %" : unit ? ` ${unit}` : ""}`;
};

export async function render(panel, ctx) {
  const write = ctx.can("API_MANAGEMENT_WRITE");
  const body = h("div", { class: "wh-body-area" });
  // Keys and endpoints only name a rule's subject: read once per render, not after each change.
  let subjects = null;
  const draw = async () => {
    try {
      const [rules, keys, endpoints] = await Promise.all([everyPage(LIST, "alertRules"),
        subjects ? null : everyPage(KEYS, "apiKeys"), subjects ? null : everyPage(ENDPOINTS, "endpoints")]);
      if (!subjects) subjects = { keys: keys.rows, endpoints: endpoints.rows };
      fill(body, view(rules, subjects, { write, reload: load }));
    } catch (e) {
      fill(body, failure(e));
    }
  };
  // Focus is back on a closed dialog's opener by now: its new copy gets it.
  const load = () => keepingFocus(body, draw);
  const create = write ? button("New alert rule", async () => {
    if (await ruleDialog(subjects || { keys: [], endpoints: [] })) await load();
  }, { tone: "primary" }) : null;
  fill(panel,
    sectionHead("Alert rules", "A rule watches a key, an endpoint or the whole tenant, and sends a usage.alert event once each time a figure goes over its threshold. Subscribe a webhook to usage.alert to hear it.", create),
    body);
  await load();
}

function subjectOf(rule, { keys, endpoints }) {
  if (rule.keyId) {
    const key = keys.find((k) => k.id === rule.keyId);
    return key ? `Key ${key.name}${key.status === "revoked" ? " (revoked)" : ""}` : "A key no longer listed";
  }
  if (rule.endpointId) {
    const ep = endpoints.find((e) => e.id === rule.endpointId);
    return ep ? `Endpoint ${ep.methods.join(", ")} ${ep.path}` : "An endpoint no longer listed";
  }
  return "The whole tenant";
}

function view({ rows, truncated }, subjects, { write, reload }) {
  if (!rows.length) {
    return emptyState(write
      ? "No alert rules yet: nothing watches usage. Create one with New alert rule (for example, rate-limit hits of a key above 100 in 5 minutes), then subscribe a webhook to usage.alert."
      : "No alert rules yet: nothing watches usage. Someone with API_MANAGEMENT_WRITE can create them.");
  }
  const columns = [
    { label: "Name", cell: (r) => h("strong", {}, r.name) },
    { label: "Metric", cell: (r) => metricOf(r.metric).label },
    { label: "Threshold", class: "num", cell: (r) => `${r.metric === "key_expiry" ? "under " : "over "}${amount(r.threshold, r.metric)}` },
    { label: "Window", class: "num", cell: (r) => (r.metric === "key_expiry" ? "—" : `${number(r.windowMinutes)} min`) },
    { label: "Subject", cell: (r) => subjectOf(r, subjects) },
    { label: "State", cell: (r) => statusBadge(r.state) },
    { label: "Times fired", cell: (r) => h("span", {}, number(r.fired),
      r.lastFiredAt ? h("span", { class: "hint wh-fired" }, ` last ${when(r.lastFiredAt)} at ${amount(r.lastValue, r.metric)}`) : null) },
  ];
  if (write) {
    columns.push({ label: "Actions", cell: (r) => rowActions(button("Delete", () => remove(r, reload),
      { tone: "small danger", "aria-label": `Delete alert rule ${r.name}`, "data-key": `delete:${r.id}` })) });
  }
  const breached = rows.filter((r) => r.state === "breached").length;
  return [
    breached ? h("p", { class: "notice warn" }, `${plural(breached, "rule is", "rules are")} breached now: ${breached === 1 ? "it" : "each"} fired once and will fire again only after coming back under the threshold.`) : null,
    table("Alert rules", columns, rows),
    truncated ? h("p", { class: "hint" }, `Showing the newest ${rows.length} rules.`) : null,
  ];
}

async function remove(rule, reload) {
  const gone = await confirmThen("Delete this alert rule?", `"${rule.name}" stops watching usage. This cannot be undone.`, "Delete alert rule",
    () => gql(DELETE, { id: rule.id }));
  if (!gone) return;
  toast(`Alert rule "${rule.name}" deleted.`);
  await reload();
}

function ruleDialog({ keys, endpoints }) {
  return dialog("New alert rule", (close) => {
    const name = h("input", { id: nextId("rule"), required: true, maxlength: "200", autocomplete: "off" });
    const metric = select(METRICS, METRICS[0].value, { id: nextId("rule") });
    const metricHint = h("small", { class: "hint", id: `${metric.id}-hint`, "aria-live": "polite" });
    metric.setAttribute("aria-describedby", metricHint.id);
    const threshold = h("input", { id: nextId("rule"), type: "number", step: "any", min: "0", required: true, inputmode: "decimal" });
    const windowMinutes = h("input", { id: nextId("rule"), type: "number", min: "1", max: "1440", step: "1", value: "5", required: true });
    const none = { value: "", label: "None" };
    const key = select([none, ...keys.filter((k) => k.status === "active").map((k) => ({ value: k.id, label: `${k.name} (${k.prefix})` }))], "", { id: nextId("rule") });
    const endpoint = select([none, ...endpoints.map((e) => ({ value: e.id, label: `${e.methods.join(", ")} ${e.path}` }))], "", { id: nextId("rule") });
    const thresholdField = field("Threshold", threshold);
    const windowField = field("Window (minutes)", windowMinutes, "Minutes the figure is summed over, 1 to 1440.");
    const sync = () => {
      const m = metricOf(metric.value);
      metricHint.textContent = m.hint;
      thresholdField.querySelector("label").textContent = `Threshold (${m.unit})`;
      windowField.hidden = metric.value === "key_expiry";
    };
    metric.addEventListener("change", sync);
    sync();
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "stack wh-rule-form", novalidate: true },
      field("Name", name),
      h("div", { class: "field" }, h("label", { for: metric.id }, "Metric"), metric, metricHint),
      h("div", { class: "row" }, thresholdField, windowField),
      h("div", { class: "row" },
        field("Key (optional)", key),
        field("Endpoint (optional)", endpoint)),
      h("p", { class: "hint" }, "With neither a key nor an endpoint, the rule is about every request of the tenant."),
      error,
      h("div", { class: "actions" },
        button("Cancel", () => close(false)),
        button("Create alert rule", null, { tone: "primary", type: "submit" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const problem = check({ name, metric, threshold, windowMinutes, key, endpoint });
      if (problem) {
        error.textContent = problem.text;
        problem.focus.focus();
        return;
      }
      const input = { name: name.value.trim(), metric: metric.value, threshold: Number(threshold.value) };
      if (metric.value !== "key_expiry") input.windowMinutes = Number(windowMinutes.value);
      if (key.value) input.keyId = key.value;
      if (endpoint.value) input.endpointId = endpoint.value;
      const done = await submitting(form, error, () => gql(CREATE, { input }));
      if (!done) return;
      close(true);
      toast(`Alert rule "${done.createAlertRule.name}" created.`);
    });
    return form;
  }).then(Boolean);
}

// What the browser can tell before asking; the server's own refusals still come back in words.
function check({ name, metric, threshold, windowMinutes, key, endpoint }) {
  if (!name.value.trim()) return { text: "Give the rule a name: it is in every alert it sends.", focus: name };
  if (threshold.value === "" || !Number.isFinite(Number(threshold.value))) return { text: "Enter the threshold as a number.", focus: threshold };
  if (Number(threshold.value) < 0) return { text: "The threshold cannot be negative.", focus: threshold };
  if (metric.value === "error_rate" && Number(threshold.value) > 100) return { text: "An error rate is a percentage: the threshold is 0 to 100.", focus: threshold };
  if (metric.value !== "key_expiry") {
    const w = Number(windowMinutes.value);
    if (!Number.isInteger(w) || w < 1 || w > 1440) return { text: "The window is a whole number of minutes, 1 to 1440.", focus: windowMinutes };
  }
  if (metric.value === "key_expiry" && !key.value) return { text: "A key-expiry rule is about a key: choose one.", focus: key };
  if (key.value && endpoint.value) return { text: "Choose a key or an endpoint, not both.", focus: endpoint };
  return null;
}
