// The one way the UI talks to the server: the same JSON API the command line and scripts use,
// so the server's permission checks are the only ones that matter. Requests that change
// something carry the session's CSRF token; every failure becomes an ApiError whose message is
// a sentence to show (in the page's words where the API says what a request left out).

let csrfToken = null;

/** Sets the CSRF token sent with every request that changes something. */
export function setCsrf(token) {
  csrfToken = token;
}

/** A failed request: `message` is a sentence for the page, `status` the HTTP status (0: none). */
export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

/** `method path` with a JSON `body` (if given; a Blob or File is sent as it is, streamed by the
 * browser, never read into a string); the answer's JSON (null when it has none). */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const raw = body instanceof Blob;
  if (body !== undefined) headers['Content-Type'] = raw ? 'application/octet-stream' : 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined || raw ? body : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (e) {
    throw new ApiError(0, 'network', `The server could not be reached (${e.message}).`);
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const error = json && json.error;
    const asked = error && error.detail && (missing(error.detail) || untrusted(error.detail));
    const message = asked || (error && error.message
      ? sentence(error.message)
      : `The server answered ${response.status} ${response.statusText}.`);
    throw new ApiError(response.status, error ? error.kind : 'http', message);
  }
  return json;
}

/** What a request left out (the API's `error.detail`), asked for in the page's words rather
 * than the API's fields; null for a code this page does not know (its message is shown). */
function missing(detail) {
  switch (detail.code) {
    case 'no-hosts': {
      const unassigned = detail.script ? ` The script ${detail.script} is assigned to no group.` : '';
      return `Choose the hosts: by name, by group, or every enabled host.${unassigned}`;
    }
    case 'no-key-user':
      return 'Choose the user the key is for.';
    default:
      return null;
  }
}

/** Why a host's agent is not trusted (the API's `error.detail`), with what to do about it in
 * this site's words; null for a code this page does not know. */
function untrusted(detail) {
  switch (detail.code) {
    case 'no-agent-key':
      return `${detail.host} has no agent key pinned: give it under Trust on the host's page.`;
    case 'key-pending':
      return `The agent of ${detail.host} presented another key (${detail.fingerprint}), held for approval: approve or deny it under Trust on the host's page.`;
    default:
      return null;
  }
}

/** `text` with a capital first letter and a full stop. */
function sentence(text) {
  const s = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** `path` with the query `params` (empty ones left out). */
export function query(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
