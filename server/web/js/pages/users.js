// The API's users (GET /api/v1/users, permission `users`): their permissions, changed (PUT
// …/permissions), disabled or not (POST …/disable, …/enable: a disabled user's sessions end and
// keys stop), and a new one added with a password and permissions (POST /api/v1/users), never
// more than one's own (the server refuses more).

import { api } from '../api.js';
import { h, field, replace } from '../dom.js';
import { when } from '../time.js';

/** What may be changed, beside reading the fleet, in the API's names and in words. */
export const MODIFY = [
  ['hosts', 'Hosts: add, change, trust, remove'],
  ['groups', 'Groups and their members'],
  ['scripts', 'Scripts, attachments, variables'],
  ['schedules', 'Schedules'],
  ['users', 'Users, and keys for others'],
  ['enrollment', 'Enrollment of new agents'],
  ['options', 'The server’s options'],
  ['audit', 'Read the event log'],
];

/** The run levels, in the API's names and in words. */
export const RUN_LEVELS = [
  ['none', 'none: runs nothing'],
  ['read-only', 'read-only scripts'],
  ['read-write', 'every script and commands'],
];

/** Permissions in words: `runs: read-only; may change hosts; reads the event log`. */
export function permissionText(p) {
  if (p.admin) return 'administrator';
  const changes = p.modify.filter((m) => m !== 'audit');
  const words = [`runs: ${p.run}`, changes.length ? `may change ${changes.join(', ')}` : 'changes nothing'];
  if (p.modify.includes('audit')) words.push('reads the event log');
  return words.join('; ');
}

/** The controls choosing permissions (an administrator, a run level, what may be changed),
 * offering only what `mine` include, preset to `preset`; `read()` gives the choice. */
export function permissionPicker(mine, preset, prefix) {
  const admin = h('input', { type: 'checkbox', name: 'admin', id: `${prefix}-admin`, checked: preset.admin });
  const levels = RUN_LEVELS.filter(([l]) => mine.admin || RUN_LEVELS.findIndex(([x]) => x === l)
    <= RUN_LEVELS.findIndex(([x]) => x === mine.run));
  const run = h('select', { name: 'run', id: `${prefix}-run` },
    levels.map(([l, text]) => h('option', { value: l, selected: l === preset.run }, text)));
  const boxes = MODIFY.filter(([p]) => mine.admin || mine.modify.includes(p)).map(([p, text]) => [p,
    h('input', { type: 'checkbox', name: 'modify', value: p, id: `${prefix}-${p}`, checked: preset.modify.includes(p) }), text]);
  const el = h('fieldset', { class: 'permissions' },
    h('legend', {}, 'Permissions'),
    mine.admin ? h('label', { class: 'inline' }, admin, 'Administrator: everything, now and later') : null,
    field('Scripts it may run', run),
    h('p', { class: 'muted' }, 'Every user may read the fleet. What it may change:'),
    boxes.map(([, box, text]) => h('label', { class: 'inline' }, box, text)));
  const read = () => ({
    admin: admin.checked,
    run: run.value,
    modify: boxes.filter(([, box]) => box.checked).map(([p]) => p),
  });
  return { el, read };
}

export default async function users(section, ctx) {
  replace(section, h('h1', {}, 'Users'), h('p', { class: 'muted' }, 'Loading…'));
  const list = await api('GET', '/api/v1/users');
  const rerender = () => users(section, ctx);

  const toggle = async (button, user) => {
    const verb = user.disabled ? 'enable' : 'disable';
    button.disabled = true;
    try {
      await api('POST', `/api/v1/users/${encodeURIComponent(user.name)}/${verb}`);
      await rerender();
      ctx.info(`${user.name} is ${verb}d.`);
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  };

  /** The form that changes `user`'s permissions, folded under their current ones. */
  const editor = (user) => {
    const picker = permissionPicker(ctx.me.permissions, user.permissions, `perm-${user.name}`);
    const save = h('button', { type: 'submit', class: 'primary' }, 'Save permissions');
    const form = h('form', { 'data-permissions': user.name }, picker.el, save);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      save.disabled = true;
      try {
        await api('PUT', `/api/v1/users/${encodeURIComponent(user.name)}/permissions`, picker.read());
        await rerender();
        ctx.info(`The permissions of ${user.name} are changed.`);
      } catch (e) {
        save.disabled = false;
        ctx.alert(e);
      }
    });
    return h('details', {}, h('summary', {}, 'Change'), form);
  };

  const name = h('input', { name: 'name', id: 'new-user-name', required: true, autocomplete: 'off' });
  const password = h('input', { name: 'password', id: 'new-user-password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const picker = permissionPicker(ctx.me.permissions, { admin: false, run: 'none', modify: [] }, 'new-user');
  const submit = h('button', { type: 'submit', class: 'primary', id: 'new-user-add' }, 'Add user');
  const form = h('form', { class: 'card', id: 'new-user' },
    h('h2', {}, 'Add a user'),
    h('div', { class: 'row' }, field('Name', name), field('Password (at least 8 characters)', password)),
    picker.el,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const added = await api('POST', '/api/v1/users', { name: name.value.trim(), password: password.value, permissions: picker.read() });
      await rerender();
      ctx.info(`${added.name} is added.`);
    } catch (e) {
      submit.disabled = false;
      ctx.alert(e);
    }
  });

  replace(section,
    h('h1', {}, 'Users'),
    h('table', { id: 'users' },
      h('thead', {}, h('tr', {}, ['Name', 'Permissions', 'State', 'Added', 'Action'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((u) => h('tr', { 'data-user': u.name },
        h('td', { 'data-label': 'Name' }, u.name),
        h('td', { 'data-label': 'Permissions' }, permissionText(u.permissions),
          u.name === ctx.me.user ? null : editor(u)),
        h('td', { 'data-label': 'State', class: u.disabled ? 'bad' : 'ok' }, u.disabled ? 'disabled' : 'enabled'),
        h('td', { 'data-label': 'Added' }, when(u.created)),
        h('td', {}, u.name === ctx.me.user ? h('span', { class: 'muted' }, 'you') : h('button', {
          type: 'button', 'data-toggle': u.name, onclick: (event) => toggle(event.target, u),
        }, u.disabled ? `Enable ${u.name}` : `Disable ${u.name}`)))))),
    form);
}
