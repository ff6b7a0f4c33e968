// The explorer's "Test" dialog: method, path parameters, query, JSON body, which key to act as
// and the client IP; sends tryEndpoint and shows what came back (explorer_result.js), with the
// same request as a cURL command for the edge (explorer_curl.js).

import { gql, everyPage, describe } from "./api.js";
import { h, fill, field, dialog, select, button, copy } from "./ui.js";
import { statusLine, resultView, refusal, refusalView } from "./explorer_result.js";
import { methodChips, pathView, pathParams, READ_METHODS, wordList } from "./explorer_format.js";
import { curlCommand, KEY_VARIABLE } from "./explorer_curl.js";

const BODY_METHODS = ["POST", "PUT", "PATCH"];

/** The endpoint's methods this token may try (other methods need API_MANAGEMENT_WRITE). */
export function testableMethods(endpoint, ctx) {
  return ctx.can("API_MANAGEMENT_WRITE") ? endpoint.methods : endpoint.methods.filter((m) => READ_METHODS.includes(m));
}

// A tenant with more than a thousand active keys pastes the one it wants.
const KEYS = `query($cursor: String) { apiKeys(status: "active", limit: 200, cursor: $cursor) {
  data { id name tenant prefix scopes } nextCursor } }`;

/** Opens at once; the keys to act as fill their list when they arrive. */
export function openTest(endpoint, ctx) {
  return dialog("Test endpoint", () => testForm(endpoint, ctx), { wide: true });
}

function testForm(endpoint, ctx) {
  const methods = testableMethods(endpoint, ctx);
  const method = select(methods.map((m) => ({ value: m, label: m })), methods[0]);
  const params = pathParams(endpoint.path).map((name) => ({
    name, input: h("input", { type: "text", autocomplete: "off", spellcheck: "false", "aria-required": "true" }),
  }));
  const query = h("textarea", { rows: "3", class: "test-query", spellcheck: "false", placeholder: "expand=owner\nlimit=10" });
  const body = h("textarea", { rows: "6", spellcheck: "false", placeholder: "{\n  \"name\": \"example\"\n}" });
  const bodyField = field("Body (JSON)", body, "Sent as application/json. Leave empty to send no body.");
  const key = select([{ value: "", label: "Loading your keys…" }], "", { disabled: true });
  const keyField = field("Key", key, "Listing your active keys…");
  const pasted = h("input", { type: "password", autocomplete: "off", spellcheck: "false", placeholder: "ak_live_…" });
  const clientIp = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const error = h("p", { class: "error-text", role: "alert" });
  const send = h("button", { type: "submit", class: "button primary" }, "Send request");
  // Only the one-line status is live: headers and a body of up to 1 MiB are not read out.
  const live = h("p", { class: "test-live", role: "status" });
  const details = h("div", { class: "test-details" });
  const result = h("div", { class: "test-result", "data-testid": "test-result", role: "region", "aria-label": "Test result" }, live, details);

  everyPage(KEYS, "apiKeys", {}, 5).then(({ rows }) => {
    fill(key, keyOptions(rows, ctx));
    keyField.querySelector(".hint").textContent = rows.length
      ? "The Test acts as this key's identity; its secret is not needed."
      : "No active keys: create one in the API Keys tab, or paste one.";
  }).catch((e) => {
    fill(key, keyOptions([], ctx));
    keyField.querySelector(".hint").textContent = `Your keys could not be listed: ${describe(e)} Paste a key instead.`;
  }).finally(() => { key.disabled = false; });

  const showBody = () => { bodyField.hidden = !BODY_METHODS.includes(method.value); };
  method.addEventListener("change", showBody);
  showBody();

  const hidden = endpoint.methods.filter((m) => !methods.includes(m));
  const form = h("form", { class: "stack test-form", novalidate: true },
    h("p", { class: "test-target" }, methodChips(endpoint.methods), pathView(endpoint.path)),
    h("div", { class: "row" },
      field("Method", method, hidden.length ? `${wordList(hidden)} ${hidden.length === 1 ? "needs" : "need"} the API_MANAGEMENT_WRITE permission.` : undefined),
      keyField,
      field("Or paste a key", pasted, "Used instead of the key above: checked by the edge's rules, never forwarded.")),
    params.length
      ? h("fieldset", { class: "test-params" }, h("legend", {}, "Path parameters"),
        h("div", { class: "row" }, params.map((p) => field(p.name, p.input))))
      : null,
    field("Query parameters", query, "One key=value per line."),
    bodyField,
    endpoint.requestSchema && Object.keys(endpoint.requestSchema).length
      ? h("details", { class: "test-schema" }, h("summary", {}, "Request schema"), h("pre", {}, JSON.stringify(endpoint.requestSchema, null, 2)))
      : null,
    field("Client IP", clientIp, "Optional: the address to judge the key's IP rules by. Left empty, IP rules are not judged."),
    error,
    h("div", { class: "actions" }, send));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const input = buildInput({ method, params, query, body, bodyField, key, pasted, clientIp }, error);
    if (!input) return;
    send.disabled = true;
    result.classList.add("test-shown");
    live.textContent = "Sending…";
    fill(details);
    try {
      const { tryEndpoint } = await gql(`mutation($id: String!, $input: TryEndpointInput!) { tryEndpoint(id: $id, input: $input) {
        method url via status headers body truncated durationMs warnings
        edge { verdict allowed status code message ratelimit { limit remaining reset } } } }`, { id: endpoint.id, input });
      fill(live, statusLine(tryEndpoint));
      fill(details, resultView(tryEndpoint, curlCopy(endpoint, input)));
    } catch (e) {
      const why = refusal(e, input);
      live.textContent = why.title;
      fill(details, refusalView(why));
    } finally {
      send.disabled = false;
    }
    // The answer lands below the form, out of sight in a short window.
    result.scrollIntoView({ block: "start", behavior: "smooth" });
  });
  return [form, result];
}

function keyOptions(keys, ctx) {
  return [h("option", { value: "" }, "No key (as a client sending none)"), keys.map((k) => {
    const scopes = k.scopes.length ? k.scopes.join(", ") : "no scopes";
    const tenant = k.tenant !== ctx.me.tenant ? ` [tenant ${k.tenant}]` : "";
    return h("option", { value: k.id }, `${k.name}${tenant} (${scopes}) · ${k.prefix}…`);
  })];
}

// The command is drawn as well as copied: where the browser refuses the clipboard it can be selected.
function curlCopy(endpoint, input) {
  const shown = h("div", { class: "test-curl-command" });
  const control = button("Copy as cURL", async () => {
    control.disabled = true;
    try {
      const { command, known } = await curlCommand(endpoint, input);
      fill(shown,
        h("pre", { tabindex: "0", "aria-label": "cURL command" }, command),
        h("p", { class: "hint" }, input.key || input.keyId ? `The key is the shell variable ${KEY_VARIABLE}: set it to the key's secret. ` : "",
          known ? "" : "The edge's address could not be read: set KEYLEDGER_EDGE_URL to it."));
      await copy(command);
    } finally {
      control.disabled = false;
    }
  }, { tone: "small" });
  return h("div", { class: "test-curl" }, control, shown);
}

// Everything is checked here first so a mistake is explained and nothing is sent.
function buildInput(c, error) {
  const input = { method: c.method.value, pathParams: {}, query: {} };
  for (const p of c.params) {
    const value = p.input.value.trim();
    if (!value) return refuse(error, `Give a value for the path parameter {${p.name}}.`, p.input);
    input.pathParams[p.name] = value;
  }
  const lines = c.query.value.split("\n").map((l) => l.trim());
  for (const [i, line] of lines.entries()) {
    if (!line) continue;
    const at = line.indexOf("=");
    if (at < 1) return refuse(error, `Line ${i + 1} of the query parameters is not key=value.`, c.query);
    const name = line.slice(0, at).trim();
    if (name in input.query) return refuse(error, `The query parameter “${name}” is given twice; each takes one value.`, c.query);
    input.query[name] = line.slice(at + 1).trim();
  }
  if (!c.bodyField.hidden && c.body.value.trim()) {
    try {
      input.body = JSON.parse(c.body.value);
    } catch (e) {
      return refuse(error, `The body is not valid JSON (${e.message}). Correct it; nothing was sent.`, c.body);
    }
  }
  const pasted = c.pasted.value.trim();
  if (pasted) input.key = pasted;
  else if (c.key.value) input.keyId = c.key.value;
  const ip = c.clientIp.value.trim();
  if (ip) input.clientIp = ip;
  return input;
}

function refuse(error, text, control) {
  error.textContent = text;
  control.setAttribute("aria-invalid", "true");
  control.addEventListener("input", () => control.removeAttribute("aria-invalid"), { once: true });
  control.focus();
  return null;
}
