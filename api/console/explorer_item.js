// One endpoint in the explorer's list: methods, path, plugin, description, scopes, deprecation,
// availability, and what the signed-in token may do with it (Test, enable for the tenant,
// activate globally).

import { gql, describe } from "./api.js";
import { h, badge, button, toast } from "./ui.js";
import { openTest, testableMethods } from "./explorer_test.js";
import { endpointName, methodChips, pathView, sunsetDate } from "./explorer_format.js";

export const ENDPOINT_FIELDS = "id path methods plugin description requiredScopes requestSchema upstreamUrl deprecated sunsetAt active enabled";

export function endpointItem(endpoint, ctx) {
  const item = h("li", { class: "ep", dataset: { id: endpoint.id } });
  draw(item, endpoint, ctx);
  return item;
}

function draw(item, e, ctx) {
  const error = h("p", { class: "error-text ep-error", role: "alert" });
  const title = h("h4", { class: "ep-title", tabindex: "-1" }, methodChips(e.methods), pathView(e.path));
  item.classList.toggle("ep-off", !e.enabled);
  item.replaceChildren(
    h("div", { class: "ep-head" }, title, h("span", { class: "ep-plugin" }, h("span", { class: "visually-hidden" }, "Plugin: "), e.plugin)),
    e.description ? h("p", { class: "ep-desc" }, e.description) : h("p", { class: "ep-desc hint" }, "No description."),
    h("div", { class: "ep-meta" },
      h("span", { class: "ep-scopes" }, "Required scopes: ",
        e.requiredScopes.length ? e.requiredScopes.map((s) => h("code", { class: "ep-scope" }, s)) : h("span", { class: "hint" }, "none")),
      e.deprecated ? h("span", { class: "ep-deprecated" }, badge("Deprecated", "warn"),
        e.sunsetAt ? h("span", { class: "hint" }, ` sunset ${sunsetDate(e.sunsetAt)}`) : h("span", { class: "hint" }, " no sunset date")) : null,
      ctx.superuser && e.upstreamUrl ? h("span", { class: "ep-upstream hint" }, "Upstream: ", h("code", {}, e.upstreamUrl)) : null),
    h("div", { class: "ep-foot" },
      h("div", { class: "ep-state" }, availability(item, e, ctx, error)),
      h("div", { class: "ep-actions" }, testButton(e, ctx))),
    error);
}

function testButton(e, ctx) {
  if (!testableMethods(e, ctx).length) return null;
  return button("Test", () => openTest(e, ctx), { tone: "primary small", "aria-label": `Test ${endpointName(e)}` });
}

// Tenant enablement and global activation, each with its switch when the token may flip it.
function availability(item, e, ctx, error) {
  const groups = [];
  if (!e.active) {
    groups.push(h("span", { class: "ep-switch" }, badge("Inactive globally", "bad"),
      ctx.superuser ? flip(item, e, ctx, error, "active", true) : null));
    if (ctx.superuser) groups.push(h("span", { class: "hint" }, "Unavailable to every tenant."));
    return groups;
  }
  const admin = ctx.can("TENANT_ADMIN");
  groups.push(h("span", { class: "ep-switch" },
    e.enabled ? badge("Enabled for your tenant", "ok") : badge("Disabled for your tenant", "bad"),
    admin ? flip(item, e, ctx, error, "enabled", !e.enabled) : null));
  if (ctx.superuser) {
    groups.push(h("span", { class: "ep-switch" }, badge("Active globally", "neutral"), flip(item, e, ctx, error, "active", false)));
  }
  return groups;
}

const SWITCHES = {
  enabled: {
    mutation: "mutation($id: String!, $on: Boolean!) { setEndpointEnabled(id: $id, enabled: $on) { %F } }",
    field: "setEndpointEnabled",
    text: (on) => (on ? "Enable" : "Disable"),
    label: (on, e) => `${on ? "Enable" : "Disable"} ${endpointName(e)} for your tenant`,
    done: (on, e) => `${endpointName(e)} is ${on ? "enabled" : "disabled"} for your tenant.`,
  },
  active: {
    mutation: "mutation($id: String!, $on: Boolean!) { setEndpointActive(id: $id, active: $on) { %F } }",
    field: "setEndpointActive",
    text: (on) => (on ? "Activate" : "Deactivate"),
    label: (on, e) => `${on ? "Activate" : "Deactivate"} ${endpointName(e)} globally`,
    done: (on, e) => `${endpointName(e)} is ${on ? "active again for every tenant that has not disabled it" : "inactive for every tenant"}.`,
  },
};

// Reversible, so no confirmation: the new state shows at once and the same button undoes it.
function flip(item, e, ctx, error, kind, on) {
  const s = SWITCHES[kind];
  return button(s.text(on), async (event) => {
    const control = event.currentTarget;
    control.disabled = true;
    error.textContent = "";
    try {
      const data = await gql(s.mutation.replace("%F", ENDPOINT_FIELDS), { id: e.id, on });
      draw(item, data[s.field], ctx);
      toast(s.done(on, e));
      const again = item.querySelector(`[data-switch=${kind}]`) || item.querySelector(".ep-title");
      again.focus();
    } catch (err) {
      control.disabled = false;
      error.textContent = describe(err);
    }
  }, { tone: "small", "aria-label": s.label(on, e), dataset: { switch: kind } });
}
