// The one time a new secret (an API key, an admin token, a webhook signing secret) is shown.
// Nothing keeps it: the dialog is removed from the page when it closes, and callers drop the
// plaintext from what they store. Only Done closes it, so a stray Escape cannot lose it.

import { h, dialog, button, copy } from "./ui.js";

export function showOnce({ title, what, secret, testid, kept = "Keyledger stores only a hash of it and cannot show it again." }) {
  return dialog(title, (close) => h("div", { class: "stack" },
    h("p", {}, `Here is ${what}. ${kept}`),
    h("div", { class: "secret" },
      h("code", { "data-testid": testid, class: "secret-value" }, secret),
      button("Copy", () => copy(secret), { tone: "primary" })),
    h("p", { class: "notice warn" }, h("strong", {}, "Copy it now: it will not be shown again.")),
    h("div", { class: "actions" }, button("Done", () => close())),
  ), { dismissable: false });
}
