// One group: its hosts and its scripts (a script assigned to a group runs on its hosts when
// no hosts are named), each put in or taken out (PUT, DELETE /api/v1/groups/{name}/hosts/…
// and …/scripts/…), and the group removed (its hosts stay; DELETE /api/v1/groups?name=…, which
// takes the empty name an older database may hold), by those with the permission `groups`.

import { api, query, removeAsking } from '../api.js';
import { h, field, replace } from '../dom.js';

export default async function group(section, ctx, { args: [name] }) {
  const path = `/api/v1/groups/${encodeURIComponent(name)}`;
  replace(section, h('h1', {}, `Group ${name}`), h('p', { class: 'muted' }, 'Loading…'));
  const [list, scripts] = await Promise.all([api('GET', '/api/v1/groups'), api('GET', '/api/v1/scripts')]);
  const found = list.find((g) => g.name === name);
  if (!found) {
    replace(section, h('h1', {}, `Group ${name}`), h('p', {}, 'There is no such group. ', h('a', { href: '#/groups' }, 'See the groups.')));
    return;
  }
  const editable = ctx.may('groups');
  const rerender = () => group(section, ctx, { args: [name] });

  /** Does `method` on `url`, then shows the page again and says `done`. */
  const change = async (button, method, url, done) => {
    button.disabled = true;
    try {
      await api(method, url);
      await rerender();
      ctx.info(done);
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  };

  /** A list of `names` (links to `href(name)`), each with a button taking it out. */
  const members = (id, names, href, kind, empty) => (names.length
    ? h('ul', { id }, names.map((n) => h('li', { [`data-${kind}`]: n },
      h('a', { href: href(n) }, n), ' ',
      editable ? h('button', {
        type: 'button', 'data-remove': n,
        onclick: (event) => change(event.target, 'DELETE', `${path}/${kind}s/${encodeURIComponent(n)}`,
          `${n} is out of ${name}.`),
      }, `Take ${n} out`) : null)))
    : h('p', { class: 'muted' }, empty));

  /** A form that puts what `control` names in the group. */
  const adder = (id, label, control, kind) => {
    const submit = h('button', { type: 'submit' }, 'Add');
    const form = h('form', { class: 'row', id }, field(label, control), h('div', {}, submit));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const chosen = control.value.trim();
      if (chosen) change(submit, 'PUT', `${path}/${kind}s/${encodeURIComponent(chosen)}`, `${chosen} is in ${name}.`);
    });
    return form;
  };

  const remove = h('button', { type: 'button', class: 'danger', id: 'group-remove' }, 'Remove group');
  remove.addEventListener('click', async () => {
    if (!confirm(`Remove the group ${name}? Its hosts stay.`)) return;
    remove.disabled = true;
    try {
      // By the query's name, which carries any name (an older database may hold an empty one).
      if (!(await removeAsking(`/api/v1/groups?name=${encodeURIComponent(name)}`))) {
        remove.disabled = false;
        return;
      }
      location.hash = '#/groups';
    } catch (e) {
      remove.disabled = false;
      ctx.alert(e);
    }
  });

  const unassigned = scripts.map((s) => s.name).filter((s) => !found.scripts.includes(s));
  replace(section,
    h('h1', {}, `Group ${name}`),
    h('p', {}, h('a', { href: query('#/hosts', { group: name }) }, `Its hosts with their state`)),
    h('h2', {}, 'Hosts'),
    members('group-hosts', found.hosts, (n) => `#/hosts/${encodeURIComponent(n)}`, 'host', 'No hosts in it.'),
    editable ? adder('group-add-host', 'Add a host (its name)', h('input', { name: 'host', id: 'group-host', autocomplete: 'off' }), 'host') : null,
    h('h2', {}, 'Scripts'),
    members('group-scripts', found.scripts, (n) => `#/scripts/${encodeURIComponent(n)}`, 'script', 'No scripts assigned.'),
    editable && unassigned.length
      ? adder('group-add-script', 'Assign a script', h('select', { name: 'script', id: 'group-script' },
        unassigned.map((s) => h('option', { value: s }, s))), 'script')
      : null,
    editable ? h('div', { class: 'actions' }, remove) : h('p', { class: 'muted' }, 'Changing groups needs the permission “groups”.'));
}
