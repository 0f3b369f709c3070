// The history, newest first, a page at a time (`limit`, `before` the oldest id shown for the
// page before), in two views: runs, one per host (GET /api/v1/runs), found by host, job (a
// script's name or `command: …`), user, outcome and when it started; and jobs (`view=jobs`:
// GET /api/v1/launches), each a launch on many hosts with how its runs stand, found alike but
// by host. The view, the filters and the page are in the address. Each run links to its page
// with its kept output, each job to its page with its runs.

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

/** How a job's runs stand, in words, and its class. */
export function standing(job) {
  const { succeeded, failed, cancelled, running } = job.runs;
  const parts = [];
  if (succeeded) parts.push(`${succeeded} ok`);
  if (failed) parts.push(`${failed} failed`);
  if (cancelled) parts.push(`${cancelled} cancelled`);
  if (running) parts.push(`${running} running`);
  if (!job.finished && !running) parts.push('not ended');
  const cls = failed ? 'bad' : cancelled || running || !job.finished ? 'warn' : 'ok';
  return [parts.join(' · ') || (job.relaunchable ? 'no runs' : 'see its page'), cls];
}

export default async function historyPage(section, ctx, { params }) {
  const jobs = params.get('view') === 'jobs';
  const filters = {};
  for (const name of ['host', 'what', 'user', 'outcome', 'since', 'until']) filters[name] = params.get(name) || '';
  if (jobs) delete filters.host;
  const before = params.get('before') || '';
  const view = jobs ? { view: 'jobs' } : {};
  const input = h('input', { name: 'host', id: 'history-host', value: filters.host || '', type: 'search' });
  const what = h('input', { name: 'what', id: 'history-what', value: filters.what, type: 'search', placeholder: 'backup, or command: uptime' });
  const user = h('input', { name: 'user', id: 'history-user', value: filters.user, type: 'search' });
  const outcome = h('select', { name: 'outcome', id: 'history-outcome' },
    OUTCOMES.map(([v, t]) => h('option', { value: v, selected: v === filters.outcome }, t)));
  const since = h('input', { name: 'since', id: 'history-since', type: 'datetime-local', value: filters.since ? local(filters.since) : '' });
  const until = h('input', { name: 'until', id: 'history-until', type: 'datetime-local', value: filters.until ? local(filters.until) : '' });
  const form = h('form', { class: 'card', role: 'search', id: 'history-filters' },
    h('div', { class: 'row' }, jobs ? null : field('Host', input), field('Script or command', what), field('User', user)),
    h('div', { class: 'row' }, field(jobs ? 'With a run that' : 'Outcome', outcome), field('Started from', since), field('Started before', until),
      h('div', {}, h('button', { type: 'submit', class: 'primary', id: 'history-filter' }, 'Filter'))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = query('#/history', {
      ...view, host: jobs ? '' : input.value.trim(), what: what.value.trim(), user: user.value.trim(),
      outcome: outcome.value, since: utc(since.value), until: utc(until.value),
    });
  });
  const tab = (label, on, href, id) => h('a', { href, id, class: on ? 'button primary' : 'button', 'aria-current': on ? 'page' : null }, label);
  const tabs = h('nav', { class: 'actions', 'aria-label': 'History views' },
    tab('Runs', !jobs, '#/history', 'history-runs'), tab('Jobs', jobs, '#/history?view=jobs', 'history-jobs'));
  replace(section, h('h1', {}, 'History'), tabs, form, h('p', { class: 'muted' }, 'Loading…'));

  if (jobs) {
    const found = await api('GET', query('/api/v1/launches', { ...filters, before, limit: PAGE }));
    const rows = found.slice().reverse().map((j) => {
      const [text, cls] = standing(j);
      return h('tr', { 'data-job': j.id },
        h('td', { 'data-label': 'Job' }, h('a', { href: `#/jobs/${j.id}` }, `#${j.id}`)),
        h('td', { 'data-label': 'What' }, j.job),
        h('td', { 'data-label': 'Who', class: 'who' }, j.schedule ? `schedule ${j.schedule}` : who(j.actor)),
        h('td', { 'data-label': 'Hosts' }, String(j.hosts.length)),
        h('td', { 'data-label': 'Started' }, when(j.started)),
        h('td', { 'data-label': 'Runs', class: cls }, text));
    });
    const older = found.length === PAGE
      ? h('a', { class: 'button', id: 'history-older', href: query('#/history', { ...view, ...filters, before: found[0].id }) }, 'Older jobs')
      : null;
    const newest = before ? h('a', { class: 'button', href: query('#/history', { ...view, ...filters }) }, 'Newest jobs') : null;
    replace(section, h('h1', {}, 'History'), tabs, form,
      rows.length
        ? h('table', { id: 'jobs' },
          h('thead', {}, h('tr', {}, ['Job', 'What', 'Who', 'Hosts', 'Started', 'Runs'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, rows))
        : h('p', { class: 'muted', id: 'history-none' }, Object.values(filters).some(Boolean) ? 'No job matches.' : 'Nothing has run yet.'),
      h('div', { class: 'actions' }, newest, older));
    return;
  }

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
  replace(section, h('h1', {}, 'History'), tabs, form,
    rows.length
      ? h('table', { id: 'history' },
        h('thead', {}, h('tr', {}, ['Run', 'Host', 'What', 'Who', 'Started', 'Took', 'Result'].map((t) =>
          h('th', { scope: 'col', class: t === 'Took' ? 'hide-narrow' : null }, t)))),
        h('tbody', {}, rows))
      : h('p', { class: 'muted', id: 'history-none' }, nothing(filters)),
    h('div', { class: 'actions' }, newest, older));
}
