// One delivery in full: where it went, every attempt with the body sent and what the receiver
// answered, and sending it again.

import { gql, describe } from "./api.js";
import { h, fill, button, dialog, failure, number } from "./ui.js";
import { statusBadge, pretty, plural, exactly } from "./webhook_common.js";

const ONE = `query($id: String!) { webhookDelivery(id: $id) {
  id webhookId eventType status attempts nextAttemptAt lastStatusCode lastError message createdAt updatedAt
  attemptLog { attempt url delivered statusCode error requestBody responseBody durationMs at nextAttemptAt } } }`;
const RESEND = `mutation($id: String!) { resendWebhookDelivery(id: $id) { id status } }`;

/** `url` names the subscription; `changed` is called after a resend so the log can follow. */
export function deliveryDialog(id, { url, write, changed }) {
  return dialog("Webhook delivery", () => {
    const content = h("div", { class: "wh-delivery" }, h("p", { class: "loading" }, "Loading…"));
    const said = h("div", { class: "wh-resend-result", role: "status" });
    let timer = null;
    const show = async () => {
      try {
        const { webhookDelivery } = await gql(ONE, { id });
        fill(content, view(webhookDelivery, url));
        return webhookDelivery;
      } catch (e) {
        fill(content, failure(e));
        return null;
      }
    };
    // After a resend the attempt takes a moment; re-read until it is no longer pending.
    const follow = (left) => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        if (!content.isConnected) return;
        const d = await show();
        if (d && d.status === "pending" && left > 1) follow(left - 1);
      }, 1500);
    };
    const resend = write ? button("Resend", async (event) => {
      const self = event.currentTarget;
      self.disabled = true;
      fill(said);
      try {
        await gql(RESEND, { id });
        fill(said, h("p", { class: "notice ok" }, "Sent again: it is attempted now, under the same webhook-id. The attempts below update when it is done."));
        if (changed) changed();
        await show();
        follow(10);
      } catch (e) {
        // The server says why (still pending, subscription disabled) and what to do.
        fill(said, h("p", { class: "notice error", role: "alert" }, describe(e)));
      } finally {
        self.disabled = false;
      }
    }, { tone: "primary" }) : null;
    show();
    return h("div", { class: "stack" },
      resend ? h("div", { class: "wh-delivery-actions" }, resend,
        h("span", { class: "hint" }, "Sends this delivery again now, as it was first sent.")) : null,
      said,
      content);
  }, { wide: true });
}

function view(d, url) {
  const attempts = d.attemptLog || [];
  return [
    h("dl", { class: "wh-facts" },
      fact("Status", statusBadge(d.status)),
      fact("Event type", h("code", {}, d.eventType)),
      fact("Subscription", h("code", { class: "wh-url" }, url || "A deleted subscription")),
      fact("Message id (webhook-id)", h("code", {}, d.id)),
      fact("Created", exactly(d.createdAt)),
      fact("Attempts", number(d.attempts)),
      d.nextAttemptAt && d.status === "pending" ? fact("Next attempt", exactly(d.nextAttemptAt)) : null,
      d.lastError ? fact("Last error", d.lastError) : null),
    d.status === "held" ? h("p", { class: "notice warn" }, "Held: its subscription is paused. It is sent once the subscription is resumed.") : null,
    h("h3", { class: "wh-attempts-title" }, attempts.length ? plural(attempts.length, "attempt") : "Attempts"),
    attempts.length
      ? h("ol", { class: "wh-attempts" }, attempts.map(attemptView))
      : h("p", { class: "empty" }, d.status === "held" ? "No attempt yet: the subscription is paused." : "No attempt yet: the first is made within seconds."),
    h("details", { class: "wh-message" },
      h("summary", {}, "The event (as the default body carries it)"),
      h("pre", { tabindex: "0" }, JSON.stringify(d.message, null, 2))),
  ];
}

function attemptView(a) {
  return h("li", { class: "wh-attempt" },
    h("div", { class: "wh-attempt-head" },
      h("h4", {}, `Attempt ${a.attempt}`),
      a.delivered ? statusBadge("delivered") : statusBadge("failed")),
    h("dl", { class: "wh-facts" },
      fact("URL", h("code", { class: "wh-url" }, a.url)),
      fact("Status code", a.statusCode === null ? "No answer" : String(a.statusCode)),
      a.error ? fact("Error", a.error) : null,
      fact("Duration", `${number(a.durationMs)} ms`),
      fact("Time", exactly(a.at)),
      a.nextAttemptAt ? fact("Next attempt due", exactly(a.nextAttemptAt)) : null),
    h("p", { class: "wh-label" }, "Body sent"),
    h("pre", { tabindex: "0" }, pretty(a.requestBody)),
    h("p", { class: "wh-label" }, "Response received"),
    a.responseBody === null || a.responseBody === undefined || a.responseBody === ""
      ? h("p", { class: "hint" }, a.statusCode === null ? "None: no answer came." : "An empty body.")
      : h("pre", { tabindex: "0" }, pretty(a.responseBody)));
}

const fact = (term, value) => h("div", { class: "wh-fact" }, h("dt", {}, term), h("dd", {}, value));
