// How the explorer writes an endpoint: method chips, the path with its parameters set apart,
// the name buttons use for it, dates; and which methods only read.

import { h } from "./ui.js";

/** What a token without API_MANAGEMENT_WRITE may test: the server's rule for tryEndpoint. */
export const READ_METHODS = ["GET", "HEAD", "OPTIONS"];

/** ["GET", "HEAD", "OPTIONS"] → "GET, HEAD and OPTIONS". */
export const wordList = (words) => (words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`);

/** "GET /files/{id}": how buttons and messages name an endpoint. */
export const endpointName = (e) => `${e.methods.join(", ")} ${e.path}`;

/** A method as a chip: the colour helps, the text says it. */
export const methodChip = (method) => h("span", { class: `method-chip m-${method.toLowerCase()}` }, method);

export const methodChips = (methods) => h("span", { class: "ep-methods" }, methods.map(methodChip));

/** The path with its `{parameters}` set apart, so they read as placeholders. */
export function pathView(path) {
  const parts = path.split(/(\{[^}]+\})/).filter(Boolean);
  return h("code", { class: "ep-path" }, parts.map((p) => (p.startsWith("{") ? h("span", { class: "ep-param" }, p) : p)));
}

export const pathParams = (path) => [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);

export function sunsetDate(iso) {
  return new Date(iso).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
}
