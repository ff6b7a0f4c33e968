// The catalogue's plugin names, for the filters of the Analytics and API Explorer tabs: the
// plugins of every endpoint the token can see, not only those with traffic or on screen.

import { everyPage } from "./api.js";

const QUERY = "query($cursor: String) { endpoints(limit: 200, cursor: $cursor) { data { plugin } nextCursor } }";

/**
 * The sorted plugin names, how many endpoints were read, and whether the scan stopped early
 * (past `cap` pages of 200 a partial list is better than a filter that never fills).
 */
export async function pluginNames(cap = 10) {
  const { rows, truncated } = await everyPage(QUERY, "endpoints", {}, cap);
  const names = [...new Set(rows.map((e) => e.plugin))].sort((a, b) => a.localeCompare(b));
  return { names, total: rows.length, truncated };
}
