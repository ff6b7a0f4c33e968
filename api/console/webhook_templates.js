// Templates: what a delivery's body looks like (the event as JSON, a Slack, Teams or Discord
// message, or the tenant's own minijinja). Listed here, written in webhook_template_form.js,
// tested against any sample event.

import { gql, everyPage } from "./api.js";
import { h, fill, table, when, button, dialog, toast, failure, emptyState, latest } from "./ui.js";
import { sectionHead, kindLabel, rowActions, keepingFocus, plural, confirmThen } from "./webhook_common.js";
import { templateDialog } from "./webhook_template_form.js";
import { previewRegion, sampleEventField, showResult, showError, showBusy } from "./webhook_preview.js";

const LIST = `query($cursor: String) { webhookTemplates(limit: 200, cursor: $cursor) {
  data { id name kind body createdAt updatedAt } nextCursor } }`;
const TEST = `mutation($id: String!, $eventType: String) { testWebhookTemplate(id: $id, eventType: $eventType) {
  eventType contentType body limitsBroken { platform limit actual } } }`;
const DELETE = `mutation($id: String!) { deleteWebhookTemplate(id: $id) }`;
const SUBSCRIBERS = `query($cursor: String) { webhooks(limit: 200, cursor: $cursor) { data { id templateId } nextCursor } }`;

export async function render(panel, ctx) {
  const write = ctx.can("API_MANAGEMENT_WRITE");
  const body = h("div", { class: "wh-body-area" });
  const draw = async () => {
    try {
      const { rows, truncated } = await everyPage(LIST, "webhookTemplates");
      fill(body, view(rows, truncated, write, load));
    } catch (e) {
      fill(body, failure(e));
    }
  };
  // Focus is back on a closed dialog's opener by now: its new copy gets it.
  const load = () => keepingFocus(body, draw);
  const create = write ? button("New template", async () => { if (await templateDialog()) await load(); }, { tone: "primary" }) : null;
  fill(panel,
    sectionHead("Templates", "What a delivery's body looks like: the event as JSON, a Slack, Teams or Discord message, or your own template. A subscription picks one.", create),
    body);
  await load();
}

function view(rows, truncated, write, reload) {
  if (!rows.length) {
    return emptyState(write
      ? "No templates yet: subscriptions send the event as JSON until they pick one. Create one with New template, for example a Slack message for a chat channel."
      : "No templates yet: subscriptions send the event as JSON until they pick one. Someone with API_MANAGEMENT_WRITE can create them.");
  }
  const columns = [
    { label: "Name", cell: (t) => h("strong", {}, t.name) },
    { label: "Type", cell: (t) => kindLabel(t.kind) },
    { label: "Updated", cell: (t) => when(t.updatedAt) },
    { label: "Actions", cell: (t) => rowActions(
      write ? button("Edit", async () => { if (await templateDialog(t)) await reload(); },
        { tone: "small", "aria-label": `Edit template ${t.name}`, "data-key": `edit:${t.id}` }) : null,
      button("Test", () => testDialog(t), { tone: "small", "aria-label": `Test template ${t.name}`, "data-key": `test:${t.id}` }),
      write ? button("Delete", () => remove(t, reload),
        { tone: "small danger", "aria-label": `Delete template ${t.name}`, "data-key": `delete:${t.id}` }) : null) },
  ];
  return [
    table("Webhook templates", columns, rows),
    truncated ? h("p", { class: "hint" }, `Showing the newest ${rows.length} templates.`) : null,
  ];
}

// Asked first; which subscriptions use it is read while the question is on screen.
async function remove(template, reload) {
  const users = h("span", {}, "Checking whether a subscription uses it…");
  everyPage(SUBSCRIBERS, "webhooks").then(({ rows }) => {
    const n = rows.filter((s) => s.templateId === template.id).length;
    users.textContent = n
      ? `${plural(n, "subscription uses", "subscriptions use")} it and will send the event as JSON instead.`
      : "No subscription uses it.";
  }, () => { users.textContent = "Subscriptions using it will send the event as JSON instead."; });
  const gone = await confirmThen("Delete this template?", h("p", {}, `"${template.name}" will be gone for good. `, users),
    "Delete template", () => gql(DELETE, { id: template.id }));
  if (!gone) return;
  toast(`Template "${template.name}" deleted.`);
  await reload();
}

/** Renders a sample event through a saved template: the exact body a delivery would carry. */
function testDialog(template) {
  return dialog(`Test template "${template.name}"`, (close) => {
    const region = previewRegion();
    const turn = latest();
    const run = async () => {
      const n = turn.next();
      showBusy(region);
      try {
        const { testWebhookTemplate } = await gql(TEST, { id: template.id, eventType: sample.select.value });
        if (turn.current(n)) showResult(region, testWebhookTemplate);
      } catch (e) {
        if (turn.current(n)) showError(region, e);
      }
    };
    const sample = sampleEventField(run);
    run();
    return h("div", { class: "stack" },
      h("p", { class: "hint" }, `The body a ${kindLabel(template.kind)} template sends for a sample event, and any platform limit it breaks.`),
      sample.field,
      region,
      h("div", { class: "actions" }, button("Done", () => close(), { tone: "primary" })));
  }, { wide: true });
}
