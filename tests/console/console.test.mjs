// The console in a real browser (Debian's chromium, driven by playwright-core: no browser
// download), against a real Keyledger started by tests/e2e/console.rs, which passes:
//   KL_ADMIN_URL, KL_EDGE_URL, KL_TOKEN (a superuser's), KL_ENDPOINT_PATH (an endpoint whose
//   upstream answers, requiring KL_SCOPE), KL_RECEIVER_URL (a webhook receiver), KL_CHROMIUM,
//   KL_SCREENSHOTS (a folder).
// Each step says what a user does and what they must see; the first failure ends the run with
// exit code 1. The page is checked by axe-core on every tab (0 serious or critical findings)
// and any Content-Security-Policy violation or script error fails the run.

import { chromium } from "playwright-core";
import { readFileSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const ADMIN = env("KL_ADMIN_URL");
const EDGE = env("KL_EDGE_URL");
const TOKEN = env("KL_TOKEN");
const ENDPOINT = env("KL_ENDPOINT_PATH");
const SCOPE = env("KL_SCOPE");
const RECEIVER = env("KL_RECEIVER_URL");
const SHOTS = env("KL_SCREENSHOTS");
mkdirSync(SHOTS, { recursive: true });
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const TABS = ["overview", "keys", "analytics", "explorer", "webhooks", "tokens"];

const problems = [];
let step = "start";
const say = (text) => { step = text; console.log(`- ${text}`); };
function check(condition, message) { if (!condition) throw new Error(`${step}: ${message}`); }

const browser = await chromium.launch({
  executablePath: env("KL_CHROMIUM"),
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
const page = await context.newPage();
page.on("console", (m) => { if (m.type() === "error" || /Content.Security.Policy/i.test(m.text())) problems.push(`console ${m.type()}: ${m.text()}`); });
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.setDefaultTimeout(15_000);

const tab = (name) => page.getByRole("tab", { name });
const panel = (id) => page.locator(`#panel-${id}`);
const text = async (locator) => (await locator.textContent()).trim();

async function accessible(where) {
  // preload: false keeps axe from injecting inline styles, which the policy (rightly) refuses.
  await page.evaluate(AXE);
  const result = await page.evaluate(() => axe.run(document, { resultTypes: ["violations"], preload: false }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of bad) problems.push(`axe (${where}): ${v.id} (${v.impact}) ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
}

async function edge(path, key) {
  const response = await fetch(`${EDGE}${path}`, { headers: { Authorization: `Bearer ${key}` } });
  return response.status;
}

try {
  say("the console answers at / under a Content-Security-Policy without inline script");
  const response = await page.goto(ADMIN + "/");
  check(/script-src 'self'/.test(response.headers()["content-security-policy"] || ""), "no strict CSP header");

  say("a wrong token is refused in words, and the right one signs in");
  await page.getByLabel("Admin token").fill("kl_not_a_token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("That token was not accepted").waitFor();
  await accessible("sign in");
  await page.screenshot({ path: join(SHOTS, "sign-in-desktop.png") });
  await page.getByLabel("Admin token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await tab("Overview").waitFor();
  check(await page.evaluate(() => sessionStorage.length === 1 && localStorage.getItem("keyledger.token") === null), "the token is not (only) in session storage");

  say("the tabs are reachable by keyboard (arrow keys move between them, Enter opens one)");
  await tab("Overview").focus();
  await page.keyboard.press("ArrowRight");
  check(await page.evaluate(() => document.activeElement.id) === "tab-keys", "ArrowRight did not move to API Keys");
  await page.keyboard.press("Enter");
  check(await tab("API Keys").getAttribute("aria-selected") === "true", "Enter did not open API Keys");
  await page.keyboard.press("ArrowLeft");
  await page.keyboard.press("Enter");
  check(await tab("Overview").getAttribute("aria-selected") === "true", "ArrowLeft and Enter did not return to Overview");

  say("create a key: the plaintext is shown once, with a copy button and a warning");
  await tab("API Keys").click();
  await page.getByRole("button", { name: "Create API Key" }).click();
  const create = page.getByRole("dialog", { name: "Create API Key" });
  await create.getByLabel("Name", { exact: true }).fill("console-e2e");
  await create.getByLabel(SCOPE, { exact: true }).check();
  await create.getByRole("button", { name: "Create", exact: true }).click();
  const shown = page.getByRole("dialog", { name: "Your new API key" });
  const key = await text(shown.getByTestId("new-key"));
  check(key.startsWith("ak_"), `the key shown is ${key}`);
  check(await shown.getByText("will not be shown again").count() > 0, "no warning that the key is shown once");
  check(await shown.getByRole("button", { name: "Copy" }).count() === 1, "no copy button");
  await shown.getByRole("button", { name: "Done" }).click();
  await shown.waitFor({ state: "detached" });
  await panel("keys").getByRole("cell", { name: "console-e2e", exact: true }).waitFor();
  const html = await page.content();
  check(!html.includes(key), `the plaintext key is still in the page after the dialog closed: …${html.slice(Math.max(0, html.indexOf(key) - 300), html.indexOf(key) + 80)}…`);
  check(await edge(ENDPOINT, key) === 200, "the key shown does not pass the edge");

  say("the overview's numbers follow edge traffic without a reload");
  await tab("Overview").click();
  const today = panel("overview").getByTestId("requests-today");
  await page.waitForFunction(() => document.querySelector(".live")?.dataset.state === "live");
  const before = Number((await text(today)).replace(/\D/g, ""));
  for (let i = 0; i < 3; i++) check(await edge(ENDPOINT, key) === 200, "an edge request with the key failed");
  // The cards are drawn anew on each update: look the figure up each time.
  await page.waitForFunction((n) => Number(document.querySelector("#panel-overview [data-testid=requests-today]").textContent.replace(/\D/g, "")) >= n, before + 3, { timeout: 20_000 });
  check(await page.evaluate(() => performance.getEntriesByType("navigation").length === 1), "the page was reloaded");

  say("the explorer's Test sends a request as the new key and shows the upstream's answer");
  await tab("API Explorer").click();
  await panel("explorer").getByLabel("Search").fill(ENDPOINT.split("/")[1]);
  const template = ENDPOINT.replace(/\/[^/]+$/, "/{id}");
  await panel("explorer").getByRole("button", { name: `Test GET ${template}`, exact: true }).click();
  const test = page.getByRole("dialog", { name: "Test endpoint" });
  await test.getByLabel("id", { exact: true }).fill(ENDPOINT.split("/").pop());
  const keySelect = test.getByLabel("Key", { exact: true });
  const option = await keySelect.locator("option", { hasText: "console-e2e" }).getAttribute("value");
  await keySelect.selectOption(option);
  await test.getByRole("button", { name: "Send request" }).click();
  await test.getByTestId("test-status").filter({ hasText: "200" }).waitFor();
  await test.getByRole("button", { name: "Close" }).click();

  say("download an SDK: a ZIP file arrives");
  const [sdk] = await Promise.all([page.waitForEvent("download"), panel("explorer").getByRole("button", { name: "Python", exact: true }).click()]);
  const sdkPath = join(SHOTS, "..", sdk.suggestedFilename());
  await sdk.saveAs(sdkPath);
  check(sdk.suggestedFilename().endsWith(".zip") && statSync(sdkPath).size > 100, `the SDK download is ${sdk.suggestedFilename()}`);
  check(readFileSync(sdkPath).subarray(0, 2).toString() === "PK", "the SDK is not a ZIP");

  say("a Slack template shows its rendered preview; a webhook uses it and its secret is shown once");
  await tab("Webhooks").click();
  await panel("webhooks").getByRole("tab", { name: "Templates" }).click();
  await panel("webhooks").getByRole("button", { name: "New template" }).click();
  const tpl = page.getByRole("dialog", { name: "New webhook template" });
  await tpl.getByLabel("Name", { exact: true }).fill("team-slack");
  await tpl.getByLabel("Type", { exact: true }).selectOption({ label: "Slack" });
  await tpl.getByTestId("template-preview").filter({ hasText: "blocks" }).waitFor();
  await page.screenshot({ path: join(SHOTS, "webhook-template-preview-desktop.png") });
  await tpl.getByRole("button", { name: "Save template" }).click();
  await panel("webhooks").getByRole("cell", { name: "team-slack", exact: true }).waitFor();
  await panel("webhooks").getByRole("tab", { name: "Subscriptions" }).click();
  await panel("webhooks").getByRole("button", { name: "New subscription" }).click();
  const sub = page.getByRole("dialog", { name: "New webhook subscription" });
  await sub.getByLabel("URL", { exact: true }).fill(RECEIVER);
  await sub.getByLabel("key.revoked", { exact: true }).check();
  await sub.getByLabel("Template", { exact: true }).selectOption({ label: "team-slack" });
  await sub.getByRole("button", { name: "Create subscription" }).click();
  const secret = page.getByRole("dialog").getByTestId("new-secret");
  check((await text(secret)).startsWith("whsec_"), "no signing secret shown");
  await page.getByRole("dialog").getByRole("button", { name: "Done" }).click();
  await panel("webhooks").getByText(RECEIVER).first().waitFor();

  say("revoke the key after confirming; the edge refuses it on the next request");
  await tab("API Keys").click();
  await panel("keys").getByRole("button", { name: "Revoke console-e2e" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Revoke key" }).click();
  await panel("keys").getByRole("cell", { name: "console-e2e", exact: true }).waitFor({ state: "detached" });
  await panel("keys").getByLabel("Show revoked keys").check();
  await panel("keys").getByRole("row", { name: /console-e2e/ }).getByText("Revoked", { exact: true }).waitFor();
  check(await edge(ENDPOINT, key) === 401, "the revoked key still passes the edge");

  say("every tab, at desktop and phone widths: screenshots, and no serious accessibility finding");
  for (const [width, height, name] of [[1280, 900, "desktop"], [390, 844, "phone"]]) {
    await page.setViewportSize({ width, height });
    for (const id of TABS) {
      await page.locator(`#tab-${id}`).click();
      await panel(id).locator(".loading").waitFor({ state: "detached" });
      await page.waitForTimeout(300);
      // Toasts from the steps before would cover what the screenshot is of.
      await page.evaluate(() => document.getElementById("toasts").replaceChildren());
      await accessible(`${id}, ${name}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      if (overflow > 1) problems.push(`${id} at ${width} px: the page scrolls sideways by ${overflow} px`);
      await page.screenshot({ path: join(SHOTS, `${id}-${name}.png`), fullPage: true });
    }
  }

  say("sign out forgets the token");
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Admin token", { exact: true }).waitFor();
  check(await page.evaluate(() => sessionStorage.length === 0), "the token is still in session storage");
  await page.reload();
  await page.getByLabel("Admin token", { exact: true }).waitFor();

  say("a read-only token is offered nothing it may not do");
  await page.getByLabel("Admin token", { exact: true }).fill(env("KL_READ_TOKEN"));
  await page.getByRole("button", { name: "Sign in" }).click();
  await tab("API Keys").click();
  await panel("keys").getByLabel("Show revoked keys").waitFor();
  check(await tab("Tokens").count() === 0, "the Tokens tab is offered");
  check(await page.getByRole("button", { name: "Create API Key" }).count() === 0, "Create API Key is offered");
  await tab("Webhooks").click();
  await panel("webhooks").locator(".loading").waitFor({ state: "detached" });
  await panel("webhooks").getByRole("tab", { name: "Subscriptions" }).waitFor();
  check(await page.getByRole("button", { name: "New subscription" }).count() === 0, "New subscription is offered");
} catch (error) {
  problems.unshift(error.message);
  await page.screenshot({ path: join(SHOTS, "failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}

if (problems.length) {
  console.error(`the console failed (last step: ${step}):`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log("the console passed every step");
