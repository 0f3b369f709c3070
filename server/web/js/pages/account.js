// The signed-in user's own: what they may do, their password (POST
// /api/v1/users/me/password: their other sessions end), and their API keys (GET, POST
// /api/v1/apikeys, DELETE …/{id}): a new key's secret is shown once, with a button to copy it;
// those with the permission `users` see and revoke every user's keys.

import { api } from '../api.js';
import { h, field, replace } from '../dom.js';
import { when } from '../time.js';
import { permissionPicker, permissionText } from './users.js';

/** Copies `text` to the clipboard; false if the browser refuses. */
async function copy(text, source) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Without the clipboard API (plain HTTP): select the text, for the user to copy.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    return document.execCommand('copy');
  }
}

export default async function account(section, ctx) {
  replace(section, h('h1', {}, 'Your account'), h('p', { class: 'muted' }, 'Loading…'));
  const keys = await api('GET', '/api/v1/apikeys');
  const me = ctx.me;
  const rerender = () => account(section, ctx);

  // The password.
  const current = h('input', { name: 'current', id: 'password-current', type: 'password', required: true, autocomplete: 'current-password' });
  const next = h('input', { name: 'password', id: 'password-new', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const again = h('input', { name: 'again', id: 'password-again', type: 'password', required: true, autocomplete: 'new-password' });
  const change = h('button', { type: 'submit', class: 'primary', id: 'password-change' }, 'Change password');
  const password = h('form', { class: 'card', id: 'password-form' },
    h('h2', {}, 'Password'),
    h('div', { class: 'row' }, field('Current password', current), field('New password', next), field('New password again', again)),
    h('div', { class: 'actions' }, change));
  password.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (next.value !== again.value) {
      ctx.alert('The new password and its repetition differ.');
      return;
    }
    change.disabled = true;
    try {
      await api('POST', '/api/v1/users/me/password', { current: current.value, password: next.value });
      password.reset();
      ctx.info('Your password is changed; your other sessions have ended.');
    } catch (e) {
      ctx.alert(e);
    }
    change.disabled = false;
  });

  // A new key.
  const picker = permissionPicker(me.permissions, me.permissions, 'new-key');
  const days = h('input', { name: 'expires', id: 'new-key-days', type: 'number', min: 1, placeholder: 'never' });
  const create = h('button', { type: 'submit', class: 'primary', id: 'new-key-create' }, 'Create API key');
  const shown = h('div', { id: 'new-key-shown', 'aria-live': 'polite' });
  const form = h('form', { class: 'card', id: 'new-key' },
    h('h3', {}, 'Create an API key'),
    h('p', { class: 'muted' }, 'It may do at most what you may, when it is used.'),
    picker.el,
    field('Expires after (days)', days),
    h('div', { class: 'actions' }, create),
    shown);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    create.disabled = true;
    const body = { permissions: picker.read() };
    if (days.value) body.expires_in_secs = Number(days.value) * 86400;
    try {
      const made = await api('POST', '/api/v1/apikeys', body);
      await rerender();
      // The secret, this once, on the page shown again.
      const secret = h('code', { class: 'key', id: 'new-key-secret' }, made.secret);
      const button = h('button', { type: 'button', id: 'new-key-copy' }, 'Copy');
      button.addEventListener('click', async () => {
        button.textContent = (await copy(made.secret, secret)) ? 'Copied' : 'Select it and copy';
      });
      replace(section.querySelector('#new-key-shown'), h('div', { class: 'card' },
        h('p', { class: 'warn' }, `Key ${made.id}: copy it now, it is never shown again.`),
        h('p', {}, secret, ' ', button)));
    } catch (e) {
      create.disabled = false;
      ctx.alert(e);
    }
  });

  const revoke = async (button, key) => {
    if (!confirm(`Revoke API key ${key.id} of ${key.user}? It stops working at once.`)) return;
    button.disabled = true;
    try {
      await api('DELETE', `/api/v1/apikeys/${key.id}`);
      await rerender();
      ctx.info(`API key ${key.id} is revoked.`);
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  };
  const state = (k) => {
    if (k.revoked) return ['revoked', 'bad'];
    if (k.expires && Date.parse(k.expires) <= Date.now()) return ['expired', 'bad'];
    return ['works', 'ok'];
  };

  replace(section,
    h('h1', {}, 'Your account'),
    h('p', {}, `Signed in as ${me.user}: ${permissionText(me.permissions)}.`),
    password,
    h('h2', {}, 'API keys'),
    keys.length
      ? h('table', { id: 'apikeys' },
        h('thead', {}, h('tr', {}, ['Id', 'User', 'Permissions', 'Made', 'Expires', 'State', 'Action'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, keys.map((k) => {
          const [text, cls] = state(k);
          return h('tr', { 'data-key': k.id },
            h('td', { 'data-label': 'Id' }, String(k.id)),
            h('td', { 'data-label': 'User' }, k.user),
            h('td', { 'data-label': 'Permissions' }, permissionText(k.permissions)),
            h('td', { 'data-label': 'Made' }, when(k.created)),
            h('td', { 'data-label': 'Expires' }, k.expires ? when(k.expires) : 'never'),
            h('td', { 'data-label': 'State', class: cls }, text),
            h('td', {}, k.revoked ? null : h('button', {
              type: 'button', 'data-revoke': k.id, onclick: (event) => revoke(event.target, k),
            }, `Revoke key ${k.id}`)));
        })))
      : h('p', { class: 'muted' }, 'No API keys yet.'),
    form);
}
