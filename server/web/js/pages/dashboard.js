// The fleet at a glance: how many hosts are in each state (GET /api/v1/summary), the recent
// failures (a cancelled run is none) and slowest heartbeats it lists, the servers sharing the
// fleet (GET /api/v1/servers; none on SQLite, and then no panel), and the newest runs
// (GET /api/v1/runs, one page); and charts of the last day or week (`range=week` in the
// address; GET /api/v1/metrics): hosts reachable, runs by outcome per hour.

import { api, query } from '../api.js';
import { h, replace } from '../dom.js';
import { when } from '../time.js';
import { result } from './history.js';
import { chart, seconds } from '../charts.js';

const STATES = [
  ['reachable', 'Reachable'],
  ['unreachable', 'Unreachable'],
  ['pending', 'Pending approval'],
  ['unknown', 'Not tried yet'],
  ['disabled', 'Disabled'],
];

export default async function dashboard(section, ctx, { params }) {
  replace(section, h('h1', {}, 'Dashboard'), h('p', { class: 'muted' }, 'Loading…'));
  const week = params.get('range') === 'week';
  const [summary, runs, servers, metrics] = await Promise.all([
    api('GET', '/api/v1/summary'),
    api('GET', query('/api/v1/runs', { limit: 10 })),
    api('GET', '/api/v1/servers'),
    api('GET', query('/api/v1/metrics', { days: week ? 7 : 1 })),
  ]);
  const counts = h('ul', { class: 'counts', id: 'counts' },
    h('li', {}, h('span', { class: 'n', 'data-count': 'hosts' }, summary.hosts), 'Hosts'),
    STATES.map(([state, label]) => h('li', {},
      h('a', { href: `#/hosts?state=${state}` },
        h('span', { class: `n state-${state}`, 'data-count': state }, summary[state]), label))));
  replace(section,
    h('h1', {}, 'Dashboard'),
    counts,
    fleetCharts(metrics, week, ctx),
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

/** Charts of the fleet over the last day or `week`: hosts reachable (the fewest and most seen
 * each hour, and the hosts), runs by outcome; each with a caption in words. */
function fleetCharts(points, week, ctx) {
  const reachable = h('div', { class: 'chart', id: 'chart-reachable' });
  const ran = h('div', { class: 'chart', id: 'chart-runs' });
  const sum = (key) => points.reduce((n, p) => n + p[key], 0);
  const sampled = points.filter((p) => p.reachable_min !== null && p.reachable_min !== undefined);
  const reachText = sampled.length
    ? `Reachable hosts: between ${Math.min(...sampled.map((p) => p.reachable_min))} and ${Math.max(...sampled.map((p) => p.reachable_max))} of ${sampled[sampled.length - 1].hosts}.`
    : 'Reachable hosts: not sampled yet (serve samples them every minute).';
  const runText = `Runs: ${sum('succeeded')} succeeded, ${sum('failed')} failed, ${sum('cancelled')} cancelled.`;
  const xs = points.map((p) => seconds(p.at));
  const draw = async () => {
    await chart(reachable, sampled.map((p) => seconds(p.at)), [
      { label: 'Hosts', values: sampled.map((p) => p.hosts), colour: 'muted' },
      { label: 'Reachable (most)', values: sampled.map((p) => p.reachable_max), colour: 'ok' },
      { label: 'Reachable (fewest)', values: sampled.map((p) => p.reachable_min), colour: 'bad' },
    ], 'hosts', week ? 7 : 1);
    await chart(ran, points.some((p) => p.succeeded + p.failed + p.cancelled) ? xs : [], [
      { label: 'Succeeded', values: points.map((p) => p.succeeded), colour: 'ok' },
      { label: 'Failed', values: points.map((p) => p.failed), colour: 'bad' },
      { label: 'Cancelled', values: points.map((p) => p.cancelled), colour: 'warn' },
    ], 'runs', week ? 7 : 1);
  };
  draw().catch((e) => ctx.alert(e));
  const range = (label, on, href, id) => h('a', { href, id, class: on ? 'button primary' : 'button', 'aria-current': on ? 'true' : null }, label);
  return h('section', { id: 'fleet-charts', 'aria-labelledby': 'charts-title' },
    h('h2', { id: 'charts-title' }, week ? 'The last week' : 'The last day'),
    h('div', { class: 'actions' }, range('Day', !week, '#/', 'range-day'), range('Week', week, '#/?range=week', 'range-week')),
    h('div', { class: 'charts' },
      h('figure', {}, h('figcaption', { id: 'chart-reachable-caption' }, reachText), reachable),
      h('figure', {}, h('figcaption', { id: 'chart-runs-caption' }, runText), ran)));
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
