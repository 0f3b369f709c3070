// Signing in with a name and a password: POST /api/v1/session sets the session cookie
// (HttpOnly, so no script ever reads it) and answers the CSRF token.

import { api } from '../api.js';
import { h, field, replace } from '../dom.js';

export default function signin(section, ctx) {
  document.title = 'Sign in · Otto';
  const name = h('input', { name: 'name', id: 'signin-name', autocomplete: 'username', required: true });
  const password = h('input', {
    name: 'password', id: 'signin-password', type: 'password', autocomplete: 'current-password', required: true,
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'card signin', id: 'signin' },
    h('h1', {}, 'Sign in to Otto'),
    field('Name', name),
    field('Password', password),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      await api('POST', '/api/v1/session', { name: name.value, password: password.value });
      // The sign-in's answer names the user; the session's says what they may do.
      const me = await api('GET', '/api/v1/session');
      await ctx.signedIn(me);
    } catch (e) {
      submit.disabled = false;
      ctx.alert(e);
      password.focus();
    }
  });
  replace(section, form);
  name.focus();
}
