// The Create API Key and Edit dialogs: name, scopes, rate limits, IP rules and (when created)
// environment, expiry and tenant. A refusal from the server is said in the dialog, on its field.

import { gql } from "./api.js";
import { h, field, dialog, button, list, nextId, submitting, select } from "./ui.js";
import { KEY_FIELDS } from "./key_cells.js";
import { scopePicker } from "./key_scopes.js";
import { utcInput, readExpiry, UTC_HINT, PAST } from "./times.js";

const WINDOWS = [
  // [field, label, hint, required]: per minute and per hour always apply (left out, the server
  // puts its defaults back), the others only when given.
  ["perSecond", "Per second", "Empty: no per-second limit.", false],
  ["perMinute", "Per minute", "Requests per 60 seconds.", true],
  ["perHour", "Per hour", "Requests per 3600 seconds.", true],
  ["perDay", "Per day", "Empty: no daily limit.", false],
  ["burst", "Burst", "How many may arrive at once under Per second. Empty: Per second itself.", false],
];
// How the server's messages name the windows ("rate limit per_second must be …").
const WIRE = { perSecond: "per_second", perMinute: "per_minute", perHour: "per_hour", perDay: "per_day", burst: "burst" };
const DEFAULTS = { perMinute: 60, perHour: 3600 };

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

/** The shared fields of both dialogs. */
function keyFields(ctx, key) {
  const name = h("input", { type: "text", required: true, maxlength: "200", autocomplete: "off", value: key.name, autofocus: true });
  const scopes = scopePicker(ctx, key.scopes);
  const limits = Object.fromEntries(WINDOWS.map(([w, , , required]) => [w, h("input", {
    type: "number", min: "1", step: "1", inputmode: "numeric", required, value: key.rateLimits[w] ?? DEFAULTS[w],
  })]));
  const allow = h("textarea", { class: "short", rows: "2", spellcheck: "false" }, key.ipAllow.join("\n"));
  const block = h("textarea", { class: "short", rows: "2", spellcheck: "false" }, key.ipBlock.join("\n"));
  const errorEl = h("p", { class: "error-text", role: "alert", id: nextId("err") });
  const f = { name, scopes, limits, allow, block, errorEl, marks: {} };
  // The server's message names the refused window, or quotes the refused IP rule.
  f.marks = {
    Name: () => name,
    Scopes: () => scopes.other,
    "Rate limits": (e) => limits[WINDOWS.map(([w]) => w).find((w) => (e.message || "").includes(WIRE[w])) || "perMinute"],
    "IP rules": (e) => {
      const quoted = /"([^"]+)"/.exec(e.message || "");
      return quoted && list(block.value).includes(quoted[1]) ? block : allow;
    },
  };
  return f;
}

function limitsAndRules(f) {
  return [
    h("fieldset", { class: "group" }, h("legend", {}, "Rate limits"),
      h("div", { class: "row limits" }, WINDOWS.map(([w, label, hint]) => field(label, f.limits[w], hint)))),
    h("div", { class: "row" },
      field("Allowed IPs", f.allow, `${IP_HINT} Empty: any address.`),
      field("Blocked IPs", f.block, `${IP_HINT} Blocked wins over allowed.`)),
  ];
}

/** Says what is wrong on the field it is about. */
function fail(f, text, el) {
  f.errorEl.textContent = text;
  if (el) {
    el.setAttribute("aria-invalid", "true");
    el.focus();
  }
  return null;
}

/** Checks what the browser can check, in words; returns the rate limits or null. */
function readLimits(f) {
  for (const el of f.form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  f.errorEl.textContent = "";
  if (!f.name.value.trim()) return fail(f, "Give the key a name, e.g. the application that will use it.", f.name);
  const limits = {};
  for (const [w, label, , required] of WINDOWS) {
    const text = f.limits[w].value.trim();
    const n = Number(text);
    if (!text && !required) limits[w] = null;
    else if (text && Number.isInteger(n) && n > 0) limits[w] = n;
    else return fail(f, `Rate limits: ${label} must be a whole number above 0${required ? "" : ", or empty for no limit"}.`, f.limits[w]);
  }
  return limits;
}

/** A refusal from the server, on its field. */
function refused(f, e) {
  const about = CODE_FIELD[e.code];
  if (!about) return;
  f.errorEl.textContent = e.code === "invalid_expiry" ? PAST : `${about}: ${f.errorEl.textContent}`;
  const mark = f.marks[about] && f.marks[about](e);
  if (mark) fail(f, f.errorEl.textContent, mark);
}

function form(f, children, onSubmit) {
  f.form = h("form", { class: "stack key-form", novalidate: true, "aria-describedby": f.errorEl.id }, children);
  f.form.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid"));
  f.form.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit();
  });
  return f.form;
}

// randomUUID exists only in secure contexts (https, localhost): the console may be served over
// plain http inside a network.
function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The Create API Key dialog; resolves to the created key (with its plaintext `key`, absent when
 * a retry found the key already made) or undefined.
 */
export function createKey(ctx) {
  // One per dialog: a retry after an answer that was lost returns that key instead of a second one.
  const idem = idempotencyKey();
  return dialog("Create API Key", (close) => {
    const f = keyFields(ctx, { name: "", scopes: [], rateLimits: {}, ipAllow: [], ipBlock: [] });
    const environment = select([{ value: "LIVE", label: "live" }, { value: "TEST", label: "test" }], "LIVE");
    const expires = utcInput({});
    const tenant = ctx.superuser
      ? h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: ctx.me.tenant })
      : null;
    f.marks.Expires = () => expires;
    f.marks.Tenant = () => tenant;
    const submit = async () => {
      const rateLimits = readLimits(f);
      if (!rateLimits) return;
      const expiry = readExpiry(expires);
      if (expiry.error) return fail(f, expiry.error, expires);
      const input = {
        name: f.name.value.trim(),
        environment: environment.value,
        scopes: f.scopes.read(),
        rateLimits,
        ipAllow: list(f.allow.value),
        ipBlock: list(f.block.value),
        expiresAt: expiry.at,
      };
      if (tenant && tenant.value.trim()) input.tenant = tenant.value.trim();
      const created = await submitting(f.form, f.errorEl, () => gql(`mutation($input: CreateApiKeyInput!, $idem: String) {
        createApiKey(input: $input, idempotencyKey: $idem) { key ${KEY_FIELDS} } }`, { input, idem }), (e) => refused(f, e));
      if (created) close(created.createApiKey);
    };
    return form(f, [
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
        button("Create", null, { tone: "primary", type: "submit" })),
    ], submit);
  }, { wide: true });
}

const sameList = (a, b) => a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);

/** The Edit dialog; resolves to the updated key, or undefined. */
export function editKey(ctx, key) {
  return dialog(`Edit ${key.name}`, (close) => {
    const f = keyFields(ctx, key);
    const submit = async () => {
      const limits = readLimits(f);
      if (!limits) return;
      const input = {};
      const name = f.name.value.trim();
      if (name !== key.name) input.name = name;
      const scopes = f.scopes.read();
      if (!sameList(scopes, key.scopes)) input.scopes = scopes;
      // Sent whole when any changed: a window left out would fall back to its default.
      if (WINDOWS.some(([w]) => limits[w] !== (key.rateLimits[w] ?? null))) input.rateLimits = limits;
      const allow = list(f.allow.value);
      const block = list(f.block.value);
      if (!sameList(allow, key.ipAllow)) input.ipAllow = allow;
      if (!sameList(block, key.ipBlock)) input.ipBlock = block;
      if (!Object.keys(input).length) {
        f.errorEl.textContent = "Nothing has changed: change a field, or Cancel.";
        return;
      }
      const updated = await submitting(f.form, f.errorEl, () => gql(`mutation($id: String!, $input: UpdateApiKeyInput!) {
        updateApiKey(id: $id, input: $input) { ${KEY_FIELDS} } }`, { id: key.id, input }), (e) => refused(f, e));
      if (updated) close(updated.updateApiKey);
    };
    return form(f, [
      field("Name", f.name),
      f.scopes.el,
      limitsAndRules(f),
      h("p", { class: "hint" }, "The environment, expiry and tenant of a key cannot change: create a new key for that."),
      f.errorEl,
      h("div", { class: "actions" },
        button("Cancel", () => close()),
        button("Save", null, { tone: "primary", type: "submit" })),
    ], submit);
  }, { wide: true });
}
