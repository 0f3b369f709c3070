// Building the page from data without ever parsing it as HTML: h('td', {class: 'x'}, text, child).
// Attributes starting with "on" take a function (an event listener); `null`, `undefined` and
// `false` attributes and children are left out.

/** A new element `tag` with `attrs` and `children` (strings become text nodes). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends `children` (nested arrays, strings, nodes; null left out) to `el`. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces everything in `el` by `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A labelled input: a <label for> and its control, in a <div>. */
export function field(label, control) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div', {}, h('label', { for: id }, label), control);
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** What a cell sorts by: its `data-sort`, else the time of its <time>, else its text. */
function sortKey(cell) {
  if (!cell) return '';
  if (cell.dataset.sort !== undefined) return cell.dataset.sort;
  const time = cell.querySelector('time[datetime]');
  return time ? time.dateTime : cell.textContent.trim();
}

/** Makes the columns of `table` (one with a <thead>) sortable: each header with a name becomes a
 * button that sorts the rows of its body by that column, ascending, then descending
 * (`aria-sort` says which); numbers in text compare as numbers. A header marked
 * `data-unsorted` (a column of checkboxes) stays as it is. Once per table. */
export function sortable(table) {
  if (table.dataset.sortable !== undefined || !table.tHead) return;
  table.dataset.sortable = '';
  const heads = [...table.tHead.querySelectorAll('th')];
  heads.forEach((th, column) => {
    if (!th.textContent.trim() || th.dataset.unsorted !== undefined) return;
    const button = h('button', { type: 'button', class: 'sort' }, ...th.childNodes);
    th.replaceChildren(button);
    button.addEventListener('click', () => {
      const ascending = th.getAttribute('aria-sort') !== 'ascending';
      for (const other of heads) other.removeAttribute('aria-sort');
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      for (const body of table.tBodies) {
        const rows = [...body.rows];
        rows.sort((a, b) => collator.compare(sortKey(a.cells[column]), sortKey(b.cells[column])));
        if (!ascending) rows.reverse();
        body.append(...rows);
      }
    });
  });
}
