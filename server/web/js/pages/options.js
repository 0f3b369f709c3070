// The server's options as the running `serve` uses them (GET /api/v1/options, permission
// `options`), read-only: the page says what changes them.

import { api } from '../api.js';
import { h, replace } from '../dom.js';

/** Seconds in words: 5 min, 7 d, 15 s. */
function seconds(s) {
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['min', 60]]) {
    if (s >= size && s % size === 0) return `${s / size} ${unit}`;
  }
  return `${s} s`;
}

export default async function options(section) {
  replace(section, h('h1', {}, 'Options'), h('p', { class: 'muted' }, 'Loading…'));
  const o = await api('GET', '/api/v1/options');
  const code = (text) => h('code', { class: 'key' }, text);
  const rows = [
    ['Configuration file', o.config_file ? code(o.config_file) : 'none (flags and defaults only)', 'config'],
    ['Data directory', code(o.data_dir), 'data_dir'],
    ['HTTP API', o.http_listen ? `${o.http_scheme}://${o.http_listen}` : 'not served', 'http_listen'],
    ['Certificate', o.tls_certificate ? code(o.tls_certificate) : 'none: plain HTTP, behind a TLS proxy', 'tls_cert'],
    ['Certificate fingerprint (SHA-256)', o.tls_fingerprint ? code(o.tls_fingerprint) : '—', 'fingerprint'],
    ['HTTP connections at once', o.http_connections == null ? '—' : String(o.http_connections), 'http_connections'],
    ['… of them from one address (an IPv6 /64)', o.http_connections_per_source == null ? '—' : String(o.http_connections_per_source), 'http_connections_per_source'],
    ['Heartbeat interval', seconds(o.heartbeat_interval_secs), 'heartbeat_interval'],
    ['Key rotation', o.rotate_every_secs ? `every ${seconds(o.rotate_every_secs)}` : 'off', 'rotate_every'],
    ['Dial timeout', seconds(o.dial_timeout_secs), 'dial_timeout'],
    ['Hosts dialled at once', String(o.dial_limit), 'dial_limit'],
    ['Answer timeout', seconds(o.answer_timeout_secs), 'answer_timeout'],
    ['Stall timeout', seconds(o.stall_timeout_secs), 'stall_timeout'],
  ];
  replace(section,
    h('h1', {}, 'Options'),
    h('p', {},
      'These are the settings the server runs with. They are read when ', h('code', {}, 'otto-server serve'),
      ' starts, from its flags and its configuration file (', h('code', {}, 'server.toml'),
      ': ', h('code', {}, '/etc/otto/server.toml'), ' for root, else ', h('code', {}, '~/.config/otto/server.toml'),
      ', or the file ', h('code', {}, '--config'), ' names); a flag wins over the file. Change them there and restart ',
      h('code', {}, 'serve'), '.'),
    h('dl', { class: 'facts', id: 'options' }, rows.map(([label, value, key]) => [
      h('dt', {}, label),
      h('dd', { 'data-option': key }, value),
    ])));
}
