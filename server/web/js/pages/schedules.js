// The schedules (GET /api/v1/schedules): each with its pattern and zone, its next time (in the
// browser's zone, and on the schedule zone's clock) and its last launch with its outcome
// (a link to the launch's page). With the permission `schedules`: a form to add one (POST
// /api/v1/schedules: a script or a command, on hosts, groups or all), and buttons to enable,
// disable (PATCH /api/v1/schedules/{name}) and remove one (DELETE).

import { api } from '../api.js';
import { h, field, replace } from '../dom.js';
import { when } from '../time.js';

/** The comma list in `input` as an array of its non-empty items. */
const items = (input) => input.value.split(',').map((s) => s.trim()).filter(Boolean);

/** The form that adds a schedule; `done` is called once it is added. */
function addForm(ctx, done) {
  const name = h('input', { name: 'name', id: 'new-schedule-name', required: true, autocomplete: 'off' });
  const cron = h('input', { name: 'cron', id: 'new-schedule-cron', required: true, placeholder: '30 2 * * *' });
  const zone = h('input', { name: 'time_zone', id: 'new-schedule-zone', value: 'UTC' });
  const script = h('input', { name: 'script', id: 'new-schedule-script', placeholder: 'a stored script' });
  const command = h('input', { name: 'command', id: 'new-schedule-command', placeholder: 'or a command' });
  const hosts = h('input', { name: 'hosts', id: 'new-schedule-hosts', placeholder: 'r1, ap-*' });
  const groups = h('input', { name: 'groups', id: 'new-schedule-groups', placeholder: 'lab' });
  const all = h('input', { type: 'checkbox', name: 'all', id: 'new-schedule-all' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Add schedule');
  const form = h('form', { class: 'card', id: 'new-schedule' },
    h('div', { class: 'row' }, field('Name', name), field('Cron pattern', cron), field('Time zone', zone)),
    h('div', { class: 'row' }, field('Script', script), field('Command', command)),
    h('div', { class: 'row' }, field('Hosts', hosts), field('Groups', groups), field('All hosts', all)),
    h('div', {}, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    const run = { hosts: items(hosts), groups: items(groups), all: all.checked };
    if (script.value.trim()) run.script = script.value.trim();
    if (command.value.trim()) run.command = command.value.trim();
    try {
      await api('POST', '/api/v1/schedules', {
        name: name.value.trim(), cron: cron.value.trim(), time_zone: zone.value.trim() || 'UTC', run,
      });
      ctx.info(`Schedule ${name.value.trim()} added.`);
      done();
    } catch (e) {
      submit.disabled = false;
      ctx.alert(e);
    }
  });
  return form;
}

export default async function schedules(section, ctx) {
  replace(section, h('h1', {}, 'Schedules'), h('p', { class: 'muted' }, 'Loading…'));
  const list = await api('GET', '/api/v1/schedules');
  const again = () => schedules(section, ctx);
  const may = ctx.may('schedules');

  /** A button that does `action` to schedule `s`, then shows the list again. */
  const button = (s, label, attrs, action) => {
    const b = h('button', { type: 'button', ...attrs }, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await action();
        ctx.info(`Schedule ${s.name}: ${label.toLowerCase()}d.`);
        await again();
      } catch (e) {
        b.disabled = false;
        ctx.alert(e);
      }
    });
    return b;
  };
  const path = (s) => `/api/v1/schedules/${encodeURIComponent(s.name)}`;
  const actions = (s) => h('td', { 'data-label': 'Actions' },
    s.enabled
      ? button(s, 'Disable', { 'data-disable': s.name }, () => api('PATCH', path(s), { enabled: false }))
      : button(s, 'Enable', { 'data-enable': s.name }, () => api('PATCH', path(s), { enabled: true })),
    ' ',
    button(s, 'Remove', { class: 'danger', 'data-remove': s.name }, () => api('DELETE', path(s))));
  const next = (s) => (s.next.length
    ? h('span', {}, when(s.next[0].at), h('br'), h('span', { class: 'muted' }, s.next[0].local))
    : h('span', { class: 'muted' }, s.enabled ? 'none to come' : 'disabled'));
  const last = (s) => {
    const l = s.launches[0];
    if (!l) return h('span', { class: 'muted' }, 'none yet');
    const cls = l.success === true ? 'ok' : l.success === false ? 'bad' : 'muted';
    return h('span', {}, h('a', { href: `#/run?launch=${l.launch}` }, when(l.started)), ' ',
      h('span', { class: cls, 'data-outcome': s.name }, l.outcome));
  };
  const headers = ['Name', 'Enabled', 'Cron', 'Job', 'Next', 'Last launch'].concat(may ? ['Actions'] : []);
  replace(section,
    h('h1', {}, 'Schedules'),
    may ? addForm(ctx, again) : null,
    list.length
      ? h('table', { id: 'schedules' },
        h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, list.map((s) => h('tr', { 'data-schedule': s.name },
          h('td', { 'data-label': 'Name' }, s.name),
          h('td', { 'data-label': 'Enabled' }, s.enabled ? 'yes' : 'no'),
          h('td', { 'data-label': 'Cron' }, `${s.cron} (${s.time_zone})`),
          h('td', { 'data-label': 'Job' }, s.job),
          h('td', { 'data-label': 'Next' }, next(s)),
          h('td', { 'data-label': 'Last launch' }, last(s)),
          may ? actions(s) : null))))
      : h('p', { class: 'muted' }, 'No schedules yet.'));
}
