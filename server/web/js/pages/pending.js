// Hosts waiting for approval (GET /api/v1/enrollment/pending): new enrollments held by their
// rule and agents presenting a key other than the pinned one, with the waiting key's
// fingerprint and what the agent reported; several approved (pinned) or denied (dropped) at
// once (POST /api/v1/enrollment/pending/approve, …/deny; permission `hosts`).

import { api } from '../api.js';
import { h, replace } from '../dom.js';

/** What a waiting host's agent reported, in words. */
function reported(p) {
  if (p.properties) return Object.entries(p.properties).map(([k, v]) => `${k}=${v}`).join(' ');
  if (p.facts) return [p.facts.hostname, p.facts.model, p.facts.distribution_name, p.facts.distribution_version, p.facts.arch].filter(Boolean).join(' ');
  return '–';
}

export default async function pending(section, ctx) {
  replace(section, h('h1', {}, 'Pending approval'), h('p', { class: 'muted' }, 'Loading…'));
  const list = await api('GET', '/api/v1/enrollment/pending');
  const rerender = () => pending(section, ctx);
  const boxes = list.map((p) => h('input', { type: 'checkbox', 'data-pick': p.name, 'aria-label': `Choose ${p.name}` }));

  const decide = async (button, approve) => {
    const hosts = list.filter((_, i) => boxes[i].checked).map((p) => p.name);
    if (!hosts.length) {
      ctx.alert('Choose the hosts first.');
      return;
    }
    button.disabled = true;
    try {
      const done = await api('POST', `/api/v1/enrollment/pending/${approve ? 'approve' : 'deny'}`, { hosts });
      const failed = done.filter((d) => d.error);
      await rerender();
      const verb = approve ? 'approved' : 'denied';
      if (failed.length) ctx.alert(failed.map((d) => `${d.host}: ${d.error}`).join('; '));
      else ctx.info(`${done.length} ${done.length === 1 ? 'key' : 'keys'} ${verb}.`);
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  };

  const all = h('input', { type: 'checkbox', id: 'pending-all', 'aria-label': 'Choose all',
    onchange: (event) => boxes.forEach((b) => { b.checked = event.target.checked; }) });
  replace(section,
    h('h1', {}, 'Pending approval'),
    list.length ? null : h('p', { id: 'pending-none' }, 'No host waits for approval.'),
    h('table', { id: 'pending-hosts' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, all),
        ['Host', 'Address', 'Waiting key', 'Pinned key', 'Reported'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((p, i) => h('tr', { 'data-host': p.name },
        h('td', {}, boxes[i]),
        h('td', { 'data-label': 'Host' }, h('a', { href: `#/hosts/${encodeURIComponent(p.name)}` }, p.name)),
        h('td', { 'data-label': 'Address' }, `${p.address}:${p.port}`),
        h('td', { 'data-label': 'Waiting key' }, h('code', { class: 'key' }, p.fingerprint)),
        h('td', { 'data-label': 'Pinned key' }, p.pinned_fingerprint ? h('code', { class: 'key' }, p.pinned_fingerprint) : 'none: a new enrollment'),
        h('td', { 'data-label': 'Reported' }, reported(p)))))),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', id: 'pending-approve', onclick: (event) => decide(event.target, true) }, 'Approve chosen'),
      h('button', { type: 'button', id: 'pending-deny', onclick: (event) => decide(event.target, false) }, 'Deny chosen')));
}
