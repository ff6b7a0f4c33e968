// Rotating and revoking a key: each asks first, in a dialog that shows the server's refusal in
// words and resolves to the changed key (a rotated one with its new plaintext `key`).

import { gql } from "./api.js";
import { h, field, dialog, button, nextId, submitting } from "./ui.js";
import { KEY_FIELDS } from "./key_cells.js";

const MAX_GRACE_HOURS = 168;

export function rotateKey(key) {
  return dialog(`Rotate ${key.name}`, (close) => {
    const hours = h("input", { type: "number", min: "0", max: String(MAX_GRACE_HOURS), step: "any", value: "24", inputmode: "decimal", autofocus: true });
    const errorEl = h("p", { class: "error-text", role: "alert", id: nextId("err") });
    const form = h("form", { class: "stack", novalidate: true, "aria-describedby": errorEl.id },
      h("p", {}, "Rotating gives the key a new secret, shown once. The old secret keeps working for the grace period, so you can update your applications without an outage."),
      field("Grace period (hours)", hours, `0 to ${MAX_GRACE_HOURS} hours (7 days). 0 stops the old secret at once.`),
      errorEl,
      h("div", { class: "actions" },
        button("Cancel", () => close()),
        button("Rotate key", null, { tone: "primary", type: "submit" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = hours.value.trim() === "" ? NaN : Number(hours.value);
      if (!(value >= 0 && value <= MAX_GRACE_HOURS)) {
        errorEl.textContent = `Grace period: enter a number of hours from 0 to ${MAX_GRACE_HOURS}.`;
        hours.setAttribute("aria-invalid", "true");
        hours.focus();
        return;
      }
      hours.removeAttribute("aria-invalid");
      const graceSeconds = Math.round(value * 3600);
      const done = await submitting(form, errorEl, () => gql(`mutation($id: String!, $graceSeconds: Int) {
        rotateApiKey(id: $id, graceSeconds: $graceSeconds) { key ${KEY_FIELDS} } }`, { id: key.id, graceSeconds }));
      if (done) close(done.rotateApiKey);
    });
    return form;
  });
}

export function revokeKey(key) {
  return dialog(`Revoke ${key.name}?`, (close) => {
    const reason = h("input", { type: "text", maxlength: "500", autocomplete: "off" });
    const errorEl = h("p", { class: "error-text", role: "alert", id: nextId("err") });
    const form = h("form", { class: "stack", novalidate: true, "aria-describedby": errorEl.id },
      h("p", { class: "notice warn" }, "This cannot be undone. Every application using this key loses access immediately."),
      h("p", {}, "Key ", h("code", {}, key.prefix), key.tenant ? ` of tenant ${key.tenant}.` : "."),
      field("Reason", reason, "Optional; kept in the key's history and the audit log."),
      errorEl,
      h("div", { class: "actions" },
        button("Cancel", () => close()),
        button("Revoke key", null, { tone: "danger", type: "submit" })));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = reason.value.trim();
      const done = await submitting(form, errorEl, () => gql(`mutation($id: String!, $reason: String) {
        revokeApiKey(id: $id, reason: $reason) { ${KEY_FIELDS} } }`, { id: key.id, reason: text || null }));
      if (done) close(done.revokeApiKey);
    });
    return form;
  });
}
