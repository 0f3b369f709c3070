// One run of the history (GET /api/v1/runs/{id}): how it ended and its kept output, standard
// output and error apart; one still going is cancelled (POST /api/v1/runs/{id}/cancel) by
// those who may run.

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
  const output = (title, streamText, stderr) => [
    h('h2', {}, title),
    streamText
      ? h('pre', { class: 'output', id: stderr ? 'pastrun-stderr' : 'pastrun-stdout' },
        stderr ? h('span', { class: 'stderr' }, streamText) : streamText)
      : h('p', { class: 'muted' }, 'None.'),
  ];
  replace(section,
    h('h1', {}, `Run #${run.id}: ${run.what}`),
    h('dl', { class: 'facts', id: 'pastrun' },
      h('dt', {}, 'Host'), h('dd', {}, h('a', { href: `#/hosts/${encodeURIComponent(run.host)}` }, run.host)),
      h('dt', {}, 'Started'), h('dd', {}, when(run.started)),
      h('dt', {}, 'Finished'), h('dd', {}, run.finished ? when(run.finished) : '—'),
      h('dt', {}, 'Took'), h('dd', {}, elapsed(run.elapsed_ms)),
      h('dt', {}, 'Result'), h('dd', { class: cls, id: 'pastrun-result' }, text),
      run.exit_code !== null && run.exit_code !== undefined ? [h('dt', {}, 'Exit code'), h('dd', {}, String(run.exit_code))] : null),
    cancel ? h('div', { class: 'actions' }, cancel) : null,
    output('Standard output', run.stdout, false),
    output('Standard error', run.stderr, true),
    run.truncated ? h('p', { class: 'warn' }, 'Output beyond the cap was not kept.') : null,
    h('p', {}, h('a', { href: `#/history?host=${encodeURIComponent(run.host)}` }, `Every run on ${run.host}`)));
}
