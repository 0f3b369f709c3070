// The groups (GET /api/v1/groups) with how many hosts and which scripts each has; a new one
// added (POST /api/v1/groups) by those with the permission `groups`.

import { api } from '../api.js';
import { h, field, replace } from '../dom.js';

export default async function groups(section, ctx) {
  replace(section, h('h1', {}, 'Groups'), h('p', { class: 'muted' }, 'Loading…'));
  const list = await api('GET', '/api/v1/groups');
  let create = null;
  if (ctx.may('groups')) {
    const name = h('input', { name: 'name', id: 'new-group-name', required: true, autocomplete: 'off' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Add group');
    create = h('form', { class: 'card', id: 'new-group' },
      h('div', { class: 'row' }, field('New group’s name', name), h('div', {}, submit)));
    create.addEventListener('submit', async (event) => {
      event.preventDefault();
      submit.disabled = true;
      const chosen = name.value.trim();
      try {
        await api('POST', '/api/v1/groups', { name: chosen });
        location.hash = `#/groups/${encodeURIComponent(chosen)}`;
      } catch (e) {
        submit.disabled = false;
        ctx.alert(e);
      }
    });
  }
  replace(section,
    h('h1', {}, 'Groups'),
    create,
    list.length
      ? h('table', { id: 'groups' },
        h('thead', {}, h('tr', {}, ['Name', 'Hosts', 'Scripts'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, list.map((g) => h('tr', { 'data-group': g.name },
          h('td', { 'data-label': 'Name' }, h('a', { href: `#/groups/${encodeURIComponent(g.name)}` }, g.name)),
          h('td', { 'data-label': 'Hosts' }, String(g.hosts.length)),
          h('td', { 'data-label': 'Scripts' }, g.scripts.join(', ') || '—')))))
      : h('p', { class: 'muted' }, 'No groups yet.'));
}
