// SDK Generation: client libraries (ZIP) and the tenant's OpenAPI document, both covering exactly
// the endpoints enabled for the tenant, downloaded through the REST API.

import { download, describe } from "./api.js";
import { h, fill, button } from "./ui.js";

// The file names /v1/sdks/{file} accepts, and what the server names the download.
const SDKS = [
  { label: "Python", file: "python.zip" },
  { label: "TypeScript", file: "typescript.zip" },
  { label: "JavaScript", file: "javascript.zip" },
  { label: "PHP", file: "php.zip" },
  { label: "cURL", file: "curl.zip" },
];
const SCHEMAS = [
  { label: "OpenAPI (JSON)", file: "openapi.json" },
  { label: "OpenAPI (YAML)", file: "openapi.yaml" },
];

// Seed 01's troubleshooting, for failures that are not just "try again in a moment".
const TRANSIENT = ["network", "database_unavailable", "rate_limited"];
const ADVICE = "Make sure endpoints are registered and enabled for your tenant, then refresh the tab and try again. If the browser shows no download and no message, check that it allows downloads from this site.";

export function sdkSection() {
  const status = h("p", { class: "sdk-status hint", role: "status" });
  const problem = h("div", { class: "sdk-problem", role: "alert" });
  const get = (what, path, fallback) => async (event) => {
    const control = event.currentTarget;
    control.disabled = true;
    fill(problem);
    status.textContent = `Preparing ${what}…`;
    try {
      await download(path, fallback);
      status.textContent = `${what} downloaded.`;
    } catch (e) {
      status.textContent = "";
      fill(problem, h("div", { class: "notice error" },
        h("p", {}, h("strong", {}, `${what} could not be downloaded. `), describe(e)),
        TRANSIENT.includes(e.code) ? null : h("p", {}, ADVICE)));
    } finally {
      control.disabled = false;
    }
  };
  return h("section", { class: "card sdk", "aria-labelledby": "sdk-title" },
    h("h3", { id: "sdk-title" }, "SDK Generation"),
    h("p", { class: "hint" }, "Client libraries and the OpenAPI document for exactly the endpoints enabled for your tenant. Each library reads the key from KEYLEDGER_API_KEY."),
    h("div", { class: "sdk-groups" },
      h("div", { class: "sdk-group", role: "group", "aria-labelledby": "sdk-libraries" },
        h("span", { class: "sdk-group-label", id: "sdk-libraries" }, "Client SDK (ZIP)"),
        h("div", { class: "sdk-buttons" }, SDKS.map((s) =>
          button(s.label, get(`The ${s.label} SDK`, `/v1/sdks/${s.file}`, `keyledger-client-${s.file}`))))),
      h("div", { class: "sdk-group", role: "group", "aria-labelledby": "sdk-schemas" },
        h("span", { class: "sdk-group-label", id: "sdk-schemas" }, "OpenAPI schema"),
        h("div", { class: "sdk-buttons" }, SCHEMAS.map((s) =>
          button(s.label, get(`The ${s.label.replace("OpenAPI ", "OpenAPI document ")}`, `/v1/openapi/tenant.${s.file.split(".")[1]}`, s.file))))),
    ),
    status,
    problem);
}
