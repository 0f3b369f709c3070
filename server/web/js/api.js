// The one way the UI talks to the server: the same JSON API the command line and scripts use,
// so the server's permission checks are the only ones that matter. Requests that change
// something carry the session's CSRF token; every failure becomes an ApiError whose message is
// a sentence to show (in the page's words where the API says what a request left out).

let csrfToken = null;

/** Sets the CSRF token sent with every request that changes something. */
export function setCsrf(token) {
  csrfToken = token;
}

/** A failed request: `message` is a sentence for the page, `status` the HTTP status (0: none),
 * `detail` what the API gave as data (its `error.detail`), if anything. */
export class ApiError extends Error {
  constructor(status, kind, message, detail = null) {
    super(message);
    this.status = status;
    this.kind = kind;
    this.detail = detail;
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
    throw new ApiError(response.status, error ? error.kind : 'http', message, (error && error.detail) || null);
  }
  return json;
}

/** `DELETE path`, for what may have variables of its own (a host, group or script): the server
 * refuses to take them along unless forced, naming them; this asks, and removes them too only
 * when told to. False when not. */
export async function removeAsking(path) {
  try {
    await api('DELETE', path);
  } catch (e) {
    if (!(e instanceof ApiError && e.detail && e.detail.code === 'has-variables')) throw e;
    if (!confirm(`${e.message} Remove them too?`)) return false;
    await api('DELETE', query(path, { force: true }));
  }
  return true;
}

/** What a request left out (the API's `error.detail`), asked for in the page's words rather
 * than the API's fields, or what a removal would take along; null for a code this page does not
 * know (its message is shown). */
function missing(detail) {
  switch (detail.code) {
    case 'no-hosts': {
      const unassigned = detail.script ? ` The script ${detail.script} is assigned to no group.` : '';
      return `Choose the hosts: by name, by group, or every enabled host.${unassigned}`;
    }
    case 'no-key-user':
      return 'Choose the user the key is for.';
    case 'has-variables': {
      const names = detail.variables.map((v) => (v.secret ? `${v.name} (secret)` : v.name)).join(', ');
      const which = detail.variables.length === 1 ? 'its variable' : `its ${detail.variables.length} variables`;
      return `Removing the ${detail.scope} ${detail.owner} also removes ${which}: ${names}.`;
    }
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
    // A list is its key given again for each item (`where=a&where=b`).
    if (Array.isArray(v)) v.forEach((item) => q.append(k, String(item)));
    else if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  if (!s) return path;
  return `${path}${path.includes('?') ? '&' : '?'}${s}`;
}
