// One host: its state (enabled or disabled, where it is reached: changed with the permission
// `hosts`), trust (a pending key's fingerprint, to approve or deny), facts, groups, environment
// (GET /api/v1/hosts/{name}/env: from every scope, each marked by where it comes from; secrets
// shown as set, never their value) and its runs, a page at a time (`before` in the
// address: the oldest run id of the page after).

import { api, query } from '../api.js';
import { chart, seconds } from '../charts.js';
import { h, field, replace } from '../dom.js';
import { when } from '../time.js';
import { stateOf, stateText } from './hosts.js';
import { runTable } from './dashboard.js';
import { architecture, flash, release, size, uptime } from '../facts.js';
import { agentVersion, mayUpdate, updateButton } from './run.js';
import { controlButtons, removeHost } from './admin.js';

/** The SHA-256 fingerprint of an OpenSSH public key (`ssh-ed25519 AAAA…`), as `ssh-keygen -l`
 * shows it: `SHA256:` and the unpadded base64 of the digest of the key's blob. */
export async function fingerprint(openssh) {
  const blob = Uint8Array.from(atob(openssh.trim().split(/\s+/)[1] || ''), (c) => c.charCodeAt(0));
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', blob));
  return `SHA256:${btoa(String.fromCharCode(...digest)).replace(/=+$/, '')}`;
}

/** Charts of a host's last week of heartbeats: round trip, load, free flash; each with a
 * caption in words. */
function hostCharts(points, ctx) {
  const box = (id) => h('div', { class: 'chart', id });
  const [rtt, load, free] = [box('chart-round-trip'), box('chart-load'), box('chart-flash')];
  const xs = points.map((p) => seconds(p.at));
  const beats = points.reduce((n, p) => n + p.heartbeats, 0);
  const average = (key) => points.reduce((n, p) => n + p[key] * p.heartbeats, 0) / Math.max(beats, 1);
  const flashed = points.filter((p) => p.flash_free_kib !== null && p.flash_free_kib !== undefined);
  const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
  const captions = beats
    ? [`Round trip: ${average('round_trip_ms').toFixed(1)} ms on average, ${Math.max(...points.map((p) => p.round_trip_max_ms)).toFixed(1)} ms at most, over ${beats} heartbeats.`,
      `Load: ${average('load').toFixed(2)} on average.`,
      flashed.length ? `Free flash: ${mib(Math.min(...flashed.map((p) => p.flash_free_kib)))} at least.` : 'Free flash: not reported.']
    : ['No heartbeat recorded in the last week.', '', ''];
  const draw = async () => {
    await chart(rtt, xs, [
      { label: 'Average', values: points.map((p) => p.round_trip_ms), colour: 'accent' },
      { label: 'Longest', values: points.map((p) => p.round_trip_max_ms), colour: 'warn' },
    ], 'ms', 7);
    await chart(load, beats ? xs : [], [{ label: 'Load (1 min)', values: points.map((p) => p.load), colour: 'accent' }], 'load', 7);
    await chart(free, flashed.map((p) => seconds(p.at)),
      [{ label: 'Free flash (MiB)', values: flashed.map((p) => p.flash_free_kib / 1024), colour: 'ok' }], 'MiB', 7);
  };
  draw().catch((e) => ctx.alert(e));
  return h('section', { id: 'host-charts', 'aria-labelledby': 'host-charts-title' },
    h('h2', { id: 'host-charts-title' }, 'The last week'),
    h('div', { class: 'charts' },
      h('figure', {}, h('figcaption', { id: 'chart-round-trip-caption' }, captions[0]), rtt),
      h('figure', {}, h('figcaption', { id: 'chart-load-caption' }, captions[1]), load),
      h('figure', {}, h('figcaption', { id: 'chart-flash-caption' }, captions[2]), free)));
}

/** Runs listed on a page. */
const PAGE = 20;

export default async function host(section, ctx, { args: [name], params }) {
  const path = `/api/v1/hosts/${encodeURIComponent(name)}`;
  const before = (params && params.get('before')) || '';
  replace(section, h('h1', {}, name), h('p', { class: 'muted' }, 'Loading…'));
  const [found, env, runs, metrics] = await Promise.all([
    api('GET', path),
    api('GET', `${path}/env`),
    api('GET', query('/api/v1/runs', { host: name, before, limit: PAGE })),
    api('GET', query(`${path}/metrics`, { days: 7 })),
  ]);
  const state = stateOf(found);
  const rerender = () => host(section, ctx, { args: [name], params });

  /** A button that posts `action` about this host, then shows the page again. */
  const action = (label, verb, done, style) => h('button', {
    type: 'button', class: style, id: `host-${verb}`,
    onclick: async (event) => {
      event.target.disabled = true;
      try {
        await api('POST', `${path}/${verb}`);
        await rerender();
        ctx.info(done);
      } catch (e) {
        event.target.disabled = false;
        ctx.alert(e);
      }
    },
  }, label);

  const trust = [h('h2', {}, 'Trust')];
  const pinned = found.trust.agent_key;
  trust.push(h('p', {}, 'Agent key: ',
    pinned ? h('code', { class: 'key', id: 'agent-key' }, await fingerprint(pinned)) : h('span', { class: 'muted' }, 'none pinned yet')));
  if (!pinned && !found.trust.pending_key && !found.trust.pin_on_first_contact) {
    trust.push(ctx.may('hosts')
      ? trustForm(found, path, rerender, ctx)
      : h('p', { class: 'muted', id: 'trust-needed' }, 'Giving its agent key needs the permission “hosts”.'));
  }
  if (found.trust.pending_key) {
    trust.push(h('div', { class: 'card', id: 'pending' },
      h('p', { class: 'warn' }, 'Its agent presented a key that waits for approval:'),
      h('p', {}, h('code', { class: 'key', id: 'pending-fingerprint' }, await fingerprint(found.trust.pending_key))),
      ctx.may('hosts')
        ? h('div', { class: 'actions' },
          action('Approve', 'approve', `The key of ${name} is approved.`, 'primary'),
          action('Deny', 'deny', `The key of ${name} is denied.`, 'danger'))
        : h('p', { class: 'muted' }, 'Approving it needs the permission “hosts”.')));
  }
  const remove = h('button', { type: 'button', class: 'danger', id: 'host-remove', onclick: async (event) => {
    event.target.disabled = true;
    try {
      if (await removeHost(name)) {
        ctx.go('#/hosts', `${name} is removed.`);
        return;
      }
    } catch (e) {
      ctx.alert(e);
    }
    event.target.disabled = false;
  } }, 'Remove host');
  const controls = ctx.may('hosts')
    ? [h('div', { class: 'actions' }, found.enabled
      ? action('Disable', 'disable', `${name} is disabled.`)
      : action('Enable', 'enable', `${name} is enabled.`), remove),
    h('div', { class: 'actions', id: 'host-control', role: 'group', 'aria-label': 'Its agent' },
      controlButtons(ctx, () => ({ hosts: [name], what: name }), 'host-control')),
    addressForm(found, path, rerender, ctx)]
    : null;

  const facts = found.status.facts;
  const factRows = facts ? [
    ['Model', facts.model || '—'],
    ['Release', release(facts) || '—'],
    ['Kernel', `${facts.kernel_name} ${facts.kernel_version}`.trim()],
    ['Architecture', architecture(facts)],
    ['Host name', facts.hostname],
    ['Up', uptime(facts.uptime_secs, 3)],
    ['Load (1, 5, 15 min)', facts.load_centi.map((l) => (l / 100).toFixed(2)).join(' ')],
    ['Memory', `${size(facts.mem_available_kib)} free of ${size(facts.mem_total_kib)}`],
    ['Flash', flash(facts, true)],
  ] : [];

  replace(section,
    h('h1', {}, name),
    h('dl', { class: 'facts', id: 'host-status' },
      h('dt', {}, 'State'), h('dd', { class: `state-${state}`, id: 'host-state' }, stateText(found)),
      h('dt', {}, 'Address'), h('dd', {}, `${found.address}:${found.port}`),
      h('dt', {}, 'Last heartbeat'), h('dd', {}, when(found.status.last_seen)),
      h('dt', {}, 'Round trip'), h('dd', { id: 'host-round-trip' },
        found.status.round_trip_ms == null ? '—' : `${found.status.round_trip_ms.toFixed(1)} ms`),
      h('dt', {}, 'Agent'), h('dd', { id: 'host-agent' }, agentVersion(found),
        mayUpdate(ctx) ? [' ', updateButton(ctx, 'Update agent', 'update-agent', () => ({ targets: { hosts: [name] }, what: name }))] : null),
      found.status.last_error ? [h('dt', {}, 'Last error'), h('dd', { class: 'bad', id: 'host-last-error' }, found.status.last_error,
        remedy(found) ? h('span', { class: 'muted' }, ` — ${remedy(found)}`) : null)] : null,
      h('dt', {}, 'Groups'), h('dd', {}, found.groups.length
        ? found.groups.map((g, i) => [i ? ', ' : '', h('a', { href: query('#/hosts', { group: g }) }, g)])
        : '—')),
    controls,
    trust,
    hostCharts(metrics, ctx),
    h('h2', {}, 'Facts'),
    factRows.length
      ? h('dl', { class: 'facts', id: 'facts' }, factRows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
      : h('p', { class: 'muted' }, 'None reported yet.'),
    h('h2', {}, 'Environment'),
    env.length
      ? [h('p', { class: 'muted' }, 'What every run here gets, in the order it applies (a script’s own come after the global ones).'),
        h('table', { id: 'environment' },
          h('thead', {}, h('tr', {}, ['Name', 'Value', 'From'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, env.map((v) => h('tr', { 'data-variable': v.name, class: v.overridden ? 'overridden' : null },
            h('td', { 'data-label': 'Name' }, h('code', {}, v.name)),
            h('td', { 'data-label': 'Value' }, v.secret ? h('span', { class: 'muted' }, 'secret (set)') : h('code', {}, v.value)),
            h('td', { 'data-label': 'From', class: 'from' }, v.owner ? `${v.scope} ${v.owner}` : v.scope,
              v.overridden ? h('span', { class: 'muted' }, ' (overridden below)') : null)))))]
      : h('p', { class: 'muted' }, 'No variables.'),
    h('h2', {}, 'Runs'),
    runs.length ? runTable(runs.slice().reverse(), 'host-runs') : h('p', { class: 'muted' }, 'Nothing has run here yet.'),
    h('div', { class: 'actions' },
      before ? h('a', { class: 'button', id: 'host-runs-newest', href: `#/hosts/${encodeURIComponent(name)}` }, 'Newest runs') : null,
      // A full page may have older runs before it.
      runs.length === PAGE
        ? h('a', { class: 'button', id: 'host-runs-older', href: query(`#/hosts/${encodeURIComponent(name)}`, { before: runs[0].id }) }, 'Older runs')
        : null),
    ctx.mayRun('read-only')
      ? h('p', {}, h('a', { href: query('#/run', { host: name }), id: 'host-run' }, ctx.mayRun()
        ? `Run something on ${name}, or upload or fetch a file`
        : `Run something on ${name}`))
      : null);
}

/** What to do on this page about a host whose agent is not trusted yet, or null. */
function remedy(found) {
  if (found.trust.pending_key) return 'approve or deny the key it presented under Trust.';
  if (!found.trust.agent_key && !found.trust.pin_on_first_contact) return 'give its agent key under Trust.';
  return null;
}

/** The form that pins the agent's key given by hand (POST …/trust), for a host with none. */
function trustForm(found, path, rerender, ctx) {
  const key = h('input', { name: 'key', id: 'trust-key', required: true, autocomplete: 'off', placeholder: 'ssh-ed25519 AAAA…' });
  const form = h('form', { class: 'card', id: 'host-trust', 'aria-label': 'Its agent key' },
    h('p', {}, 'Paste the key that “otto-agent pubkey” prints on the device:'),
    h('div', { class: 'row' }, field('Agent key', key),
      h('div', {}, h('button', { type: 'submit', class: 'primary', id: 'host-trust-submit' }, 'Trust'))));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('POST', `${path}/trust`, { key: key.value.trim() });
      await rerender();
      ctx.info(`The agent key of ${found.name} is pinned.`);
    } catch (e) {
      ctx.alert(e);
    }
  });
  return form;
}

/** The form that changes where the host is reached (PATCH, the fields changed only). */
function addressForm(found, path, rerender, ctx) {
  const address = h('input', { name: 'address', id: 'host-address', value: found.address, required: true, autocomplete: 'off' });
  const port = h('input', { name: 'port', id: 'host-port', type: 'number', min: 1, max: 65535, value: found.port, required: true });
  const form = h('form', { class: 'card', id: 'host-edit', 'aria-label': 'Where it is reached' },
    h('div', { class: 'row' }, field('Address', address), field('Port', port),
      h('div', {}, h('button', { type: 'submit' }, 'Save'))));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const change = {};
    if (address.value.trim() !== found.address) change.address = address.value.trim();
    if (Number(port.value) !== found.port) change.port = Number(port.value);
    if (!Object.keys(change).length) return;
    try {
      await api('PATCH', path, change);
      await rerender();
      ctx.info(`${found.name} is now reached at ${change.address || found.address}:${change.port || found.port}.`);
    } catch (e) {
      ctx.alert(e);
    }
  });
  return form;
}
