// The run history, one run per host, newest first, a page at a time (GET /api/v1/runs:
// `limit`, `before` the oldest id shown for the page before), found by host, job (a script's
// name or `command: …`), user, outcome and when it started; the filters and the page are in
// the address. Each run links to its page with its kept output.

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

/** Who started a run, in a word or two: a user's name, a login on the command line, a
 * schedule or the server. */
export function who(actor) {
  if (!actor) return '—';
  const [first] = actor.split(' ');
  if (first.startsWith('user:')) return first.slice(5);
  if (first.startsWith('cli:')) return `${first.slice(4)} (command line)`;
  return first;
}

/** An RFC 3339 time as a `datetime-local` input shows it (the browser's time zone). */
function local(text) {
  const t = new Date(text);
  if (Number.isNaN(t.getTime())) return '';
  t.setMinutes(t.getMinutes() - t.getTimezoneOffset());
  return t.toISOString().slice(0, 16);
}

/** What a `datetime-local` input holds, as an RFC 3339 time ('' when empty). */
function utc(value) {
  return value ? new Date(value).toISOString() : '';
}

/** What an empty page of the history says, for its `filters`. */
function nothing(filters) {
  const given = Object.entries(filters).filter(([, v]) => v).map(([k]) => k);
  if (!given.length) return 'Nothing has run yet.';
  if (given.length === 1 && given[0] === 'host') return `No runs on ${filters.host}.`;
  return 'No run matches.';
}

const OUTCOMES = [['', 'any'], ['succeeded', 'succeeded'], ['failed', 'failed'], ['cancelled', 'cancelled'], ['running', 'running']];

export default async function historyPage(section, ctx, { params }) {
  const filters = {};
  for (const name of ['host', 'what', 'user', 'outcome', 'since', 'until']) filters[name] = params.get(name) || '';
  const before = params.get('before') || '';
  const input = h('input', { name: 'host', id: 'history-host', value: filters.host, type: 'search' });
  const what = h('input', { name: 'what', id: 'history-what', value: filters.what, type: 'search', placeholder: 'backup, or command: uptime' });
  const user = h('input', { name: 'user', id: 'history-user', value: filters.user, type: 'search' });
  const outcome = h('select', { name: 'outcome', id: 'history-outcome' },
    OUTCOMES.map(([v, t]) => h('option', { value: v, selected: v === filters.outcome }, t)));
  const since = h('input', { name: 'since', id: 'history-since', type: 'datetime-local', value: filters.since ? local(filters.since) : '' });
  const until = h('input', { name: 'until', id: 'history-until', type: 'datetime-local', value: filters.until ? local(filters.until) : '' });
  const form = h('form', { class: 'card', role: 'search', id: 'history-filters' },
    h('div', { class: 'row' }, field('Host', input), field('Script or command', what), field('User', user)),
    h('div', { class: 'row' }, field('Outcome', outcome), field('Started from', since), field('Started before', until),
      h('div', {}, h('button', { type: 'submit', class: 'primary', id: 'history-filter' }, 'Filter'))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = query('#/history', {
      host: input.value.trim(), what: what.value.trim(), user: user.value.trim(),
      outcome: outcome.value, since: utc(since.value), until: utc(until.value),
    });
  });
  replace(section, h('h1', {}, 'History'), form, h('p', { class: 'muted' }, 'Loading…'));

  const runs = await api('GET', query('/api/v1/runs', { ...filters, before, limit: PAGE }));
  const rows = runs.slice().reverse().map((r) => {
    const [text, cls] = result(r);
    return h('tr', { 'data-run': r.id },
      h('td', { 'data-label': 'Run' }, h('a', { href: `#/history/${r.id}` }, `#${r.id}`)),
      h('td', { 'data-label': 'Host' }, h('a', { href: `#/hosts/${encodeURIComponent(r.host)}` }, r.host)),
      h('td', { 'data-label': 'What' }, r.what),
      h('td', { 'data-label': 'Who', class: 'who' }, who(r.actor)),
      h('td', { 'data-label': 'Started' }, when(r.started)),
      h('td', { 'data-label': 'Took', class: 'hide-narrow' }, elapsed(r.elapsed_ms)),
      h('td', { 'data-label': 'Result', class: cls }, text));
  });
  // A full page may have older runs before it.
  const older = runs.length === PAGE
    ? h('a', { class: 'button', id: 'history-older', href: query('#/history', { ...filters, before: runs[0].id }) }, 'Older runs')
    : null;
  const newest = before ? h('a', { class: 'button', href: query('#/history', filters) }, 'Newest runs') : null;
  replace(section, h('h1', {}, 'History'), form,
    rows.length
      ? h('table', { id: 'history' },
        h('thead', {}, h('tr', {}, ['Run', 'Host', 'What', 'Who', 'Started', 'Took', 'Result'].map((t) =>
          h('th', { scope: 'col', class: t === 'Took' ? 'hide-narrow' : null }, t)))),
        h('tbody', {}, rows))
      : h('p', { class: 'muted', id: 'history-none' }, nothing(filters)),
    h('div', { class: 'actions' }, newest, older));
}
