// The app's shell: who is signed in (GET /api/v1/session), the navigation (only what their
// permissions allow), the alert region every error goes to, and the router: each page is a
// module in pages/ whose default export renders into a fresh <section> of <main>.

import { api, setCsrf, ApiError } from './api.js';
import { h, replace, sortable } from './dom.js';
import signin from './pages/signin.js';
import dashboard from './pages/dashboard.js';
import hosts from './pages/hosts.js';
import host from './pages/host.js';
import run from './pages/run.js';
import scripts from './pages/scripts.js';
import script from './pages/script.js';
import env from './pages/env.js';
import groups from './pages/groups.js';
import group from './pages/group.js';
import historyPage from './pages/history.js';
import job from './pages/job.js';
import webhooks from './pages/webhooks.js';
import pastRun from './pages/pastrun.js';
import events from './pages/events.js';
import users from './pages/users.js';
import account from './pages/account.js';
import options from './pages/options.js';
import schedules from './pages/schedules.js';
import tokens from './pages/tokens.js';
import rules from './pages/rules.js';
import pending from './pages/pending.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const menu = document.getElementById('menu');
const bar = nav.parentElement;
const alertBox = document.getElementById('alert');

/** Pages by the path of `location.hash`. Some only for those `allowed`: to others, the page
 * says what it `needs`. Those `live` are shown again when a change they show happens. */
const routes = [
  { path: /^\/$/, page: dashboard, title: 'Dashboard', live: () => true },
  { path: /^\/hosts$/, page: hosts, title: 'Hosts', live: (change) => Boolean(change.host) },
  { path: /^\/hosts\/([^/]+)$/, page: host, title: 'Host', live: (change, [name]) => change.host === name },
  {
    path: /^\/run$/, page: run, title: 'Run',
    allowed: (c) => c.mayRun('read-only'), needs: 'the run level “read-only” or “read-write”',
  },
  { path: /^\/scripts$/, page: scripts, title: 'Scripts' },
  { path: /^\/scripts\/([^/]+)$/, page: script, title: 'Script' },
  { path: /^\/env$/, page: env, title: 'Environment' },
  { path: /^\/groups$/, page: groups, title: 'Groups' },
  // A group's name may be empty (from an older database): `#/groups/` is its page.
  { path: /^\/groups\/([^/]*)$/, page: group, title: 'Group' },
  { path: /^\/history$/, page: historyPage, title: 'History' },
  { path: /^\/history\/(\d+)$/, page: pastRun, title: 'Run' },
  { path: /^\/jobs\/(\d+)$/, page: job, title: 'Job', live: (change) => change.kind && change.kind.startsWith('run') },
  { path: /^\/events$/, page: events, title: 'Events', allowed: (c) => c.may('audit'), needs: 'the permission “audit”' },
  {
    path: /^\/webhooks$/, page: webhooks, title: 'Webhooks',
    allowed: (c) => c.may('audit'), needs: 'the permission “audit”', live: (change) => change.kind === 'webhook-changed',
  },
  { path: /^\/users$/, page: users, title: 'Users', allowed: (c) => c.may('users'), needs: 'the permission “users”' },
  {
    path: /^\/account$/, page: account, title: 'Your account',
    allowed: (c) => Boolean(c.me.user), needs: 'signing in with a user’s name and password, not an API key',
  },
  { path: /^\/options$/, page: options, title: 'Options', allowed: (c) => c.may('options'), needs: 'the permission “options”' },
  { path: /^\/schedules$/, page: schedules, title: 'Schedules' },
  { path: /^\/enrollment$/, page: tokens, title: 'Enrollment tokens', allowed: (c) => c.may('enrollment'), needs: 'the permission “enrollment”' },
  { path: /^\/enrollment\/rules$/, page: rules, title: 'Enrollment rules', allowed: (c) => c.may('enrollment'), needs: 'the permission “enrollment”' },
  { path: /^\/pending$/, page: pending, title: 'Pending approval', allowed: (c) => c.may('hosts'), needs: 'the permission “hosts”' },
];

/** What every page is given: who is signed in, what they may do, the alert region. */
const ctx = {
  me: null,
  leaving: [],
  /** What to say on the page the user goes to next ([`go`]). */
  arriving: null,
  /** Whether the user has the permission `name` (hosts, groups, scripts…). */
  may(name) {
    const p = this.me && this.me.permissions;
    return Boolean(p && (p.admin || p.modify.includes(name)));
  },
  /** Whether the user's run level allows running what needs `level`: 'read-write' (the
   * default: every script and commands) or 'read-only' (read-only scripts). */
  mayRun(level = 'read-write') {
    const p = this.me && this.me.permissions;
    const allowed = level === 'read-only' ? ['read-only', 'read-write'] : ['read-write'];
    return Boolean(p && (p.admin || allowed.includes(p.run)));
  },
  /** Shows `error` (an ApiError, an Error or a sentence) in the alert region. */
  alert(error) {
    if (error instanceof ApiError && error.status === 401 && this.me) {
      this.me = null;
      start('Your session has ended: sign in again.');
      return;
    }
    alertBox.className = 'alert';
    alertBox.textContent = error instanceof Error ? error.message : String(error);
    alertBox.hidden = false;
  },
  /** Shows a message that is not an error. */
  info(text) {
    alertBox.className = 'alert info';
    alertBox.textContent = text;
    alertBox.hidden = false;
  },
  clear() {
    alertBox.hidden = true;
    alertBox.textContent = '';
  },
  /** Goes to the page `hash`, and says `text` there (not an error). */
  go(hash, text) {
    this.arriving = text;
    location.hash = hash;
  },
  /** Runs `fn` when the user leaves the page (e.g. to stop following a run). */
  onLeave(fn) {
    this.leaving.push(fn);
  },
  /** Signed in as `me` (the answer of GET /api/v1/session or of signing in). */
  async signedIn(me) {
    this.me = me;
    setCsrf(me.csrf_token);
    // The address without a page event: this renders once.
    if (!location.hash || location.hash === '#/signin') history.replaceState(null, '', '#/');
    await route();
  },
};

/** The fleet's changes (GET /api/v1/changes): one stream while a user is signed in, told to
 * the `listeners` (the page shown). The browser reconnects by itself, naming the last change
 * it had, and the server catches it up. */
let changes = null;
const listeners = new Set();

function followChanges() {
  if (changes || !ctx.me || !ctx.me.user) return;
  changes = new EventSource('/api/v1/changes');
  changes.addEventListener('change', (event) => {
    const change = JSON.parse(event.data);
    for (const listener of listeners) listener(change);
  });
}

function stopChanges() {
  if (changes) changes.close();
  changes = null;
}

/** Shows the page in `section` again (`render` into a fresh section, swapped in whole, its
 * tables sorted as they were) when a change `wanted` happens: at most every 300 ms, and not
 * while the user is typing in it, has typed in a field of it, has a form of it open or has
 * chosen hosts there. */
function live(section, wanted, render) {
  let current = section;
  let timer = null;
  let busy = false;
  /** Whether its user is typing in it, has typed in a field of it (and gone on to the next:
   * swapping the page in would lose it), has a form of it open or hosts chosen there. */
  const working = () => {
    const active = document.activeElement;
    const typed = [...current.querySelectorAll('input, textarea')]
      .some((field) => field.type !== 'checkbox' && field.value !== field.defaultValue);
    return (current.contains(active) && active.matches('input, textarea, select'))
      || typed
      || Boolean(current.querySelector('details[open], input[type=checkbox]:checked'));
  };
  const refresh = async () => {
    timer = null;
    if (busy || working()) {
      timer = setTimeout(refresh, 1000);
      return;
    }
    busy = true;
    // The page showing itself again meanwhile (after an action of its user) makes what was
    // read here older than what it shows: read again instead of swapping it in.
    let changed = false;
    const watching = new MutationObserver(() => { changed = true; });
    watching.observe(current, { childList: true, subtree: true, characterData: true });
    try {
      const fresh = h('section');
      await render(fresh);
      watching.disconnect();
      if (!current.isConnected) return;
      // Its user may have begun something while it was read.
      if (changed || working()) {
        timer = setTimeout(refresh, changed ? 300 : 1000);
        return;
      }
      const sorted = [...current.querySelectorAll('table')].map((t) => {
        const th = t.querySelector('th[aria-sort]');
        return th && [th.cellIndex, th.getAttribute('aria-sort')];
      });
      current.replaceWith(fresh);
      current = fresh;
      fresh.querySelectorAll('table').forEach((table, i) => {
        sortable(table);
        const [column, order] = sorted[i] || [];
        const button = column !== undefined && table.tHead.rows[0].cells[column].querySelector('button.sort');
        if (!button) return;
        button.click();
        if (order === 'descending') button.click();
      });
    } catch (e) {
      ctx.alert(e);
    } finally {
      watching.disconnect();
      busy = false;
    }
  };
  const listener = (change) => {
    if (wanted(change) && !timer) timer = setTimeout(refresh, 300);
  };
  listeners.add(listener);
  ctx.onLeave(() => {
    listeners.delete(listener);
    clearTimeout(timer);
  });
}

/** Opens or closes the menu (on a phone's width the navigation is behind it). */
function openMenu(open) {
  bar.classList.toggle('open', open);
  menu.setAttribute('aria-expanded', String(open));
}
menu.addEventListener('click', () => openMenu(!bar.classList.contains('open')));

/** The navigation for the user signed in. */
function renderNav() {
  openMenu(false);
  if (!ctx.me) {
    nav.hidden = true;
    menu.hidden = true;
    replace(nav);
    stopChanges();
    return;
  }
  followChanges();
  const here = location.hash.replace(/\?.*$/, '') || '#/';
  const link = (href, text) => h('a', { href, 'aria-current': here === href ? 'page' : null }, text);
  replace(
    nav,
    link('#/', 'Dashboard'),
    link('#/hosts', 'Hosts'),
    ctx.mayRun('read-only') ? link('#/run', 'Run') : null,
    link('#/groups', 'Groups'),
    link('#/scripts', 'Scripts'),
    link('#/history', 'History'),
    link('#/schedules', 'Schedules'),
    ctx.may('audit') ? link('#/events', 'Events') : null,
    ctx.may('audit') ? link('#/webhooks', 'Webhooks') : null,
    ctx.may('users') ? link('#/users', 'Users') : null,
    ctx.may('options') ? link('#/options', 'Options') : null,
    ctx.may('enrollment') ? link('#/enrollment', 'Enrollment') : null,
    ctx.may('hosts') ? link('#/pending', 'Pending') : null,
    h('span', { class: 'who' }, ctx.me.user ? link('#/account', `Signed in as ${ctx.me.user}`) : 'Signed in with an API key'),
    h('button', { type: 'button', id: 'signout', onclick: signOut }, 'Sign out'),
  );
  nav.hidden = false;
  menu.hidden = false;
}

async function signOut() {
  try {
    await api('DELETE', '/api/v1/session');
  } catch (e) {
    ctx.alert(e);
    return;
  }
  ctx.me = null;
  setCsrf(null);
  history.replaceState(null, '', '#/signin');
  start('You have signed out.');
}

/** Renders the page `location.hash` names into a fresh section of <main>; `navigated`: the
 * user went there (rather than the app starting). */
async function route(navigated = false) {
  for (const fn of ctx.leaving.splice(0)) fn();
  ctx.clear();
  renderNav();
  const section = h('section');
  replace(main, section);
  if (!ctx.me) {
    signin(section, ctx);
    return;
  }
  const [path, search] = (location.hash.slice(1) || '/').split('?');
  const params = new URLSearchParams(search || '');
  for (const r of routes) {
    const match = r.path.exec(path);
    if (!match) continue;
    if (r.allowed && !r.allowed(ctx)) {
      document.title = 'Not allowed · Otto';
      replace(section, h('h1', {}, 'Not allowed'),
        h('p', { id: 'not-allowed' }, `The page ${r.title} needs ${r.needs}, which you do not have. `,
          'An administrator can give it to you. ', h('a', { href: '#/' }, 'Go to the dashboard.')));
      return;
    }
    document.title = `${r.title} · Otto`;
    const args = match.slice(1).map(decodeURIComponent);
    try {
      await r.page(section, ctx, { params, args });
      if (r.live) live(section, (change) => r.live(change, args), (fresh) => r.page(fresh, ctx, { params, args }));
    } catch (e) {
      ctx.alert(e);
    }
    if (ctx.arriving) {
      ctx.info(ctx.arriving);
      ctx.arriving = null;
    }
    // Keyboard and screen reader users start at the new page's content.
    if (navigated && !section.contains(document.activeElement)) main.focus({ preventScroll: true });
    return;
  }
  document.title = 'Not found · Otto';
  replace(section, h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. ', h('a', { href: '#/' }, 'Go to the dashboard.')));
}

/** Finds out who is signed in (if anyone), then shows the page; `message` on the sign-in page. */
async function start(message) {
  try {
    const me = await api('GET', '/api/v1/session');
    ctx.me = me;
    setCsrf(me.csrf_token);
  } catch (e) {
    ctx.me = null;
    if (!(e instanceof ApiError && e.status === 401)) message = e.message;
  }
  await route();
  if (message) ctx.info(message);
}

// Every table with headers is sortable by them, whenever a page shows one.
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      if (node.matches('table')) sortable(node);
      else if (node.matches('thead')) sortable(node.parentElement);
      else node.querySelectorAll('table').forEach(sortable);
    }
  }
}).observe(main, { childList: true, subtree: true });

window.addEventListener('hashchange', () => route(true));
start();
