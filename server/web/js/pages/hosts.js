// The hosts, a page at a time (GET /api/v1/hosts: `limit`, `after`), filtered by name, group,
// state and facts (`where`: those without facts yet are said to be left out); the filters and the page are in the address, so a page can be reloaded or shared.
// With the permission `hosts`: a host added, an inventory imported, and the hosts chosen
// enabled, disabled, removed or sent a control action (admin.js).

import { api, query } from '../api.js';
import { h, field, replace } from '../dom.js';
import { when } from '../time.js';
import { flash, release, uptime } from '../facts.js';
import { agentVersion, mayUpdate, updateButton } from './run.js';
import { addHostForm, bulkButtons, controlButtons, importForm } from './admin.js';
import { leftOutNote, selectors } from '../selectors.js';

const PAGE = 50;

/** A host's state in a word, as the API's `state` filter names it. */
export function stateOf(host) {
  if (host.trust.pending_key) return 'pending';
  if (!host.enabled) return 'disabled';
  if (host.status.reachable === true) return 'reachable';
  if (host.status.reachable === false) return 'unreachable';
  return 'unknown';
}

/** A host's state as the page says it: a reached host whose agent was busy (it refused a
 * channel, serving as many at once as it may) is “reachable, busy”; one whose agent calls home
 * (it is not dialled) says so after its state. */
export function stateText(host) {
  const state = stateOf(host);
  const text = state === 'reachable' && host.status.busy ? 'reachable, busy' : state;
  return host.status.calls_home ? `${text}, calls home` : text;
}

export default async function hosts(section, ctx, { params }) {
  const filters = {
    name: params.get('name') || '',
    group: params.get('group') || '',
    state: params.get('state') || '',
    where: params.getAll('where'),
  };
  const name = h('input', { name: 'name', value: filters.name, type: 'search' });
  const facts = h('input', {
    name: 'where', id: 'host-where', value: filters.where.join(' and '), placeholder: 'arch=mips and flash_free<2MiB',
  });
  const group = h('input', { name: 'group', value: filters.group });
  const state = h('select', { name: 'state' },
    ['', 'reachable', 'unreachable', 'pending', 'unknown', 'disabled'].map((s) =>
      h('option', { value: s, selected: s === filters.state }, s || 'any')));
  const form = h('form', { class: 'card', role: 'search', id: 'host-filters' },
    h('div', { class: 'row' }, field('Name contains', name), field('Group', group), field('State', state),
      field('Facts', facts),
      h('div', {}, h('button', { type: 'submit', class: 'primary' }, 'Filter'))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = query('#/hosts', {
      name: name.value.trim(), group: group.value.trim(), state: state.value, where: selectors(facts.value),
    });
  });
  replace(section, h('h1', {}, 'Hosts'), form, h('p', { class: 'muted' }, 'Loading…'));

  const after = params.get('after') || '';
  const page = await api('GET', query('/api/v1/hosts', { ...filters, after, limit: PAGE }));
  const updating = mayUpdate(ctx);
  // Hosts are chosen to be updated, or acted on by who may change them.
  const choosing = updating || ctx.may('hosts');
  const rows = page.hosts.map((host) => {
    const s = stateOf(host);
    const facts = host.status.facts;
    return h('tr', { 'data-host': host.name },
      choosing
        ? h('td', { 'data-label': 'Select' },
          h('input', { type: 'checkbox', 'data-select': host.name, 'aria-label': `Select ${host.name}` }))
        : null,
      h('td', { 'data-label': 'Name' }, h('a', { href: `#/hosts/${encodeURIComponent(host.name)}` }, host.name)),
      h('td', { 'data-label': 'State', class: `state-${s}` }, stateText(host)),
      h('td', { 'data-label': 'Groups' }, host.groups.join(', ') || '—'),
      h('td', { 'data-label': 'Last heartbeat' }, when(host.status.last_seen)),
      h('td', { 'data-label': 'Agent', class: 'agent' }, agentVersion(host)),
      h('td', { 'data-label': 'Model', class: 'hide-narrow model' }, (facts && facts.model) || '—'),
      h('td', { 'data-label': 'Release', class: 'hide-narrow release' }, (facts && release(facts)) || '—'),
      h('td', { 'data-label': 'Up', class: 'hide-narrow uptime' }, facts ? uptime(facts.uptime_secs, 2) : '—'),
      h('td', { 'data-label': 'Free flash' }, facts ? flash(facts) : '—'));
  });
  const next = page.next
    ? h('a', { class: 'button', href: query('#/hosts', { ...filters, after: page.next }) }, 'Next page')
    : null;
  const first = after ? h('a', { class: 'button', href: query('#/hosts', filters) }, 'First page') : null;
  // The hosts chosen on this page, or null.
  const chosen = () => {
    const hosts = [...section.querySelectorAll('input[data-select]:checked')].map((c) => c.dataset.select);
    return hosts.length ? { hosts, what: hosts.join(', ') } : null;
  };
  const again = () => hosts(section, ctx, { params });
  const admin = ctx.may('hosts');
  replace(section, h('h1', {}, 'Hosts'),
    admin ? [addHostForm(ctx, again), importForm(ctx, again)] : null,
    form,
    page.left_out.length ? h('p', { class: 'muted', id: 'hosts-left-out' }, leftOutNote(page.left_out)) : null,
    rows.length
      ? h('table', { id: 'hosts' },
        h('thead', {}, h('tr', {}, choosing ? h('th', { scope: 'col', 'data-unsorted': true }, h('span', { class: 'muted' }, '✓')) : null,
          ['Name', 'State', 'Groups', 'Last heartbeat', 'Agent', 'Model', 'Release', 'Up', 'Free flash'].map((t, i) =>
            h('th', { scope: 'col', class: i >= 5 && i <= 7 ? 'hide-narrow' : null }, t)))),
        h('tbody', {}, rows))
      : h('p', { class: 'muted' }, 'No host matches.'),
    h('div', { class: 'actions' }, first, next,
      updating ? updateButton(ctx, 'Update agents', 'update-agents', () => {
        // The hosts chosen on this page, or else every host.
        const chosen = [...section.querySelectorAll('input[data-select]:checked')].map((c) => c.dataset.select);
        return chosen.length
          ? { targets: { hosts: chosen }, what: chosen.join(', ') }
          : { targets: { all: true }, what: 'every host' };
      }) : null),
    admin && rows.length
      ? h('div', { class: 'actions', id: 'hosts-act', role: 'group', 'aria-label': 'The chosen hosts' },
        h('span', { class: 'muted' }, 'The chosen hosts:'),
        bulkButtons(ctx, chosen, again),
        controlButtons(ctx, chosen, 'hosts-control'))
      : null);
}
