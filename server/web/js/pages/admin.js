// What an operator with the permission `hosts` does to hosts, shared by the hosts list and a
// host's page: add one (POST /api/v1/hosts), import an inventory with a preview first
// (POST /api/v1/imports, `dry_run`), send the agents a control action (POST /api/v1/control, or
// a dry run of it: POST /api/v1/dry-run/control), and enable, disable or remove several at
// once. What cannot be undone (remove, reboot, shutdown) is asked for again first.

import { api, removeAsking } from '../api.js';
import { h, field, replace } from '../dom.js';

/** The control actions, by the API's name: what the button says, and the question to ask
 * before (none when it can be undone). */
const ACTIONS = [
  ['reload', 'Reload configuration', null],
  ['exit', 'Restart agent', null],
  ['rotate-key', 'Rotate keys', null],
  ['reboot', 'Reboot', (what) => `Reboot ${what}? Whatever runs there stops.`],
  ['shutdown', 'Shut down', (what) => `Shut ${what} down? It stays off until someone powers it on.`],
];

/** How a control action ended on each host, in one sentence (an alert when any failed). */
function told(ctx, label, done) {
  const failed = done.filter((d) => !d.success);
  if (failed.length) {
    ctx.alert(failed.map((d) => `${d.host}: ${d.detail}`).join('; '));
  } else {
    ctx.info(`${label}: ${done.map((d) => `${d.host} ${d.detail}`).join('; ')}.`);
  }
}

/** Buttons that send each control action to the hosts `chosen()` gives (`{ hosts, what }`, or
 * null when none is chosen: then it says so), and a checkbox that makes them a dry run
 * instead (POST /api/v1/dry-run/control): which hosts the action would go to, nothing sent. */
export function controlButtons(ctx, chosen, idPrefix) {
  const dry = h('input', { type: 'checkbox', id: `${idPrefix}-dry-run` });
  const buttons = ACTIONS.map(([action, label, question]) => h('button', {
    type: 'button', id: `${idPrefix}-${action}`, class: question ? 'danger' : null,
    onclick: async (event) => {
      const target = chosen();
      if (!target) {
        ctx.alert('Choose the hosts first.');
        return;
      }
      const body = { action, hosts: target.hosts };
      // Nothing to ask before a dry run: nothing is done.
      if (!dry.checked && question && !confirm(question(target.what))) return;
      event.target.disabled = true;
      try {
        if (dry.checked) {
          const p = await api('POST', '/api/v1/dry-run/control', body);
          const hosts = `${p.hosts.length} ${p.hosts.length === 1 ? 'host' : 'hosts'}: ${p.hosts.join(', ')}`;
          ctx.info(`${label} would go to ${hosts}. Dry run: nothing was done.`);
        } else {
          told(ctx, label, await api('POST', '/api/v1/control', body));
        }
      } catch (e) {
        ctx.alert(e);
      } finally {
        event.target.disabled = false;
      }
    },
  }, label));
  return [buttons, h('label', { class: 'inline' }, dry, 'Dry run')];
}

/** Removes the host `name` after asking (and again if its variables would go too); whether
 * it was removed. */
export async function removeHost(name) {
  if (!confirm(`Remove the host ${name}? Its server key goes; its history stays.`)) return false;
  return removeAsking(`/api/v1/hosts/${encodeURIComponent(name)}`);
}

/** Enables, disables or removes the hosts `chosen()` names, then `done()`. */
export function bulkButtons(ctx, chosen, done) {
  const each = (label, id, style, act) => h('button', {
    type: 'button', id, class: style,
    onclick: async (event) => {
      const target = chosen();
      if (!target) {
        ctx.alert('Choose the hosts first.');
        return;
      }
      event.target.disabled = true;
      const finished = [];
      try {
        for (const name of target.hosts) {
          if (await act(name)) finished.push(name);
        }
        await done();
        if (finished.length) ctx.info(`${label}: ${finished.join(', ')}.`);
      } catch (e) {
        ctx.alert(e);
      } finally {
        event.target.disabled = false;
      }
    },
  }, label);
  const post = (verb) => async (name) => {
    await api('POST', `/api/v1/hosts/${encodeURIComponent(name)}/${verb}`);
    return true;
  };
  return [
    each('Enable', 'hosts-enable', null, post('enable')),
    each('Disable', 'hosts-disable', null, post('disable')),
    each('Remove', 'hosts-remove', 'danger', removeHost),
  ];
}

/** The form that adds one host; says what its agent must trust. */
export function addHostForm(ctx, done) {
  const name = h('input', { name: 'name', id: 'add-name', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9_][A-Za-z0-9._\\-]*' });
  const address = h('input', { name: 'address', id: 'add-address', required: true, autocomplete: 'off' });
  const port = h('input', { name: 'port', id: 'add-port', type: 'number', min: 1, max: 65535, value: 12444, required: true });
  const groups = h('input', { name: 'groups', id: 'add-groups', autocomplete: 'off', placeholder: 'lab, north' });
  const key = h('input', { name: 'agent_key', id: 'add-key', autocomplete: 'off', placeholder: 'ssh-ed25519 AAAA… (or leave empty)' });
  const pin = h('input', { type: 'checkbox', id: 'add-pin' });
  const form = h('form', { id: 'host-add' },
    h('div', { class: 'row' }, field('Name', name), field('Address', address), field('Port', port)),
    h('div', { class: 'row' }, field('Groups (comma-separated)', groups), field('Agent key', key)),
    h('label', { class: 'inline' }, pin, 'Trust the key its agent presents first (only on a network you trust)'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'add-submit' }, 'Add host')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = {
      name: name.value.trim(),
      address: address.value.trim(),
      port: Number(port.value),
      groups: groups.value.split(',').map((g) => g.trim()).filter(Boolean),
      pin_on_first_contact: pin.checked,
    };
    if (key.value.trim()) body.agent_key = key.value.trim();
    try {
      const added = await api('POST', '/api/v1/hosts', body);
      form.closest('details').open = false;
      await done();
      ctx.info(`${added.host} is added. On the device: otto-agent trust '${added.server_key}'`);
    } catch (e) {
      ctx.alert(e);
    }
  });
  return h('details', { class: 'card', id: 'add-host' }, h('summary', {}, 'Add a host'), form);
}

/** The form that imports an inventory (Ansible's INI or YAML, CSV, JSON): previewed first (a
 * dry run: what each host would become), then imported as previewed. */
export function importForm(ctx, done) {
  const format = h('select', { name: 'format', id: 'import-format' },
    [['ini', 'Ansible INI'], ['yaml', 'Ansible YAML'], ['csv', 'CSV'], ['json', 'JSON']].map(([v, t]) => h('option', { value: v }, t)));
  const file = h('input', { type: 'file', id: 'import-file', accept: '.ini,.yml,.yaml,.csv,.json,.txt,text/*' });
  const text = h('textarea', { id: 'import-text', rows: 6, class: 'code', placeholder: '[lab]\nrouter1 ansible_host=192.0.2.1' });
  const pin = h('input', { type: 'checkbox', id: 'import-pin' });
  const plan = h('div', { id: 'import-plan' });
  const apply = h('button', { type: 'button', class: 'primary', id: 'import-apply', disabled: true }, 'Import');
  file.addEventListener('change', async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    text.value = await chosen.text();
    const ext = chosen.name.split('.').pop().toLowerCase();
    if (['ini', 'csv', 'json'].includes(ext)) format.value = ext;
    if (['yml', 'yaml'].includes(ext)) format.value = 'yaml';
  });
  const body = (dryRun) => ({ format: format.value, text: text.value, dry_run: dryRun, pin_on_first_contact: pin.checked });
  const changed = () => { apply.disabled = true; replace(plan); };
  for (const input of [format, text, pin]) input.addEventListener('input', changed);
  const preview = h('button', { type: 'button', id: 'import-preview', onclick: async () => {
    try {
      const imported = await api('POST', '/api/v1/imports', body(true));
      replace(plan,
        h('table', { id: 'import-steps' },
          h('thead', {}, h('tr', {}, ['Host', 'Address', 'Change', 'Groups'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, imported.steps.map((s) => h('tr', { 'data-host': s.host },
            h('td', { 'data-label': 'Host' }, s.host),
            h('td', { 'data-label': 'Address' }, `${s.address}:${s.port}`, s.was ? h('span', { class: 'muted' }, ` (was ${s.was})`) : null),
            h('td', { 'data-label': 'Change', class: 'change' }, s.change),
            h('td', { 'data-label': 'Groups' }, s.join.join(', ') || '—'))))),
        imported.variables.length
          ? h('table', { id: 'import-variables' },
            h('thead', {}, h('tr', {}, ['Variable', 'Where', 'Change'].map((t) => h('th', { scope: 'col' }, t)))),
            h('tbody', {}, imported.variables.map((v) => h('tr', {},
              h('td', { 'data-label': 'Variable' }, v.name),
              h('td', { 'data-label': 'Where' }, v.scope),
              h('td', { 'data-label': 'Change', class: 'change' }, v.change)))))
          : null,
        imported.notes.map((n) => h('p', { class: 'muted' }, n)));
      apply.disabled = !imported.steps.some((s) => s.change !== 'unchanged')
        && !imported.variables.some((v) => v.change !== 'unchanged');
    } catch (e) {
      ctx.alert(e);
    }
  } }, 'Preview');
  apply.addEventListener('click', async () => {
    apply.disabled = true;
    try {
      const imported = await api('POST', '/api/v1/imports', body(false));
      const counts = {};
      for (const s of imported.steps) counts[s.change] = (counts[s.change] || 0) + 1;
      const variables = imported.variables.filter((v) => v.change !== 'unchanged').length;
      if (variables) counts[variables === 1 ? 'variable set' : 'variables set'] = variables;
      apply.closest('details').open = false;
      changed();
      await done();
      ctx.info(`Imported: ${Object.entries(counts).map(([c, n]) => `${n} ${c}`).join(', ')}.`
        + (imported.added.length ? ` New hosts' agents trust their server keys (see each host).` : ''));
    } catch (e) {
      ctx.alert(e);
    }
  });
  return h('details', { class: 'card', id: 'import-hosts' }, h('summary', {}, 'Import hosts from an inventory'),
    h('div', { class: 'row' }, field('Format', format), field('File', file)),
    field('Or its text', text),
    h('label', { class: 'inline' }, pin, 'New hosts trust the key their agent presents first'),
    h('div', { class: 'actions' }, preview, apply),
    plan);
}
