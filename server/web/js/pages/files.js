// Files to and from the hosts chosen on the Run page: upload one (POST /api/v1/uploads, the
// chosen File streamed as the body, followed as a launch like a run) or fetch one back
// (POST /api/v1/fetches: each host's copy kept an hour, downloaded from
// GET /api/v1/fetches/{id}/{host}). Each has a dry run that asks the hosts what they have at
// the path and changes nothing (POST /api/v1/dry-run/uploads, the file named by its SHA-256
// computed here, and /dry-run/fetches). Offered only to the run level read-write, which the
// API asks of all of them.

import { api, query } from '../api.js';
import { h, field, replace } from '../dom.js';
import { leftOutNote } from '../selectors.js';
import { bytes } from './script.js';

/** `hosts` counted and named: `2 hosts: r1, r2`. */
function counted(hosts) {
  return `${hosts.length} ${hosts.length === 1 ? 'host' : 'hosts'}: ${hosts.join(', ')}`;
}

/** What a host has at the path, as a dry run found it. */
function has(f) {
  return f.size === null || f.size === undefined
    ? 'it has no such file'
    : `it has ${bytes(f.size)}, SHA-256 ${f.sha256}`;
}

/** A host's line of a dry run when it could not say what it has. */
function couldNotSay(f) {
  return h('li', { 'data-host': f.host, class: 'bad' }, `${f.host}: could not say: ${f.error}`);
}

/** What ends a dry run's plan `p`: the hosts its selectors left out, and that nothing was done. */
function planEnd(p) {
  return [
    p.left_out.length ? h('p', { class: 'muted' }, leftOutNote(p.left_out)) : null,
    h('p', { class: 'muted' }, 'Dry run: nothing was done.'),
  ];
}

/** The SHA-256 (hex) of `file`, read whole; null where the browser offers no Web Crypto (it
 * does on pages served over https or from this machine only). */
async function sha256(file) {
  if (!globalThis.crypto || !crypto.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** An owner typed as `UID:GID`, as the API's ids; null when none is typed. */
function ids(text) {
  if (!text) return null;
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m) throw new Error(`The owner is UID:GID in numbers (1000:1000), not ${text}.`);
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/** The form that uploads a file to the hosts `targets()` names (as the Run page's request
 * says them), and `started(launched)` once the server has it; its dry run says, per host,
 * whether the file there is already this one. */
export function uploadForm(ctx, targets, started) {
  const file = h('input', { type: 'file', name: 'file', id: 'upload-file', required: true });
  const target = h('input', { name: 'path', id: 'upload-path', required: true, placeholder: '/etc/app.conf' });
  const mode = h('input', { name: 'mode', id: 'upload-mode', value: '644', required: true, pattern: '[0-7]{3,4}' });
  const owner = h('input', { name: 'owner', id: 'upload-owner', placeholder: 'UID:GID (default: the agent’s user)' });
  const force = h('input', { type: 'checkbox', name: 'force', id: 'upload-force' });
  const template = h('input', { type: 'checkbox', name: 'template', id: 'upload-template' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'upload-go' }, 'Upload');
  const dry = h('button', { type: 'button', id: 'upload-dry-run' }, 'Dry run');
  const status = h('span', { class: 'muted', id: 'upload-status', 'aria-live': 'polite' });
  const plan = h('div', { id: 'upload-plan', 'aria-live': 'polite' });
  // The chosen file's name suggests the path, until one is typed.
  file.addEventListener('change', () => {
    if (!target.value && file.files[0]) target.value = `/tmp/${file.files[0].name}`;
  });
  const form = h('form', { class: 'card', id: 'upload-form', 'aria-labelledby': 'upload-title' },
    h('h2', { id: 'upload-title' }, 'Upload a file'),
    h('p', { class: 'muted' }, 'To the hosts chosen above, up to 1 GiB. A host whose file already is this one (its content, mode and owner) is sent nothing.'),
    h('div', { class: 'row' },
      field('File', file),
      field('Path on the hosts', target),
      field('Mode (octal)', mode),
      field('Owner', owner)),
    h('label', { class: 'inline' }, force, 'Send it even where it is unchanged'),
    h('label', { class: 'inline' }, template,
      'A template: rendered for each host with its environment and facts (Jinja2’s syntax, up to 64 MiB)'),
    h('div', { class: 'actions' }, submit, dry, status),
    plan);
  dry.addEventListener('click', async () => {
    if (!form.reportValidity()) return;
    const chosen = file.files[0];
    ctx.clear();
    replace(plan);
    dry.disabled = true;
    try {
      const body = {
        ...targets(), path: target.value.trim(), mode: parseInt(mode.value.trim(), 8), force: force.checked,
      };
      if (template.checked) {
        // The server renders it for each host, as the upload would.
        body.template = await chosen.text();
      } else {
        status.textContent = `Computing the SHA-256 of ${bytes(chosen.size)}…`;
        const sum = await sha256(chosen);
        if (!sum) {
          ctx.alert('A dry run of an upload needs the file’s SHA-256, which this browser computes only on a page served over https (or from this machine): none was made.');
          return;
        }
        Object.assign(body, { sha256: sum, size: chosen.size });
      }
      status.textContent = 'Asking the hosts…';
      const owned = ids(owner.value.trim());
      if (owned) body.owner = owned;
      const p = await api('POST', '/api/v1/dry-run/uploads', body);
      const rendered = new Map((p.files[0]?.rendered ?? []).map((r) => [r.host, r]));
      const sent = (f) => {
        const r = rendered.get(f.host);
        return r ? ` its rendering of ${bytes(r.size)}, SHA-256 ${r.sha256}` : '';
      };
      replace(plan,
        h('p', {}, `Would ${p.what}${p.sha256 ? ` (SHA-256 ${p.sha256})` : ''} on ${counted(p.hosts)}`),
        h('ul', { id: 'upload-plan-hosts' }, p.on_hosts.map((f) => {
          if (f.error) return couldNotSay(f);
          return f.unchanged
            ? h('li', { 'data-host': f.host, class: 'ok' }, `${f.host}: unchanged, nothing would be sent`)
            : h('li', { 'data-host': f.host }, `${f.host}: would be sent${sent(f)}; ${has(f)}`);
        })),
        planEnd(p));
    } catch (e) {
      ctx.alert(e);
    } finally {
      dry.disabled = false;
      status.textContent = '';
    }
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    const t = targets();
    submit.disabled = true;
    ctx.clear();
    status.textContent = `Sending ${bytes(chosen.size)} to the server…`;
    try {
      const params = {
        path: target.value.trim(), mode: mode.value.trim(), owner: owner.value.trim(),
        hosts: t.hosts.join(','), groups: t.groups.join(','), all: t.all || null, where: t.where,
        force: force.checked || null, template: template.checked || null,
      };
      started(await api('POST', query('/api/v1/uploads', params), chosen));
    } catch (e) {
      submit.disabled = false;
      status.textContent = '';
      ctx.alert(e);
    }
  });
  return form;
}

/** The form that fetches a file from the hosts `targets()` names: each host's result, its
 * copy's size and SHA-256, and a link that downloads it; its dry run says what each host has. */
export function fetchForm(ctx, targets) {
  const target = h('input', { name: 'path', id: 'fetch-path', required: true, placeholder: '/etc/config/network' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'fetch-go' }, 'Fetch');
  const dry = h('button', { type: 'button', id: 'fetch-dry-run' }, 'Dry run');
  const status = h('span', { class: 'muted', id: 'fetch-status', 'aria-live': 'polite' });
  const results = h('div', { id: 'fetch-results', 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'fetch-form', 'aria-labelledby': 'fetch-title' },
    h('h2', { id: 'fetch-title' }, 'Fetch a file'),
    h('p', { class: 'muted' }, 'From each of the hosts chosen above, up to 16 MiB each; every copy can be downloaded for an hour.'),
    h('div', { class: 'row' }, field('Path on the hosts', target)),
    h('div', { class: 'actions' }, submit, dry, status),
    results);
  dry.addEventListener('click', async () => {
    if (!form.reportValidity()) return;
    ctx.clear();
    replace(results);
    dry.disabled = true;
    try {
      const p = await api('POST', '/api/v1/dry-run/fetches', { ...targets(), path: target.value.trim() });
      replace(results,
        h('p', {}, `Would ${p.what} from ${counted(p.hosts)}`),
        h('ul', { id: 'fetch-plan-hosts' }, p.on_hosts.map((f) => (f.error
          ? couldNotSay(f)
          : h('li', { 'data-host': f.host }, `${f.host}: ${has(f)}`)))),
        planEnd(p));
    } catch (e) {
      ctx.alert(e);
    } finally {
      dry.disabled = false;
    }
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    ctx.clear();
    replace(results);
    status.textContent = 'Fetching…';
    try {
      const fetched = await api('POST', '/api/v1/fetches', { ...targets(), path: target.value.trim() });
      const copied = fetched.results.filter((r) => r.success).length;
      replace(results,
        h('p', { id: 'fetch-summary', class: copied === fetched.results.length ? 'ok' : 'bad' },
          `${copied} of ${fetched.results.length} ${fetched.results.length === 1 ? 'host' : 'hosts'} sent their copy of ${fetched.name}; each is kept for an hour.`),
        h('table', { id: 'fetch-table' },
          h('thead', {}, h('tr', {}, ['Host', 'Result', 'Size', 'SHA-256', 'Copy'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, fetched.results.map((r) => h('tr', { 'data-host': r.host },
            h('td', { 'data-label': 'Host' }, h('a', { href: `#/hosts/${encodeURIComponent(r.host)}` }, r.host)),
            h('td', { 'data-label': 'Result', class: r.success ? 'ok' : 'bad' }, r.detail),
            h('td', { 'data-label': 'Size' }, r.size === null || r.size === undefined ? '—' : bytes(r.size)),
            h('td', { 'data-label': 'SHA-256' }, r.sha256 ? h('code', { class: 'key' }, r.sha256) : '—'),
            h('td', { 'data-label': 'Copy' }, r.success
              ? h('a', {
                href: `/api/v1/fetches/${encodeURIComponent(fetched.id)}/${encodeURIComponent(r.host)}`,
                download: `${r.host}-${fetched.name}`,
                'data-download': r.host,
              }, 'Download')
              : '—'))))));
    } catch (e) {
      ctx.alert(e);
    } finally {
      submit.disabled = false;
      status.textContent = '';
    }
  });
  return form;
}
