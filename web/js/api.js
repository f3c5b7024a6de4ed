// HTTP API calls with the server's one error shape ({error, code}) turned into plain-words errors.

export class ApiError extends Error {
  constructor(status, code, message, fields = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

function minutes(seconds) {
  const m = Math.ceil(Number(seconds) / 60);
  return m <= 1 ? "a minute" : `${m} minutes`;
}

// Some server messages are written for programs; these read better for people.
function plainWords(status, data, response) {
  const code = data && data.code;
  if (code === "rate_limited") {
    const wait = response.headers.get("Retry-After") || 60;
    return (
      `Too many failed sign-ins for this email or from this network. To protect your account, ` +
      `signing in is paused: try again in ${minutes(wait)}.`
    );
  }
  if (code === "bad_credentials") return "Wrong email or password.";
  if (code === "unauthenticated" || status === 401) return "You are signed out. Sign in to continue.";
  if (code === "invitation_required") return "Signing up needs an invitation: open the link your race organizer sent you.";
  let text = (data && data.error) || `The server answered ${status}.`;
  return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".");
}

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "network", "The server cannot be reached. Check your connection and try again.");
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    throw new ApiError(response.status, data && data.code, plainWords(response.status, data, response), data && data.fields);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);
