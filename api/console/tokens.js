// The Tokens tab: the admin tokens of the tenant (every tenant's for superusers), creating one
// (shown once) and deleting one, with a warning when it is the token this console is signed in with.

import { gql, session } from "./api.js";
import { h, fill, button, table, badge, when, ago, toast, failure, emptyState, confirmAction } from "./ui.js";
import { createToken, TOKEN_FIELDS, PERMISSIONS } from "./token_form.js";
import { showOnce } from "./key_secret.js";
import { words } from "./key_cells.js";

const PAGE = 50;
const LIST = `query($cursor: String) { adminTokens(limit: ${PAGE}, cursor: $cursor) { data { ${TOKEN_FIELDS} } nextCursor } }`;
const EXPIRY = { never: ["Never", "neutral"], active: ["Active", "ok"], expired: ["Expired", "bad"] };

let view = null;

export function leave() {
  for (const open of document.querySelectorAll("dialog[open]")) open.close();
  view = null;
}

export async function render(panel, ctx) {
  const heading = h("h2", { tabindex: "-1" }, "Admin tokens");
  const body = h("div", { "aria-busy": "true" }, h("p", { class: "loading" }, "Loading tokens…"));
  const me = { ctx, heading, body, rows: [], cursor: null, loading: false };
  view = me;
  fill(panel,
    h("div", { class: "panel-head" },
      heading,
      h("div", { class: "toolbar tokens-toolbar" }, button("Create token", () => create(me), { tone: "primary" }))),
    h("p", { class: "hint tokens-intro" },
      "Admin tokens sign in to this console and call the admin API. Each is shown once when created; delete one that is lost or no longer used."),
    body);
  await load(me, false);
}

async function load(me, more) {
  if (me.loading) return;
  me.loading = true;
  me.body.setAttribute("aria-busy", "true");
  try {
    const { adminTokens } = await gql(LIST, { cursor: more ? me.cursor : null });
    if (view !== me) return;
    me.rows = more ? [...me.rows, ...adminTokens.data] : adminTokens.data;
    me.cursor = adminTokens.nextCursor;
    draw(me);
  } catch (e) {
    if (view !== me) return;
    if (more) toast("More tokens could not be loaded: try again.", "bad");
    else fill(me.body, failure(e));
  } finally {
    me.loading = false;
    me.body.removeAttribute("aria-busy");
  }
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
  if (!me.rows.length) {
    fill(me.body, emptyState("No admin tokens in this tenant. Create one for each person or automation that manages keys."));
    return;
  }
  const now = Date.now();
  const known = new Set(PERMISSIONS.map(([p]) => p));
  fill(me.body,
    table("Admin tokens", [
      {
        label: "Name", cell: (t) => h("div", { class: "cell-stack" }, h("strong", {}, t.name),
          t.id === me.ctx.me.tokenId ? badge("Signed in with this token", "neutral") : null),
      },
      { label: "Tenant", cell: (t) => t.tenant },
      { label: "Permissions", cell: (t) => h("ul", { class: "perm-list" }, t.permissions.map((p) => h("li", {}, h("code", { title: known.has(p) ? undefined : "unknown permission" }, p)))) },
      { label: "Key scopes", cell: (t) => scopesText(t.scopes) },
      { label: "Expiry", cell: expiryCell },
      { label: "Created", cell: (t) => h("span", { class: "nowrap" }, when(t.createdAt)) },
      { label: "Last used", cell: (t) => (t.lastUsedAt ? h("time", { datetime: t.lastUsedAt, title: when(t.lastUsedAt) }, ago(t.lastUsedAt, now)) : "Never") },
      {
        label: "Actions", cell: (t) => (mayDelete(me.ctx, t)
          ? h("div", { role: "group", "aria-label": "Actions" },
            button("Delete", () => remove(me, t), { tone: "small danger-outline", "aria-label": `Delete ${t.name}` }))
          : h("span", { class: "hint" }, "Held by a higher permission")),
      },
    ], me.rows),
    h("div", { class: "list-foot" },
      h("p", { class: "hint" }, `${me.rows.length} ${me.rows.length === 1 ? "token" : "tokens"}${me.cursor ? " so far" : ""}.`),
      me.cursor ? button("Load more", () => load(me, true)) : null));
}

async function create(me) {
  const created = await createToken(me.ctx);
  if (!created || view !== me) return;
  const { token: secret, ...row } = created;
  me.rows.unshift(row);
  draw(me);
  toast(`Token ${row.name} created.`);
  await showOnce({ title: "Your new admin token", what: `the admin token ${row.name}`, secret, testid: "new-token" });
  const again = [...me.body.querySelectorAll("button")].find((b) => b.getAttribute("aria-label") === `Delete ${row.name}`);
  (again || me.heading).focus();
}

async function remove(me, t) {
  const own = t.id === me.ctx.me.tokenId;
  const text = own
    ? `"${t.name}" is the token you are signed in with: deleting it signs you out of this console at once. Deleted tokens cannot be recovered.`
    : `Anything using "${t.name}" loses access at once. Deleted tokens cannot be recovered; a new one would have to be created.`;
  const sure = await confirmAction(`Delete ${t.name}?`, text, "Delete token");
  if (!sure || view !== me) return;
  try {
    await gql("mutation($id: String!) { deleteAdminToken(id: $id) }", { id: t.id });
  } catch (e) {
    toast(`${t.name} was not deleted: ${words(e)}`, "bad");
    return;
  }
  toast(`Token ${t.name} deleted.`);
  if (own) {
    // The console's shell signs out when a request is refused as unauthorized: make one.
    session.clear();
    gql("{ me { tokenId } }").catch(() => {});
    return;
  }
  me.rows = me.rows.filter((r) => r.id !== t.id);
  draw(me);
  me.heading.focus();
}
