// One delivery in full: where it went, every attempt with the body sent and what the receiver
// answered, and sending it again. While an attempt is due within the minute it is read again
// then; what the reader opened or focused stays so unless that part changed.

import { gql, describe } from "./api.js";
import { h, fill, button, dialog, failure, number, ms, busy, latest } from "./ui.js";
import { statusBadge, pretty, plural, exactly, keepingFocus, nextLook } from "./webhook_common.js";

const ONE = `query($id: String!) { webhookDelivery(id: $id) {
  id webhookId eventType status attempts nextAttemptAt lastStatusCode lastError message createdAt updatedAt
  attemptLog { attempt url delivered statusCode error requestBody responseBody durationMs at nextAttemptAt } } }`;
const RESEND = `mutation($id: String!) { resendWebhookDelivery(id: $id) { id status } }`;

/**
 * `url` and `subscription` (its status; null once deleted) are of the delivery's subscription.
 * Resolves true when the delivery was sent again, so the log can read itself again.
 */
export function deliveryDialog(id, { url, subscription, write }) {
  let resent = false;
  return dialog("Webhook delivery", () => {
    const turn = latest();
    let timer = null;
    let seen = null;
    let quiet = 0;
    const said = h("div", { class: "wh-resend-result", tabindex: "-1" });
    const actions = h("div", { class: "wh-delivery-actions" });
    const facts = h("div", {}, h("p", { class: "loading" }, "Loading…"));
    // The event itself never changes: built once, so a <details> the reader opened stays open.
    const message = h("div");
    const body = h("div", { class: "stack wh-delivery" }, actions, said, facts, message);

    const read = async () => {
      clearTimeout(timer);
      const n = turn.next();
      let d;
      try {
        d = (await gql(ONE, { id })).webhookDelivery;
      } catch (e) {
        if (turn.current(n) && body.isConnected) { seen = null; fill(facts, failure(e)); }
        return;
      }
      // Closed meanwhile: the dialog left the page, and nothing more is asked.
      if (!turn.current(n) || !body.isConnected) return;
      const now = [d.status, d.attempts, (d.attemptLog || []).length, d.nextAttemptAt].join("|");
      quiet = now === seen ? quiet + 1 : 0;
      if (now !== seen) {
        seen = now;
        await keepingFocus(body, async () => {
          fill(actions, write ? resendArea(d) : null);
          fill(facts, view(d, url));
        });
        if (!message.firstChild) fill(message, messageView(d));
      }
      const wait = nextLook([d], quiet);
      if (wait !== null) timer = setTimeout(read, wait);
    };

    const resendArea = (d) => {
      const why = resendRefused(d, subscription);
      if (why) return h("p", { class: "hint" }, why);
      const resend = button("Resend", async () => {
        fill(said);
        try {
          await busy(resend, () => gql(RESEND, { id }));
        } catch (e) {
          // The server says why (still pending, subscription disabled) and what to do.
          fill(said, h("p", { class: "notice error", role: "alert" }, describe(e)));
          return;
        }
        resent = true;
        fill(said, h("p", { class: "notice ok" }, "Sent again: it is attempted now, under the same webhook-id. The attempts below update when it is done."));
        // The button goes while the delivery is pending: the keyboard goes to what happened.
        said.focus();
        await read();
      }, { tone: "primary", "data-key": "resend" });
      return [resend, h("span", { class: "hint" }, "Sends this delivery again now, as it was first sent.")];
    };

    read();
    return body;
  }, { wide: true }).then(() => resent);
}

/** Why the server would refuse a resend (409), in words; null when it would take it. */
function resendRefused(d, subscription) {
  if (subscription === null) return "Resend is not offered: the delivery's subscription was deleted.";
  if (subscription === "disabled") return "Resend is not offered while the subscription is disabled: enable it under Subscriptions first.";
  if (d.status === "pending") return "Resend is offered once this delivery is delivered or failed: while pending, it is tried again without being asked.";
  if (d.status === "held") return "Resend is offered once this delivery is delivered or failed: while held, it is sent when the subscription is resumed.";
  return null;
}

function view(d, url) {
  const attempts = d.attemptLog || [];
  return [
    h("dl", { class: "wh-facts" },
      fact("Status", statusBadge(d.status)),
      fact("Event type", h("code", {}, d.eventType)),
      fact("Subscription", url ? h("code", { class: "wh-url" }, url) : "A deleted subscription"),
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
  ];
}

const messageView = (d) => h("details", { class: "wh-message" },
  h("summary", {}, "The event (as the default body carries it)"),
  h("pre", { tabindex: "0" }, JSON.stringify(d.message, null, 2)));

function attemptView(a) {
  return h("li", { class: "wh-attempt" },
    h("div", { class: "wh-attempt-head" },
      h("h4", {}, `Attempt ${a.attempt}`),
      a.delivered ? statusBadge("delivered") : statusBadge("failed")),
    h("dl", { class: "wh-facts" },
      fact("URL", h("code", { class: "wh-url" }, a.url)),
      fact("Status code", a.statusCode === null ? "No answer" : String(a.statusCode)),
      a.error ? fact("Error", a.error) : null,
      fact("Duration", ms(a.durationMs)),
      fact("Time", exactly(a.at)),
      a.nextAttemptAt ? fact("Next attempt due", exactly(a.nextAttemptAt)) : null),
    h("p", { class: "wh-label" }, "Body sent"),
    h("pre", { tabindex: "0", "data-key": `sent:${a.attempt}` }, pretty(a.requestBody)),
    h("p", { class: "wh-label" }, "Response received"),
    a.responseBody === null || a.responseBody === undefined || a.responseBody === ""
      ? h("p", { class: "hint" }, a.statusCode === null ? "None: no answer came." : "An empty body.")
      : h("pre", { tabindex: "0", "data-key": `answer:${a.attempt}` }, pretty(a.responseBody)));
}

const fact = (term, value) => h("div", { class: "wh-fact" }, h("dt", {}, term), h("dd", {}, value));
