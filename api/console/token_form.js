// The Create admin token dialog: only the permissions the signed-in token may hand out are offered
// (a token can only grant what it holds; SUPERUSER only by superusers).

import { gql } from "./api.js";
import { h, field, dialog, button, nextId } from "./ui.js";
import { utcInput, fromUtcInput, UTC_HINT, words } from "./key_cells.js";

export const TOKEN_FIELDS = "id tenant name permissions scopes createdAt expiresAt expiryStatus lastUsedAt";

export const PERMISSIONS = [
  ["API_MANAGEMENT_READ", "Read keys, their history, usage and the audit log."],
  ["API_MANAGEMENT_WRITE", "Also create, edit, rotate and revoke keys."],
  ["TENANT_ADMIN", "Also manage the tenant's admin tokens and endpoints."],
  ["SUPERUSER", "Everything, in every tenant."],
];

const PAST = "Expires: pick a time in the future (UTC), or leave it empty for no expiry.";

/** Resolves to the created token (with its plaintext `token`), or undefined. */
export function createToken(ctx) {
  return dialog("Create admin token", (close) => {
    const name = h("input", { type: "text", required: true, maxlength: "200", autocomplete: "off" });
    const boxes = PERMISSIONS.filter(([p]) => ctx.can(p)).map(([p, text]) => {
      const hintId = nextId("perm");
      const box = h("input", { type: "checkbox", value: p, "aria-describedby": hintId });
      return { box, el: h("div", { class: "perm" }, h("label", { class: "check" }, box, h("code", {}, p)), h("small", { class: "hint", id: hintId }, text)) };
    });
    const expires = utcInput({});
    const tenant = ctx.superuser ? h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: ctx.me.tenant }) : null;
    const errorEl = h("p", { class: "error-text", role: "alert", id: nextId("err") });
    const form = h("form", { class: "stack", novalidate: true, "aria-describedby": errorEl.id },
      field("Name", name, "Names are unique within a tenant, e.g. CI pipeline."),
      h("fieldset", { class: "group perms" }, h("legend", {}, "Permissions"),
        h("p", { class: "hint" }, "Each includes the ones above it. Grant the least the token needs."),
        boxes.map((b) => b.el)),
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
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      for (const el of [name, expires, tenant]) if (el) el.removeAttribute("aria-invalid");
      const permissions = boxes.filter((b) => b.box.checked).map((b) => b.box.value);
      if (!name.value.trim()) return invalid(name, "Give the token a name, e.g. what will use it.");
      if (!permissions.length) return invalid(boxes[0] && boxes[0].box, "Permissions: tick at least one.");
      const expiresAt = fromUtcInput(expires.value);
      if (expiresAt === undefined) return invalid(expires, "Expires: enter a date and time, or leave it empty.");
      if (expiresAt && new Date(expiresAt) <= new Date()) return invalid(expires, PAST);
      const input = { name: name.value.trim(), permissions, expiresAt };
      if (tenant && tenant.value.trim()) input.tenant = tenant.value.trim();
      const submit = form.querySelector("[type=submit]");
      submit.disabled = true;
      errorEl.textContent = "";
      try {
        const { createAdminToken } = await gql(`mutation($input: CreateAdminTokenInput!) {
          createAdminToken(input: $input) { token ${TOKEN_FIELDS} } }`, { input });
        close(createAdminToken);
      } catch (e) {
        const about = { invalid_name: name, token_already_exists: name, invalid_expiry: expires, invalid_tenant: tenant }[e.code];
        const prefix = { token_already_exists: "Name: ", invalid_expiry: "Expires: ", permission_not_grantable: "Permissions: " }[e.code] || "";
        invalid(about, e.code === "invalid_expiry" ? PAST : prefix + words(e));
        if (about) about.focus();
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  });
}
