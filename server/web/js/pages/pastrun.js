// One run of the history (GET /api/v1/runs/{id}): how it ended and its kept output, standard
// output and error apart, searched line by line and downloaded as a file; one still going is
// cancelled (POST /api/v1/runs/{id}/cancel) by those who may run.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { when } from '../time.js';
import { elapsed, result } from './history.js';

export default async function pastRun(section, ctx, { args: [id] }) {
  replace(section, h('h1', {}, `Run #${id}`), h('p', { class: 'muted' }, 'Loading…'));
  const run = await api('GET', `/api/v1/runs/${encodeURIComponent(id)}`);
  const [text, cls] = result(run);
  const going = text === 'running';
  const cancel = going && ctx.mayRun()
    ? h('button', {
      type: 'button', class: 'danger', id: 'pastrun-cancel',
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          const done = await api('POST', `/api/v1/runs/${run.id}/cancel`);
          await pastRun(section, ctx, { args: [id] });
          ctx.info(done && done.detail ? done.detail : `Run #${run.id} is cancelled.`);
        } catch (e) {
          event.target.disabled = false;
          ctx.alert(e);
        }
      },
    }, 'Cancel it')
    : null;
  // Each line its own element, so that a search shows only those that match.
  const lines = [];
  const output = (title, streamText, stderr) => [
    h('h2', {}, title),
    streamText
      ? h('pre', { class: 'output', id: stderr ? 'pastrun-stderr' : 'pastrun-stdout' },
        streamText.replace(/\n$/, '').split('\n').map((line) => {
          const el = h('span', { class: stderr ? 'line stderr' : 'line' }, line, '\n');
          lines.push(el);
          return el;
        }))
      : h('p', { class: 'muted' }, 'None.'),
  ];
  const search = h('input', { type: 'search', id: 'pastrun-search', autocomplete: 'off', placeholder: 'Text in the output' });
  const matches = h('span', { class: 'muted', id: 'pastrun-matches', 'aria-live': 'polite' });
  const filter = () => {
    const wanted = search.value.toLowerCase();
    let shown = 0;
    for (const line of lines) {
      line.hidden = Boolean(wanted) && !line.textContent.toLowerCase().includes(wanted);
      if (!line.hidden) shown += 1;
    }
    matches.textContent = wanted ? `${shown} of ${lines.length} lines` : '';
  };
  // As it is typed, and when it is cleared at once (its ✕, or Escape).
  for (const event of ['input', 'change', 'search']) search.addEventListener(event, filter);
  // The output as a file: standard output, then standard error after a line that says so.
  const file = new Blob([run.stdout, run.stderr ? `\n--- standard error ---\n${run.stderr}` : ''], { type: 'text/plain' });
  const download = h('a', {
    class: 'button', id: 'pastrun-download', href: URL.createObjectURL(file),
    download: `otto-run-${run.id}-${run.host}.txt`,
  }, 'Download the output');
  ctx.onLeave(() => URL.revokeObjectURL(download.href));
  replace(section,
    h('h1', {}, `Run #${run.id}: ${run.what}`),
    h('dl', { class: 'facts', id: 'pastrun' },
      h('dt', {}, 'Host'), h('dd', {}, h('a', { href: `#/hosts/${encodeURIComponent(run.host)}` }, run.host)),
      h('dt', {}, 'Started'), h('dd', {}, when(run.started)),
      h('dt', {}, 'Finished'), h('dd', {}, run.finished ? when(run.finished) : '—'),
      h('dt', {}, 'Took'), h('dd', {}, elapsed(run.elapsed_ms)),
      h('dt', {}, 'Result'), h('dd', { class: cls, id: 'pastrun-result' }, text),
      run.launch ? [h('dt', {}, 'Job'), h('dd', {}, h('a', { href: `#/jobs/${run.launch}`, id: 'pastrun-job' }, `Job ${run.launch}`))] : null,
      run.exit_code !== null && run.exit_code !== undefined ? [h('dt', {}, 'Exit code'), h('dd', {}, String(run.exit_code))] : null),
    cancel ? h('div', { class: 'actions' }, cancel) : null,
    run.stdout || run.stderr
      ? h('div', { class: 'row', role: 'search' }, h('div', {}, h('label', { for: 'pastrun-search' }, 'Search the output'), search, ' ', matches),
        h('div', {}, download))
      : null,
    output('Standard output', run.stdout, false),
    output('Standard error', run.stderr, true),
    run.truncated ? h('p', { class: 'warn' }, 'Output beyond the cap was not kept.') : null,
    h('p', {}, h('a', { href: `#/history?host=${encodeURIComponent(run.host)}` }, `Every run on ${run.host}`)));
}
