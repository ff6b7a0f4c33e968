// Server values as a person reads them: HTTP statuses with their reason phrase, and the server's
// lower-case phrases (warnings, empty reasons) as sentences. Errors go through api.js describe().

const REASONS = {
  200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently", 302: "Found",
  304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
  405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
  422: "Unprocessable Content", 429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
  502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};

/** "Not Found" for 404; empty for a status without a well-known phrase. */
export const reasonPhrase = (status) => REASONS[status] || "";

/** "404 Not Found", or the bare number. */
export const statusText = (status) => `${status} ${reasonPhrase(status)}`.trim();

/** "the key has expired" → "The key has expired." */
export function sentence(text) {
  if (!text) return "";
  return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".");
}
