// "Copy as cURL" for a Test: the same request sent to the edge, as a client would send it, with
// the key as a shell variable (never the real key, which the console does not hold for a chosen
// key and must not spread for a pasted one).

import { gql } from "./api.js";

export const KEY_VARIABLE = "$KEYLEDGER_API_KEY";
const EDGE_VARIABLE = "$KEYLEDGER_EDGE_URL";

// The edge's public address is the tenant OpenAPI document's server (--public-edge-url); read
// once, and asked again only after a failure.
let edge = null;
async function edgeUrl() {
  edge = edge || gql("{ tenantOpenapi }").then(({ tenantOpenapi }) => {
    const server = tenantOpenapi.servers && tenantOpenapi.servers[0];
    if (!server || !server.url) throw new Error("the tenant OpenAPI document names no server");
    return server.url.replace(/\/+$/, "");
  });
  try {
    return await edge;
  } catch (e) {
    edge = null;
    throw e;
  }
}

// Single quotes keep the shell from reading anything inside; a quote itself is closed, escaped, reopened.
const quote = (text) => `'${text.replaceAll("'", "'\\''")}'`;

/**
 * The command for `input` (what tryEndpoint was sent) against `endpoint`. `known` is false when
 * the edge's address could not be read: the command then names it by a shell variable.
 */
export async function curlCommand(endpoint, input) {
  let base = null;
  try {
    base = await edgeUrl();
  } catch { /* the variable stands in for it */ }
  const path = endpoint.path.replace(/\{([^}]+)\}/g, (_, name) => encodeURIComponent(input.pathParams[name] || ""));
  const query = new URLSearchParams(input.query).toString();
  const rest = `${path}${query ? `?${query}` : ""}`;
  const url = base ? quote(base + rest) : `"${EDGE_VARIABLE}"${quote(rest)}`;
  const lines = [
    input.method === "GET" ? `curl ${url}` : input.method === "HEAD" ? `curl --head ${url}` : `curl -X ${input.method} ${url}`,
  ];
  if (input.key || input.keyId) lines.push(`-H "Authorization: Bearer ${KEY_VARIABLE}"`);
  if (input.body !== undefined) lines.push(`-H ${quote("Content-Type: application/json")}`, `--data ${quote(JSON.stringify(input.body))}`);
  return { command: lines.join(" \\\n  "), known: Boolean(base) };
}
