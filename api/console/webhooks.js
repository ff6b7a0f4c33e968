// Webhooks: subscriptions, templates, the delivery log and usage alert rules. Each is a section
// behind a second tablist (the WAI-ARIA tabs pattern with manual activation, as the console's own
// tab bar), and only the one in view is read from the server.

import { h, fill, failure, tabKeys } from "./ui.js";
import * as subscriptions from "./webhook_subscriptions.js";
import * as templates from "./webhook_templates.js";
import * as deliveries from "./webhook_deliveries.js";
import * as alertRules from "./alert_rules.js";

const SECTIONS = [
  { id: "subscriptions", label: "Subscriptions", module: subscriptions },
  { id: "templates", label: "Templates", module: templates },
  { id: "deliveries", label: "Delivery log", module: deliveries },
  { id: "alerts", label: "Alert rules", module: alertRules },
];

// Kept across the header's Refresh and switching tabs, so both come back to the same section.
let chosen = "subscriptions";
let shown = null;
let view = null;

export function leave() {
  if (shown && shown.module.leave) shown.module.leave();
  shown = null;
}

export async function render(panel, ctx) {
  leave();
  const tabs = SECTIONS.map((s) => h("button", {
    type: "button", role: "tab", id: `wh-tab-${s.id}`, "aria-selected": "false", tabindex: "-1", onclick: () => show(s.id),
  }, s.label));
  // One panel, labelled by whichever tab is selected: hidden copies of the others would only
  // add duplicate labels for tests and assistive technology to trip over.
  const section = h("section", { role: "tabpanel", id: "wh-panel", tabindex: "0", class: "wh-section" });
  const list = h("div", { role: "tablist", "aria-label": "Webhook sections", class: "wh-tablist", onkeydown: (event) => tabKeys(event, tabs) }, tabs);
  fill(panel,
    h("div", { class: "panel-head" }, h("h2", {}, "Webhooks")),
    h("div", { class: "wh-tabbar" }, list),
    section);
  view = { ctx, panel };
  await show(chosen);
}

/** Shows a section; `options` reach its render (the log opened on one subscription, say). */
async function show(id, options = {}) {
  if (!view) return;
  leave();
  chosen = id;
  const section = SECTIONS.find((s) => s.id === id);
  for (const s of SECTIONS) {
    const tab = document.getElementById(`wh-tab-${s.id}`);
    const on = s.id === id;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on) tab.setAttribute("aria-controls", "wh-panel");
    else tab.removeAttribute("aria-controls");
  }
  const target = document.getElementById("wh-panel");
  target.setAttribute("aria-labelledby", `wh-tab-${id}`);
  // A fresh area each time: a section left before it finished loading fills a detached one.
  const area = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  fill(target, area);
  shown = section;
  const nav = {
    go: (to, opts) => {
      show(to, opts);
      document.getElementById(`wh-tab-${to}`).focus();
    },
  };
  try {
    await section.module.render(area, view.ctx, nav, options);
  } catch (e) {
    fill(area, failure(e));
  }
}
