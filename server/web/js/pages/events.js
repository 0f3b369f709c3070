// The event log (GET /api/v1/events, permission `audit`), newest first, a page at a time
// (`before` the oldest id shown), filtered by host, kind and user; each event with who made it
// happen (user, API key or session, address), or "the server" for what it saw by itself.

import { api, query } from '../api.js';
import { h, field, replace } from '../dom.js';
import { when } from '../time.js';

const PAGE = 100;
const KINDS = [
  'host-added', 'host-removed', 'host-changed', 'trust-changed', 'key-pending', 'key-rotated',
  'reachability', 'run-started', 'run-finished', 'run-cancelled', 'cut-short', 'group-changed',
  'script-changed', 'env-changed', 'uploaded', 'fetched', 'control-sent', 'user-changed', 'api-key-changed',
  'update-sent', 'update-refused', 'update-confirmed', 'update-rolled-back', 'update-lost',
];

export default async function events(section, ctx, { params }) {
  const filters = { host: params.get('host') || '', kind: params.get('kind') || '', user: params.get('user') || '' };
  const before = params.get('before') || '';
  const host = h('input', { name: 'host', value: filters.host, type: 'search' });
  const kind = h('input', { name: 'kind', value: filters.kind, list: 'event-kinds', autocomplete: 'off' });
  const user = h('input', { name: 'user', value: filters.user, autocomplete: 'off' });
  const form = h('form', { class: 'card', role: 'search', id: 'event-filters' },
    h('datalist', { id: 'event-kinds' }, KINDS.map((k) => h('option', { value: k }))),
    h('div', { class: 'row' }, field('Host', host), field('Kind', kind), field('User', user),
      h('div', {}, h('button', { type: 'submit', class: 'primary' }, 'Filter'))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = query('#/events', { host: host.value.trim(), kind: kind.value.trim(), user: user.value.trim() });
  });
  replace(section, h('h1', {}, 'Events'), form, h('p', { class: 'muted' }, 'Loading…'));

  const list = await api('GET', query('/api/v1/events', { ...filters, before, limit: PAGE }));
  const rows = list.slice().reverse().map((e) => h('tr', { 'data-event': e.id, 'data-kind': e.kind },
    h('td', { 'data-label': 'When' }, when(e.at)),
    h('td', { 'data-label': 'Kind' }, e.kind),
    h('td', { 'data-label': 'Host' }, e.host ? h('a', { href: `#/hosts/${encodeURIComponent(e.host)}` }, e.host) : '—'),
    h('td', { 'data-label': 'Who' }, e.actor || h('span', { class: 'muted' }, 'the server')),
    h('td', { 'data-label': 'What' }, e.detail)));
  const older = list.length === PAGE
    ? h('a', { class: 'button', id: 'events-older', href: query('#/events', { ...filters, before: list[0].id }) }, 'Older events')
    : null;
  const newest = before ? h('a', { class: 'button', href: query('#/events', filters) }, 'Newest events') : null;
  replace(section, h('h1', {}, 'Events'), form,
    rows.length
      ? h('table', { id: 'events' },
        h('thead', {}, h('tr', {}, ['When', 'Kind', 'Host', 'Who', 'What'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows))
      : h('p', { class: 'muted' }, 'No event matches.'),
    h('div', { class: 'actions' }, newest, older));
}
