// The scope picker of the key and admin token dialogs: a checkbox for each scope the tenant's
// endpoints require that the signed-in token may grant (the server says which: me.grantableScopes),
// and "Other scopes" for any other.

import { everyPage, describe } from "./api.js";
import { h, field, list } from "./ui.js";

const ENDPOINT_SCOPES = `query($cursor: String) {
  endpoints(limit: 200, cursor: $cursor) { data { requiredScopes } nextCursor } }`;

// Read once per sign-in (a new sign-in is a new ctx) and again after the header's Refresh
// (forgetScopes), not at every dialog: the catalogue rarely changes while a person works.
let cached = null;

export function forgetScopes() { cached = null; }

function endpointScopes(ctx) {
  if (!cached || cached.ctx !== ctx) {
    const entry = { ctx, scopes: null };
    entry.scopes = everyPage(ENDPOINT_SCOPES, "endpoints", {}, 20).then(({ rows }) => {
      const scopes = new Set();
      for (const e of rows) for (const s of e.requiredScopes) scopes.add(s);
      return scopes;
    }).catch((e) => {
      if (cached === entry) cached = null;
      throw e;
    });
    cached = entry;
  }
  return cached.scopes;
}

/**
 * The "Scopes" checkboxes (`legend`) and the "Other scopes" field; `read()` gives the chosen
 * scopes. `chosen` are ticked from the start, before the scopes on offer arrive, so a dialog
 * saved early keeps them; what arrives later is added around them and changes no tick.
 */
export function scopePicker(ctx, chosen, { legend = "Scopes", hint } = {}) {
  const grid = h("div", { class: "scope-grid" });
  const boxes = new Map();
  const add = (scope, checked, before = null) => {
    const box = h("input", { type: "checkbox", value: scope, checked });
    boxes.set(scope, box);
    grid.insertBefore(h("label", { class: "check" }, box, h("code", {}, scope)), before);
  };
  for (const s of [...chosen].sort()) add(s, true);
  const note = h("p", { class: "hint" }, "Loading the scopes your endpoints use…");
  const other = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const grantable = new Set(ctx.me.grantableScopes);
  endpointScopes(ctx).then((required) => {
    const offered = [...required].filter((s) => grantable.has(s));
    // In order, without moving a box already there: a focused one must keep its focus.
    const all = [...new Set([...boxes.keys(), ...offered])].sort();
    for (const s of all) {
      if (boxes.has(s)) continue;
      const next = all.slice(all.indexOf(s) + 1).find((t) => boxes.has(t));
      add(s, false, next ? boxes.get(next).parentElement : null);
    }
    note.textContent = "None of your endpoints requires a scope you may grant: type scopes under Other scopes.";
    note.hidden = boxes.size > 0;
  }, (e) => {
    note.className = "error-text";
    note.textContent = `The scopes on offer could not be read: ${describe(e)} Type any others under Other scopes.`;
  });
  const el = [
    h("fieldset", { class: "group scopes" }, h("legend", {}, legend),
      h("p", { class: "hint" }, hint || "The scopes your endpoints require. A key can call an endpoint only with all of its scopes."),
      grid, note),
    field("Other scopes", other, "Comma-separated, e.g. REPORTS_READ, ANALYTICS_READ."),
  ];
  const read = () => [...new Set([
    ...[...boxes.values()].filter((b) => b.checked).map((b) => b.value),
    ...list(other.value).map((s) => s.toUpperCase()),
  ])].sort();
  return { el, read, other };
}
