// Environment variables (GET, PUT, DELETE /api/v1/env): of every scope on this page, of one
// scope where `variables` is placed (a script's page). Secrets are write-only: listed as set,
// never with a value (the API never answers one); their input is a password field.

import { api, query } from '../api.js';
import { h, field, replace } from '../dom.js';

const SCOPES = ['global', 'group', 'host', 'script'];

/** The query naming `scope` (`global`, `group`…) of `owner`; none for the global scope when
 * setting or removing. */
function scopeQuery(scope, owner) {
  return scope === 'global' ? {} : { [scope]: owner };
}

/** A variable's scope in words: `global`, `group lab`. */
function scopeText(v) {
  return v.owner ? `${v.scope} ${v.owner}` : v.scope;
}

/** The variables of `fixed` (`{ scope: 'script', owner: name }`), or of every scope when it is
 * null: a table, with a form to set one and a button to remove each for those with the
 * permission `scripts`. Loads itself; errors go to the alert region. */
export function variables(ctx, fixed) {
  const box = h('div', { class: 'variables' });
  const editable = ctx.may('scripts');

  const load = async () => {
    const vars = await api('GET', query('/api/v1/env', fixed ? { [fixed.scope]: fixed.owner } : {}));
    const rows = vars.map((v) => h('tr', { 'data-variable': v.name },
      fixed ? null : h('td', { 'data-label': 'Scope' }, scopeText(v)),
      h('td', { 'data-label': 'Name' }, h('code', {}, v.name)),
      h('td', { 'data-label': 'Value' }, v.secret
        ? h('span', { class: 'muted', 'data-secret': v.name }, 'secret (set)')
        : h('code', {}, v.value)),
      editable ? h('td', {}, h('button', {
        type: 'button', 'data-unset': v.name,
        onclick: (event) => unset(event.target, v),
      }, `Remove ${v.name}`)) : null));
    const heads = [fixed ? null : 'Scope', 'Name', 'Value', editable ? 'Action' : null].filter(Boolean);
    replace(box,
      rows.length
        ? h('table', { class: 'env' },
          h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, rows))
        : h('p', { class: 'muted' }, 'No variables.'),
      editable ? form() : null);
  };

  const unset = async (button, v) => {
    button.disabled = true;
    try {
      await api('DELETE', query(`/api/v1/env/${encodeURIComponent(v.name)}`, scopeQuery(v.scope, v.owner)));
      await load();
      ctx.info(`${v.name} (${scopeText(v)}) is removed.`);
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  };

  /** The form that sets a variable. */
  const form = () => {
    const scope = h('select', { name: 'scope' }, SCOPES.map((s) => h('option', { value: s }, s)));
    const owner = h('input', { name: 'owner', placeholder: 'its name' });
    const name = h('input', { name: 'name', required: true, autocomplete: 'off', placeholder: 'API_TOKEN' });
    const value = h('input', { name: 'value', autocomplete: 'off' });
    const secret = h('input', { type: 'checkbox', name: 'secret' });
    // A secret is typed unseen.
    secret.addEventListener('change', () => { value.type = secret.checked ? 'password' : 'text'; });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Set');
    const el = h('form', { class: 'card', 'data-form': 'env' },
      h('h3', {}, 'Set a variable'),
      h('div', { class: 'row' },
        fixed ? null : field('Scope', scope),
        fixed ? null : field('Of (group, host or script)', owner),
        field('Name', name),
        field('Value', value)),
      h('label', { class: 'inline' }, secret, 'Secret: never shown again, redacted in output'),
      h('div', { class: 'actions' }, submit));
    el.addEventListener('submit', async (event) => {
      event.preventDefault();
      const where = fixed ? fixed.scope : scope.value;
      const of = fixed ? fixed.owner : owner.value.trim();
      if (where !== 'global' && !of) {
        ctx.alert(`Name the ${where} the variable belongs to.`);
        return;
      }
      submit.disabled = true;
      try {
        // `secret` only when ticked: left out, a secret set again stays secret.
        await api('PUT', query(`/api/v1/env/${encodeURIComponent(name.value.trim())}`, scopeQuery(where, of)),
          { value: value.value, secret: secret.checked || undefined });
        const set = name.value.trim();
        await load();
        ctx.info(`${set} is set.`);
      } catch (e) {
        submit.disabled = false;
        ctx.alert(e);
      }
    });
    return el;
  };

  box.append(h('p', { class: 'muted' }, 'Loading…'));
  load().catch((e) => ctx.alert(e));
  return box;
}

export default async function env(section, ctx) {
  replace(section,
    h('h1', {}, 'Environment'),
    h('p', { class: 'muted' },
      'Variables given to runs. Later scopes win: global, the script’s, each of the host’s groups, the host’s.'),
    variables(ctx, null));
}
