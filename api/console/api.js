// The console's only way to the server: the public GraphQL API (queries, mutations, the usage
// subscription) and the public REST API (file downloads), with the signed-in admin token.

const TOKEN_KEY = "keyledger.token";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

/** An answer the API refused, with its error code and the server's message. */
export class ApiFailure extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

// What to tell a person for codes whose server message needs context (`forbidden` keeps the
// server's, which says what was refused); others show the server's message, which already says
// what to change.
const WORDS = {
  unauthorized: "Your admin token was not accepted (it may have expired or been deleted). Sign in again.",
  forbidden: "Your admin token does not allow this.",
  database_unavailable: "The database is not answering. Nothing was changed; try again in a few seconds.",
  rate_limited: "Too many requests. Wait a moment and try again.",
  network: "The server could not be reached. Check that Keyledger is running, then try again.",
};

/** A sentence for a person, never raw JSON. */
export function describe(error) {
  if (error instanceof ApiFailure) {
    const base = WORDS[error.code];
    if (base && error.code !== "forbidden") return base;
    return error.message ? capitalise(error.message) + (/[.?!]$/.test(error.message) ? "" : ".") : base || "The request failed.";
  }
  // Network failures arrive as ApiFailure("network"): anything else is the console's own fault.
  console.error(error);
  return "The console hit an unexpected problem. Reload the page and try again.";
}

function capitalise(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

let onUnauthorized = () => {};
/** Called when the token stops working, so the console can ask for another. */
export function whenUnauthorized(handler) { onUnauthorized = handler; }

function headers(extra = {}) {
  const h = { ...extra };
  if (session.token) h.Authorization = `Bearer ${session.token}`;
  return h;
}

async function send(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiFailure("network", "", 0);
  }
  return response;
}

/** Runs a GraphQL operation; the first error becomes an ApiFailure with its extension code. */
export async function gql(query, variables = {}) {
  const response = await send("/graphql", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiFailure("internal", `The server answered ${response.status} without a readable body`, response.status);
  }
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    const code = (first.extensions && first.extensions.code) || "invalid_graphql";
    const failure = new ApiFailure(code, first.message, first.extensions && first.extensions.status);
    if (code === "unauthorized") onUnauthorized(failure);
    throw failure;
  }
  return body.data;
}

async function failureOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) {
      const failure = new ApiFailure(body.error.code, body.error.message, response.status);
      if (failure.code === "unauthorized") onUnauthorized(failure);
      return failure;
    }
  } catch { /* not JSON: fall through */ }
  return new ApiFailure("internal", `The server answered ${response.status}`, response.status);
}

/** Fetches a REST resource with the token and hands it to the browser as a download. */
export async function download(path, fallbackName) {
  const response = await send(path, { headers: headers() });
  if (!response.ok) throw await failureOf(response);
  const disposition = response.headers.get("content-disposition") || "";
  const named = /filename="?([^";]+)"?/.exec(disposition);
  saveBlob(await response.blob(), named ? named[1] : fallbackName);
}

/** Offers bytes (a Blob) as a file download. */
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * A GraphQL subscription over the graphql-transport-ws protocol; the token travels in
 * `connection_init`, as browsers cannot set headers on a WebSocket. Reconnects after a drop.
 * Returns a function that closes it.
 */
export function subscribe(query, variables, onNext, onState = () => {}) {
  let socket;
  let closed = false;
  let retry = 1000;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/graphql/ws`, "graphql-transport-ws");
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${session.token}` } }));
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        retry = 1000;
        onState("live");
        socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
      } else if (message.type === "next" && message.payload && message.payload.data) {
        onNext(message.payload.data);
      } else if (message.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (message.type === "error" || (message.type === "next" && message.payload.errors)) {
        onState("error");
      }
    });
    socket.addEventListener("close", () => {
      if (closed) return;
      onState("reconnecting");
      setTimeout(() => { if (!closed) open(); }, retry);
      retry = Math.min(retry * 2, 30_000);
    });
  };
  open();
  return () => { closed = true; socket.close(); };
}

/**
 * Every page of a paged list (`field` names it in the answer), 200 at a time. Stops at `cap`
 * pages so a huge tenant cannot hang the tab; `truncated` says when it did.
 */
export async function everyPage(query, field, variables = {}, cap = 10) {
  const rows = [];
  let cursor = null;
  for (let i = 0; i < cap; i++) {
    const page = (await gql(query, { ...variables, cursor }))[field];
    rows.push(...page.data);
    cursor = page.nextCursor;
    if (!cursor) return { rows, truncated: false };
  }
  return { rows, truncated: true };
}
