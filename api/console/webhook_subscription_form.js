// The subscription form, to create one or edit one. Header values (often credentials) are shown
// masked when editing, and sent again only when the headers change.

import { gql } from "./api.js";
import { h, field, dialog, button, submitting, toast, nextId, select } from "./ui.js";
import { EVENT_TYPES } from "./webhook_common.js";

// Stands for a header's current value, which the form never puts in the page.
const MASK = "••••••••";

const CREATE = `mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { id url secret status } }`;
const UPDATE = `mutation($id: String!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { id } }`;

/**
 * Opens the form; `sub` (with its `headers`) to edit one. Resolves with the created subscription
 * (its `secret` included), true once an edit is saved, or nothing when cancelled.
 */
export function subscriptionDialog(sub, templates) {
  const editing = Boolean(sub);
  return dialog(editing ? "Edit webhook subscription" : "New webhook subscription", (close) => {
    const url = h("input", { type: "url", id: nextId("sub"), required: true, autocomplete: "off", spellcheck: "false",
      placeholder: "https://hooks.example.com/keyledger", value: editing ? sub.url : "" });
    const events = eventTypesFieldset(editing ? sub.eventTypes : []);
    // Options read as the templates' names alone, the way people (and tests) look for them.
    const template = select([{ value: "", label: "None (the event as JSON)" }, ...templates.map((t) => ({ value: t.id, label: t.name }))],
      editing ? sub.templateId || "" : "", { id: nextId("sub") });
    const description = h("input", { id: nextId("sub"), maxlength: "500", autocomplete: "off", value: editing ? sub.description : "" });
    const headers = h("textarea", { id: nextId("sub"), rows: "3", spellcheck: "false", placeholder: '{"Authorization": "Bearer …"}' });
    const kept = editing ? sub.headers || {} : {};
    if (Object.keys(kept).length) headers.value = JSON.stringify(Object.fromEntries(Object.keys(kept).map((name) => [name, MASK])), null, 2);
    const headersHint = Object.keys(kept).length
      ? `A JSON object of strings sent with every delivery, up to 20. Values are hidden: leave ${MASK} to keep one, type a new value to change it, or remove the line.`
      : "Optional: a JSON object of strings sent with every delivery, up to 20.";
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "stack", novalidate: true },
      field("URL", url, "Where deliveries are POSTed: http or https, without credentials (send those in a header)."),
      events.element,
      field("Template", template, templates.length ? "What the body looks like." : "What the body looks like. Create templates under Templates."),
      field("Description", description),
      field("Headers", headers, headersHint),
      error,
      h("div", { class: "actions" },
        button("Cancel", () => close()),
        button(editing ? "Save subscription" : "Create subscription", null, { tone: "primary", type: "submit" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const problem = check(url, events, headers, kept);
      if (problem) {
        error.textContent = problem.text;
        problem.focus.focus();
        return;
      }
      const values = {
        url: url.value.trim(),
        eventTypes: events.value(),
        templateId: template.value || null,
        headers: parseHeaders(headers.value, kept),
        description: description.value.trim(),
      };
      if (!editing) {
        const done = await submitting(form, error, () => gql(CREATE, { input: { ...values, templateId: values.templateId || undefined } }));
        if (done) close(done.createWebhook);
        return;
      }
      const input = changes(sub, values);
      if (!Object.keys(input).length) {
        close(false);
        toast("Nothing changed.");
        return;
      }
      if (await submitting(form, error, () => gql(UPDATE, { id: sub.id, input }))) {
        close(true);
        toast("Subscription saved.");
      }
    });
    return form;
  });
}

function eventTypesFieldset(chosen) {
  const every = h("input", { type: "checkbox", id: nextId("ev"), value: "*", checked: chosen.includes("*") });
  const boxes = EVENT_TYPES.map(([type, why]) => {
    const box = h("input", { type: "checkbox", id: nextId("ev"), value: type, checked: chosen.includes(type), "aria-describedby": nextId("ev-when") });
    return h("div", { class: "wh-event" },
      box, h("div", {}, h("label", { for: box.id }, type), h("small", { class: "hint", id: box.getAttribute("aria-describedby") }, `When ${why}`)));
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

function check(url, events, headers, kept) {
  const text = url.value.trim();
  if (!text) return { text: "Enter the URL deliveries go to.", focus: url };
  if (!/^https?:\/\/[^/\s]+/i.test(text)) return { text: "The URL must start with http:// or https:// and name a host.", focus: url };
  if (!events.value().length) return { text: "Choose at least one event type, or every event type.", focus: events.first };
  if (headers.value.trim()) {
    try {
      parseHeaders(headers.value, kept);
    } catch (e) {
      return { text: e.message, focus: headers };
    }
  }
  return null;
}

/** The headers typed, with each masked value put back as it was. */
function parseHeaders(text, kept) {
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
  // Header names are not case-sensitive (and the server keeps them in lower case).
  const keptAs = (name) => Object.keys(kept).find((k) => k.toLowerCase() === name.toLowerCase());
  const unknown = Object.entries(value).find(([name, v]) => v === MASK && !keptAs(name));
  if (unknown) throw new Error(`The header "${unknown[0]}" has no value to keep: type its value.`);
  return Object.fromEntries(Object.entries(value).map(([name, v]) => [name, v === MASK ? kept[keptAs(name)] : v]));
}

// The server refuses a change that changes nothing, so only what changed is sent.
function changes(sub, values) {
  const input = {};
  if (values.url !== sub.url) input.url = values.url;
  if ([...values.eventTypes].sort().join() !== [...sub.eventTypes].sort().join()) input.eventTypes = values.eventTypes;
  if ((values.templateId || null) !== (sub.templateId || null)) input.templateId = values.templateId;
  if (!sameHeaders(values.headers, sub.headers || {})) input.headers = values.headers;
  if (values.description !== (sub.description || "")) input.description = values.description;
  return input;
}

const sameHeaders = (a, b) => {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => b[name] === a[name]);
};
