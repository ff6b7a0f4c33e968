// The dialog that writes a webhook template, beside a live preview: every change re-renders a
// sample event through the server (previewWebhookTemplate, nothing stored), so platform limits
// and template errors show while typing rather than after saving.

import { gql } from "./api.js";
import { h, field, dialog, button, submitting, toast, nextId, select, latest } from "./ui.js";
import { KINDS } from "./webhook_common.js";
import { previewRegion, sampleEventField, showResult, showError, showBusy } from "./webhook_preview.js";

const PREVIEW = `mutation($input: PreviewWebhookTemplateInput!) {
  previewWebhookTemplate(input: $input) { eventType contentType body limitsBroken { platform limit actual } } }`;
const CREATE = `mutation($input: CreateWebhookTemplateInput!) { createWebhookTemplate(input: $input) { id name } }`;
const UPDATE = `mutation($id: String!, $input: UpdateWebhookTemplateInput!) { updateWebhookTemplate(id: $id, input: $input) { id name } }`;

// A start for a custom template that shows the variables it can use; `tojson` keeps the body
// valid JSON whatever quotes an event's fields hold.
const EXAMPLE = `{
  "title": {{ title | tojson }},
  "text": {{ summary | tojson }},
  "event": {{ type | tojson }},
  "tenant": {{ tenant | tojson }},
  "at": {{ timestamp | tojson }},
  "message_id": {{ id | tojson }},
  "data": {{ data | tojson }}
}`;

const DEBOUNCE_MS = 300;

/** Opens the dialog; `template` (with id, name, kind, body) to edit one. Resolves true when saved. */
export function templateDialog(template) {
  const editing = Boolean(template);
  return dialog(editing ? "Edit webhook template" : "New webhook template", (close) => {
    const name = h("input", { id: nextId("tpl"), required: true, maxlength: "200", autocomplete: "off", value: editing ? template.name : "" });
    const kind = select(KINDS.map(([value, label]) => ({ value, label })), editing ? template.kind.toUpperCase() : "DEFAULT",
      { id: nextId("tpl"), disabled: editing });
    const body = h("textarea", { id: nextId("tpl"), rows: "12", spellcheck: "false", class: "wh-template-text" });
    body.value = editing && template.body ? template.body : "";
    const bodyField = field("Template", body,
      "A minijinja template over type, timestamp, tenant, data, id, title and summary. Write JSON to send JSON; anything else is sent as text.");
    const sample = sampleEventField(() => schedule(0));
    const region = previewRegion();
    const error = h("p", { class: "error-text", role: "alert" });

    let timer = null;
    const turn = latest();
    const isCustom = () => kind.value === "CUSTOM";
    const syncKind = () => {
      bodyField.hidden = !isCustom();
      body.required = isCustom();
      if (isCustom() && !body.value.trim()) body.value = EXAMPLE;
    };
    // Only the newest answer is shown: an older one arriving late must not replace it.
    const refresh = async () => {
      const n = turn.next();
      showBusy(region);
      const input = { kind: kind.value, eventType: sample.select.value };
      if (isCustom()) input.body = body.value;
      try {
        const { previewWebhookTemplate } = await gql(PREVIEW, { input });
        if (turn.current(n)) showResult(region, previewWebhookTemplate);
      } catch (e) {
        if (turn.current(n)) showError(region, e);
      }
    };
    const schedule = (wait = DEBOUNCE_MS) => {
      clearTimeout(timer);
      timer = setTimeout(refresh, wait);
    };
    kind.addEventListener("change", () => { syncKind(); schedule(0); });
    body.addEventListener("input", () => schedule());

    const form = h("form", { class: "wh-template-form", novalidate: true },
      h("div", { class: "wh-template-layout" },
        h("div", { class: "wh-template-fields" },
          field("Name", name),
          field("Type", kind, editing ? "A template keeps its type; to change it, create a new template." : KIND_HINT),
          bodyField,
          sample.field),
        h("div", { class: "wh-template-preview" },
          h("h3", {}, "Preview"),
          region)),
      error,
      h("div", { class: "actions" },
        button("Cancel", () => close(false)),
        button("Save template", null, { tone: "primary", type: "submit" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!name.value.trim()) {
        error.textContent = "Give the template a name, so that subscriptions can pick it.";
        name.focus();
        return;
      }
      if (isCustom() && !body.value.trim()) {
        error.textContent = "A custom template needs its text.";
        body.focus();
        return;
      }
      // `false` for an edit that changed nothing; undefined when it failed (the form says why).
      const saved = await submitting(form, error, async () => (editing
        ? (await update(template, name.value.trim(), isCustom() ? body.value : null)) || false
        : create(name.value.trim(), kind.value, body.value)));
      if (saved === undefined) return;
      // Once the dialog is gone: a toast raised while it is open goes inside it.
      close(true);
      toast(saved ? `Template "${saved.name}" ${editing ? "saved" : "created"}.` : "Nothing changed.");
    });
    syncKind();
    refresh();
    // No preview timer or late answer outlives the dialog.
    queueMicrotask(() => form.closest("dialog").addEventListener("close", () => { clearTimeout(timer); turn.stop(); }));
    return form;
  }, { wide: true }).then(Boolean);
}

const KIND_HINT = "Default sends the event as JSON; Slack, Teams and Discord make a chat message; Custom is your own template.";

async function create(name, kind, text) {
  const input = { name, kind };
  if (kind === "CUSTOM") input.body = text;
  return (await gql(CREATE, { input })).createWebhookTemplate;
}

// The server refuses a change that changes nothing, so only what changed is sent.
async function update(template, name, text) {
  const input = {};
  if (name !== template.name) input.name = name;
  if (text !== null && text !== (template.body || "")) input.body = text;
  if (!Object.keys(input).length) return null;
  return (await gql(UPDATE, { id: template.id, input })).updateWebhookTemplate;
}
