// The API Keys tab: the grid of the tenant's keys (cursor pages, revoked ones on request, a filter
// over the loaded rows) and what can be done to them: create, edit, rotate, revoke, read a history.

import { gql } from "./api.js";
import { h, fill, button, table, number, toast, emptyState, nextId, field, dialog } from "./ui.js";
import { KEY_FIELDS, statusBadge, expiryCell, rateLimitsText, ipRulesCell, scopesCell } from "./key_cells.js";
import { createKey, editKey } from "./key_form.js";
import { forgetScopes } from "./key_scopes.js";
import { rotateKey, revokeKey } from "./key_actions.js";
import { showHistory } from "./key_history.js";
import { showOnce } from "./secret.js";
import { lastUsedCell } from "./times.js";
import { pagedList, tagRows, rowControl, rowNames } from "./paged_list.js";

const PAGE = 25;
const LIST = `query($includeRevoked: Boolean, $cursor: String) {
  apiKeys(includeRevoked: $includeRevoked, limit: ${PAGE}, cursor: $cursor) { data { ${KEY_FIELDS} } nextCursor } }`;

// View settings, kept across the header's Refresh and tab switches as a person would expect, but
// not into another person's session: a different token starts from the defaults.
let showRevoked = false;
let filter = "";
let settingsOf = null;
// Rendered again without leaving first: that is the header's Refresh, which reads everything anew.
let entered = false;
let view = null;

export function leave() {
  if (view) view.list.stop();
  view = null;
  entered = false;
}

export async function render(panel, ctx) {
  if (settingsOf !== ctx.me.tokenId) {
    showRevoked = false;
    filter = "";
    settingsOf = ctx.me.tokenId;
  }
  if (entered) forgetScopes();
  entered = true;
  if (view) view.list.stop();

  const write = ctx.can("API_MANAGEMENT_WRITE");
  const heading = h("h2", { tabindex: "-1" }, "API Keys");
  const revokedToggle = h("input", { type: "checkbox", id: nextId("revoked"), checked: showRevoked });
  const search = h("input", { type: "search", autocomplete: "off", spellcheck: "false", value: filter, placeholder: "Name or prefix" });
  const me = { ctx, write, heading };
  me.list = pagedList({
    noun: "keys",
    loading: "Loading keys…",
    fetchPage: async (cursor) => {
      const { apiKeys } = await gql(LIST, { includeRevoked: showRevoked, cursor });
      if (!cursor && !showRevoked && !apiKeys.data.length) apiKeys.anyRevoked = await anyRevoked();
      return apiKeys;
    },
    draw: () => draw(me),
  });
  view = me;
  revokedToggle.addEventListener("change", () => {
    showRevoked = revokedToggle.checked;
    me.list.reload();
  });
  search.addEventListener("input", () => {
    filter = search.value;
    if (me.list.first) me.list.show();
  });
  fill(panel,
    h("div", { class: "panel-head" },
      heading,
      h("div", { class: "toolbar keys-toolbar" },
        field("Filter keys", search),
        h("label", { class: "check", for: revokedToggle.id }, revokedToggle, "Show revoked keys"),
        write ? button("Create API Key", () => create(me), { tone: "primary" }) : null)),
    h("div", { class: "keys-body" }, me.list.el));
  await me.list.reload();
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
  const onlyRevoked = me.list.rows.some((k) => k.status === "revoked") || Boolean(me.list.first && me.list.first.anyRevoked);
  if (onlyRevoked && !showRevoked) {
    return me.write
      ? "Every key has been revoked. Tick \"Show revoked keys\" to see them, or create a new key to let an application call your API."
      : "Every key has been revoked. Tick \"Show revoked keys\" to see them.";
  }
  return me.write
    ? "No API keys yet. Create one to let an application call your API."
    : "No API keys yet. Ask someone whose admin token has the API_MANAGEMENT_WRITE permission to create one for your application.";
}

const plural = (n) => `${n} ${n === 1 ? "key" : "keys"}`;

/** Fills the list with the loaded keys the settings let through; returns the row-count line. */
function draw(me) {
  const { list } = me;
  const kept = list.rows.filter((k) => showRevoked || k.status !== "revoked");
  const wanted = filter.trim().toLowerCase();
  const rows = wanted ? kept.filter((k) => k.name.toLowerCase().includes(wanted) || k.prefix.toLowerCase().includes(wanted)) : kept;
  if (!kept.length) {
    fill(list.content, emptyState(emptyText(me)));
    return "";
  }
  if (!rows.length) {
    fill(list.content, emptyState(`No key's name or prefix contains "${filter.trim()}". Change or clear the filter${list.cursor ? ", or load more keys" : ""}.`));
    return `None of the ${plural(kept.length)} loaded matches the filter.`;
  }
  const names = rowNames(list.rows, (k) => k.name, (k) => k.prefix);
  const now = Date.now();
  const columns = [
    { label: "Name", cell: (k) => h("strong", {}, k.name) },
    me.ctx.superuser ? { label: "Tenant", cell: (k) => k.tenant } : null,
    { label: "Prefix", cell: (k) => h("code", { class: "nowrap" }, k.prefix) },
    { label: "Environment", cell: (k) => k.environment },
    { label: "Status", cell: (k) => statusBadge(k.status) },
    { label: "Scopes", cell: (k) => scopesCell(k.scopes) },
    // Each window stays whole, but the list may wrap between them.
    { label: "Rate limits", cell: (k) => rateLimitsText(k.rateLimits).split(" · ").map((part, i) => [i ? " · " : "", h("span", { class: "nowrap" }, part)]) },
    { label: "IP rules", cell: (k) => ipRulesCell(k) },
    { label: "Total requests", class: "num", cell: (k) => number(k.totalRequests) },
    { label: "Last used", cell: (k) => lastUsedCell(k.lastUsedAt, now) },
    { label: "Expires", cell: (k) => expiryCell(k) },
    { label: "Actions", cell: (k) => actions(me, k, names.get(k.id)) },
  ].filter(Boolean);
  fill(list.content, tagRows(table("API keys", columns, rows), rows));
  if (wanted) return `${rows.length} of the ${plural(kept.length)} loaded ${rows.length === 1 ? "matches" : "match"} the filter.`;
  return list.cursor ? `Showing the newest ${plural(kept.length)}.` : `${plural(kept.length)}.`;
}

function actions(me, key, name) {
  const act = (label, onclick, tone = "small") =>
    button(label, onclick, { tone, "aria-label": `${label} ${name}`, "data-action": label.toLowerCase() });
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
  const rows = me.list.rows;
  const at = rows.findIndex((k) => k.id === key.id);
  if (at >= 0) rows[at] = key;
  else if (first) rows.unshift(key);
  me.list.show();
}

/** After a redraw the opener is gone: focus the same button of the same key, or the heading. */
function refocus(me, id, action) {
  (rowControl(me.list, id, action) || me.heading).focus();
}

/** Takes the plaintext out of a key before it is kept. */
function withoutSecret(key) {
  const { key: secret, ...rest } = key;
  return [secret, rest];
}

function alreadyCreated(key) {
  return dialog("Key already created", (close) => h("div", { class: "stack" },
    h("p", {}, "An earlier attempt of this dialog had already created the key ", h("strong", {}, key.name), " (", h("code", {}, key.prefix), "), but its answer was lost. A key's secret is shown only once, so it cannot be shown again."),
    h("p", {}, "Rotate the key to get a new secret you can copy."),
    h("div", { class: "actions" }, button("OK", () => close(), { tone: "primary", autofocus: true }))));
}

async function create(me) {
  const created = await createKey(me.ctx);
  if (!created || view !== me) return;
  const [secret, key] = withoutSecret(created);
  put(me, key, true);
  if (secret) {
    toast(`Key ${key.name} created.`);
    await showOnce({ title: "Your new API key", what: `the key for ${key.name}`, secret, testid: "new-key" });
  } else {
    await alreadyCreated(key);
  }
  refocus(me, key.id, "edit");
}

async function edit(me, key) {
  const updated = await editKey(me.ctx, key);
  if (!updated || view !== me) return;
  put(me, updated);
  toast(`Key ${updated.name} saved.`);
  refocus(me, updated.id, "edit");
}

async function rotate(me, key) {
  const rotated = await rotateKey(key);
  if (!rotated || view !== me) return;
  const [secret, fresh] = withoutSecret(rotated);
  put(me, fresh);
  toast(`Key ${fresh.name} rotated.`);
  await showOnce({ title: "Your new API key", what: `the new secret of ${fresh.name}`, secret, testid: "new-key" });
  refocus(me, fresh.id, "rotate");
}

async function revoke(me, key) {
  const revoked = await revokeKey(key);
  if (!revoked || view !== me) return;
  put(me, revoked);
  toast(`Key ${revoked.name} revoked: applications using it no longer have access.`);
  refocus(me, revoked.id, "history");
}
