// Fact selectors as a person types them in one field: `arch=mips and kernel~^5\.` (each
// selector as `--where` takes it, joined by “and”), and what to say of the hosts they left
// out (their agent has not reported facts yet).

/** The selectors in `text`, joined by “and”. */
export function selectors(text) {
  return text.split(/\s+and\s+/i).map((s) => s.trim()).filter(Boolean);
}

/** What to say of the hosts `leftOut` names, or '' when none. */
export function leftOutNote(leftOut) {
  if (!leftOut || !leftOut.length) return '';
  const shown = leftOut.slice(0, 10).join(', ');
  const more = leftOut.length > 10 ? ` and ${leftOut.length - 10} more` : '';
  const hosts = leftOut.length === 1 ? 'host' : 'hosts';
  return `${leftOut.length} ${hosts} left out: no facts reported yet: ${shown}${more}`;
}
