// How a rendered sample body is shown, for the live preview of a template being written and for
// testing a saved one: its content type, the platform limits it breaks in words, the body itself
// (pretty-printed when JSON), or why the template cannot render.

import { describe } from "./api.js";
import { h, fill, field, nextId } from "./ui.js";
import { EVENT_TYPES, pretty } from "./webhook_common.js";

const PLATFORMS = { slack: "Slack", discord: "Discord", teams: "Teams" };

/** "Slack: more than 3,000 characters in a section (3,012)". */
export function limitWords(broken) {
  const platform = PLATFORMS[broken.platform] || broken.platform;
  return `${platform}: more than ${broken.limit} (${Number(broken.actual).toLocaleString("en-US")})`;
}

/** The live region the result goes into; screen readers hear each new result once. */
export function previewRegion() {
  return h("div", { class: "wh-preview", "data-testid": "template-preview", "aria-live": "polite" },
    h("p", { class: "hint" }, "The preview appears here."));
}

/** A select of the sample event types, `key.created` first as the server's default. */
export function sampleEventField(onchange) {
  const select = h("select", { id: nextId("sample"), onchange },
    EVENT_TYPES.map(([type]) => h("option", { value: type }, type)));
  return { select, field: field("Sample event", select, "The preview renders a made-up event of this type.") };
}

export function showResult(region, result) {
  region.removeAttribute("aria-busy");
  const broken = result.limitsBroken || [];
  fill(region,
    h("p", { class: "wh-preview-meta" },
      "Content type ", h("code", {}, result.contentType), " · sample ", h("code", {}, result.eventType)),
    broken.length
      ? h("div", { class: "notice warn" },
        h("strong", {}, broken.length === 1 ? "This body breaks a platform limit:" : "This body breaks platform limits:"),
        h("ul", { class: "wh-limits" }, broken.map((b) => h("li", {}, limitWords(b)))),
        h("p", { class: "wh-limits-after" }, "The platform may refuse or cut such a message. Shorten what the template puts in it."))
      : h("p", { class: "hint" }, "Within every platform limit that applies to it."),
    h("pre", { class: "wh-body", tabindex: "0" }, pretty(result.body)));
}

export function showError(region, error) {
  region.removeAttribute("aria-busy");
  const words = describe(error);
  const lead = error && error.code === "invalid_template" ? "This template cannot be used yet. " : "";
  fill(region, h("div", { class: "notice error" }, lead + words));
}

export function showBusy(region) {
  region.setAttribute("aria-busy", "true");
}
