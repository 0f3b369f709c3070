// Times as the browser's user reads them: their time zone and language, and how long ago.

const format = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "3 min ago" (or "in 2 hr") for an RFC 3339 time, against `now`. */
export function ago(text, now = Date.now()) {
  const seconds = Math.round((Date.parse(text) - now) / 1000);
  const steps = [['day', 86400], ['hour', 3600], ['minute', 60]];
  for (const [unit, size] of steps) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(seconds, 'second');
}

/** An element for the RFC 3339 time `text`: local date and time, and how long ago; "never"
 * when there is none. */
export function when(text) {
  const el = document.createElement('time');
  if (!text) {
    el.textContent = 'never';
    return el;
  }
  el.dateTime = text;
  el.title = text;
  el.textContent = `${format.format(new Date(text))} (${ago(text)})`;
  return el;
}
