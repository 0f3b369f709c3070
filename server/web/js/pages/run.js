// Running a stored script or a command: pick what and where, start it (POST /api/v1/runs),
// then follow the launch's events (GET /api/v1/launches/{id}/events, Server-Sent Events):
// each host's output as its lines arrive, each host's end, the summary. Cancel all of it
// (POST /api/v1/launches/{id}/cancel) or one host (POST /api/v1/runs/{id}/cancel). The launch is
// kept in the address (#/run?launch=ID): reloading the page follows it again from its start.
// Only what the user's run level allows is offered: a read-only user picks among the
// read-only scripts, and types no command; a read-write user also uploads a file to the hosts
// chosen, or fetches one from them (files.js).

import { api, query } from '../api.js';
import { h, field, replace, append } from '../dom.js';
import { leftOutNote, selectors } from '../selectors.js';
import { fetchForm, uploadForm } from './files.js';

/** Names from a comma- or space-separated list. */
function names(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

export default async function run(section, ctx, { params }) {
  const launch = params.get('launch');
  if (launch) {
    follow(section, ctx, Number(launch));
    return;
  }
  const scripts = (await api('GET', '/api/v1/scripts')).filter((s) => ctx.mayRun(s.run_level));
  const commands = ctx.mayRun();
  const script = h('select', { name: 'script', id: 'run-script', required: !commands },
    h('option', { value: '' }, commands ? '— a command instead —' : '— a script —'),
    scripts.map((s) => h('option', { value: s.name }, s.name)));
  const command = commands
    ? h('textarea', { name: 'command', id: 'run-command', rows: 4, placeholder: 'uname -a' })
    : null;
  const all = h('input', { type: 'checkbox', name: 'all', id: 'run-all' });
  const hosts = h('input', { name: 'hosts', id: 'run-hosts', value: params.get('host') || '', placeholder: 'ap-1, ap-*' });
  const groups = h('input', { name: 'groups', id: 'run-groups', placeholder: 'lab' });
  const facts = h('input', { name: 'where', id: 'run-where', placeholder: 'arch=mips and kernel~^5\\.' });
  // Which hosts the choice makes now (POST /api/v1/selection), said as it is typed.
  const chosen = h('p', { class: 'muted', id: 'run-chosen', 'aria-live': 'polite' });
  const targets = () => ({
    all: all.checked, hosts: names(hosts.value), groups: names(groups.value), where: selectors(facts.value),
  });
  let asked = 0;
  const preview = async () => {
    const mine = ++asked;
    const t = targets();
    if (!t.all && !t.hosts.length && !t.groups.length && !t.where.length) {
      chosen.textContent = '';
      return;
    }
    try {
      const s = await api('POST', '/api/v1/selection', t);
      if (mine !== asked) return;
      const count = `${s.hosts.length} ${s.hosts.length === 1 ? 'host' : 'hosts'} chosen`;
      const note = leftOutNote(s.left_out);
      chosen.textContent = note ? `${count}; ${note}` : count;
    } catch (e) {
      if (mine === asked) chosen.textContent = e.message;
    }
  };
  let pause;
  for (const input of [all, hosts, groups, facts]) {
    input.addEventListener('input', () => { clearTimeout(pause); pause = setTimeout(preview, 300); });
  }
  const submit = h('button', { type: 'submit', class: 'primary', id: 'run-start' }, 'Start');
  // What it would do, without doing it (POST /api/v1/dry-run/runs).
  const plan = h('div', { id: 'run-plan', 'aria-live': 'polite' });
  const dry = h('button', { type: 'button', id: 'run-dry' }, 'Dry run');
  const form = h('form', { class: 'card', id: 'run-form' },
    h('fieldset', {}, h('legend', {}, 'What'),
      field('Stored script', script),
      command ? field('Or a command for /bin/sh', command) : null),
    h('fieldset', {}, h('legend', {}, 'Where'),
      h('label', { class: 'inline' }, all, 'Every enabled host'),
      h('div', { class: 'row' },
        field('Hosts (names or globs)', hosts),
        field('Groups', groups),
        field('Facts (arch=mips and …)', facts)),
      chosen),
    h('div', { class: 'actions' }, submit, dry),
    plan);
  dry.addEventListener('click', async () => {
    const body = targets();
    if (script.value) body.script = script.value;
    else if (command) body.command = command.value;
    ctx.clear();
    try {
      const p = await api('POST', '/api/v1/dry-run/runs', body);
      replace(plan,
        h('p', {}, `Would run ${p.what} (SHA-256 ${p.sha256}) on ${p.hosts.length} `
          + `${p.hosts.length === 1 ? 'host' : 'hosts'}: ${p.hosts.join(', ')}`),
        p.files.map((f) => h('p', { class: 'muted' },
          `with ${f.path} ${f.phase ? `${f.phase} it ` : ''}(${f.size} bytes, SHA-256 ${f.sha256})`)),
        p.left_out.length ? h('p', { class: 'muted' }, leftOutNote(p.left_out)) : null,
        h('p', { class: 'muted' }, 'Dry run: nothing was done.'));
    } catch (e) {
      ctx.alert(e);
    }
  });
  /** Follows what was just launched here, kept in the address. */
  const started = (launched) => {
    history.replaceState(null, '', `#/run?launch=${launched.launch}`);
    follow(section, ctx, launched.launch, launched);
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = targets();
    if (script.value) body.script = script.value;
    else if (command) body.command = command.value;
    submit.disabled = true;
    ctx.clear();
    try {
      started(await api('POST', '/api/v1/runs', body));
    } catch (e) {
      submit.disabled = false;
      ctx.alert(e);
    }
  });
  // Files to and from the same hosts: the run level read-write only, as the API asks.
  replace(section, h('h1', {}, 'Run'), form,
    commands ? [uploadForm(ctx, targets, started), fetchForm(ctx, targets)] : null);
}

/** Whether this user may update agents: the permission `hosts` and the run level read-write. */
export function mayUpdate(ctx) {
  return ctx.may('hosts') && ctx.mayRun('read-write');
}

/** A button that updates the agents of the hosts `choose()` names (`{ targets, what }`: the
 * request's hosts, and them in words) with POST /api/v1/updates, and follows the launch on this
 * page, as a run's; after asking, since new agents restart. */
export function updateButton(ctx, label, id, choose) {
  const button = h('button', { type: 'button', id }, label);
  button.addEventListener('click', async () => {
    const { targets, what } = choose();
    if (!confirm(`Update the agents of ${what}? Each restarts into its new binary.`)) return;
    button.disabled = true;
    try {
      const launched = await api('POST', '/api/v1/updates', targets);
      location.hash = `#/run?launch=${launched.launch}`;
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  });
  return button;
}

/** A host's agent version, marked when it is behind the newest the server has. */
export function agentVersion(entry) {
  const version = entry.status.agent_version || '—';
  return entry.behind
    ? [version, ' ', h('span', { class: 'warn', 'data-behind': entry.name }, `(behind ${entry.newest_agent})`)]
    : version;
}

/** Shows launch `id` live, from its start; `launched` is what starting it answered, if known. */
function follow(section, ctx, id, launched) {
  const hostsBox = h('div', { id: 'run-hosts-output' });
  const summary = h('p', { id: 'run-summary', 'aria-live': 'polite' }, 'Running…');
  const cancelAll = h('button', { type: 'button', class: 'danger', id: 'cancel-all' }, 'Cancel all');
  const title = h('h1', {}, `Run ${id}`);
  let job = launched ? launched.job : null;
  const perHost = new Map();
  let finished = false;
  // Who started it may cancel it; a launch followed again from the address needs read-write
  // (its level is not known here).
  const mayCancel = Boolean(launched) || ctx.mayRun();

  /** The section of `name`, made on first use. */
  const hostPart = (name) => {
    let part = perHost.get(name);
    if (part) return part;
    const status = h('span', { class: 'muted', 'data-status': name }, 'running');
    const output = h('pre', { class: 'output', 'data-output': name });
    const cancel = h('button', { type: 'button', 'data-cancel': name }, `Cancel ${name}`);
    cancel.addEventListener('click', () => cancelHost(name, cancel));
    const el = h('section', { class: 'hostrun', 'data-host': name, 'aria-label': name },
      h('header', {}, h('h2', {}, h('a', { href: `#/hosts/${encodeURIComponent(name)}` }, name)), status,
        mayCancel ? cancel : null),
      output);
    hostsBox.append(el);
    part = { status, output, cancel, done: false };
    perHost.set(name, part);
    return part;
  };

  /** Cancels the run of `name` in this launch: its newest run, if it is still going. */
  const cancelHost = async (name, button) => {
    button.disabled = true;
    try {
      const [latest] = await api('GET', query('/api/v1/runs', { host: name, limit: 1 }));
      if (!latest || latest.finished || (job && latest.what !== job)) {
        ctx.info(`${name} has no run of this launch going.`);
        return;
      }
      await api('POST', `/api/v1/runs/${latest.id}/cancel`);
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  };

  cancelAll.addEventListener('click', async () => {
    cancelAll.disabled = true;
    try {
      await api('POST', `/api/v1/launches/${id}/cancel`);
      // The summary may have come meanwhile.
      if (!finished) summary.textContent = 'Cancelling…';
    } catch (e) {
      cancelAll.disabled = false;
      ctx.alert(e);
    }
  });
  replace(section, title, h('p', { class: 'muted', id: 'run-job' }, job || ''),
    mayCancel ? h('div', { class: 'actions' }, cancelAll) : null, summary, hostsBox);
  if (launched) launched.hosts.forEach(hostPart);

  const events = new EventSource(`/api/v1/launches/${id}/events`);
  const end = () => {
    finished = true;
    events.close();
    cancelAll.disabled = true;
    for (const part of perHost.values()) part.cancel.disabled = true;
  };
  ctx.onLeave(() => events.close());
  const on = (type, fn) => events.addEventListener(type, (event) => {
    if (!event.data) return;
    fn(JSON.parse(event.data));
  });
  on('started', (e) => {
    job = e.job;
    replace(title, `Run ${id}: ${e.job}`);
    replace(section.querySelector('#run-job'), `On ${e.hosts.length} host${e.hosts.length === 1 ? '' : 's'}: ${e.hosts.join(', ')}`);
    if (e.schedule) {
      section.querySelector('#run-job').after(h('p', { id: 'run-schedule' }, 'Started by the schedule ',
        h('a', { href: '#/schedules' }, e.schedule), '.'));
    }
    e.hosts.forEach(hostPart);
  });
  on('output', (e) => {
    const { output } = hostPart(e.host);
    const line = e.text.endsWith('\n') ? e.text : `${e.text}\n`;
    append(output, [e.stream === 'stderr' ? h('span', { class: 'stderr' }, line) : line]);
    output.scrollTop = output.scrollHeight;
  });
  on('gap', (e) => {
    for (const part of perHost.values()) {
      append(part.output, [h('span', { class: 'muted' }, `[${e.dropped} events not shown here: the history keeps them]\n`)]);
    }
  });
  on('done', (e) => {
    const part = hostPart(e.host);
    part.done = true;
    part.cancel.disabled = true;
    part.status.className = { ok: 'ok', cancelled: 'warn', skipped: 'muted' }[e.status] || 'bad';
    part.status.textContent = e.outcome;
  });
  // An update of agents (or an upload): each host's bytes sent, then how it ended.
  on('progress', (e) => {
    const part = hostPart(e.host);
    part.status.textContent = e.sent >= e.bytes
      ? `sent ${e.bytes} bytes, waiting for it`
      : `sending: ${Math.floor((e.sent * 100) / Math.max(e.bytes, 1))}%`;
  });
  on('uploaded', (e) => {
    const part = hostPart(e.host);
    part.done = true;
    part.cancel.disabled = true;
    part.status.className = { ok: 'ok', cancelled: 'warn', skipped: 'muted' }[e.status] || 'bad';
    part.status.textContent = e.detail;
  });
  on('upload-summary', (e) => {
    const counts = [`${e.succeeded} succeeded`, `${e.failed} failed`];
    if (e.cancelled) counts.push(`${e.cancelled} cancelled`);
    if (e.skipped) counts.push(`${e.skipped} skipped`);
    summary.textContent = `${counts.join(', ')}.`;
    summary.className = e.failed ? 'bad' : e.cancelled || e.skipped ? 'warn' : 'ok';
    end();
  });
  on('summary', (e) => {
    // Cancelled and skipped hosts are their own counts, never failures.
    const counts = [`${e.succeeded} succeeded`, `${e.failed} failed`];
    if (e.cancelled) counts.push(`${e.cancelled} cancelled`);
    if (e.skipped) counts.push(`${e.skipped} skipped`);
    summary.textContent = `${counts.join(', ')}.`;
    summary.className = e.failed ? 'bad' : e.cancelled || e.skipped ? 'warn' : 'ok';
    end();
  });
  events.addEventListener('error', (event) => {
    if (finished) return;
    if (event.data) {
      const e = JSON.parse(event.data);
      ctx.alert(e.message || 'The run failed.');
    } else {
      ctx.alert('The connection to the run was lost: reload the page to follow it again.');
    }
    summary.textContent = 'Not followed any more.';
    end();
  });
}
