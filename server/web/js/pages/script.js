// One script (GET /api/v1/scripts/{name}): its text in an editor and its settings (its run
// level among them), saved with PUT /api/v1/scripts/{name} (what the form does not show is
// kept), removed with DELETE; its attachments, each uploaded straight from the chosen file (the
// File object is the request's body: the browser streams it, the page never reads it) with
// PUT …/attachments, and removed; and its environment variables. Without the permission
// `scripts` all of it is shown read-only, nothing offered to change.

import { api, query, removeAsking } from '../api.js';
import { h, field, replace } from '../dom.js';
import { variables } from './env.js';

const AFTER_RUN = ['none', 'reload', 'exit', 'reboot', 'shutdown'];
/** Who may run a script: its run level, and what it means. */
const RUN_LEVELS = [
  ['read-only', 'read-only: users of either run level may run it'],
  ['read-write', 'read-write: only users of the run level read-write'],
];

/** A byte count in words: 512 B, 1.5 KiB, 3.2 MiB. */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export default async function script(section, ctx, { args: [name] }) {
  const path = `/api/v1/scripts/${encodeURIComponent(name)}`;
  replace(section, h('h1', {}, name), h('p', { class: 'muted' }, 'Loading…'));
  const found = await api('GET', path);
  const editable = ctx.may('scripts');
  const rerender = () => script(section, ctx, { args: [name] });

  const body = h('textarea', {
    name: 'body', id: 'script-body', class: 'code', rows: 18, spellcheck: 'false',
    autocapitalize: 'off', readonly: !editable,
  });
  body.value = found.body;
  const interpreter = h('input', { name: 'interpreter', id: 'script-interpreter', value: found.interpreter, readonly: !editable });
  const timeout = h('input', {
    name: 'timeout', id: 'script-timeout', type: 'number', min: 0, placeholder: '3600 (the default)',
    value: found.timeout_secs ?? '', readonly: !editable,
  });
  const workingDir = h('input', { name: 'working_dir', id: 'script-dir', value: found.working_dir || '', readonly: !editable });
  const afterRun = h('select', { name: 'after_run', id: 'script-after', disabled: !editable },
    AFTER_RUN.map((a) => h('option', { value: a, selected: a === found.after_run }, a)));
  const runLevel = h('select', { name: 'run_level', id: 'script-run-level', disabled: !editable },
    RUN_LEVELS.map(([level, text]) => h('option', { value: level, selected: level === found.run_level }, text)));
  const save = h('button', { type: 'submit', class: 'primary', id: 'script-save' }, 'Save');
  const remove = h('button', { type: 'button', class: 'danger', id: 'script-remove' }, 'Remove script');
  const editor = h('form', { class: 'card', id: 'script-form' },
    field('Script', body),
    h('div', { class: 'row' },
      field('Interpreter', interpreter),
      field('Timeout, seconds (0: none)', timeout),
      field('Working directory', workingDir),
      field('After a successful run', afterRun),
      field('Who may run it', runLevel)),
    editable ? h('div', { class: 'actions' }, save, remove) : null);
  editor.addEventListener('submit', async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      // What the form shows; the rest (run_as) the server keeps.
      await api('PUT', path, {
        name,
        body: body.value,
        interpreter: interpreter.value.trim() || '/bin/sh',
        working_dir: workingDir.value.trim() || null,
        timeout_secs: timeout.value === '' ? null : Number(timeout.value),
        after_run: afterRun.value,
        run_level: runLevel.value,
      });
      save.disabled = false;
      ctx.info(`${name} is saved.`);
    } catch (e) {
      save.disabled = false;
      ctx.alert(e);
    }
  });
  remove.addEventListener('click', async () => {
    if (!confirm(`Remove the script ${name} and its attachments?`)) return;
    remove.disabled = true;
    try {
      if (!(await removeAsking(path))) {
        remove.disabled = false;
        return;
      }
      location.hash = '#/scripts';
    } catch (e) {
      remove.disabled = false;
      ctx.alert(e);
    }
  });

  replace(section,
    h('h1', {}, `Script ${name}`),
    editable ? null : h('p', { class: 'muted' }, 'Changing scripts needs the permission “scripts”.'),
    editor,
    h('h2', {}, 'Attachments'),
    h('p', { class: 'muted' }, 'Files uploaded to the hosts before (or after) the script runs.'),
    attachments(ctx, name, path, found.attachments, rerender),
    h('h2', {}, 'Environment'),
    variables(ctx, { scope: 'script', owner: name }));
}

/** The attachments' table, and the form that uploads one. */
function attachments(ctx, name, path, list, rerender) {
  const editable = ctx.may('scripts');
  const detach = async (button, a) => {
    button.disabled = true;
    try {
      await api('DELETE', query(`${path}/attachments`, { path: a.path }));
      await rerender();
      ctx.info(`${a.path} is no longer attached.`);
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  };
  const table = list.length
    ? h('table', { id: 'attachments' },
      h('thead', {}, h('tr', {}, ['Path on the hosts', 'Size', 'SHA-256', 'Mode', 'Owner', 'When', editable ? 'Action' : null]
        .filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((a) => h('tr', { 'data-attachment': a.path },
        h('td', { 'data-label': 'Path' }, h('code', {}, a.path),
          a.template ? h('span', { class: 'muted', 'data-template': a.path }, ' (a template)') : null),
        h('td', { 'data-label': 'Size' }, bytes(a.size)),
        h('td', { 'data-label': 'SHA-256', class: 'key', title: a.sha256 }, `${a.sha256.slice(0, 16)}…`),
        h('td', { 'data-label': 'Mode' }, a.mode.toString(8).padStart(3, '0')),
        h('td', { 'data-label': 'Owner' }, a.owner ? `${a.owner.uid}:${a.owner.gid}` : 'the agent’s user'),
        h('td', { 'data-label': 'When' }, `${a.phase} the script`),
        editable ? h('td', {}, h('button', {
          type: 'button', 'data-detach': a.path, onclick: (event) => detach(event.target, a),
        }, `Remove ${a.path}`)) : null))))
    : h('p', { class: 'muted' }, 'No attachments.');
  if (!editable) return table;

  const file = h('input', { type: 'file', name: 'file', id: 'attach-file', required: true });
  const target = h('input', { name: 'path', id: 'attach-path', required: true, placeholder: '/etc/app.conf' });
  const mode = h('input', { name: 'mode', id: 'attach-mode', value: '644', pattern: '[0-7]{3,4}' });
  const owner = h('input', { name: 'owner', id: 'attach-owner', placeholder: 'UID:GID (default: the agent’s user)' });
  const phase = h('select', { name: 'phase', id: 'attach-phase' },
    h('option', { value: 'before' }, 'before the script'),
    h('option', { value: 'after' }, 'after it succeeded'));
  const template = h('input', { type: 'checkbox', name: 'template', id: 'attach-template' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'attach-upload' }, 'Upload');
  const status = h('span', { class: 'muted', 'aria-live': 'polite' });
  // The chosen file's name suggests the path, until one is typed.
  file.addEventListener('change', () => {
    if (!target.value && file.files[0]) target.value = `/tmp/${file.files[0].name}`;
  });
  const form = h('form', { class: 'card', id: 'attach-form' },
    h('h3', {}, 'Attach a file (up to 64 MiB)'),
    h('div', { class: 'row' },
      field('File', file),
      field('Path on the hosts', target),
      field('Mode (octal)', mode),
      field('Owner', owner),
      field('Upload it', phase)),
    h('label', { class: 'inline' }, template,
      'A template: rendered for each host with its environment and facts (Jinja2’s syntax)'),
    h('div', { class: 'actions' }, submit, status));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) {
      ctx.alert('Choose a file to attach.');
      return;
    }
    submit.disabled = true;
    status.textContent = `Uploading ${bytes(chosen.size)}…`;
    try {
      const params = { path: target.value.trim(), mode: mode.value.trim(), owner: owner.value.trim(), phase: phase.value, template: String(template.checked) };
      const attached = await api('PUT', query(`${path}/attachments`, params), chosen);
      await rerender();
      ctx.info(`${attached.path} is attached (${bytes(attached.size)}).`);
    } catch (e) {
      submit.disabled = false;
      status.textContent = '';
      ctx.alert(e);
    }
  });
  return [table, form];
}
