// Charts of the fleet and a host over time (GET /api/v1/metrics, GET
// /api/v1/hosts/{name}/metrics), drawn by uPlot: a small, well-kept library shipped as a file
// (server/web/vendor/, MIT), loaded on the first page that shows a chart. Each chart has a
// caption in words, for those who do not look at pictures; its colours follow the page's
// (light or dark).

let loading = null;

/** uPlot, loaded once (its script and style sheet from this origin). */
function library() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const css = document.createElement('link');
      css.rel = 'stylesheet';
      css.href = '/ui/vendor/uPlot.min.css';
      document.head.append(css);
      const script = document.createElement('script');
      script.src = '/ui/vendor/uPlot.iife.min.js';
      script.onload = () => resolve(window.uPlot);
      script.onerror = () => {
        loading = null;
        reject(new Error('The chart library did not load.'));
      };
      document.head.append(script);
    });
  }
  return loading;
}

/** The page's colour `name` (a CSS variable of app.css). */
function colour(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--${name}`).trim() || '#888';
}

/** Seconds since the epoch of an RFC 3339 time. */
export function seconds(text) {
  return Date.parse(text) / 1000;
}

/** Draws into `el` a chart of `series` ({ label, values, colour (a variable's name) }) over
 * `xs` (seconds) within the last `days`, `unit` on its axis; a note in `el` instead when there
 * is nothing to draw. */
export async function chart(el, xs, series, unit, days) {
  if (!xs.length) {
    el.append(Object.assign(document.createElement('p'), { className: 'muted', textContent: 'Nothing recorded yet.' }));
    return null;
  }
  const uPlot = await library();
  const now = Date.now() / 1000;
  const axis = { stroke: colour('muted'), grid: { stroke: colour('line'), width: 1 }, ticks: { stroke: colour('line') } };
  const opts = {
    width: Math.max(260, Math.min(el.clientWidth || 600, 900)),
    height: 180,
    series: [{}, ...series.map((s) => ({
      label: s.label,
      stroke: colour(s.colour),
      width: 2,
      points: { show: true, size: 5, fill: colour(s.colour) },
    }))],
    scales: { x: { time: true, range: () => [now - days * 86400, now] }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] } },
    axes: [axis, { ...axis, label: unit, size: 56 }],
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
  };
  return new uPlot(opts, [xs, ...series.map((s) => s.values)], el);
}
