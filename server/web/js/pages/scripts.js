// The stored scripts (GET /api/v1/scripts), and a new one made by name (POST /api/v1/scripts)
// for those with the permission `scripts`, then edited on its own page.

import { api } from '../api.js';
import { h, field, replace } from '../dom.js';

/** A timeout in seconds in words: the default hour when none, "none" for 0. */
export function timeoutText(secs) {
  if (secs === null || secs === undefined) return '1 h (default)';
  if (secs === 0) return 'none';
  if (secs % 3600 === 0) return `${secs / 3600} h`;
  if (secs % 60 === 0) return `${secs / 60} min`;
  return `${secs} s`;
}

export default async function scripts(section, ctx) {
  replace(section, h('h1', {}, 'Scripts'), h('p', { class: 'muted' }, 'Loading…'));
  const list = await api('GET', '/api/v1/scripts');
  let create = null;
  if (ctx.may('scripts')) {
    const name = h('input', { name: 'name', id: 'new-script-name', required: true, autocomplete: 'off' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Add script');
    create = h('form', { class: 'card', id: 'new-script' },
      h('div', { class: 'row' }, field('New script’s name', name), h('div', {}, submit)));
    create.addEventListener('submit', async (event) => {
      event.preventDefault();
      submit.disabled = true;
      const chosen = name.value.trim();
      try {
        await api('POST', '/api/v1/scripts', { name: chosen, body: '#!/bin/sh\n' });
        location.hash = `#/scripts/${encodeURIComponent(chosen)}`;
      } catch (e) {
        submit.disabled = false;
        ctx.alert(e);
      }
    });
  }
  replace(section,
    h('h1', {}, 'Scripts'),
    create,
    list.length
      ? h('table', { id: 'scripts' },
        h('thead', {}, h('tr', {}, ['Name', 'Interpreter', 'Timeout', 'After a success', 'Run level', 'Lines'].map((t) =>
          h('th', { scope: 'col' }, t)))),
        h('tbody', {}, list.map((s) => h('tr', { 'data-script': s.name },
          h('td', { 'data-label': 'Name' }, h('a', { href: `#/scripts/${encodeURIComponent(s.name)}` }, s.name)),
          h('td', { 'data-label': 'Interpreter' }, h('code', {}, s.interpreter)),
          h('td', { 'data-label': 'Timeout' }, timeoutText(s.timeout_secs)),
          h('td', { 'data-label': 'After a success' }, s.after_run),
          h('td', { 'data-label': 'Run level', class: 'run-level' }, s.run_level),
          h('td', { 'data-label': 'Lines' }, String(s.body.split('\n').filter(Boolean).length))))))
      : h('p', { class: 'muted' }, 'No scripts yet.'),
    h('p', {}, h('a', { href: '#/env' }, 'Environment variables of every scope')));
}
