// API Explorer: the endpoints the signed-in token can see (searched, filtered, paged by cursor),
// each with its tenant enablement, global activation and a Test; and the SDK / OpenAPI downloads.

import { gql, describe } from "./api.js";
import { h, fill, field, failure, button, select, latest } from "./ui.js";
import { endpointItem, ENDPOINT_FIELDS } from "./explorer_item.js";
import { sdkSection } from "./explorer_sdk.js";
import { READ_METHODS, wordList } from "./explorer_format.js";
import { pluginNames } from "./plugins.js";

const PAGE = 20;
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const NO_FILTERS = { q: "", plugin: "", method: "", status: "" };

// Kept between renders so the header's Refresh keeps what the user was looking at.
const filters = { ...NO_FILTERS };
let debounce = null;
// Only the newest answer is shown: a page asked for before the filters changed, or a plugin scan
// of an earlier render, is dropped.
const pages = latest();
const scans = latest();

export function leave() {
  clearTimeout(debounce);
  pages.stop();
  scans.stop();
}

export async function render(panel, ctx) {
  leave();
  if (!ctx.superuser) filters.status = "";
  const list = h("ul", { class: "ep-list", "aria-label": "Endpoints" });
  const status = h("p", { class: "ep-count", role: "status" });
  const more = h("div", { class: "ep-more" });
  const results = h("div", { class: "ep-results" });
  // `catalogue` (every plugin, how many endpoints) arrives with the plugin scan, after the list.
  const state = { ctx, list, status, more, results, cursor: null, shown: 0, catalogue: null };
  const bar = toolbar(state);
  state.clear = () => {
    Object.assign(filters, NO_FILTERS);
    bar.reset();
    load(state, false);
    bar.search.focus();
  };

  fill(panel,
    head(),
    sdkSection(),
    h("section", { class: "ep-section", "aria-labelledby": "ep-title" },
      h("h3", { id: "ep-title" }, "Endpoints"),
      bar.el,
      ctx.can("API_MANAGEMENT_WRITE") ? null
        : h("p", { class: "hint ep-note" }, `Your token may test the read-only methods only (${wordList(READ_METHODS)}): testing others needs the API_MANAGEMENT_WRITE permission.`),
      status,
      results,
      more));

  const scan = scans.next();
  pluginNames().then((catalogue) => {
    if (!scans.current(scan)) return;
    state.catalogue = catalogue;
    bar.plugins(catalogue.names);
  }).catch((e) => {
    if (scans.current(scan)) bar.pluginsFailed(describe(e));
  });
  await load(state, false);
}

function head() {
  return h("div", { class: "panel-head" },
    h("h2", {}, "API Explorer"),
    h("p", { class: "hint ep-lead" }, "Browse the endpoints available to your tenant, test them live as one of your keys, and download client SDKs."));
}

// The Functionality filter offers the chosen plugin (if any) until the scan lists them all.
function pluginOptions(names) {
  const all = [...new Set([...names, ...(filters.plugin ? [filters.plugin] : [])])].sort((a, b) => a.localeCompare(b));
  return [{ value: "", label: "All functionalities" }, ...all.map((p) => ({ value: p, label: p }))];
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
  const choose = (key, options) => select(options, filters[key], {
    onchange: (event) => { filters[key] = event.target.value; load(state, false); },
  });
  const plugin = choose("plugin", pluginOptions([]));
  const method = choose("method", [{ value: "", label: "Any method" }, ...METHODS.map((m) => ({ value: m, label: m }))]);
  const active = state.ctx.superuser ? choose("status", [
    { value: "", label: "Active and inactive" }, { value: "active", label: "Active" }, { value: "inactive", label: "Inactive" }]) : null;
  const note = h("p", { class: "hint ep-plugin-note", hidden: true });

  const searchField = field("Search", search);
  searchField.classList.add("ep-search");
  return {
    el: h("div", { class: "ep-filters" },
      h("div", { class: "toolbar ep-toolbar", role: "search", "aria-label": "Filter endpoints" },
        searchField,
        field("Functionality", plugin),
        field("Method", method),
        active ? field("Global status", active) : null),
      note),
    search,
    plugins(names) {
      fill(plugin, pluginOptions(names).map((o) => h("option", { value: o.value }, o.label)));
      plugin.value = filters.plugin;
    },
    pluginsFailed(text) {
      note.textContent = `The functionalities could not be listed, so the filter offers none. ${text} Search and the other filters still work.`;
      note.hidden = false;
    },
    reset() {
      search.value = filters.q;
      for (const [control, key] of [[plugin, "plugin"], [method, "method"], [active, "status"]]) if (control) control.value = filters[key];
    },
  };
}

const filtered = () => Boolean(filters.q || filters.plugin || filters.method || filters.status);

async function load(state, append) {
  const mine = pages.next();
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
    if (!pages.current(mine)) return;
    status.textContent = "";
    if (append) {
      fill(more, failure(e), moreButton(state));
    } else {
      fill(results, failure(e));
      fill(more);
    }
    return;
  }
  if (!pages.current(mine)) return;

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
  // Filters are blamed unless the scan has shown that there is nothing to filter.
  if (filtered() && !(catalogue && catalogue.total === 0)) {
    return h("div", { class: "empty" },
      h("p", {}, "No endpoints match these filters. Try fewer words in the search, or another functionality, method or status."),
      button("Clear filters", () => state.clear()));
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
