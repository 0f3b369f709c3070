// Enrollment tokens (permission `enrollment`): made (POST /api/v1/enrollment/tokens; the secret
// and the agent command shown this once), listed without secrets, revoked (DELETE …/{id}); the
// server's enrollment fingerprint, which agents pin.

import { api } from '../api.js';
import { h, field, replace } from '../dom.js';
import { when } from '../time.js';

/** How long a new token lasts: seconds, in words. */
const LIFETIMES = [[3600, '1 hour'], [86400, '1 day'], [604800, '7 days'], [2592000, '30 days'], [31622400, '366 days']];

/** A token's state, in words. */
function state(t) {
  if (t.revoked) return 'revoked';
  if (Date.parse(t.expires) <= Date.now()) return 'expired';
  if (t.used >= t.uses) return 'used up';
  return 'active';
}

/** Comma-separated names, as a list. */
export function names(text) {
  return text.split(',').map((g) => g.trim()).filter(Boolean);
}

export default async function tokens(section, ctx, _route, made = null) {
  replace(section, h('h1', {}, 'Enrollment tokens'), h('p', { class: 'muted' }, 'Loading…'));
  const [list, fp] = await Promise.all([
    api('GET', '/api/v1/enrollment/tokens'),
    api('GET', '/api/v1/enrollment/fingerprint'),
  ]);
  const rerender = (created) => tokens(section, ctx, _route, created);

  const revoke = async (button, t) => {
    button.disabled = true;
    try {
      await api('DELETE', `/api/v1/enrollment/tokens/${t.id}`);
      await rerender();
      ctx.info(`Token ${t.id} is revoked.`);
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  };

  const uses = h('input', { type: 'number', id: 'token-uses', min: 1, max: 100000, value: 1, required: true });
  const expires = h('select', { id: 'token-expires' },
    LIFETIMES.map(([secs, text]) => h('option', { value: secs, selected: secs === 604800 }, text)));
  const groups = h('input', { id: 'token-groups', placeholder: 'lab, mips', autocomplete: 'off' });
  const note = h('input', { id: 'token-note', maxlength: 200, autocomplete: 'off' });
  const callHome = h('input', { id: 'token-call-home', placeholder: `${location.hostname}:PORT`, autocomplete: 'off' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'token-add' }, 'Make token');
  const form = h('form', { class: 'card', id: 'new-token' },
    h('h2', {}, 'Make a token'),
    h('div', { class: 'row' }, field('Uses', uses), field('Expires after', expires)),
    h('div', { class: 'row' }, field('Groups (comma-separated)', groups), field('Note', note)),
    field('Where agents reach the call-home listener (ADDRESS:PORT)', callHome),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const created = await api('POST', '/api/v1/enrollment/tokens', {
        uses: Number(uses.value),
        expires_in_secs: Number(expires.value),
        groups: names(groups.value),
        note: note.value,
        call_home: callHome.value.trim() || null,
      });
      await rerender(created);
    } catch (e) {
      submit.disabled = false;
      ctx.alert(e);
    }
  });

  const shown = made ? h('div', { class: 'card', id: 'token-made' },
    h('h2', {}, `Token ${made.token.id}: keep it now, it is not shown again`),
    h('p', {}, 'Secret: ', h('code', { id: 'token-secret' }, made.secret)),
    h('p', {}, 'On a device, as root:'),
    h('pre', { class: 'output', id: 'token-command' }, made.command)) : null;

  replace(section,
    h('h1', {}, 'Enrollment tokens'),
    h('p', {}, 'Enrollment fingerprint: ', h('code', { id: 'enrollment-fingerprint' }, fp.fingerprint),
      '. ', h('a', { href: '#/enrollment/rules' }, 'The rules that place enrolled hosts.')),
    shown,
    h('table', { id: 'tokens' },
      h('thead', {}, h('tr', {}, ['Id', 'Note', 'Used', 'Groups', 'State', 'Expires', 'Made by', 'Last used', 'Action']
        .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((t) => h('tr', { 'data-token': t.id },
        h('td', { 'data-label': 'Id' }, String(t.id)),
        h('td', { 'data-label': 'Note' }, t.note),
        h('td', { 'data-label': 'Used' }, `${t.used}/${t.uses}`),
        h('td', { 'data-label': 'Groups' }, t.groups.join(', ')),
        h('td', { 'data-label': 'State', class: state(t) === 'active' ? 'ok' : 'bad' }, state(t)),
        h('td', { 'data-label': 'Expires' }, when(t.expires)),
        h('td', { 'data-label': 'Made by' }, t.created_by),
        h('td', { 'data-label': 'Last used' }, t.last_used ? when(t.last_used) : '–'),
        h('td', {}, t.revoked ? null : h('button', {
          type: 'button', 'data-revoke': t.id, onclick: (event) => revoke(event.target, t),
        }, `Revoke ${t.id}`)))))),
    form);
}
