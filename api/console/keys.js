// The API Keys tab: the grid of the tenant's keys (cursor pages, revoked ones on request) and
// what can be done to them: create, edit, rotate, revoke, and read a key's history.

import { gql } from "./api.js";
import { h, fill, button, table, number, ago, when, toast, failure, emptyState, nextId } from "./ui.js";
import { KEY_FIELDS, statusBadge, expiryCell, rateLimitsText, ipRulesCell, scopesCell } from "./key_cells.js";
import { createKey, editKey, forgetScopes } from "./key_form.js";
import { rotateKey, revokeKey } from "./key_actions.js";
import { showHistory } from "./key_history.js";
import { showOnce } from "./key_secret.js";

const PAGE = 25;
const LIST = `query($includeRevoked: Boolean, $cursor: String) {
  apiKeys(includeRevoked: $includeRevoked, limit: ${PAGE}, cursor: $cursor) { data { ${KEY_FIELDS} } nextCursor } }`;

// Kept across the header's Refresh, as a person would expect of a view setting.
let showRevoked = false;
let view = null;

export function leave() {
  // A dialog left open (a secret on screen) must not outlive the tab or the session.
  for (const open of document.querySelectorAll("dialog[open]")) open.close();
  view = null;
}

export async function render(panel, ctx) {
  forgetScopes();
  const write = ctx.can("API_MANAGEMENT_WRITE");
  const heading = h("h2", { tabindex: "-1" }, "API Keys");
  const revokedToggle = h("input", { type: "checkbox", id: nextId("revoked"), checked: showRevoked });
  const body = h("div", { class: "keys-body", "aria-busy": "true" }, h("p", { class: "loading" }, "Loading keys…"));
  const me = { panel, ctx, write, heading, body, rows: [], cursor: null, loading: false };
  view = me;
  revokedToggle.addEventListener("change", () => {
    showRevoked = revokedToggle.checked;
    load(me, false);
  });
  fill(panel,
    h("div", { class: "panel-head" },
      heading,
      h("div", { class: "toolbar keys-toolbar" },
        h("label", { class: "check", for: revokedToggle.id }, revokedToggle, "Show revoked keys"),
        write ? button("Create API Key", () => create(me), { tone: "primary" }) : null)),
    body);
  await load(me, false);
}

async function load(me, more) {
  if (me.loading) return;
  me.loading = true;
  me.body.setAttribute("aria-busy", "true");
  try {
    const { apiKeys } = await gql(LIST, { includeRevoked: showRevoked, cursor: more ? me.cursor : null });
    if (view !== me) return;
    me.rows = more ? [...me.rows, ...apiKeys.data] : apiKeys.data;
    me.cursor = apiKeys.nextCursor;
    me.onlyRevoked = !me.rows.length && !showRevoked && await anyRevoked();
    draw(me);
  } catch (e) {
    if (view !== me) return;
    if (more) toast("More keys could not be loaded: try again.", "bad");
    else fill(me.body, failure(e));
  } finally {
    me.loading = false;
    me.body.removeAttribute("aria-busy");
  }
}

async function anyRevoked() {
  try {
    const { apiKeys } = await gql(`{ apiKeys(status: "revoked", limit: 1) { data { id } } }`);
    return apiKeys.data.length > 0;
  } catch {
    return false;
  }
}

function emptyText(me) {
  if (me.onlyRevoked) {
    return me.write
      ? "Every key has been revoked. Tick \"Show revoked keys\" to see them, or create a new key to let an application call your API."
      : "Every key has been revoked. Tick \"Show revoked keys\" to see them.";
  }
  return me.write
    ? "No API keys yet. Create one to let an application call your API."
    : "No API keys yet. Ask someone whose admin token has the API_MANAGEMENT_WRITE permission to create one for your application.";
}

function draw(me) {
  const rows = me.rows.filter((k) => showRevoked || k.status !== "revoked");
  if (!rows.length) {
    if (me.rows.some((k) => k.status === "revoked")) me.onlyRevoked = true;
    fill(me.body, emptyState(emptyText(me)));
    return;
  }
  const now = Date.now();
  const columns = [
    { label: "Name", cell: (k) => h("strong", {}, k.name) },
    me.ctx.superuser ? { label: "Tenant", cell: (k) => k.tenant } : null,
    { label: "Prefix", cell: (k) => h("code", { class: "nowrap" }, k.prefix) },
    { label: "Environment", cell: (k) => k.environment },
    { label: "Status", cell: (k) => statusBadge(k.status) },
    { label: "Scopes", cell: (k) => scopesCell(k.scopes) },
    { label: "Rate limits", cell: (k) => h("span", { class: "nowrap" }, rateLimitsText(k.rateLimits)) },
    { label: "IP rules", cell: (k) => ipRulesCell(k) },
    { label: "Total requests", class: "num", cell: (k) => number(k.totalRequests) },
    { label: "Last used", cell: (k) => (k.lastUsedAt ? h("time", { datetime: k.lastUsedAt, title: when(k.lastUsedAt) }, ago(k.lastUsedAt, now)) : "Never") },
    { label: "Expires", cell: (k) => expiryCell(k) },
    { label: "Actions", cell: (k) => actions(me, k) },
  ].filter(Boolean);
  fill(me.body,
    table("API keys", columns, rows),
    h("div", { class: "list-foot" },
      h("p", { class: "hint" }, me.cursor ? `Showing the newest ${rows.length} keys.` : `${rows.length} ${rows.length === 1 ? "key" : "keys"}.`),
      me.cursor ? button("Load more", () => load(me, true)) : null));
}

function actions(me, key) {
  const act = (label, onclick, tone = "small") => button(label, onclick, { tone, "aria-label": `${label} ${key.name}` });
  // A named group: the cell's accessible name stays "Actions" rather than repeating the key's
  // name from every button (so the Name cell is the only cell named after the key).
  return h("div", { class: "row-actions", role: "group", "aria-label": "Actions" },
    me.write && key.status === "active" ? act("Edit", () => edit(me, key)) : null,
    me.write && key.status === "active" ? act("Rotate", () => rotate(me, key)) : null,
    me.write && key.status !== "revoked" ? act("Revoke", () => revoke(me, key), "small danger-outline") : null,
    act("History", () => showHistory(me.ctx, key)));
}

/** Puts a changed key in its row (or first, when new) and draws again, without reloading the pages. */
function put(me, key, first = false) {
  const at = me.rows.findIndex((k) => k.id === key.id);
  if (at >= 0) me.rows[at] = key;
  else if (first) me.rows.unshift(key);
  me.onlyRevoked = false;
  draw(me);
}

/** After a redraw the opener is gone: focus its successor, or the heading. */
function refocus(me, label) {
  const target = label && [...me.body.querySelectorAll("button")].find((b) => b.getAttribute("aria-label") === label);
  (target || me.heading).focus();
}

/** Takes the plaintext out of a key before it is kept. */
function withoutSecret(key) {
  const { key: secret, ...rest } = key;
  return [secret, rest];
}

async function create(me) {
  const created = await createKey(me.ctx);
  if (!created || view !== me) return;
  const [secret, key] = withoutSecret(created);
  put(me, key, true);
  toast(`Key ${key.name} created.`);
  await showOnce({ title: "Your new API key", what: `the key for ${key.name}`, secret, testid: "new-key" });
  refocus(me, `Edit ${key.name}`);
}

async function edit(me, key) {
  const updated = await editKey(me.ctx, key);
  if (!updated || view !== me) return;
  put(me, updated);
  toast(`Key ${updated.name} saved.`);
  refocus(me, `Edit ${updated.name}`);
}

async function rotate(me, key) {
  const rotated = await rotateKey(key);
  if (!rotated || view !== me) return;
  const [secret, fresh] = withoutSecret(rotated);
  put(me, fresh);
  toast(`Key ${fresh.name} rotated.`);
  await showOnce({ title: "Your new API key", what: `the new secret of ${fresh.name}`, secret, testid: "new-key" });
  refocus(me, `Rotate ${fresh.name}`);
}

async function revoke(me, key) {
  const revoked = await revokeKey(key);
  if (!revoked || view !== me) return;
  put(me, revoked);
  toast(`Key ${revoked.name} revoked: applications using it no longer have access.`);
  refocus(me, showRevoked ? `History ${revoked.name}` : null);
}
