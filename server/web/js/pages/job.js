// One job: a launch of a script, a command, an upload or an update on many hosts (GET
// /api/v1/launches/{id}): who started it, what, when, on which hosts, how its runs stand, and
// its runs, one per host (GET /api/v1/runs?launch=ID), each linking to its page. A job still
// running is followed live on the run page. A script's or command's job can be started again
// (POST /api/v1/launches/{id}/relaunch): all of it, or once it has ended only on its hosts that
// did not succeed; then the new job is followed on the run page. Offered to users with a run
// level; the server holds them to the one its script needs.

import { api, query } from '../api.js';
import { h, replace } from '../dom.js';
import { when } from '../time.js';
import { elapsed, result, standing, who } from './history.js';

export default async function job(section, ctx, { args: [id] }) {
  replace(section, h('h1', {}, `Job #${id}`), h('p', { class: 'muted' }, 'Loading…'));
  const [launch, runs] = await Promise.all([
    api('GET', `/api/v1/launches/${id}`),
    api('GET', query('/api/v1/runs', { launch: id, limit: 10000 })),
  ]);
  const [text, cls] = standing(launch);
  const again = (label, failedOnly, elId) => {
    const button = h('button', { type: 'button', id: elId }, label);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const launched = await api('POST', `/api/v1/launches/${id}/relaunch`, { failed_only: failedOnly });
        location.hash = `#/run?launch=${launched.launch}`;
      } catch (e) {
        button.disabled = false;
        ctx.alert(e);
      }
    });
    return button;
  };
  const { failed, cancelled } = launch.runs;
  const unfinishedHosts = launch.hosts.length - launch.runs.succeeded;
  const actions = [];
  if (!launch.finished) {
    actions.push(h('a', { class: 'button primary', id: 'job-follow', href: `#/run?launch=${id}` }, 'Follow it live'));
  }
  if (launch.relaunchable && ctx.mayRun('read-only')) {
    actions.push(again('Run it again', false, 'job-again'));
    if (launch.finished && unfinishedHosts > 0) {
      actions.push(again(`Run again on the ${unfinishedHosts} host${unfinishedHosts === 1 ? '' : 's'} that did not succeed`, true, 'job-again-failed'));
    }
  }
  const rows = runs.map((r) => {
    const [outcome, rcls] = result(r);
    return h('tr', { 'data-run': r.id },
      h('td', { 'data-label': 'Host' }, h('a', { href: `#/hosts/${encodeURIComponent(r.host)}` }, r.host)),
      h('td', { 'data-label': 'Run' }, h('a', { href: `#/history/${r.id}` }, `#${r.id}`)),
      h('td', { 'data-label': 'Started' }, when(r.started)),
      h('td', { 'data-label': 'Took' }, elapsed(r.elapsed_ms)),
      h('td', { 'data-label': 'Result', class: rcls }, outcome));
  });
  const ran = new Set(runs.map((r) => r.host));
  const notRun = launch.hosts.filter((name) => !ran.has(name));
  replace(section,
    h('h1', {}, `Job #${launch.id}: ${launch.job}`),
    h('dl', { class: 'facts', id: 'job' },
      h('dt', {}, 'Started by'), h('dd', {}, launch.schedule ? `the schedule ${launch.schedule}` : who(launch.actor)),
      h('dt', {}, 'Started'), h('dd', {}, when(launch.started)),
      h('dt', {}, 'Finished'), h('dd', {}, launch.finished ? when(launch.finished) : '—'),
      h('dt', {}, 'Hosts'), h('dd', {}, String(launch.hosts.length)),
      h('dt', {}, 'Runs'), h('dd', { class: cls, id: 'job-runs' }, text)),
    actions.length ? h('div', { class: 'actions' }, actions) : null,
    rows.length
      ? h('table', { id: 'job-hosts' },
        h('thead', {}, h('tr', {}, ['Host', 'Run', 'Started', 'Took', 'Result'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows))
      : null,
    notRun.length && launch.relaunchable
      ? h('p', { class: failed || cancelled || launch.finished ? 'warn' : 'muted', id: 'job-not-run' },
        `Not run${launch.finished ? '' : ' yet'} on ${notRun.join(', ')}.`)
      : null,
    h('p', {}, h('a', { href: '#/history?view=jobs' }, 'Every job')));
}
