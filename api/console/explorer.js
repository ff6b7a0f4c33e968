// API Explorer: the endpoints the signed-in token can see (searched, filtered, paged by cursor),
// each with its tenant enablement, global activation and a Test; and the SDK / OpenAPI downloads.

import { gql } from "./api.js";
import { h, fill, field, failure, button } from "./ui.js";
import { endpointItem, ENDPOINT_FIELDS } from "./explorer_item.js";
import { sdkSection } from "./explorer_sdk.js";

const PAGE = 20;
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
// The plugin list comes from the endpoints themselves; past this many pages of 200 a catalogue is
// unusual enough that a partial list is better than a slow tab.
const PLUGIN_SCAN_PAGES = 10;

// Kept between renders so the header's Refresh keeps what the user was looking at.
const filters = { q: "", plugin: "", method: "", status: "" };
let debounce = null;
let generation = 0;

export function leave() {
  clearTimeout(debounce);
  generation++;
}

export async function render(panel, ctx) {
  leave();
  if (!ctx.superuser) filters.status = "";
  let catalogue;
  try {
    catalogue = await scanPlugins();
  } catch (e) {
    fill(panel, head(), failure(e));
    return;
  }
  if (filters.plugin && !catalogue.plugins.includes(filters.plugin)) filters.plugin = "";

  const list = h("ul", { class: "ep-list", "aria-label": "Endpoints" });
  const status = h("p", { class: "ep-count", role: "status" });
  const more = h("div", { class: "ep-more" });
  const results = h("div", { class: "ep-results" });
  const state = { ctx, catalogue, list, status, more, results, cursor: null, shown: 0, again };
  async function again() {
    await render(panel, ctx);
    const box = panel.querySelector("input[type=search]");
    if (box) box.focus();
  }

  fill(panel,
    head(),
    sdkSection(),
    h("section", { class: "ep-section", "aria-labelledby": "ep-title" },
      h("h3", { id: "ep-title" }, "Endpoints"),
      toolbar(state),
      ctx.can("API_MANAGEMENT_WRITE") ? null
        : h("p", { class: "hint ep-note" }, "Your token may test GET endpoints only: testing POST, PUT, PATCH and DELETE needs the API_MANAGEMENT_WRITE permission."),
      status,
      results,
      more));
  await load(state, false);
}

function head() {
  return h("div", { class: "panel-head" },
    h("h2", {}, "API Explorer"),
    h("p", { class: "hint ep-lead" }, "Browse the endpoints available to your tenant, test them live as one of your keys, and download client SDKs."));
}

async function scanPlugins() {
  const names = new Set();
  let cursor = null;
  let total = 0;
  for (let page = 0; page < PLUGIN_SCAN_PAGES; page++) {
    const { endpoints } = await gql(
      "query($cursor: String) { endpoints(limit: 200, cursor: $cursor) { data { plugin } nextCursor } }", { cursor });
    for (const e of endpoints.data) names.add(e.plugin);
    total += endpoints.data.length;
    cursor = endpoints.nextCursor;
    if (!cursor) break;
  }
  return { plugins: [...names].sort((a, b) => a.localeCompare(b)), total };
}

function toolbar(state) {
  const search = h("input", {
    type: "search", value: filters.q, autocomplete: "off", spellcheck: "false",
    placeholder: "Path or description",
    oninput: () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => { filters.q = search.value.trim(); load(state, false); }, 300);
    },
  });
  const select = (key, options) => h("select", {
    onchange: (event) => { filters[key] = event.target.value; load(state, false); },
  }, options.map(([value, label]) => h("option", { value, selected: filters[key] === value }, label)));

  const searchField = field("Search", search);
  searchField.classList.add("ep-search");
  const controls = [
    searchField,
    field("Functionality", select("plugin", [["", "All functionalities"], ...state.catalogue.plugins.map((p) => [p, p])])),
    field("Method", select("method", [["", "Any method"], ...METHODS.map((m) => [m, m])])),
  ];
  if (state.ctx.superuser) {
    controls.push(field("Global status", select("status", [["", "Active and inactive"], ["active", "Active"], ["inactive", "Inactive"]])));
  }
  return h("div", { class: "toolbar ep-toolbar", role: "search", "aria-label": "Filter endpoints" }, controls);
}

const filtered = () => Boolean(filters.q || filters.plugin || filters.method || filters.status);

async function load(state, append) {
  const mine = ++generation;
  const { list, status, more, results } = state;
  if (!append) {
    state.cursor = null;
    state.shown = 0;
    status.textContent = "Loading endpoints…";
  }
  let page;
  try {
    const { endpoints } = await gql(`query($q: String, $plugin: String, $method: String, $status: String, $limit: Int, $cursor: String) {
      endpoints(q: $q, plugin: $plugin, method: $method, status: $status, limit: $limit, cursor: $cursor) {
        data { ${ENDPOINT_FIELDS} } nextCursor } }`, {
      q: filters.q || null, plugin: filters.plugin || null, method: filters.method || null,
      status: filters.status || null, limit: PAGE, cursor: append ? state.cursor : null,
    });
    page = endpoints;
  } catch (e) {
    if (mine !== generation) return;
    status.textContent = "";
    if (append) {
      fill(more, failure(e), moreButton(state));
    } else {
      fill(results, failure(e));
      fill(more);
    }
    return;
  }
  if (mine !== generation) return;

  const items = page.data.map((endpoint) => endpointItem(endpoint, state.ctx));
  if (append) {
    list.append(...items);
  } else {
    fill(list, items);
    fill(results, items.length ? list : emptyView(state));
  }
  state.cursor = page.nextCursor;
  state.shown += items.length;
  status.textContent = countLine(state);
  fill(more, state.cursor ? moreButton(state) : null);
  // After "Load more" the reader continues at the first new endpoint rather than at a button that may be gone.
  if (append && items.length) items[0].querySelector("h4").focus();
}

function moreButton(state) {
  return button("Load more", (event) => {
    event.currentTarget.disabled = true;
    load(state, true);
  }, { class: "button ep-more-button" });
}

function countLine(state) {
  if (!state.shown) return "";
  const noun = state.shown === 1 ? "endpoint" : "endpoints";
  const which = filtered() ? ` matching the filters` : "";
  return state.cursor
    ? `Showing the first ${state.shown} ${noun}${which}; more below.`
    : `Showing ${state.shown === 1 ? "the only" : `all ${state.shown}`} ${noun}${which}.`;
}

function emptyView(state) {
  const { ctx, catalogue } = state;
  if (filtered() && catalogue.total > 0) {
    return h("div", { class: "empty" },
      h("p", {}, "No endpoints match these filters. Try fewer words in the search, or another functionality, method or status."),
      button("Clear filters", () => {
        Object.assign(filters, { q: "", plugin: "", method: "", status: "" });
        state.again();
      }));
  }
  return h("div", { class: "empty ep-empty" }, ...noEndpoints(ctx));
}

// Why the list is empty depends on who is looking: only superusers register, tenant admins see
// every active endpoint, everyone else only those enabled for their tenant.
function noEndpoints(ctx) {
  const register = [
    h("p", {}, "Endpoints are registered by a superuser, per plugin:"),
    h("ul", { class: "ep-how" },
      h("li", {}, "import a plugin's OpenAPI document: ", h("code", {}, "keyledger endpoints import FILE --plugin NAME --upstream URL"),
        " (or ", h("code", {}, "POST /v1/endpoints/import"), ");"),
      h("li", {}, "register one endpoint: ", h("code", {}, "POST /v1/endpoints"), " or the GraphQL ", h("code", {}, "registerEndpoint"), " mutation;"),
      h("li", {}, "or load the demo catalogue: ", h("code", {}, "keyledger demo seed"), ".")),
  ];
  if (ctx.superuser) return [h("p", {}, h("strong", {}, "No endpoints are registered yet.")), ...register];
  if (ctx.can("TENANT_ADMIN")) {
    return [h("p", {}, h("strong", {}, "No active endpoints are registered."),
      " Ask a superuser to register the platform's endpoints, or to activate them."), ...register];
  }
  return [h("p", {}, h("strong", {}, "No endpoints are enabled for your tenant."),
    " Either none are registered yet, or a tenant admin has not enabled them for your tenant."), ...register];
}
