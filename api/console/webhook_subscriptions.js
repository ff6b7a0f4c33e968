// Subscriptions: where events are POSTed and which ones. Listed with their state, and the
// actions each state allows (pause or resume, enable a disabled one, rotate its secret, send its
// failed deliveries again, delete). The form is in webhook_subscription_form.js.

import { gql, everyPage } from "./api.js";
import { h, fill, table, button, dialog, field, toast, failure, emptyState, submitting, busy, nextId } from "./ui.js";
import { showOnce } from "./secret.js";
import { sectionHead, statusBadge, rowActions, keepingFocus, kindLabel, plural, localInput, confirmThen } from "./webhook_common.js";
import { subscriptionDialog } from "./webhook_subscription_form.js";

// Without `headers`: their values may be credentials, read only when a subscription is edited.
const LIST = `query($cursor: String) { webhooks(limit: 200, cursor: $cursor) {
  data { id url eventTypes templateId description status secretRotatedAt createdAt updatedAt } nextCursor } }`;
const HEADERS = `query($id: String!) { webhook(id: $id) { id headers } }`;
const TEMPLATES = `query($cursor: String) { webhookTemplates(limit: 200, cursor: $cursor) { data { id name kind } nextCursor } }`;
const STATE = {
  pause: `mutation($id: String!) { pauseWebhook(id: $id) { id status } }`,
  resume: `mutation($id: String!) { resumeWebhook(id: $id) { id status } }`,
  enable: `mutation($id: String!) { enableWebhook(id: $id) { id status } }`,
};
const ROTATE = `mutation($id: String!, $graceSeconds: Int) { rotateWebhookSecret(id: $id, graceSeconds: $graceSeconds) { id secret } }`;
const RECOVER = `mutation($id: String!, $since: String!) { recoverWebhookDeliveries(id: $id, since: $since) { recovered } }`;
const DELETE = `mutation($id: String!) { deleteWebhook(id: $id) }`;
const KEPT = "Keyledger keeps it encrypted, only to sign deliveries, and will not show it again.";

export async function render(panel, ctx, nav) {
  const write = ctx.can("API_MANAGEMENT_WRITE");
  const body = h("div", { class: "wh-body-area" });
  const problem = h("div", { class: "wh-problem" });
  let templates = [];
  const draw = async () => {
    try {
      const [subs, temps] = await Promise.all([everyPage(LIST, "webhooks"), everyPage(TEMPLATES, "webhookTemplates")]);
      templates = temps.rows;
      fill(body, view(subs, templates, env));
    } catch (e) {
      fill(body, failure(e));
    }
  };
  // Focus is back on a closed dialog's opener by now: its new copy gets it.
  const load = () => keepingFocus(body, draw);
  const env = { write, load, draw, body, problem, nav, templates: () => templates };
  const create = write ? button("New subscription", async () => {
    fill(problem);
    const made = await subscriptionDialog(null, templates);
    if (!made) return;
    // The secret first: nothing that follows may stand between it and the person who needs it.
    if (made.secret) await showOnce({ title: "Subscription created", what: `the signing secret of ${made.url}`, secret: made.secret, testid: "new-secret", kept: KEPT });
    else fill(problem, h("p", { class: "notice error", role: "alert" }, "The subscription was created, but the server did not return its signing secret. Rotate its secret to get one."));
    await load();
  }, { tone: "primary" }) : null;
  fill(panel,
    sectionHead("Subscriptions", "Where events are sent, signed with the subscription's secret, and which events.", create),
    problem,
    body);
  await load();
}

function view({ rows, truncated }, templates, env) {
  if (!rows.length) {
    return emptyState(env.write
      ? "No subscriptions yet: no event is sent anywhere. Create one with New subscription, giving the URL of a server that answers 2xx."
      : "No subscriptions yet: no event is sent anywhere. Someone with API_MANAGEMENT_WRITE can create them.");
  }
  const templateName = (id) => {
    if (!id) return h("span", { class: "hint" }, "None (event as JSON)");
    const t = templates.find((x) => x.id === id);
    return t ? `${t.name} (${kindLabel(t.kind)})` : h("span", { class: "hint" }, "A deleted template (event as JSON)");
  };
  const columns = [
    { label: "URL", cell: (s) => h("code", { class: "wh-url" }, s.url) },
    { label: "Event types", cell: (s) => eventList(s.eventTypes) },
    { label: "Template", cell: (s) => templateName(s.templateId) },
    { label: "Status", cell: (s) => statusBadge(s.status) },
    { label: "Description", cell: (s) => s.description || h("span", { class: "hint" }, "—") },
    { label: "Actions", cell: (s) => actions(s, env) },
  ];
  const disabled = rows.filter((s) => s.status === "disabled").length;
  return [
    disabled ? h("div", { class: "notice warn" },
      `${plural(disabled, "subscription is", "subscriptions are")} disabled: the receiver kept failing or answered 410 Gone, so nothing is sent there. `,
      "Check that the server is reachable and answers 2xx, then Enable it and Recover what it missed.") : null,
    table("Webhook subscriptions", columns, rows),
    truncated ? h("p", { class: "hint" }, `Showing the newest ${rows.length} subscriptions.`) : null,
  ];
}

function eventList(types) {
  if (types.includes("*")) return h("span", {}, "Every event type");
  return h("ul", { class: "wh-events-list" }, types.map((t) => h("li", {}, h("code", {}, t))));
}

function actions(s, env) {
  const { write, load, draw, body, problem, nav } = env;
  const logButton = button("Deliveries", () => nav.go("deliveries", { webhookId: s.id }),
    { tone: "small", "aria-label": `Deliveries to ${s.url}` });
  if (!write) return rowActions(logButton);
  // One run at a time: a double click must not send a change twice or stack two dialogs.
  const act = (label, work, { tone = "small", key = label } = {}) => {
    let running = false;
    return button(label, async () => {
      if (running) return;
      running = true;
      fill(problem);
      try {
        await work();
      } catch (e) {
        fill(problem, failure(e));
      } finally {
        running = false;
      }
    }, { tone, "aria-label": `${label} ${s.url}`, "data-key": `${key}:${s.id}` });
  };
  // The button waits (and the list is read again) before another click can reach it; focus is
  // taken note of first, as a disabled button loses it.
  const state = (label, change, done) => {
    const el = act(label, () => keepingFocus(body, () => busy(el, async () => {
      await gql(STATE[change], { id: s.id });
      toast(done);
      await draw();
    })), { key: "state" });
    return el;
  };
  return rowActions(
    s.status === "active" ? state("Pause", "pause", "Paused: deliveries are held until it is resumed.") : null,
    s.status === "paused" ? state("Resume", "resume", "Resumed: held deliveries are sent now.") : null,
    s.status === "disabled" ? state("Enable", "enable", "Enabled: new events are sent again. Recover sends what it missed.") : null,
    act("Edit", () => edit(s, env)),
    act("Rotate secret", () => rotate(s)),
    // The server refuses to recover to a disabled subscription: say so rather than offer it.
    s.status === "disabled" ? h("span", { class: "hint wh-why" }, "Recover: enable it first") : act("Recover", () => recover(s)),
    logButton,
    act("Delete", () => remove(s, load), { tone: "small danger" }));
}

async function edit(s, { templates, load }) {
  // Read here, not with the list, so header values (often credentials) come only when needed.
  const { webhook } = await gql(HEADERS, { id: s.id });
  if (await subscriptionDialog({ ...s, headers: webhook.headers || {} }, templates())) await load();
}

async function rotate(s) {
  const secret = await dialog("Rotate the signing secret?", (close) => {
    const hours = h("input", { type: "number", id: nextId("grace"), min: "0", max: "168", step: "any", value: "24", required: true, inputmode: "decimal" });
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "stack", novalidate: true },
      h("p", {}, "A new secret signs deliveries to ", h("code", { class: "wh-url" }, s.url), " from now on. The previous one keeps signing beside it for a while, so the receiver can switch without missing any."),
      field("Old secret keeps signing for (hours)", hours, "0 to 168 (7 days); 0 stops it at once."),
      error,
      h("div", { class: "actions" },
        button("Cancel", () => close(), { autofocus: true }),
        button("Rotate secret", null, { tone: "primary", type: "submit" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = Number(hours.value);
      if (hours.value.trim() === "" || !Number.isFinite(value) || value < 0 || value > 168) {
        error.textContent = "Old secret keeps signing for: enter a number of hours from 0 to 168.";
        hours.setAttribute("aria-invalid", "true");
        hours.focus();
        return;
      }
      hours.removeAttribute("aria-invalid");
      const done = await submitting(form, error, () => gql(ROTATE, { id: s.id, graceSeconds: Math.round(value * 3600) }));
      if (done) close(done.rotateWebhookSecret.secret);
    });
    return form;
  });
  if (!secret) return;
  await showOnce({ title: "New signing secret", what: `the new signing secret of ${s.url}`, secret, testid: "new-secret", kept: KEPT });
}

async function remove(s, load) {
  const gone = await confirmThen("Delete this subscription?",
    `Nothing more is sent to ${s.url}, and its signing secret stops working. This cannot be undone.`, "Delete subscription",
    () => gql(DELETE, { id: s.id }));
  if (!gone) return;
  toast("Subscription deleted.");
  await load();
}

/** Sends again every failed delivery since a chosen time (say, since the receiver broke). */
function recover(s) {
  return dialog("Recover failed deliveries", (close) => {
    const since = h("input", { type: "datetime-local", id: nextId("since"), required: true, value: localInput(new Date(Date.now() - 86_400_000)) });
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "stack" },
      h("p", {}, "Every failed delivery to ", h("code", { class: "wh-url" }, s.url), " made since this time is sent again now, under its own webhook-id."),
      field("Since", since, "In your browser's time zone."),
      error,
      h("div", { class: "actions" },
        button("Cancel", () => close()),
        button("Recover deliveries", null, { tone: "primary", type: "submit" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const at = new Date(since.value);
      if (!since.value || Number.isNaN(at.getTime())) {
        error.textContent = "Choose the date and time from which failed deliveries are sent again.";
        since.focus();
        return;
      }
      const done = await submitting(form, error, () => gql(RECOVER, { id: s.id, since: at.toISOString() }));
      if (!done) return;
      const n = done.recoverWebhookDeliveries.recovered;
      close();
      toast(n ? `${plural(n, "failed delivery", "failed deliveries")} sent again.` : "No failed deliveries since then: nothing to send again.");
    });
    return form;
  });
}
