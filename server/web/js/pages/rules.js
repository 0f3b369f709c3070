// Enrollment rules (permission `enrollment`), tried in order: the first whose clauses all match
// what an enrolling agent reports decides its groups and whether its key is trusted at once or
// held for approval; after the last, the default holds it with no group. Listed (GET
// /api/v1/enrollment/rules), added where asked (POST), removed (DELETE …/{id}).

import { api } from '../api.js';
import { h, field, replace } from '../dom.js';
import { names } from './tokens.js';

/** A rule's clauses in words. */
function clauses(rule) {
  return rule.clauses.length ? rule.clauses.map((c) => `${c.property} ~ ${c.regex}`).join(' and ') : 'every agent';
}

export default async function rules(section, ctx) {
  replace(section, h('h1', {}, 'Enrollment rules'), h('p', { class: 'muted' }, 'Loading…'));
  const list = await api('GET', '/api/v1/enrollment/rules');
  const rerender = () => rules(section, ctx);

  const remove = async (button, rule) => {
    button.disabled = true;
    try {
      await api('DELETE', `/api/v1/enrollment/rules/${rule.id}`);
      await rerender();
      ctx.info(`Rule ${rule.id} is removed.`);
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  };

  const text = h('textarea', { id: 'rule-clauses', class: 'code', rows: 3, placeholder: 'arch~^mips\nhostname~^lab-' });
  const groups = h('input', { id: 'rule-groups', placeholder: 'lab, mips', autocomplete: 'off' });
  const decision = h('select', { id: 'rule-decision' },
    h('option', { value: 'hold' }, 'Hold for approval'), h('option', { value: 'trust' }, 'Trust at once'));
  const position = h('input', { type: 'number', id: 'rule-position', min: 1, placeholder: 'last' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'rule-add' }, 'Add rule');
  const form = h('form', { class: 'card', id: 'new-rule' },
    h('h2', {}, 'Add a rule'),
    field('Clauses, one PROPERTY~REGEX a line (all must match; none: every agent)', text),
    h('div', { class: 'row' }, field('Groups (comma-separated)', groups), field('Decision', decision),
      field('Position (1 is tried first)', position)),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const lines = text.value.split('\n').map((l) => l.trim()).filter(Boolean);
    const bad = lines.find((l) => !l.includes('~'));
    if (bad) {
      ctx.alert(`“${bad}” is not a clause: write PROPERTY~REGEX`);
      return;
    }
    submit.disabled = true;
    try {
      await api('POST', '/api/v1/enrollment/rules', {
        clauses: lines.map((l) => {
          const at = l.indexOf('~');
          return { property: l.slice(0, at).trim(), regex: l.slice(at + 1) };
        }),
        groups: names(groups.value),
        trust: decision.value === 'trust',
        position: position.value ? Number(position.value) : null,
      });
      await rerender();
      ctx.info('The rule is added.');
    } catch (e) {
      submit.disabled = false;
      ctx.alert(e);
    }
  });

  replace(section,
    h('h1', {}, 'Enrollment rules'),
    h('p', {}, h('a', { href: '#/enrollment' }, 'Tokens'), ' · ',
      'An enrolling agent takes the first rule whose clauses all match what it reports (hostname, name, address, kernel, distribution, arch, model, …).'),
    h('table', { id: 'rules' },
      h('thead', {}, h('tr', {}, ['#', 'Matches', 'Decision', 'Groups', 'Action'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {},
        list.map((r) => h('tr', { 'data-rule': r.id },
          h('td', { 'data-label': '#' }, String(r.position)),
          h('td', { 'data-label': 'Matches' }, h('code', {}, clauses(r))),
          h('td', { 'data-label': 'Decision' }, r.trust ? 'trust' : 'hold'),
          h('td', { 'data-label': 'Groups' }, r.groups.join(', ')),
          h('td', {}, h('button', { type: 'button', 'data-remove': r.id, onclick: (event) => remove(event.target, r) },
            `Remove rule ${r.id}`)))),
        h('tr', { id: 'rule-default' },
          h('td', { 'data-label': '#' }, '–'),
          h('td', { 'data-label': 'Matches' }, 'every agent (the default)'),
          h('td', { 'data-label': 'Decision' }, 'hold'),
          h('td', { 'data-label': 'Groups' }, ''),
          h('td', {}, '')))),
    form);
}
