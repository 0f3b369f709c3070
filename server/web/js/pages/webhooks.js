// Webhooks (permission `audit` to see them, `options` to change them): where the server POSTs
// the events chosen, signed with HMAC-SHA256 under a secret shown once when the webhook is
// added (POST /api/v1/webhooks); removed after asking (DELETE …/{id}, with its deliveries);
// and the newest deliveries with how each stands (GET /api/v1/webhooks/deliveries).

import { api, query } from '../api.js';
import { h, field, replace } from '../dom.js';
import { when } from '../time.js';

/** What a webhook can be told of, in words. */
const EVENTS = [
  ['run-failed', 'A run failed'],
  ['host-unreachable', 'A host became unreachable'],
  ['key-pending', 'A key waits for approval'],
  ['schedule-skipped', 'A schedule was skipped'],
];

const STATUS = { delivered: 'ok', pending: 'warn', failed: 'bad' };

export default async function webhooks(section, ctx, _route, added = null) {
  replace(section, h('h1', {}, 'Webhooks'), h('p', { class: 'muted' }, 'Loading…'));
  const [hooks, deliveries] = await Promise.all([
    api('GET', '/api/v1/webhooks'),
    api('GET', query('/api/v1/webhooks/deliveries', { limit: 50 })),
  ]);
  const rerender = (made) => webhooks(section, ctx, _route, made);
  const mayChange = ctx.may('options');

  const remove = async (button, w) => {
    if (!confirm(`Remove webhook ${w.id} (${w.url}) and its deliveries? This cannot be undone.`)) return;
    button.disabled = true;
    try {
      await api('DELETE', `/api/v1/webhooks/${w.id}`);
      await rerender();
      ctx.info(`Webhook ${w.id} is removed.`);
    } catch (e) {
      button.disabled = false;
      ctx.alert(e);
    }
  };

  let form = null;
  if (mayChange) {
    const url = h('input', { id: 'webhook-url', type: 'url', required: true, placeholder: 'https://hooks.example.com/otto', autocomplete: 'off' });
    const boxes = EVENTS.map(([value, text]) => h('label', { class: 'inline' },
      h('input', { type: 'checkbox', name: 'events', value, 'data-event': value, checked: value === 'run-failed' }), text));
    const submit = h('button', { type: 'submit', class: 'primary', id: 'webhook-add' }, 'Add webhook');
    form = h('form', { class: 'card', id: 'new-webhook' },
      h('h2', {}, 'Add a webhook'),
      field('URL (http or https)', url),
      h('fieldset', {}, h('legend', {}, 'Tell it when'), boxes),
      h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const events = boxes.map((b) => b.querySelector('input')).filter((b) => b.checked).map((b) => b.value);
      submit.disabled = true;
      try {
        await rerender(await api('POST', '/api/v1/webhooks', { url: url.value.trim(), events }));
      } catch (e) {
        submit.disabled = false;
        ctx.alert(e);
      }
    });
  }

  const shown = added ? h('div', { class: 'card', id: 'webhook-made' },
    h('h2', {}, `Webhook ${added.id}: keep its secret now, it is not shown again`),
    h('p', {}, 'Secret: ', h('code', { id: 'webhook-secret' }, added.secret)),
    h('p', { class: 'muted' }, 'Each delivery carries X-Otto-Signature-256: sha256= and the HMAC-SHA256 of its body under this secret.')) : null;

  const names = Object.fromEntries(EVENTS);
  replace(section,
    h('h1', {}, 'Webhooks'),
    shown,
    hooks.length
      ? h('table', { id: 'webhooks' },
        h('thead', {}, h('tr', {}, ['Id', 'URL', 'Told when', 'Added', mayChange ? 'Action' : null]
          .filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, hooks.map((w) => h('tr', { 'data-webhook': w.id },
          h('td', { 'data-label': 'Id' }, String(w.id)),
          h('td', { 'data-label': 'URL' }, w.url),
          h('td', { 'data-label': 'Told when' }, w.events.map((e) => names[e] || e).join('; ')),
          h('td', { 'data-label': 'Added' }, when(w.created)),
          mayChange ? h('td', {}, h('button', {
            type: 'button', class: 'danger', 'data-remove': w.id, onclick: (event) => remove(event.target, w),
          }, `Remove ${w.id}`)) : null))))
      : h('p', { class: 'muted', id: 'webhooks-none' }, 'No webhooks: nobody is told of anything.'),
    form,
    h('h2', {}, 'Newest deliveries'),
    deliveries.length
      ? h('table', { id: 'deliveries' },
        h('thead', {}, h('tr', {}, ['Delivery', 'Webhook', 'Event', 'Status', 'Attempts', 'Last answer', 'Next / last try']
          .map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, deliveries.map((d) => h('tr', { 'data-delivery': d.id },
          h('td', { 'data-label': 'Delivery' }, String(d.id)),
          h('td', { 'data-label': 'Webhook' }, String(d.webhook)),
          h('td', { 'data-label': 'Event' }, names[d.kind] || d.kind),
          h('td', { 'data-label': 'Status', class: STATUS[d.status] || '' }, d.status),
          h('td', { 'data-label': 'Attempts' }, String(d.attempts)),
          h('td', { 'data-label': 'Last answer' }, d.error || (d.code ? String(d.code) : '–')),
          h('td', { 'data-label': 'Next / last try' }, when(d.next))))))
      : h('p', { class: 'muted', id: 'deliveries-none' }, 'Nothing delivered yet.'));
}
