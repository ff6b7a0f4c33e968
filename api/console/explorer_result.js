// What a Test came back with: a short status line (the only part read out as it arrives), the
// upstream's headers and body, and beside them what the edge would decide for the same request —
// a refusal always said in words.

import { ApiFailure, describe } from "./api.js";
import { h, badge, table, ms } from "./ui.js";
import { reasonPhrase, sentence } from "./words.js";
import { READ_METHODS } from "./explorer_format.js";

// The verify API's verdicts, as a person would want them explained.
const VERDICTS = {
  VALID: "The edge would pass this request on to the upstream.",
  INVALID_KEY: "The edge would refuse it: no key was sent, or the key is malformed or unknown.",
  KEY_REVOKED: "The edge would refuse it: the key has been revoked.",
  KEY_EXPIRED: "The edge would refuse it: the key has expired.",
  IP_FORBIDDEN: "The edge would refuse it: the client IP is not allowed by the key's IP rules.",
  ENDPOINT_NOT_FOUND: "The edge would refuse it: no active endpoint enabled for the key's tenant matches this request.",
  INSUFFICIENT_SCOPE: "The edge would refuse it: the key lacks a scope this endpoint requires.",
  RATE_LIMITED: "The edge would refuse it: the key's rate limit is used up for now.",
};

const tone = (status) => (status < 300 ? "ok" : status < 400 ? "neutral" : status < 500 ? "warn" : "bad");

/** "200 OK in 12 ms, edge: VALID": short enough to be read out whole. */
export function statusLine(r) {
  const reason = reasonPhrase(r.status);
  return [
    h("span", { class: "visually-hidden" }, "HTTP status "),
    h("strong", { class: `test-status ${tone(r.status)}`, "data-testid": "test-status" }, String(r.status)),
    `${reason ? ` ${reason}` : ""} in ${ms(r.durationMs)}, edge: ${r.edge.verdict}`,
  ];
}

/** Everything else about the answer; `extra` (the cURL copy) goes after the summary. */
export function resultView(r, extra) {
  return [
    h("p", { class: "test-url" }, h("span", { class: "hint" }, "Sent to the upstream: "), h("code", {}, `${r.method} ${r.url}`)),
    extra,
    edgeView(r.edge),
    r.warnings.length
      ? h("div", { class: "notice warn test-warnings" }, h("strong", {}, "Warnings"), h("ul", {}, r.warnings.map((w) => h("li", {}, sentence(w)))))
      : null,
    h("details", { class: "test-headers", open: true },
      h("summary", {}, `Response headers (${Object.keys(r.headers).length})`),
      table("Response headers", [
        { label: "Header", cell: ([name]) => h("code", {}, name) },
        { label: "Value", cell: ([, value]) => h("code", { class: "test-header-value" }, Array.isArray(value) ? value.join(", ") : String(value)) },
      ], Object.entries(r.headers), { empty: "The upstream sent no headers." })),
    h("h3", { class: "test-body-title" }, "Response body"),
    bodyView(r.body),
    r.truncated ? h("p", { class: "hint" }, "The body was cut at 1 MiB.") : null,
  ];
}

function bodyView(body) {
  if (body === "" || body === null) return h("p", { class: "hint" }, "The upstream sent an empty body.");
  const text = typeof body === "string" ? body : JSON.stringify(body, null, 2);
  return h("pre", { class: "test-body", tabindex: "0", "aria-label": "Response body" }, text);
}

function edgeView(edge) {
  const refused = !edge.allowed;
  const words = VERDICTS[edge.verdict] || `The edge's verdict is ${edge.verdict}.`;
  return h("div", { class: `notice ${refused ? "error" : "ok"} test-edge`, "data-testid": "test-edge" },
    h("p", {}, h("strong", {}, "Edge verdict: "), badge(edge.verdict, refused ? "bad" : "ok"), " ", words),
    refused && edge.status
      ? h("p", {}, `A client would get ${edge.status} ${edge.code || ""}${edge.message ? `: ${edge.message}` : ""}. `,
        "The answer below comes from the upstream itself, which the Test reaches whatever the edge decides.")
      : null,
    edge.ratelimit
      ? h("p", { class: "test-ratelimit" }, `Rate limit: ${edge.ratelimit.remaining} of ${edge.ratelimit.limit} requests left, full again in ${edge.ratelimit.reset} s (the Test does not spend them).`)
      : null);
}

/**
 * A Test the server would not run, explained (a pasted key it does not know, an unreachable
 * upstream, …): `title` is short, for the status line; `lines` say what to do.
 */
export function refusal(error, input) {
  const code = error instanceof ApiFailure ? error.code : "network";
  const said = describe(error);
  if (code === "invalid_test_key") {
    return { title: "The Test cannot act as this key: it is unknown to this tenant or malformed.",
      lines: [`${said} Check that the key was copied whole and is one of this tenant's, or choose one of your keys instead. Nothing was sent to the upstream.`] };
  }
  if (code === "upstream_unreachable") {
    return { title: "The endpoint's upstream did not answer.",
      lines: [`${said} The edge would answer clients 502 upstream_unreachable. Check that the plugin's service is running at its upstream URL.`] };
  }
  if (code === "missing_path_param" || code === "invalid_client_ip" || code === "invalid_body") {
    return { title: "The request was not sent.", lines: [said] };
  }
  if (code === "forbidden" && !READ_METHODS.includes(input.method)) {
    return { title: "Your admin token may not test this.", lines: [`Testing ${input.method} needs the API_MANAGEMENT_WRITE permission.`] };
  }
  if (code === "forbidden") return { title: "Your admin token may not test this.", lines: [said] };
  return { title: "The Test could not be run.", lines: [said] };
}

export function refusalView({ title, lines }) {
  return h("div", { class: "notice error test-refusal" }, h("p", {}, h("strong", {}, title)), lines.map((l) => h("p", {}, l)));
}
