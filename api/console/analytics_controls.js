// The analytics tab's controls: the billing export's grouping and button, the report's range,
// period and filters, and a chip for each filter set from a table row (a key, an endpoint).

import { h, fill, field, button, select } from "./ui.js";
import * as filters from "./analytics_filters.js";

/**
 * `changed()` reloads the report; `exportCsv(button)` downloads the export. What it returns keeps
 * the controls in step with `state` when the report narrows or widens from elsewhere.
 */
export function controls(state, { changed, exportCsv }) {
  const set = (prop) => (event) => {
    state[prop] = event.target.value;
    // One bar is no chart: 24 hours read per hour unless the user asks otherwise afterwards.
    if (prop === "range" && state.range === "24h" && state.period === "day") {
      state.period = "hour";
      period.value = "hour";
    }
    filters.save(state);
    if (prop !== "groupBy") changed();
  };
  const period = select(filters.PERIODS, state.period, { onchange: set("period") });
  const plugin = select(pluginOptions([], state.plugin), state.plugin, { onchange: set("plugin") });
  const outcome = select(outcomeOptions(), state.outcome, { onchange: set("outcome") });
  const statusClass = select(statusOptions(), state.statusClass, { onchange: set("statusClass") });
  const pluginNote = h("p", { class: "hint an-plugin-note", hidden: true });
  const chips = h("div", { class: "an-chips" });
  const exportButton = button("Export CSV for billing", () => exportCsv(exportButton), { tone: "primary" });

  const ui = {
    head: h("div", { class: "an-export" },
      field("Group export by", select(filters.GROUPINGS, state.groupBy, { onchange: set("groupBy") })),
      exportButton),
    toolbar: h("div", { class: "an-controls" },
      h("div", { class: "toolbar" },
        field("Time range", select(filters.RANGES, state.range, { onchange: set("range") })),
        field("Period", period),
        field("Plugin", plugin),
        field("Outcome", outcome),
        field("Status class", statusClass),
        button("Refresh", () => changed())),
      chips,
      pluginNote),

    /** The catalogue's plugins, once they are known (the one chosen stays offered). */
    plugins(names) {
      fill(plugin, pluginOptions(names, state.plugin).map((o) => h("option", { value: o.value }, o.label)));
      plugin.value = state.plugin;
    },
    pluginsFailed(text) {
      pluginNote.textContent = `The catalogue's plugins could not be listed for the Plugin filter. ${text}`;
      pluginNote.hidden = false;
    },

    /** Shows the selections in `state` after they were changed elsewhere. */
    update() {
      plugin.value = state.plugin;
      outcome.value = state.outcome;
      statusClass.value = state.statusClass;
      drawChips();
    },

    /** Focus for after a filter's control went away: `kind`'s chip, another chip, or the Plugin filter. */
    focusFilters(kind) {
      const remove = chips.querySelector(`[data-kind=${kind}]`) || chips.querySelector("button");
      (remove || plugin).focus();
    },
  };

  function drawChips() {
    const chip = (kind, what, label, clear) => h("span", { class: "an-chip" },
      h("span", { class: "an-chip-what" }, `${what}:`), " ", h("span", { class: "an-chip-label" }, label),
      h("button", {
        type: "button", class: "icon an-chip-remove", "aria-label": `Remove the ${what.toLowerCase()} filter`, dataset: { kind },
        onclick: () => {
          clear();
          filters.save(state);
          drawChips();
          changed();
          ui.focusFilters();
        },
      }, "×"));
    const shown = [
      state.key ? chip("key", "Key", state.keyLabel || state.key, () => { state.key = state.keyLabel = ""; }) : null,
      state.endpoint ? chip("endpoint", "Endpoint", state.endpointLabel || state.endpoint, () => { state.endpoint = state.endpointLabel = ""; }) : null,
    ].filter(Boolean);
    fill(chips, shown.length ? [h("span", { class: "hint" }, "Showing only:"), shown] : null);
    chips.hidden = !shown.length;
  }
  drawChips();
  return ui;
}

function pluginOptions(names, current) {
  const all = [...new Set([...names, ...(current ? [current] : [])])].sort((a, b) => a.localeCompare(b));
  return [{ value: "", label: "All plugins" }, ...all.map((n) => ({ value: n, label: n }))];
}

const outcomeOptions = () => [{ value: "", label: "All outcomes" },
  ...Object.entries(filters.OUTCOMES).map(([value, label]) => ({ value, label }))];

const statusOptions = () => [{ value: "", label: "All statuses" },
  ...filters.STATUS_CLASSES.map((c) => ({ value: c, label: c }))];
