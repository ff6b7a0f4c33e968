// The subscription form (create and edit) and the dialog that shows a signing secret the one
// time the server gives it out.

import { gql, ApiFailure } from "./api.js";
import { h, field, dialog, button, submitting, toast, nextId, copy } from "./ui.js";
import { EVENT_TYPES } from "./webhook_common.js";

const CREATE = `mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { id url secret status } }`;
const UPDATE = `mutation($id: String!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { id } }`;

/**
 * Opens the form; `sub` to edit one. Resolves with the created subscription (its `secret`
 * included), true once an edit is saved, or nothing when cancelled.
 */
export function subscriptionDialog(sub, templates) {
  const editing = Boolean(sub);
  return dialog(editing ? "Edit webhook subscription" : "New webhook subscription", (close) => {
    const url = h("input", { type: "url", id: nextId("sub"), required: true, autocomplete: "off", spellcheck: "false",
      placeholder: "https://hooks.example.com/keyledger", value: editing ? sub.url : "" });
    const events = eventTypesFieldset(editing ? sub.eventTypes : []);
    const template = h("select", { id: nextId("sub") },
      h("option", { value: "" }, "None (the event as JSON)"),
      // Options read as the templates' names alone, the way people (and tests) look for them.
      templates.map((t) => h("option", { value: t.id, selected: editing && sub.templateId === t.id }, t.name)));
    const description = h("input", { id: nextId("sub"), maxlength: "500", autocomplete: "off", value: editing ? sub.description : "" });
    const headers = h("textarea", { id: nextId("sub"), rows: "3", spellcheck: "false", placeholder: '{"Authorization": "Bearer …"}' });
    if (editing && sub.headers && Object.keys(sub.headers).length) headers.value = JSON.stringify(sub.headers, null, 2);
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "stack", novalidate: true },
      field("URL", url, "Where deliveries are POSTed: http or https, without credentials (send those in a header)."),
      events.element,
      field("Template", template, templates.length ? "What the body looks like." : "What the body looks like. Create templates under Templates."),
      field("Description", description),
      field("Headers", headers, "Optional: a JSON object of strings sent with every delivery, up to 20."),
      error,
      h("div", { class: "actions" },
        button("Cancel", () => close()),
        button(editing ? "Save subscription" : "Create subscription", null, { tone: "primary", type: "submit" })));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const problem = check(url, events, headers);
      if (problem) {
        error.textContent = problem.text;
        problem.focus.focus();
        return;
      }
      const values = {
        url: url.value.trim(),
        eventTypes: events.value(),
        templateId: template.value || null,
        headers: parseHeaders(headers.value),
        description: description.value.trim(),
      };
      submitting(form, error, async () => {
        if (!editing) {
          const { createWebhook } = await gql(CREATE, { input: { ...values, templateId: values.templateId || undefined } });
          close(createWebhook);
          return;
        }
        const input = changes(sub, values);
        if (!Object.keys(input).length) {
          toast("Nothing changed.");
          close(false);
          return;
        }
        await gql(UPDATE, { id: sub.id, input });
        toast("Subscription saved.");
        close(true);
      });
    });
    return form;
  });
}

function eventTypesFieldset(chosen) {
  const every = h("input", { type: "checkbox", id: nextId("ev"), value: "*", checked: chosen.includes("*") });
  const boxes = EVENT_TYPES.map(([type, why]) => {
    const box = h("input", { type: "checkbox", id: nextId("ev"), value: type, checked: chosen.includes(type) });
    return h("div", { class: "wh-event" },
      box, h("label", { for: box.id, title: `When ${why}` }, type));
  });
  const inputs = () => boxes.map((b) => b.querySelector("input"));
  // "Every type" covers the others, so they step aside while it is ticked.
  const sync = () => { for (const b of inputs()) b.disabled = every.checked; };
  every.addEventListener("change", sync);
  sync();
  const element = h("fieldset", { class: "wh-fieldset" },
    h("legend", {}, "Event types"),
    h("div", { class: "wh-event wh-event-all" }, every, h("label", { for: every.id }, "Every event type, including types added later")),
    h("div", { class: "wh-event-grid" }, boxes));
  return {
    element,
    first: every,
    value: () => (every.checked ? ["*"] : inputs().filter((b) => b.checked).map((b) => b.value)),
  };
}

function check(url, events, headers) {
  const text = url.value.trim();
  if (!text) return { text: "Enter the URL deliveries go to.", focus: url };
  if (!/^https?:\/\/[^/\s]+/i.test(text)) return { text: "The URL must start with http:// or https:// and name a host.", focus: url };
  if (!events.value().length) return { text: "Choose at least one event type, or every event type.", focus: events.first };
  if (headers.value.trim()) {
    try {
      parseHeaders(headers.value);
    } catch (e) {
      return { text: e.message, focus: headers };
    }
  }
  return null;
}

function parseHeaders(text) {
  if (!text.trim()) return {};
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('Headers must be a JSON object, such as {"Authorization": "Bearer …"}.');
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error('Headers must be a JSON object, such as {"X-Team": "ops"}.');
  const bad = Object.entries(value).find(([, v]) => typeof v !== "string");
  if (bad) throw new Error(`The header "${bad[0]}" must have a text value (in quotes).`);
  return value;
}

// The server refuses a change that changes nothing, so only what changed is sent.
function changes(sub, values) {
  const input = {};
  if (values.url !== sub.url) input.url = values.url;
  if ([...values.eventTypes].sort().join() !== [...sub.eventTypes].sort().join()) input.eventTypes = values.eventTypes;
  if ((values.templateId || null) !== (sub.templateId || null)) input.templateId = values.templateId;
  if (JSON.stringify(values.headers) !== JSON.stringify(sub.headers || {})) input.headers = values.headers;
  if (values.description !== (sub.description || "")) input.description = values.description;
  return input;
}

/** The signing secret, shown this once: a copy button and the warning that it will not come back. */
export function secretDialog(title, secret, url) {
  if (!secret) return Promise.reject(new ApiFailure("internal", "The server did not return the new secret", 500));
  return dialog(title, (close) => h("div", { class: "stack" },
    h("p", {}, "Deliveries to ", h("code", { class: "wh-url" }, url), " are signed with this secret (Standard Webhooks). Give it to the receiver so it can check them."),
    h("div", { class: "secret" },
      h("code", { "data-testid": "new-secret" }, secret),
      button("Copy", () => copy(secret))),
    h("p", { class: "notice warn" }, "Copy it now: it will not be shown again."),
    h("div", { class: "actions" }, button("Done", () => close(), { tone: "primary" }))));
}
