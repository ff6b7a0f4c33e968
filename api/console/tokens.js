// The Tokens tab: the admin tokens of the tenant (every tenant's for superusers), creating one
// (shown once) and deleting one, with a warning when it is the token this console is signed in with.

import { gql, describe } from "./api.js";
import { h, fill, button, table, badge, when, toast, emptyState, confirmAction, busy } from "./ui.js";
import { createToken, TOKEN_FIELDS, PERMISSIONS } from "./token_form.js";
import { forgetScopes } from "./key_scopes.js";
import { showOnce } from "./secret.js";
import { lastUsedCell } from "./times.js";
import { pagedList, tagRows, rowControl, rowNames } from "./paged_list.js";

const PAGE = 50;
const LIST = `query($cursor: String) { adminTokens(limit: ${PAGE}, cursor: $cursor) { data { ${TOKEN_FIELDS} } nextCursor } }`;
const EXPIRY = { never: ["Never", "neutral"], active: ["Active", "ok"], expired: ["Expired", "bad"] };

// Rendered again without leaving first: that is the header's Refresh, which reads everything anew.
let entered = false;
let view = null;

export function leave() {
  if (view) view.list.stop();
  view = null;
  entered = false;
}

export async function render(panel, ctx) {
  if (entered) forgetScopes();
  entered = true;
  if (view) view.list.stop();
  const heading = h("h2", { tabindex: "-1" }, "Admin tokens");
  const me = { ctx, heading };
  me.list = pagedList({
    noun: "tokens",
    loading: "Loading tokens…",
    fetchPage: async (cursor) => (await gql(LIST, { cursor })).adminTokens,
    draw: () => draw(me),
  });
  view = me;
  fill(panel,
    h("div", { class: "panel-head" },
      heading,
      h("div", { class: "toolbar tokens-toolbar" }, button("Create token", () => create(me), { tone: "primary" }))),
    h("p", { class: "hint tokens-intro" },
      "Admin tokens sign in to this console and call the admin API. Each is shown once when created; delete one that is lost or no longer used."),
    me.list.el);
  await me.list.reload();
}
/** A token holding a permission the signed-in one lacks (a superuser's, for a tenant admin) is left alone. */
const mayDelete = (ctx, t) => t.permissions.every((p) => ctx.can(p));

function expiryCell(t) {
  const [text, tone] = EXPIRY[t.expiryStatus] || [t.expiryStatus, "neutral"];
  return h("div", { class: "cell-stack" }, badge(text, tone), t.expiresAt ? h("span", { class: "nowrap" }, when(t.expiresAt)) : null);
}

function scopesText(scopes) {
  if (!Array.isArray(scopes)) return h("span", { class: "hint" }, "All its creator held");
  return scopes.length ? h("code", {}, scopes.join(", ")) : h("span", { class: "hint" }, "None");
}

function draw(me) {
  const { list } = me;
  if (!list.rows.length) {
    fill(list.content, emptyState("No admin tokens in this tenant. Create one for each person or automation that manages keys."));
    return "";
  }
  const now = Date.now();
  const known = new Set(PERMISSIONS.map(([p]) => p));
  // Names are unique within a tenant: a superuser sees the same name in several.
  const names = rowNames(list.rows, (t) => t.name, (t) => t.tenant);
  fill(list.content, tagRows(table("Admin tokens", [
    {
      label: "Name", cell: (t) => h("div", { class: "cell-stack" }, h("strong", {}, t.name),
        t.id === me.ctx.me.tokenId ? badge("Signed in with this token", "neutral") : null),
    },
    { label: "Tenant", cell: (t) => t.tenant },
    { label: "Permissions", cell: (t) => h("ul", { class: "perm-list" }, t.permissions.map((p) => h("li", {}, h("code", { title: known.has(p) ? undefined : "unknown permission" }, p)))) },
    { label: "Key scopes", cell: (t) => scopesText(t.scopes) },
    { label: "Expiry", cell: expiryCell },
    { label: "Created", cell: (t) => h("span", { class: "nowrap" }, when(t.createdAt)) },
    { label: "Last used", cell: (t) => lastUsedCell(t.lastUsedAt, now) },
    {
      label: "Actions", cell: (t) => (mayDelete(me.ctx, t)
        ? h("div", { role: "group", "aria-label": "Actions" },
          button("Delete", (event) => remove(me, t, event.currentTarget), { tone: "small danger-outline", "aria-label": `Delete ${names.get(t.id)}`, "data-action": "delete" }))
        : h("span", { class: "hint" }, "Held by a higher permission")),
    },
  ], list.rows), list.rows));
  return `${list.rows.length} ${list.rows.length === 1 ? "token" : "tokens"}${list.cursor ? " so far" : ""}.`;
}

async function create(me) {
  const created = await createToken(me.ctx);
  if (!created || view !== me) return;
  const { token: secret, ...row } = created;
  me.list.rows.unshift(row);
  me.list.show();
  toast(`Token ${row.name} created.`);
  await showOnce({ title: "Your new admin token", what: `the admin token ${row.name}`, secret, testid: "new-token" });
  (rowControl(me.list, row.id, "delete") || me.heading).focus();
}

async function remove(me, t, opener) {
  const own = t.id === me.ctx.me.tokenId;
  const text = own
    ? `"${t.name}" is the token you are signed in with: deleting it signs you out of this console at once. Deleted tokens cannot be recovered.`
    : `Anything using "${t.name}" loses access at once. Deleted tokens cannot be recovered; a new one would have to be created.`;
  const sure = await confirmAction(`Delete ${t.name}?`, text, "Delete token");
  if (!sure || view !== me) return;
  try {
    await busy(opener, () => gql("mutation($id: String!) { deleteAdminToken(id: $id) }", { id: t.id }));
  } catch (e) {
    toast(`${t.name} was not deleted: ${describe(e)}`, "bad");
    if (opener.isConnected) opener.focus();
    return;
  }
  if (own) {
    me.ctx.signOut("You deleted the token you were signed in with.");
    return;
  }
  toast(`Token ${t.name} deleted.`);
  me.list.rows = me.list.rows.filter((r) => r.id !== t.id);
  me.list.show();
  me.heading.focus();
}
