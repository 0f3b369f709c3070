// A host's facts as people read them (the API's `Facts`, from its last heartbeat): its release,
// architecture with byte order, uptime, loads, sizes, and its free flash, marked in words when low.

import { h } from './dom.js';

/** Firmware or distribution and its version: "OpenWrt 24.10.0" ('' when unknown). */
export function release(facts) {
  return `${facts.distribution_name} ${facts.distribution_version}`.trim();
}

/** The architecture with its byte order: "mips (big-endian)". */
export function architecture(facts) {
  return `${facts.arch} (${facts.big_endian ? 'big' : 'little'}-endian)`;
}

/** Seconds since boot, its `parts` largest units from the first that is not zero, zero ones
 * left out: "3d 4h 5m" with 3, "3d 4h" with 2; "45s" under a minute. */
export function uptime(secs, parts = 3) {
  const units = [[Math.floor(secs / 86400), 'd'], [Math.floor((secs % 86400) / 3600), 'h'], [Math.floor((secs % 3600) / 60), 'm']];
  const first = units.findIndex(([n]) => n > 0);
  if (first < 0) return `${secs}s`;
  return units.slice(first, first + parts).filter(([n]) => n > 0).map(([n, u]) => `${n}${u}`).join(' ');
}

/** KiB as "512 KiB", "5.0 MiB", "1.2 GiB". */
export function size(kib) {
  if (kib >= 1024 * 1024) return `${(kib / (1024 * 1024)).toFixed(1)} GiB`;
  if (kib >= 1024) return `${(kib / 1024).toFixed(1)} MiB`;
  return `${kib} KiB`;
}

/** Whether the writable flash is running out: under 10 % or under 1 MiB free (never when its
 * size is unknown). */
export function flashLow(facts) {
  const total = facts.flash_total_kib;
  return total > 0 && (facts.flash_free_kib < 1024 || facts.flash_free_kib * 10 < total);
}

/** The free flash as an element: "5.0 MiB (67%)", or in full "5.0 MiB of 7.5 MiB free (67%)";
 * when low it says so in words ("Low: …") and is marked (class `warn`); "—" when unknown. */
export function flash(facts, full = false) {
  const total = facts.flash_total_kib;
  if (!total) return h('span', { class: 'muted flash' }, '—');
  const free = facts.flash_free_kib;
  const percent = Math.round((free * 100) / total);
  const text = full ? `${size(free)} of ${size(total)} free (${percent}%)` : `${size(free)} (${percent}%)`;
  return flashLow(facts)
    ? h('span', { class: 'warn flash low', title: 'Under 10 % or under 1 MiB free' }, h('strong', {}, 'Low: '), text)
    : h('span', { class: 'flash' }, text);
}
