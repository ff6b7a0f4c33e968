// Subscriptions: where events are POSTed and which ones. Listed with their state, and the
// actions each state allows (pause or resume, enable a disabled one, rotate its secret, send its
// failed deliveries again, delete). The form and the once-shown secret are in webhook_subscription_form.js.

import { gql } from "./api.js";
import { h, fill, table, button, dialog, field, confirmAction, toast, failure, emptyState, submitting, nextId } from "./ui.js";
import { sectionHead, everyPage, statusBadge, rowActions, keepingFocus, kindLabel, plural, localInput } from "./webhook_common.js";
import { subscriptionDialog, secretDialog } from "./webhook_subscription_form.js";

const LIST = `query($cursor: String) { webhooks(limit: 200, cursor: $cursor) {
  data { id url eventTypes templateId headers description status secretRotatedAt createdAt updatedAt } nextCursor } }`;
const TEMPLATES = `query($cursor: String) { webhookTemplates(limit: 200, cursor: $cursor) { data { id name kind } nextCursor } }`;
const STATE = {
  pause: `mutation($id: String!) { pauseWebhook(id: $id) { id status } }`,
  resume: `mutation($id: String!) { resumeWebhook(id: $id) { id status } }`,
  enable: `mutation($id: String!) { enableWebhook(id: $id) { id status } }`,
};
const ROTATE = `mutation($id: String!) { rotateWebhookSecret(id: $id) { id secret } }`;
const RECOVER = `mutation($id: String!, $since: String!) { recoverWebhookDeliveries(id: $id, since: $since) { recovered } }`;
const DELETE = `mutation($id: String!) { deleteWebhook(id: $id) }`;

export async function render(panel, ctx, nav) {
  const write = ctx.can("API_MANAGEMENT_WRITE");
  const body = h("div", { class: "wh-body-area" });
  const problem = h("div", { class: "wh-problem" });
  let templates = [];
  const load = () => keepingFocus(body, async () => {
    try {
      const [subs, temps] = await Promise.all([everyPage(LIST, "webhooks"), everyPage(TEMPLATES, "webhookTemplates")]);
      templates = temps.rows;
      fill(body, view(subs, templates, { write, reload: load, problem, nav }));
    } catch (e) {
      fill(body, failure(e));
    }
  });
  const create = write ? button("New subscription", async () => {
    fill(problem);
    const made = await subscriptionDialog(null, templates);
    if (!made) return;
    await load();
    await secretDialog("Subscription created", made.secret, made.url);
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
    { label: "Actions", cell: (s) => actions(s, templates, env) },
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

function actions(s, templates, { write, reload, problem, nav }) {
  const logButton = button("Deliveries", () => nav.go("deliveries", { webhookId: s.id }),
    { tone: "small", "aria-label": `Deliveries to ${s.url}` });
  if (!write) return rowActions(logButton);
  const act = (label, work, tone = "small") => button(label, async () => {
    fill(problem);
    try {
      await work();
    } catch (e) {
      fill(problem, failure(e));
    }
  }, { tone, "aria-label": `${label} ${s.url}`, "data-key": `${label === "Pause" || label === "Resume" || label === "Enable" ? "state" : label}:${s.id}` });
  const state = async (change, done) => {
    await gql(STATE[change], { id: s.id });
    toast(done);
    await reload();
  };
  return rowActions(
    s.status === "active" ? act("Pause", () => state("pause", "Paused: deliveries are held until it is resumed.")) : null,
    s.status === "paused" ? act("Resume", () => state("resume", "Resumed: held deliveries are sent now.")) : null,
    s.status === "disabled" ? act("Enable", () => state("enable", "Enabled: new events are sent again. Recover sends what it missed.")) : null,
    act("Edit", async () => { if (await subscriptionDialog(s, templates)) await reload(); }),
    act("Rotate secret", () => rotate(s)),
    act("Recover", () => recover(s)),
    logButton,
    act("Delete", () => remove(s, reload), "small danger"));
}

async function rotate(s) {
  const sure = await confirmAction("Rotate the signing secret?",
    `A new secret signs deliveries to ${s.url} from now on. The previous one keeps signing beside it for 24 hours, so the receiver can switch without missing any.`,
    "Rotate secret");
  if (!sure) return;
  const { rotateWebhookSecret } = await gql(ROTATE, { id: s.id });
  await secretDialog("New signing secret", rotateWebhookSecret.secret, s.url);
}

async function remove(s, reload) {
  const sure = await confirmAction("Delete this subscription?",
    `Nothing more is sent to ${s.url}, and its signing secret stops working. This cannot be undone.`, "Delete subscription");
  if (!sure) return;
  await gql(DELETE, { id: s.id });
  toast("Subscription deleted.");
  await reload();
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
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const at = new Date(since.value);
      if (!since.value || Number.isNaN(at.getTime())) {
        error.textContent = "Choose the date and time from which failed deliveries are sent again.";
        since.focus();
        return;
      }
      submitting(form, error, async () => {
        const { recoverWebhookDeliveries } = await gql(RECOVER, { id: s.id, since: at.toISOString() });
        const n = recoverWebhookDeliveries.recovered;
        toast(n ? `${plural(n, "failed delivery", "failed deliveries")} sent again.` : "No failed deliveries since then: nothing to send again.");
        close();
      });
    });
    return form;
  });
}
