// The console's shell: sign in with an admin token, the header, the tabs (keyboard-navigable, as
// the WAI-ARIA tabs pattern) and which tab the signed-in token is offered.

import { gql, session, whenUnauthorized, describe } from "./api.js";
import { h, fill, tabKeys } from "./ui.js";
import * as overview from "./overview.js";
import * as keys from "./keys.js";
import * as analytics from "./analytics.js";
import * as explorer from "./explorer.js";
import * as webhooks from "./webhooks.js";
import * as tokens from "./tokens.js";

const TABS = [
  { id: "overview", label: "Overview", module: overview },
  { id: "keys", label: "API Keys", module: keys },
  { id: "analytics", label: "Analytics", module: analytics },
  { id: "explorer", label: "API Explorer", module: explorer },
  { id: "webhooks", label: "Webhooks", module: webhooks, needs: "API_MANAGEMENT_READ" },
  { id: "tokens", label: "Tokens", module: tokens, needs: "TENANT_ADMIN" },
];

const $ = (id) => document.getElementById(id);
let current = null;
let context = null;

async function signIn(token) {
  session.set(token);
  try {
    const { me } = await gql("{ me { tokenId tenant permissions holds grantableScopes } }");
    return me;
  } catch (e) {
    session.clear();
    throw e;
  }
}

function showSignIn(message = "") {
  stop();
  context = null;
  $("console").hidden = true;
  // Nothing the last token could read stays in the page.
  fill($("panels"));
  fill($("tablist"));
  $("top-actions").hidden = true;
  $("scope").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("token").value = "";
  $("token").focus();
}

/** Forgets the token and everything it read; `message` says why when it was not the user's choice. */
function signOut(message = "") {
  session.clear();
  history.replaceState(null, "", "/");
  showSignIn(message);
}

function start(me) {
  // The server says what the token holds (permissions with what they include), so the console
  // offers exactly what it would accept.
  const held = new Set(me.holds);
  const can = (permission) => held.has(permission);
  context = { me, can, superuser: can("SUPERUSER"), signOut };
  $("sign-in").hidden = true;
  $("console").hidden = false;
  $("top-actions").hidden = false;
  $("scope").hidden = false;
  $("scope-tenant").textContent = context.superuser ? `${me.tenant} (superuser: every tenant)` : me.tenant;
  const offered = TABS.filter((t) => !t.needs || can(t.needs));
  const list = fill($("tablist"), offered.map((t, i) => h("button", {
    type: "button", role: "tab", id: `tab-${t.id}`, "aria-controls": `panel-${t.id}`,
    "aria-selected": "false", tabindex: i === 0 ? "0" : "-1", onclick: () => select(t.id, true),
  }, t.label)));
  list.onkeydown = (event) => tabKeys(event, offered.map((t) => $(`tab-${t.id}`)));
  fill($("panels"), offered.map((t) => h("section", {
    role: "tabpanel", id: `panel-${t.id}`, "aria-labelledby": `tab-${t.id}`, tabindex: "0", hidden: true, class: "panel",
  })));
  const wanted = location.hash.slice(1);
  select(offered.some((t) => t.id === wanted) ? wanted : offered[0].id, false);
}

function stop() {
  // A dialog left open (a secret on screen) must not outlive the tab or the session.
  for (const open of document.querySelectorAll("dialog[open]")) open.close();
  if (current && current.module.leave) current.module.leave();
  current = null;
}

function select(id, remember) {
  const tab = TABS.find((t) => t.id === id);
  stop();
  for (const t of TABS) {
    const button = $(`tab-${t.id}`);
    if (!button) continue;
    const on = t.id === id;
    button.setAttribute("aria-selected", String(on));
    button.tabIndex = on ? 0 : -1;
    $(`panel-${t.id}`).hidden = !on;
  }
  if (remember) history.replaceState(null, "", `#${id}`);
  current = tab;
  render();
}

function render() {
  if (!current || !context) return;
  const panel = $(`panel-${current.id}`);
  fill(panel, h("p", { class: "loading" }, "Loading…"));
  Promise.resolve(current.module.render(panel, context)).catch((e) => {
    fill(panel, h("div", { class: "notice error", role: "alert" }, describe(e)));
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  whenUnauthorized(() => {
    if (context) signOut("Your admin token is no longer accepted. Sign in again.");
  });
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = event.target.querySelector("[type=submit]");
    button.disabled = true;
    $("sign-in-error").textContent = "";
    // Out of the field at once: it must not sit in the page for the whole session.
    const token = $("token").value.trim();
    $("token").value = "";
    try {
      start(await signIn(token));
    } catch (e) {
      $("sign-in-error").textContent = e.code === "unauthorized" ? "That token was not accepted. Check that it was copied whole and has not expired." : describe(e);
    } finally {
      button.disabled = false;
    }
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("refresh").addEventListener("click", render);
  if (session.token) {
    try {
      start(await signIn(session.token));
      return;
    } catch (e) {
      showSignIn(e.code === "unauthorized" ? "Your admin token is no longer accepted. Sign in again." : describe(e));
      return;
    }
  }
  showSignIn();
});
