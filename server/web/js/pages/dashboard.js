// The fleet at a glance: how many hosts are in each state (GET /api/v1/summary), the recent
// failures (a cancelled run is none) and slowest heartbeats it lists, the servers sharing the
// fleet (GET /api/v1/servers; none on SQLite, and then no panel), and the newest runs
// (GET /api/v1/runs, one page).

import { api, query } from '../api.js';
import { h, replace } from '../dom.js';
import { when } from '../time.js';
import { result } from './history.js';

const STATES = [
  ['reachable', 'Reachable'],
  ['unreachable', 'Unreachable'],
  ['pending', 'Pending approval'],
  ['unknown', 'Not tried yet'],
  ['disabled', 'Disabled'],
];

export default async function dashboard(section, ctx) {
  replace(section, h('h1', {}, 'Dashboard'), h('p', { class: 'muted' }, 'Loading…'));
  const [summary, runs, servers] = await Promise.all([
    api('GET', '/api/v1/summary'),
    api('GET', query('/api/v1/runs', { limit: 10 })),
    api('GET', '/api/v1/servers'),
  ]);
  const counts = h('ul', { class: 'counts', id: 'counts' },
    h('li', {}, h('span', { class: 'n', 'data-count': 'hosts' }, summary.hosts), 'Hosts'),
    STATES.map(([state, label]) => h('li', {},
      h('a', { href: `#/hosts?state=${state}` },
        h('span', { class: `n state-${state}`, 'data-count': state }, summary[state]), label))));
  replace(section,
    h('h1', {}, 'Dashboard'),
    counts,
    h('h2', {}, 'Recent failures'),
    summary.recent_failures.length
      ? runTable(summary.recent_failures, 'failures')
      : h('p', { class: 'muted' }, 'No run has failed lately.'),
    h('h2', {}, 'Slowest heartbeats'),
    summary.slowest_heartbeats.length
      ? heartbeatTable(summary.slowest_heartbeats)
      : h('p', { class: 'muted' }, 'No host has answered a heartbeat yet.'),
    servers.length ? serverPanel(servers) : null,
    h('h2', {}, 'Recent runs'),
    runs.length ? runTable(runs.slice().reverse(), 'recent-runs') : h('p', { class: 'muted' }, 'Nothing has run yet.'));
}

/** The reachable hosts whose last heartbeat took longest, slowest first. */
function heartbeatTable(beats) {
  return h('table', { id: 'slowest' },
    h('thead', {}, h('tr', {}, ['Host', 'Round trip', 'When'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, beats.map((b) => h('tr', { 'data-host': b.host },
      h('td', { 'data-label': 'Host' }, h('a', { href: `#/hosts/${encodeURIComponent(b.host)}` }, b.host)),
      h('td', { 'data-label': 'Round trip' }, `${b.round_trip_ms.toFixed(1)} ms`),
      h('td', { 'data-label': 'When' }, when(b.at))))));
}

/** The servers sharing the fleet (one PostgreSQL database): each one's hosts and lease. */
function serverPanel(servers) {
  return h('section', { id: 'servers-panel', 'aria-labelledby': 'servers-title' },
    h('h2', { id: 'servers-title' }, 'Servers'),
    h('table', { id: 'servers' },
      h('thead', {}, h('tr', {}, ['Server', 'Hosts', 'Lease'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, servers.map((s) => h('tr', { 'data-server': s.id },
        h('td', { 'data-label': 'Server' }, s.name,
          s.this ? h('span', { class: 'muted' }, ' (this one)') : null),
        h('td', { 'data-label': 'Hosts', 'data-hosts': s.hosts }, s.hosts),
        h('td', { 'data-label': 'Lease', class: s.live ? 'ok' : 'bad' },
          s.live ? 'live until ' : 'ended ', when(s.expires)))))));
}

/** A table of runs, newest first. */
export function runTable(runs, id) {
  return h('table', { id },
    h('thead', {}, h('tr', {}, ['Host', 'What', 'Started', 'Result'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, runs.map((r) => {
      const [text, cls] = result(r);
      return h('tr', {},
        h('td', { 'data-label': 'Host' }, h('a', { href: `#/hosts/${encodeURIComponent(r.host)}` }, r.host)),
        h('td', { 'data-label': 'What' }, r.what),
        h('td', { 'data-label': 'Started' }, when(r.started)),
        h('td', { 'data-label': 'Result', class: cls }, text));
    })));
}
