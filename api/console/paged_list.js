// A list read from the server a page at a time (the keys and admin tokens grids). Only the newest
// answer is drawn, "Load more" adds only to the list its cursor came from (never to one asked for
// with other settings since), and focus moves to what it added rather than falling to the page.

import { describe } from "./api.js";
import { h, fill, button, busy, latest, toast, failure } from "./ui.js";

/**
 * `fetchPage(cursor)` resolves to { data, nextCursor } (rows with an `id`); `draw(list)` fills
 * `list.content` from `list.rows` and returns what the row-count line says. `noun` names the
 * rows in a failure ("keys").
 */
export function pagedList({ fetchPage, draw, noun, loading }) {
  const turn = latest();
  let at = turn.next();
  const content = h("div", {}, h("p", { class: "loading" }, loading));
  // Kept from draw to draw: a live region must already be in the page to be read out.
  const status = h("p", { class: "hint", role: "status", tabindex: "-1" });
  const more = button("Load more", () => list.more(), { hidden: true });
  const el = h("div", { "aria-busy": "true" }, content, h("div", { class: "list-foot" }, status, more));

  const list = {
    el, content, rows: [], cursor: null,
    /** The first page's answer, with anything `fetchPage` added to it. */
    first: null,
    /** Draws the rows as they are now (also after a change made here). */
    show() {
      status.textContent = draw(list) || "";
      more.hidden = !list.cursor;
    },
    /** Starts again from the first page; an answer still on its way is then ignored. */
    async reload() {
      const n = at = turn.next();
      list.cursor = null;
      more.hidden = true;
      el.setAttribute("aria-busy", "true");
      try {
        const page = await fetchPage(null);
        if (!turn.current(n)) return;
        list.first = page;
        list.rows = page.data;
        list.cursor = page.nextCursor;
        list.show();
      } catch (e) {
        if (!turn.current(n)) return;
        fill(content, failure(e));
        status.textContent = "";
      } finally {
        if (turn.current(n)) el.removeAttribute("aria-busy");
      }
    },
    async more() {
      const n = at;
      const cursor = list.cursor;
      if (!cursor) return;
      await busy(more, async () => {
        try {
          const page = await fetchPage(cursor);
          if (!turn.current(n)) return;
          const had = new Set(list.rows.map((r) => r.id));
          const added = page.data.filter((r) => !had.has(r.id));
          list.rows = [...list.rows, ...added];
          list.cursor = page.nextCursor;
          list.show();
          focusAdded(added);
        } catch (e) {
          if (turn.current(n)) toast(`More ${noun} could not be loaded: ${describe(e)}`, "bad");
        }
      });
    },
    /** Makes every answer on its way stale (the tab was left). */
    stop() { turn.stop(); },
  };

  // The button that was clicked is hidden or redrawn: continue from the first new row.
  function focusAdded(added) {
    const ids = new Set(added.map((r) => r.id));
    const row = [...content.querySelectorAll("tr[data-id]")].find((tr) => ids.has(tr.dataset.id));
    let target = row && row.querySelector("button:not([disabled]), a[href], input, select, textarea");
    if (row && !target) {
      target = row.cells[0];
      target.tabIndex = -1;
    }
    (target || (more.hidden ? status : more)).focus();
  }

  return list;
}

/** Marks each body row of a table from ui.js `table()` with its row's id. */
export function tagRows(wrap, rows) {
  const trs = wrap.querySelectorAll("tbody tr");
  rows.forEach((r, i) => { if (trs[i]) trs[i].dataset.id = r.id; });
  return wrap;
}

/** A row's control (`data-action`) after a redraw, or null when the row is no longer shown. */
export function rowControl(list, id, action) {
  const row = [...list.content.querySelectorAll("tr[data-id]")].find((tr) => tr.dataset.id === id);
  return row ? row.querySelector(`[data-action="${action}"]`) : null;
}

/**
 * What a row's buttons are named after: `name(row)`, with `detail(row)` added only when another
 * loaded row has the same name, so the usual names stay short and a repeated one is still told apart.
 */
export function rowNames(rows, name, detail) {
  const seen = new Map();
  for (const r of rows) seen.set(name(r), (seen.get(name(r)) || 0) + 1);
  return new Map(rows.map((r) => [r.id, seen.get(name(r)) > 1 ? `${name(r)} (${detail(r)})` : name(r)]));
}
