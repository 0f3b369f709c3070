// The run history, one run per host, newest first, a page at a time (GET /api/v1/runs:
// `limit`, `before` the oldest id shown for the page before), filtered by host; the filter
// and the page are in the address. Each run links to its page with its kept output.

import { api, query } from '../api.js';
import { h, field, replace } from '../dom.js';
import { when } from '../time.js';

const PAGE = 50;

/** A duration in milliseconds in words: 850 ms, 1.2 s, 3 min 12 s. */
export function elapsed(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** A run's result in words, and its class: a cancelled run did not fail. */
export function result(run) {
  if (!run.finished && !run.outcome) return ['running', 'muted'];
  if (run.cancelled) return [run.outcome || 'cancelled', 'warn'];
  return [run.outcome || (run.success ? 'succeeded' : 'failed'), run.success ? 'ok' : 'bad'];
}

export default async function historyPage(section, ctx, { params }) {
  const host = params.get('host') || '';
  const before = params.get('before') || '';
  const input = h('input', { name: 'host', id: 'history-host', value: host, type: 'search' });
  const form = h('form', { class: 'card', role: 'search', id: 'history-filters' },
    h('div', { class: 'row' }, field('Host', input),
      h('div', {}, h('button', { type: 'submit', class: 'primary' }, 'Filter'))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = query('#/history', { host: input.value.trim() });
  });
  replace(section, h('h1', {}, 'History'), form, h('p', { class: 'muted' }, 'Loading…'));

  const runs = await api('GET', query('/api/v1/runs', { host, before, limit: PAGE }));
  const rows = runs.slice().reverse().map((r) => {
    const [text, cls] = result(r);
    return h('tr', { 'data-run': r.id },
      h('td', { 'data-label': 'Run' }, h('a', { href: `#/history/${r.id}` }, `#${r.id}`)),
      h('td', { 'data-label': 'Host' }, h('a', { href: `#/hosts/${encodeURIComponent(r.host)}` }, r.host)),
      h('td', { 'data-label': 'What' }, r.what),
      h('td', { 'data-label': 'Started' }, when(r.started)),
      h('td', { 'data-label': 'Took', class: 'hide-narrow' }, elapsed(r.elapsed_ms)),
      h('td', { 'data-label': 'Result', class: cls }, text));
  });
  // A full page may have older runs before it.
  const older = runs.length === PAGE
    ? h('a', { class: 'button', id: 'history-older', href: query('#/history', { host, before: runs[0].id }) }, 'Older runs')
    : null;
  const newest = before ? h('a', { class: 'button', href: query('#/history', { host }) }, 'Newest runs') : null;
  replace(section, h('h1', {}, 'History'), form,
    rows.length
      ? h('table', { id: 'history' },
        h('thead', {}, h('tr', {}, ['Run', 'Host', 'What', 'Started', 'Took', 'Result'].map((t) =>
          h('th', { scope: 'col', class: t === 'Took' ? 'hide-narrow' : null }, t)))),
        h('tbody', {}, rows))
      : h('p', { class: 'muted' }, host ? `No runs on ${host}.` : 'Nothing has run yet.'),
    h('div', { class: 'actions' }, newest, older));
}
