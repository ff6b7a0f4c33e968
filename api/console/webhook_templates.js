// Templates: what a delivery's body looks like (the event as JSON, a Slack, Teams or Discord
// message, or the tenant's own minijinja). Listed here, written in webhook_template_form.js,
// tested against any sample event.

import { gql } from "./api.js";
import { h, fill, table, when, button, dialog, confirmAction, toast, failure, emptyState } from "./ui.js";
import { sectionHead, everyPage, kindLabel, rowActions, keepingFocus, plural } from "./webhook_common.js";
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
  const problem = h("div", { class: "wh-problem" });
  const load = () => keepingFocus(body, async () => {
    try {
      const { rows, truncated } = await everyPage(LIST, "webhookTemplates");
      fill(body, view(rows, truncated, write, load, problem));
    } catch (e) {
      fill(body, failure(e));
    }
  });
  const create = write ? button("New template", async () => { if (await templateDialog()) await load(); }, { tone: "primary" }) : null;
  fill(panel,
    sectionHead("Templates", "What a delivery's body looks like: the event as JSON, a Slack, Teams or Discord message, or your own template. A subscription picks one.", create),
    problem,
    body);
  await load();
}

function view(rows, truncated, write, reload, problem) {
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
      write ? button("Delete", () => remove(t, reload, problem),
        { tone: "small danger", "aria-label": `Delete template ${t.name}`, "data-key": `delete:${t.id}` }) : null) },
  ];
  return [
    table("Webhook templates", columns, rows),
    truncated ? h("p", { class: "hint" }, `Showing the newest ${rows.length} templates.`) : null,
  ];
}

async function remove(template, reload, problem) {
  fill(problem);
  let users = 0;
  try {
    users = (await everyPage(SUBSCRIBERS, "webhooks")).rows.filter((s) => s.templateId === template.id).length;
  } catch { /* the warning is a courtesy: deleting works without it */ }
  const sure = await confirmAction("Delete this template?",
    `"${template.name}" will be gone for good. ${users
      ? `${plural(users, "subscription uses", "subscriptions use")} it and will send the event as JSON instead.`
      : "No subscription uses it."}`, "Delete template");
  if (!sure) return;
  try {
    await gql(DELETE, { id: template.id });
    toast(`Template "${template.name}" deleted.`);
    await reload();
  } catch (e) {
    fill(problem, failure(e));
  }
}

/** Renders a sample event through a saved template: the exact body a delivery would carry. */
function testDialog(template) {
  return dialog(`Test template "${template.name}"`, (close) => {
    const region = previewRegion();
    let asked = 0;
    const run = async () => {
      const ticket = ++asked;
      showBusy(region);
      try {
        const { testWebhookTemplate } = await gql(TEST, { id: template.id, eventType: sample.select.value });
        if (ticket === asked) showResult(region, testWebhookTemplate);
      } catch (e) {
        if (ticket === asked) showError(region, e);
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
