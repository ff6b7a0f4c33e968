// The Create admin token dialog: only the permissions and key scopes the signed-in token may hand
// out are offered (a token can only grant what it holds; SUPERUSER only by superusers).

import { gql } from "./api.js";
import { h, field, dialog, button, nextId, submitting } from "./ui.js";
import { scopePicker } from "./key_scopes.js";
import { utcInput, readExpiry, UTC_HINT, PAST } from "./times.js";

export const TOKEN_FIELDS = "id tenant name permissions scopes createdAt expiresAt expiryStatus lastUsedAt";

export const PERMISSIONS = [
  ["API_MANAGEMENT_READ", "Read keys, their history, usage and the audit log."],
  ["API_MANAGEMENT_WRITE", "Also create, edit, rotate and revoke keys."],
  ["TENANT_ADMIN", "Also manage the tenant's admin tokens and endpoints."],
  ["SUPERUSER", "Everything, in every tenant."],
];

const sameSet = (a, b) => a.length === b.length && a.every((v) => b.includes(v));

/** Resolves to the created token (with its plaintext `token`), or undefined. */
export function createToken(ctx) {
  return dialog("Create admin token", (close) => {
    const name = h("input", { type: "text", required: true, maxlength: "200", autocomplete: "off", autofocus: true });
    const boxes = PERMISSIONS.filter(([p]) => ctx.can(p)).map(([p, text]) => {
      const hintId = nextId("perm");
      const box = h("input", { type: "checkbox", value: p, "aria-describedby": hintId });
      return { box, el: h("div", { class: "perm" }, h("label", { class: "check" }, box, h("code", {}, p)), h("small", { class: "hint", id: hintId }, text)) };
    });
    const grantable = ctx.me.grantableScopes;
    const scopes = scopePicker(ctx, grantable, {
      legend: "Key scopes",
      hint: "The scopes this token may give the keys it creates. All ticked, as at first: every scope you may grant.",
    });
    const expires = utcInput({});
    const tenant = ctx.superuser ? h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: ctx.me.tenant }) : null;
    const errorEl = h("p", { class: "error-text", role: "alert", id: nextId("err") });
    const form = h("form", { class: "stack", novalidate: true, "aria-describedby": errorEl.id },
      field("Name", name, "Names are unique within a tenant, e.g. CI pipeline."),
      h("fieldset", { class: "group perms" }, h("legend", {}, "Permissions"),
        h("p", { class: "hint" }, "Each includes the ones before it: tick the least the token needs."),
        boxes.map((b) => b.el)),
      scopes.el,
      h("div", { class: "row" },
        field("Expires", expires, UTC_HINT),
        tenant ? field("Tenant", tenant, `Optional. Leave empty for your own tenant (${ctx.me.tenant}).`) : null),
      errorEl,
      h("div", { class: "actions" },
        button("Cancel", () => close()),
        button("Create", null, { tone: "primary", type: "submit" })));
    form.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid"));
    const invalid = (el, text) => {
      errorEl.textContent = text;
      if (el) { el.setAttribute("aria-invalid", "true"); el.focus(); }
    };
    // A refusal from the server, on the field it is about.
    const refused = (e) => {
      const firstBox = boxes[0] && boxes[0].box;
      const [el, prefix] = {
        invalid_name: [name, "Name: "],
        token_already_exists: [name, "Name: "],
        invalid_expiry: [expires, ""],
        invalid_tenant: [tenant, "Tenant: "],
        permission_not_grantable: [firstBox, "Permissions: "],
        invalid_scope: [scopes.other, "Key scopes: "],
        scope_not_grantable: [scopes.other, "Key scopes: "],
      }[e.code] || [null, ""];
      invalid(el, e.code === "invalid_expiry" ? PAST : prefix + errorEl.textContent);
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
      errorEl.textContent = "";
      const permissions = boxes.filter((b) => b.box.checked).map((b) => b.box.value);
      if (!name.value.trim()) return invalid(name, "Give the token a name, e.g. what will use it.");
      if (!permissions.length) return invalid(boxes[0] && boxes[0].box, "Permissions: tick at least one.");
      const expiry = readExpiry(expires);
      if (expiry.error) return invalid(expires, expiry.error);
      const input = { name: name.value.trim(), permissions, expiresAt: expiry.at };
      // Left out when unchanged: the server's default is the same set.
      const chosen = scopes.read();
      if (!sameSet(chosen, grantable)) input.scopes = chosen;
      if (tenant && tenant.value.trim()) input.tenant = tenant.value.trim();
      const done = await submitting(form, errorEl, () => gql(`mutation($input: CreateAdminTokenInput!) {
        createAdminToken(input: $input) { token ${TOKEN_FIELDS} } }`, { input }), refused);
      if (done) close(done.createAdminToken);
    });
    return form;
  }, { wide: true });
}
