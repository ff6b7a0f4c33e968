// How a rendered sample body is shown, for the live preview of a template being written and for
// testing a saved one: its content type, the platform limits it breaks in words, the body itself
// (pretty-printed when JSON), or why the template cannot render.

import { describe } from "./api.js";
import { h, fill, field, nextId, select } from "./ui.js";
import { EVENT_TYPES, pretty } from "./webhook_common.js";

const PLATFORMS = { slack: "Slack", discord: "Discord", teams: "Teams" };

/** "Slack: more than 3,000 characters in a section (3,012)". */
export function limitWords(broken) {
  const platform = PLATFORMS[broken.platform] || broken.platform;
  return `${platform}: more than ${broken.limit} (${Number(broken.actual).toLocaleString("en-US")})`;
}

/**
 * Where the result goes. Only a short status line is live ("Rendered key.created as
 * application/json; within every platform limit"): a screen reader hears it once per result, not
 * the whole body. The body below it is there to read at will.
 */
export function previewRegion() {
  const status = h("p", { class: "wh-preview-meta", role: "status" });
  const out = h("div", { class: "wh-preview-out" }, h("p", { class: "hint" }, "The preview appears here."));
  return h("div", { class: "wh-preview", "data-testid": "template-preview" }, status, out);
}

/** A select of the sample event types, `key.created` first as the server's default. */
export function sampleEventField(onchange) {
  const choice = select(EVENT_TYPES.map(([type]) => ({ value: type, label: type })), EVENT_TYPES[0][0], { id: nextId("sample"), onchange });
  return { select: choice, field: field("Sample event", choice, "The preview renders a made-up event of this type.") };
}

const parts = (region) => ({ status: region.querySelector(".wh-preview-meta"), out: region.querySelector(".wh-preview-out") });

export function showResult(region, result) {
  const { status, out } = parts(region);
  out.removeAttribute("aria-busy");
  const broken = result.limitsBroken || [];
  status.classList.remove("wh-preview-failed");
  status.textContent = `Rendered ${result.eventType} as ${result.contentType}; ${broken.length
    ? `${broken.length} platform ${broken.length === 1 ? "limit" : "limits"} broken` : "within every platform limit"}.`;
  fill(out,
    broken.length
      ? h("div", { class: "notice warn" },
        h("strong", {}, broken.length === 1 ? "This body breaks a platform limit:" : "This body breaks platform limits:"),
        h("ul", { class: "wh-limits" }, broken.map((b) => h("li", {}, limitWords(b)))),
        h("p", { class: "wh-limits-after" }, "The platform may refuse or cut such a message. Shorten what the template puts in it."))
      : null,
    h("pre", { class: "wh-body", tabindex: "0" }, pretty(result.body)));
}

export function showError(region, error) {
  const { status, out } = parts(region);
  out.removeAttribute("aria-busy");
  const lead = error && error.code === "invalid_template" ? "This template cannot be used yet. " : "";
  status.classList.add("wh-preview-failed");
  status.textContent = lead + describe(error);
  fill(out);
}

export function showBusy(region) {
  parts(region).out.setAttribute("aria-busy", "true");
}
