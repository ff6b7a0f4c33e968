// The Create API Key and Edit dialogs: the scopes on offer (what the tenant's endpoints require,
// less what the signed-in token may not grant), rate limits, IP rules and expiry.

import { gql } from "./api.js";
import { h, field, dialog, button, list, nextId } from "./ui.js";
import { KEY_FIELDS, utcInput, fromUtcInput, UTC_HINT, words } from "./key_cells.js";

let offered = null;

/** Forgets the scopes on offer, so the next dialog reads them again (the header's Refresh). */
export function forgetScopes() { offered = null; }

function scopesOnOffer(ctx) {
  if (!offered) offered = loadScopes(ctx).catch((e) => { offered = null; throw e; });
  return offered;
}

async function loadScopes(ctx) {
  const scopes = new Set();
  let cursor = null;
  // A bound, in case a cursor never ends: 20 pages of 200 endpoints is far past any catalogue.
  for (let page = 0; page < 20; page++) {
    const { endpoints } = await gql(`query($cursor: String) {
      endpoints(limit: 200, cursor: $cursor) { data { requiredScopes } nextCursor } }`, { cursor });
    for (const e of endpoints.data) for (const s of e.requiredScopes) scopes.add(s);
    cursor = endpoints.nextCursor;
    if (!cursor) break;
  }
  const held = await grantable(ctx);
  return [...scopes].filter((s) => !held || held.has(s)).sort();
}

/** The scopes the signed-in token may grant; null for all (or when it cannot be read). */
async function grantable(ctx) {
  if (!ctx.can("TENANT_ADMIN") || !ctx.me.tokenId) return null;
  try {
    let cursor = null;
    for (let page = 0; page < 20; page++) {
      const { adminTokens } = await gql(`query($tenant: String, $cursor: String) {
        adminTokens(tenant: $tenant, limit: 200, cursor: $cursor) { data { id scopes } nextCursor } }`,
      { tenant: ctx.me.tenant, cursor });
      const own = adminTokens.data.find((t) => t.id === ctx.me.tokenId);
      if (own) return Array.isArray(own.scopes) ? new Set(own.scopes) : null;
      cursor = adminTokens.nextCursor;
      if (!cursor) break;
    }
  } catch { /* the server still refuses what may not be granted */ }
  return null;
}

/** The "Scopes" checkboxes and the "Other scopes" text field; `read()` gives the chosen scopes. */
function scopePicker(ctx, chosen) {
  const grid = h("div", { class: "scope-grid" }, h("p", { class: "hint" }, "Loading the scopes your endpoints use…"));
  const other = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  let boxes = [];
  scopesOnOffer(ctx).then((scopes) => {
    boxes = scopes.map((s) => h("input", { type: "checkbox", value: s, checked: chosen.includes(s) }));
    grid.replaceChildren(...(boxes.length
      ? boxes.map((box) => h("label", { class: "check" }, box, h("code", {}, box.value)))
      : [h("p", { class: "hint" }, "None of your endpoints requires a scope yet: type the scopes under Other scopes.")]));
    other.value = chosen.filter((s) => !scopes.includes(s)).join(", ");
  }, (e) => {
    grid.replaceChildren(h("p", { class: "error-text" }, `The scopes on offer could not be read: ${words(e)} Type them under Other scopes.`));
    other.value = chosen.join(", ");
  });
  const el = [
    h("fieldset", { class: "scopes" }, h("legend", {}, "Scopes"),
      h("p", { class: "hint" }, "The scopes your endpoints require. A key can call an endpoint only with all of its scopes."),
      grid),
    field("Other scopes", other, "Comma-separated, e.g. REPORTS_READ, ANALYTICS_READ."),
  ];
  const read = () => [...new Set([
    ...boxes.filter((b) => b.checked).map((b) => b.value),
    ...list(other.value).map((s) => s.toUpperCase()),
  ])].sort();
  return { el, read, other };
}

const numberInput = (value) => h("input", { type: "number", min: "1", step: "1", inputmode: "numeric", value, required: true });
const ipArea = (values) => h("textarea", { class: "short", rows: "2", spellcheck: "false" }, values.join("\n"));
const IP_HINT = "IPv4/IPv6 addresses or CIDR blocks, separated by commas or new lines.";

/** Which field a server refusal is about, so its message says so and the field is marked. */
const CODE_FIELD = {
  invalid_name: "Name",
  invalid_scope: "Scopes",
  scope_not_grantable: "Scopes",
  invalid_rate_limits: "Rate limits",
  invalid_ip_rule: "IP rules",
  invalid_expiry: "Expires",
  invalid_tenant: "Tenant",
};

const PAST = "Expires: pick a time in the future (UTC), or leave it empty for no expiry.";

function positive(text) {
  const n = Number(text);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/** Runs the mutation with the submit button held, putting a refusal in words into the dialog. */
async function send(form, errorEl, marks, work) {
  const submit = form.querySelector("[type=submit]");
  submit.disabled = true;
  errorEl.textContent = "";
  for (const el of Object.values(marks)) if (el && el.removeAttribute) el.removeAttribute("aria-invalid");
  try {
    return await work();
  } catch (e) {
    const about = CODE_FIELD[e.code];
    errorEl.textContent = e.code === "invalid_expiry" ? PAST : (about ? `${about}: ` : "") + words(e);
    const mark = about && (typeof marks[about] === "function" ? marks[about](e) : marks[about]);
    if (mark) mark.setAttribute("aria-invalid", "true");
    return undefined;
  } finally {
    submit.disabled = false;
  }
}

/** The shared fields of both dialogs. */
function keyFields(ctx, key) {
  const name = h("input", { type: "text", required: true, maxlength: "200", autocomplete: "off", value: key.name });
  const scopes = scopePicker(ctx, key.scopes);
  const perMinute = numberInput(key.rateLimits.perMinute ?? 60);
  const perHour = numberInput(key.rateLimits.perHour ?? 3600);
  const allow = ipArea(key.ipAllow);
  const block = ipArea(key.ipBlock);
  const errorEl = h("p", { class: "error-text", role: "alert", id: nextId("err") });
  // The refused rule is quoted in the message: mark the list that holds it.
  const refusedRule = (e) => {
    const quoted = /"([^"]+)"/.exec(e.message || "");
    return quoted && list(block.value).includes(quoted[1]) ? block : allow;
  };
  const marks = { Name: name, "Rate limits": perMinute, "IP rules": refusedRule, Scopes: scopes.other };
  return { name, scopes, perMinute, perHour, allow, block, errorEl, marks };
}

function limitsAndRules(f) {
  return [
    h("fieldset", { class: "group" }, h("legend", {}, "Rate limits"),
      h("div", { class: "row" },
        field("Per minute", f.perMinute, "Requests per 60 seconds."),
        field("Per hour", f.perHour, "Requests per 3600 seconds."))),
    h("div", { class: "row" },
      field("Allowed IPs", f.allow, `${IP_HINT} Empty: any address.`),
      field("Blocked IPs", f.block, `${IP_HINT} Blocked wins over allowed.`)),
  ];
}

/** Checks what the browser can check, in words; returns the rate limits or null. */
function readLimits(f) {
  const perMinute = positive(f.perMinute.value);
  const perHour = positive(f.perHour.value);
  if (!f.name.value.trim()) return fail(f, "Give the key a name, e.g. the application that will use it.", f.name);
  if (!perMinute || !perHour) return fail(f, "Rate limits: per minute and per hour must be whole numbers above 0.", perMinute ? f.perHour : f.perMinute);
  return { perMinute, perHour };
}

function fail(f, text, el) {
  f.errorEl.textContent = text;
  el.setAttribute("aria-invalid", "true");
  el.focus();
  return null;
}

/** The Create API Key dialog; resolves to the created key (with its plaintext `key`) or undefined. */
export function createKey(ctx) {
  return dialog("Create API Key", (close) => {
    const f = keyFields(ctx, { name: "", scopes: [], rateLimits: {}, ipAllow: [], ipBlock: [] });
    const environment = h("select", {},
      h("option", { value: "live" }, "live"),
      h("option", { value: "test" }, "test"));
    const expires = utcInput({});
    const tenant = ctx.superuser
      ? h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: ctx.me.tenant })
      : null;
    f.marks.Expires = expires;
    f.marks.Tenant = tenant;
    const form = h("form", { class: "stack key-form", novalidate: true, "aria-describedby": f.errorEl.id },
      h("div", { class: "row" },
        field("Name", f.name, "Say which application uses it, e.g. billing-sync."),
        field("Environment", environment, "live keys start ak_live_, test keys ak_test_.")),
      f.scopes.el,
      limitsAndRules(f),
      h("div", { class: "row" },
        field("Expires", expires, UTC_HINT),
        tenant ? field("Tenant", tenant, `Optional. Leave empty for your own tenant (${ctx.me.tenant}).`) : null),
      f.errorEl,
      h("div", { class: "actions" },
        button("Cancel", () => close()),
        button("Create", null, { tone: "primary", type: "submit" })));
    form.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const limits = readLimits(f);
      if (!limits) return;
      const expiresAt = fromUtcInput(expires.value);
      if (expiresAt === undefined) return fail(f, "Expires: enter a date and time, or leave it empty.", expires);
      if (expiresAt && new Date(expiresAt) <= new Date()) return fail(f, PAST, expires);
      const input = {
        name: f.name.value.trim(),
        environment: environment.value.toUpperCase(),
        scopes: f.scopes.read(),
        rateLimits: limits,
        ipAllow: list(f.allow.value),
        ipBlock: list(f.block.value),
        expiresAt,
      };
      if (tenant && tenant.value.trim()) input.tenant = tenant.value.trim();
      const created = await send(form, f.errorEl, f.marks, () => gql(`mutation($input: CreateApiKeyInput!) {
        createApiKey(input: $input) { key ${KEY_FIELDS} } }`, { input }));
      if (created) close(created.createApiKey);
    });
    return form;
  }, { wide: true });
}

const sameList = (a, b) => a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);

/** The Edit dialog; resolves to the updated key, or undefined. */
export function editKey(ctx, key) {
  return dialog(`Edit ${key.name}`, (close) => {
    const f = keyFields(ctx, key);
    const form = h("form", { class: "stack key-form", novalidate: true, "aria-describedby": f.errorEl.id },
      field("Name", f.name),
      f.scopes.el,
      limitsAndRules(f),
      h("p", { class: "hint" }, "The environment, expiry and tenant of a key cannot change: create a new key for that."),
      f.errorEl,
      h("div", { class: "actions" },
        button("Cancel", () => close()),
        button("Save", null, { tone: "primary", type: "submit" })));
    form.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const limits = readLimits(f);
      if (!limits) return;
      const input = {};
      const name = f.name.value.trim();
      if (name !== key.name) input.name = name;
      const scopes = f.scopes.read();
      if (!sameList(scopes, key.scopes)) input.scopes = scopes;
      if (limits.perMinute !== key.rateLimits.perMinute || limits.perHour !== key.rateLimits.perHour) {
        // Windows left out would fall back to their defaults: keep the ones this form does not show.
        const { perSecond, perDay, burst } = key.rateLimits;
        input.rateLimits = { perSecond, perDay, burst, ...limits };
      }
      const allow = list(f.allow.value);
      const block = list(f.block.value);
      if (!sameList(allow, key.ipAllow)) input.ipAllow = allow;
      if (!sameList(block, key.ipBlock)) input.ipBlock = block;
      if (!Object.keys(input).length) {
        f.errorEl.textContent = "Nothing has changed: change a field, or Cancel.";
        return;
      }
      const updated = await send(form, f.errorEl, f.marks, () => gql(`mutation($id: String!, $input: UpdateApiKeyInput!) {
        updateApiKey(id: $id, input: $input) { ${KEY_FIELDS} } }`, { id: key.id, input }));
      if (updated) close(updated.updateApiKey);
    });
    return form;
  }, { wide: true });
}
