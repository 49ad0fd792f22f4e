// The todo web app: plain DOM, no framework, no innerHTML. Hash routes:
// #/ (lists) and #/list/NAME (one list, NAME encodeURIComponent-ed). Served at a share
// link's address, /s/SECRET, it shows only that list, through the link, without logging in.

const main = document.getElementById('main');
const errorBox = document.getElementById('error');
const toastBox = document.getElementById('toast');
const statusBox = document.getElementById('status');
const whoBox = document.getElementById('who');
const logoutButton = document.getElementById('logout');
const confirmDialog = document.getElementById('confirm');

const app = { mode: null, user: null };
let viewToken = 0; // bumped on every view change; stale async work checks it
let current = null; // the list view's state, when one is shown
let focusAddNext = false;
let filter = 'all';
// On a share link's page, the link's address: the base of its list's API.
const linkBase = /^\/s\/[^/]+$/.test(location.pathname) ? location.pathname : null;

// ---------- DOM helpers ----------

function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const kid of kids.flat()) if (kid != null && kid !== false) el.append(kid);
  return el;
}

const hidden = (text) => h('span', { class: 'visually-hidden', text });

function field(labelText, input, visible = true) {
  return h('div', { class: 'field' },
    h('label', { for: input.id, class: visible ? null : 'visually-hidden', text: labelText }), input);
}

// Replaces the view: everything in <main> between #error and #toast.
function mount(...nodes) {
  for (const child of [...main.children]) {
    if (child !== errorBox && child !== toastBox) child.remove();
  }
  for (const node of nodes.flat()) if (node) main.insertBefore(node, toastBox);
}

function ready() {
  document.body.dataset.ready = '1';
}

function setTitle(text) {
  document.title = text ? `${text} — todo` : 'todo';
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, headers = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', method === 'GET'
      ? 'Cannot reach the server. Check your connection and try again.'
      : 'Cannot reach the server: your change may not have been saved.');
  }
  const text = response.status === 204 ? '' : await response.text().catch(() => '');
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `The server answered ${response.status} ${response.statusText}.`);
  }
  return data;
}

const listPath = (name) => `/lists/${encodeURIComponent(name)}`;

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Pages served over plain http to another host are not a secure context.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function messageOf(error) {
  if (error.status === 503) {
    if (error.code === 'storage_unavailable') return `Not saved: ${error.message}`;
    if (error.code === 'outcome_unknown') return `May or may not be saved: ${error.message}`;
  }
  return error.message || String(error);
}

// Shows an error; a 401 means the session is gone: log in again.
function fail(error) {
  if (error && error.status === 401) {
    showLogin('Your session has ended. Log in again.');
    return;
  }
  showError(messageOf(error));
}

function showError(text) {
  errorBox.textContent = text;
}

function clearError() {
  if (errorBox.textContent) errorBox.textContent = '';
}

// ---------- dates ----------

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const pad = (n, width = 2) => String(n).padStart(width, '0');
const isoOf = (d) => `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

function dateOf(iso) {
  const m = /^(\d{4,})-(\d\d)-(\d\d)$/.exec(iso || '');
  if (!m) return null;
  const d = new Date(2000, 0, 1);
  d.setFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return d;
}

function addDays(iso, n) {
  const d = dateOf(iso);
  d.setDate(d.getDate() + n);
  return isoOf(d);
}

const today = () => isoOf(new Date());

function formatDate(iso) {
  const d = dateOf(iso);
  if (!d) return iso;
  const text = `${WEEKDAYS[d.getDay()]} ${d.getDate()} ${MONTHS[d.getMonth()]}`;
  return d.getFullYear() === new Date().getFullYear() ? text : `${text} ${d.getFullYear()}`;
}

function formatTimestamp(text) {
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) return text || '';
  return `${formatDate(isoOf(d))}, ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// ---------- status, toast, dialog ----------

const STATUS_TEXT = {
  live: 'Live',
  connecting: 'Connecting…',
  offline: 'Offline — reconnecting…',
  online: 'Online',
};

function setStatus(state) {
  if (!navigator.onLine) state = 'offline';
  statusBox.dataset.state = state;
  if (statusBox.textContent !== STATUS_TEXT[state]) statusBox.textContent = STATUS_TEXT[state];
}

const toast = { timer: 0, action: null, paused: false };

function showToast(text, actionLabel, action) {
  clearTimeout(toast.timer);
  toast.action = action;
  toastBox.replaceChildren(h('span', { text }), ' ',
    h('button', { id: 'undo', type: 'button', class: 'link-button', onclick: () => runToastAction() }, actionLabel));
  toastBox.classList.add('show');
  armToast(8000);
}

function armToast(ms) {
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    if (!toast.paused) hideToast();
  }, ms);
}

function hideToast() {
  clearTimeout(toast.timer);
  toast.action = null;
  const hadFocus = toastBox.contains(document.activeElement);
  toastBox.classList.remove('show');
  toastBox.replaceChildren();
  if (hadFocus) focusFallback();
}

function runToastAction() {
  const action = toast.action;
  hideToast();
  if (action) action();
}

// Keep the toast while the pointer or focus is on it (it has a time limit otherwise).
toastBox.addEventListener('mouseenter', () => { toast.paused = true; });
toastBox.addEventListener('focusin', () => { toast.paused = true; });
toastBox.addEventListener('mouseleave', () => { toast.paused = false; if (toast.action) armToast(4000); });
toastBox.addEventListener('focusout', () => { toast.paused = false; if (toast.action) armToast(4000); });

function focusFallback() {
  const target = document.getElementById('add-title') || main.querySelector('h1');
  if (target) target.focus();
}

// Asks a yes/no question in the <dialog>; resolves true for yes.
function ask(question, yesLabel = 'Delete') {
  const opener = document.activeElement;
  document.getElementById('confirm-text').textContent = question;
  document.getElementById('confirm-yes').textContent = yesLabel;
  confirmDialog.returnValue = '';
  confirmDialog.showModal();
  document.getElementById('confirm-no').focus();
  return new Promise((resolve) => {
    confirmDialog.addEventListener('close', () => {
      if (opener && opener.isConnected) opener.focus();
      resolve(confirmDialog.returnValue === 'yes');
    }, { once: true });
  });
}

// ---------- session ----------

function setMe(me) {
  app.mode = me && me.mode === 'accounts' ? 'accounts' : 'open';
  app.user = app.mode === 'accounts' ? me.user : null;
  updateHeader();
}

function updateHeader() {
  const signedIn = app.mode === 'accounts' && app.user;
  whoBox.textContent = signedIn ? app.user : '';
  whoBox.parentElement.hidden = !signedIn;
  logoutButton.hidden = !signedIn;
}

logoutButton.addEventListener('click', async () => {
  clearError();
  try {
    await api('POST', '/auth/logout');
  } catch (error) {
    if (error.status !== 401) return fail(error);
  }
  showLogin();
});

function teardown() {
  viewToken += 1;
  if (current) {
    current.close();
    current = null;
  }
  hideToast();
  delete main.dataset.version;
  document.body.dataset.ready = '0';
}

function showLogin(message) {
  teardown();
  app.user = null;
  updateHeader();
  setTitle('Log in');
  setStatus('online');
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true,
    autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password',
    autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h('form', { id: 'login-form', class: 'card stack', novalidate: true }, field('User name', user),
    field('Password', password), h('div', { class: 'row' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError();
    if (!user.value.trim() || !password.value) {
      showError('Enter your user name and password.');
      (user.value.trim() ? password : user).focus();
      return;
    }
    submit.disabled = true;
    try {
      await api('POST', '/auth/login', { user: user.value.trim(), password: password.value });
      setMe(await api('GET', '/auth/me'));
      password.value = '';
      route(true);
    } catch (error) {
      submit.disabled = false;
      showError(messageOf(error));
      password.select();
      password.focus();
    }
  });
  mount(h('h1', { text: 'Log in' }), form);
  if (message) showError(message);
  else clearError();
  user.focus();
  ready();
}

// ---------- routing ----------

function route(moveFocus) {
  if (!app.mode) return;
  teardown();
  clearError();
  const token = viewToken;
  if (app.mode === 'link') {
    listView(null, token, moveFocus);
    return;
  }
  const hash = location.hash || '#/';
  const match = /^#\/list\/(.+)$/.exec(hash);
  if (!match) {
    listsView(token, moveFocus);
    return;
  }
  let name;
  try {
    name = decodeURIComponent(match[1]);
  } catch {
    location.hash = '#/';
    return;
  }
  listView(name, token, moveFocus);
}

window.addEventListener('hashchange', () => {
  if (app.mode && !(app.mode === 'accounts' && !app.user)) route(true);
});

window.addEventListener('online', () => {
  if (current) current.reconnect();
  else setStatus('online');
});
window.addEventListener('offline', () => setStatus('offline'));

// ---------- lists view ----------

async function fetchAllLists() {
  const names = [];
  let after = null;
  for (let page = 0; page < 1000; page += 1) {
    const query = new URLSearchParams({ limit: '1000' });
    if (after !== null) query.set('after', after);
    const body = await api('GET', `/lists?${query}`);
    names.push(...(body.lists || []));
    if (!body.next || body.next === after) break;
    after = body.next;
  }
  return names;
}

function listsView(token, moveFocus) {
  setTitle('');
  setStatus('online');
  const accounts = app.mode === 'accounts';
  const heading = h('h1', { tabindex: '-1', text: 'Your lists' });
  const own = h('ul', { id: 'own-lists', class: 'lists' });
  const ownEmpty = h('p', { class: 'muted', hidden: true, text: 'No lists yet.' });
  const shared = h('ul', { id: 'shared-lists', class: 'lists' });
  const sharedEmpty = h('p', { class: 'muted', hidden: true, text: 'No one has shared a list with you.' });

  const nameInput = h('input', { id: 'new-list-name', name: 'name', maxlength: '128', autocomplete: 'off',
    required: true, 'aria-describedby': 'new-list-hint', placeholder: 'e.g. groceries' });
  const newForm = h('form', { id: 'new-list-form', class: 'card', novalidate: true },
    h('div', { class: 'row' },
      h('label', { for: 'new-list-name', class: 'grow-label', text: 'New list' }),
      nameInput,
      h('button', { type: 'submit', class: 'primary' }, 'Open')),
    h('p', { id: 'new-list-hint', class: 'hint',
      text: 'Opens an empty list. A new list is kept once it has an entry. Names: letters, digits, spaces and - _ . @ +' }));
  newForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    if (!name) {
      showError('Type a name for the new list.');
      nameInput.focus();
      return;
    }
    if (name.includes(':')) {
      showError('A list name cannot contain “:”.');
      nameInput.focus();
      return;
    }
    focusAddNext = true;
    location.hash = `#/list/${encodeURIComponent(name)}`;
  });

  const nodes = [heading, newForm,
    h('section', { class: 'block', 'aria-labelledby': 'own-heading' },
      h('h2', { id: 'own-heading', text: accounts ? 'Yours' : 'Lists' }), own, ownEmpty)];
  if (accounts) {
    nodes.push(h('section', { class: 'block', 'aria-labelledby': 'shared-heading' },
      h('h2', { id: 'shared-heading', text: 'Shared with you' }), shared, sharedEmpty));
  }
  mount(nodes);
  if (moveFocus) heading.focus();

  const deleteList = async (name, item) => {
    if (!(await ask(`Delete the list “${name}” and all its entries? This cannot be undone.`, 'Delete list'))) return;
    clearError();
    try {
      await api('DELETE', listPath(name));
    } catch (error) {
      if (error.code !== 'list_not_found') return fail(error);
    }
    if (token !== viewToken) return;
    const next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    ownEmpty.hidden = own.children.length > 0;
    (next ? next.querySelector('a') : nameInput).focus();
  };

  fetchAllLists().then((names) => {
    if (token !== viewToken) return;
    for (const name of names) {
      const colon = name.indexOf(':');
      const href = `#/list/${encodeURIComponent(name)}`;
      if (colon < 0) {
        const item = h('li', {},
          h('a', { class: 'list-link', href, dataset: { list: name }, text: name }));
        item.append(h('button', { type: 'button', class: 'delete-list small subtle',
          onclick: () => deleteList(name, item) }, 'Delete', hidden(` list “${name}”`)));
        own.append(item);
      } else {
        shared.append(h('li', {},
          h('a', { class: 'list-link', href, dataset: { list: name }, text: name.slice(colon + 1) }),
          h('span', { class: 'owner' }, `from ${name.slice(0, colon)}`)));
      }
    }
    ownEmpty.hidden = own.children.length > 0;
    sharedEmpty.hidden = shared.children.length > 0;
    ready();
  }, (error) => {
    if (token !== viewToken) return;
    fail(error);
    ready();
  });
}

// ---------- list view ----------

const GROUPS = [
  ['overdue', 'Overdue'],
  ['today', 'Today'],
  ['tomorrow', 'Tomorrow'],
  ['week', 'This week'],
  ['later', 'Later'],
  ['done-earlier', 'Done earlier'],
];

function days() {
  const t = today();
  return { today: t, tomorrow: addDays(t, 1), weekEnd: addDays(t, 8) };
}

function groupOf(entry, d) {
  if (entry.date < d.today) return entry.done ? 'done-earlier' : 'overdue';
  if (entry.date === d.today) return 'today';
  if (entry.date === d.tomorrow) return 'tomorrow';
  if (entry.date <= d.weekEnd) return 'week';
  return 'later';
}

// By order (entries without one after those with one), then date, then id.
function compareEntries(a, b) {
  const ao = typeof a.order === 'number' ? a.order : null;
  const bo = typeof b.order === 'number' ? b.order : null;
  if (ao !== null && bo !== null && ao !== bo) return ao - bo;
  if ((ao === null) !== (bo === null)) return ao === null ? 1 : -1;
  if (a.date !== b.date) return a.date < b.date ? -1 : 1;
  return a.id - b.id;
}

const passes = (entry) => filter === 'all' || (filter === 'done' ? entry.done : !entry.done);

// One list: the list called `name`, or with `name` null the list of the share link this
// page was opened at.
function listView(name, token, moveFocus) {
  const byLink = name === null;
  const colon = byLink ? -1 : name.indexOf(':');
  const sharedBy = colon >= 0 ? name.slice(0, colon) : null;
  const base = byLink ? linkBase : listPath(name);
  const title = byLink ? 'Shared list' : name;
  // A read link's page says so from the start (the server marks its body); a list shared
  // read-only with the user learns it from the first write refused.
  const readOnlyLink = byLink && document.body.dataset.linkRole === 'read';
  setTitle(title);
  setStatus('connecting');

  const state = {
    entries: new Map(),
    gone: new Set(), // ids deleted: never brought back by a late response (ids are not reused)
    items: new Map(), // id -> li
    sections: new Map(), // group -> section
    editing: null,
    readOnly: readOnlyLink,
    loaded: false,
    source: null,
    events: 0, // live events applied so far: see answered()
    retryDelay: 1000,
    retryTimer: 0,
    dayTimer: 0,
    day: today(),
    drag: null,
    pendingAdd: null,
  };

  // --- skeleton ---
  const heading = h('h1', { id: 'list-name', tabindex: '-1', text: title });
  const back = byLink ? null
    : h('nav', { 'aria-label': 'Breadcrumb', class: 'back' }, h('a', { href: '#/' }, '← All lists'));
  const sub = sharedBy ? h('p', { class: 'muted sub', text: `Shared with you by ${sharedBy}` })
    : byLink ? h('p', { class: 'muted sub', text: 'Opened with a share link' }) : null;
  const readOnlyNote = h('p', { class: 'note', hidden: !readOnlyLink,
    text: 'You can read this list but not change it.' });

  const titleInput = h('input', { id: 'add-title', name: 'title', maxlength: '1000', autocomplete: 'off',
    required: true, placeholder: 'What needs doing?' });
  const dateInput = h('input', { id: 'add-date', name: 'date', type: 'date', value: today(), required: true });
  const addButton = h('button', { type: 'submit', class: 'primary' }, 'Add');
  const addForm = h('form', { id: 'add-form', class: 'card add-form', novalidate: true },
    h('div', { class: 'field grow' }, h('label', { for: 'add-title', class: 'visually-hidden', text: 'New entry' }), titleInput),
    h('div', { class: 'field' }, h('label', { for: 'add-date', class: 'visually-hidden', text: 'Date' }), dateInput),
    addButton);
  addForm.addEventListener('submit', onAdd);
  if (readOnlyLink) for (const el of addForm.elements) el.disabled = true;

  const filterButtons = ['all', 'open', 'done'].map((f) => h('button', {
    type: 'button', class: 'seg', dataset: { filter: f }, 'aria-pressed': String(filter === f),
    onclick: () => setFilter(f),
  }, f === 'all' ? 'All' : f === 'open' ? 'Open' : 'Done'));
  const toolbar = h('div', { class: 'toolbar' },
    h('div', { class: 'segmented', role: 'group', 'aria-label': 'Show entries' }, filterButtons));
  const groupsBox = h('div', { class: 'groups' });
  const empty = h('p', { class: 'empty muted', hidden: true });

  const share = app.mode === 'accounts' && !sharedBy ? sharePanel(name, base) : null;
  mount(back, heading, sub, readOnlyNote, addForm, toolbar, groupsBox, empty, share && share.section);
  if (focusAddNext) titleInput.focus();
  else if (moveFocus) heading.focus();
  focusAddNext = false;

  // --- state changes ---
  function put(entry) {
    if (!entry || typeof entry.id !== 'number' || state.gone.has(entry.id)) return;
    state.entries.set(entry.id, entry);
  }

  // A write's answer, sent while `eventsBefore` events had been applied: put only if none came
  // in meanwhile. The server sends a write's own event before it answers, so an event that
  // came in first may already carry a later change of this entry (another window's), which
  // the answer would overwrite with older fields; the write's own event shows it instead.
  function answered(entry, eventsBefore) {
    if (state.events === eventsBefore) put(entry);
  }

  function forget(id) {
    state.gone.add(id);
    state.entries.delete(id);
  }

  function setFilter(f) {
    filter = f;
    for (const b of filterButtons) b.setAttribute('aria-pressed', String(b.dataset.filter === f));
    render();
  }

  function setReadOnly() {
    if (state.readOnly) return;
    state.readOnly = true;
    readOnlyNote.hidden = false;
    for (const el of addForm.elements) el.disabled = true;
    if (state.editing !== null) stopEditing(state.editing, false);
    render();
  }

  // Handles a failed write: read-only lists switch to reading mode.
  function writeFailed(error) {
    if (error.status === 403 && error.code === 'read_only') setReadOnly();
    fail(error);
  }

  // --- rendering ---
  function visibleOrder() {
    return [...groupsBox.querySelectorAll('li.entry')].map((li) => Number(li.dataset.id));
  }

  function render() {
    const active = document.activeElement;
    const activeItem = active && active.closest ? active.closest('li.entry') : null;
    let neighbours = [];
    if (activeItem && groupsBox.contains(activeItem)) {
      const order = visibleOrder();
      const at = order.indexOf(Number(activeItem.dataset.id));
      neighbours = [...order.slice(at + 1), ...order.slice(0, at).reverse()];
    }

    const d = days();
    const byGroup = new Map(GROUPS.map(([g]) => [g, []]));
    for (const entry of state.entries.values()) {
      if (passes(entry)) byGroup.get(groupOf(entry, d)).push(entry);
    }
    const seen = new Set();
    let previous = null;
    for (const [group, label] of GROUPS) {
      const list = byGroup.get(group).sort(compareEntries);
      let section = state.sections.get(group);
      if (!list.length) {
        if (section) {
          section.remove();
          state.sections.delete(group);
        }
        continue;
      }
      if (!section) {
        const headingId = `group-${group}`;
        section = h('section', { class: `group group-${group}`, dataset: { group }, 'aria-labelledby': headingId },
          h('h2', { id: headingId, text: label }), h('ul', { class: 'entries' }));
        state.sections.set(group, section);
      }
      const wanted = previous ? previous.nextElementSibling : groupsBox.firstElementChild;
      if (wanted !== section) groupsBox.insertBefore(section, wanted);
      previous = section;
      const ul = section.lastElementChild;
      list.forEach((entry, index) => {
        seen.add(entry.id);
        let li = state.items.get(entry.id);
        if (!li) {
          li = createEntry(entry);
          state.items.set(entry.id, li);
        } else {
          fillEntry(li, entry);
        }
        li.dataset.first = index === 0 ? '1' : '';
        li.dataset.last = index === list.length - 1 ? '1' : '';
        syncMoveButtons(li);
        const here = ul.children[index];
        if (here !== li) ul.insertBefore(li, here || null);
      });
      while (ul.children.length > list.length) ul.lastElementChild.remove();
    }
    for (const [id, li] of state.items) {
      if (!seen.has(id)) {
        li.remove();
        state.items.delete(id);
        if (state.editing === id) state.editing = null;
      }
    }

    const total = state.entries.size;
    empty.hidden = seen.size > 0 || !state.loaded;
    if (!total) {
      empty.textContent = state.readOnly || sharedBy
        ? 'This list has no entries.'
        : 'No entries yet. Add the first one above: a new list is kept once it has an entry.';
    } else {
      empty.textContent = filter === 'open' ? 'Nothing left to do.' : 'Nothing done yet.';
    }

    // Keep focus where it was; if its entry went away, on a neighbour.
    if (active && active !== document.body && active.isConnected && document.activeElement !== active) {
      active.focus();
    } else if (activeItem && !activeItem.isConnected && (document.activeElement === document.body || !document.activeElement)) {
      const next = neighbours.map((id) => state.items.get(id)).find((li) => li && li.isConnected);
      if (next) next.focus();
      else titleInput.focus();
    }
  }

  function syncMoveButtons(li) {
    const up = li.querySelector('.move-up');
    const down = li.querySelector('.move-down');
    if (up) up.setAttribute('aria-disabled', String(state.readOnly || li.dataset.first === '1'));
    if (down) down.setAttribute('aria-disabled', String(state.readOnly || li.dataset.last === '1'));
  }

  function createEntry(entry) {
    const id = entry.id;
    const titleId = `title-${id}`;
    const li = h('li', { class: 'entry', tabindex: '0', dataset: { id: String(id) } });
    const handle = h('span', { class: 'handle', draggable: 'true', title: 'Drag to reorder', 'aria-hidden': 'true' });
    const check = h('input', { class: 'done', type: 'checkbox', id: `done-${id}`, 'aria-labelledby': titleId });
    const title = h('span', { class: 'title', id: titleId });
    const dateWrap = h('span', { class: 'date' }, h('time', {}));
    const actions = h('span', { class: 'actions' },
      h('button', { type: 'button', class: 'move-up icon', onclick: () => move(id, -1) }, h('span', { 'aria-hidden': 'true' }, '↑'), hidden('Move up')),
      h('button', { type: 'button', class: 'move-down icon', onclick: () => move(id, 1) }, h('span', { 'aria-hidden': 'true' }, '↓'), hidden('Move down')),
      h('button', { type: 'button', class: 'edit small', onclick: () => startEditing(id) }, 'Edit'),
      h('button', { type: 'button', class: 'delete small subtle', onclick: () => removeEntry(id) }, 'Delete'));
    li.append(handle, check, h('span', { class: 'body' }, title, dateWrap), actions);

    check.addEventListener('change', () => toggleDone(id, check));
    title.addEventListener('dblclick', () => startEditing(id));
    li.addEventListener('keydown', (event) => onEntryKey(event, id, li));
    handle.addEventListener('dragstart', (event) => onDragStart(event, id, li));
    handle.addEventListener('dragend', onDragEnd);
    li.addEventListener('dragover', (event) => onDragOver(event, id, li));
    li.addEventListener('dragleave', () => li.classList.remove('drop-before', 'drop-after'));
    li.addEventListener('drop', (event) => onDrop(event, id, li));
    fillEntry(li, entry);
    return li;
  }

  // Updates an entry's element in place, so focus inside it stays.
  function fillEntry(li, entry) {
    if (!entry) return;
    const key = JSON.stringify([entry.title, entry.date, entry.done, entry.order, state.readOnly]);
    if (li.dataset.key === key) return;
    li.dataset.key = key;
    li.classList.toggle('is-done', entry.done);
    const check = li.querySelector('input.done');
    check.checked = entry.done;
    check.disabled = state.readOnly;
    li.querySelector('span.title').textContent = entry.title;
    const time = li.querySelector('.date time');
    time.dateTime = entry.date;
    time.textContent = formatDate(entry.date);
    const label = `“${entry.title}”`;
    li.querySelector('.move-up .visually-hidden').textContent = `Move up ${label}`;
    li.querySelector('.move-down .visually-hidden').textContent = `Move down ${label}`;
    for (const [cls, text] of [['edit', 'Edit'], ['delete', 'Delete']]) {
      const button = li.querySelector(`button.${cls}`);
      button.disabled = state.readOnly;
      button.replaceChildren(text, hidden(` ${label}`));
    }
    li.querySelector('.handle').draggable = !state.readOnly;
    li.classList.toggle('read-only', state.readOnly);
  }

  // --- writes ---
  async function onAdd(event) {
    event.preventDefault();
    clearError();
    const title = titleInput.value.trim();
    const date = dateInput.value || today();
    if (!title) {
      showError('Type what needs doing first.');
      titleInput.focus();
      return;
    }
    const body = { date, title, done: false };
    const json = JSON.stringify(body);
    // A retry of the same entry after an unknown outcome reuses its key: it is not doubled.
    const key = state.pendingAdd && state.pendingAdd.json === json ? state.pendingAdd.key : uuid();
    state.pendingAdd = { json, key };
    addButton.disabled = true;
    try {
      const eventsBefore = state.events;
      const entry = await api('POST', `${base}/entries`, body, { 'Idempotency-Key': key });
      state.pendingAdd = null;
      if (!current || current.state !== state) return;
      answered(entry, eventsBefore);
      if (titleInput.value.trim() === title) {
        titleInput.value = '';
        dateInput.value = today();
      }
      render();
    } catch (error) {
      if (!current || current.state !== state) return;
      if (error.status && error.status < 500) state.pendingAdd = null;
      writeFailed(error);
    } finally {
      addButton.disabled = state.readOnly;
      if (document.activeElement === document.body || document.activeElement === addButton) titleInput.focus();
    }
  }

  async function patch(id, changes) {
    const eventsBefore = state.events;
    const entry = await api('PATCH', `${base}/entries/${id}`, changes);
    if (current && current.state === state) answered(entry, eventsBefore);
    return entry;
  }

  async function toggleDone(id, check) {
    clearError();
    const done = check.checked;
    try {
      await patch(id, { done });
    } catch (error) {
      check.checked = !done;
      writeFailed(error);
    }
    render();
  }

  async function removeEntry(id) {
    const entry = state.entries.get(id);
    if (!entry || state.readOnly) return;
    clearError();
    try {
      await api('DELETE', `${base}/entries/${id}`);
    } catch (error) {
      if (error.code !== 'entry_not_found') return writeFailed(error);
    }
    if (!current || current.state !== state) return;
    forget(id);
    render();
    showToast(`Deleted “${entry.title}”`, 'Undo', () => undoDelete(entry));
  }

  async function undoDelete(entry) {
    clearError();
    const body = { date: entry.date, title: entry.title, done: entry.done };
    if (typeof entry.order === 'number') body.order = entry.order;
    try {
      const eventsBefore = state.events;
      const added = await api('POST', `${base}/entries`, body, { 'Idempotency-Key': uuid() });
      if (!current || current.state !== state) return;
      answered(added, eventsBefore);
      render();
      const li = state.items.get(added.id);
      if (li) li.focus();
    } catch (error) {
      writeFailed(error);
    }
  }

  // Gives the group the new order (10, 20, ...) and saves the orders that changed.
  async function saveOrder(list) {
    const changed = [];
    list.forEach((entry, index) => {
      const order = (index + 1) * 10;
      if (entry.order !== order) {
        changed.push([entry.id, order]);
        state.entries.set(entry.id, { ...entry, order });
      }
    });
    if (!changed.length) return;
    render();
    clearError();
    try {
      await Promise.all(changed.map(([id, order]) => patch(id, { order })));
      render();
    } catch (error) {
      writeFailed(error);
      resync();
    }
  }

  function groupEntries(id) {
    const d = days();
    const group = groupOf(state.entries.get(id), d);
    return [...state.entries.values()].filter((e) => groupOf(e, d) === group).sort(compareEntries);
  }

  function move(id, step) {
    const entry = state.entries.get(id);
    if (!entry || state.readOnly) return;
    const all = groupEntries(id);
    const visible = all.filter(passes);
    const target = visible[visible.findIndex((e) => e.id === id) + step];
    if (!target) return;
    const rest = all.filter((e) => e.id !== id);
    const at = rest.indexOf(target);
    rest.splice(step < 0 ? at : at + 1, 0, entry);
    saveOrder(rest);
  }

  function onEntryKey(event, id, li) {
    if (event.target.matches('input.edit-title, input.edit-date')) return;
    if (event.altKey && (event.key === 'ArrowUp' || event.key === 'ArrowDown')) {
      event.preventDefault();
      move(id, event.key === 'ArrowUp' ? -1 : 1);
    } else if (event.target === li && !event.altKey && !event.ctrlKey && !event.metaKey
      && (event.key === 'ArrowUp' || event.key === 'ArrowDown')) {
      event.preventDefault();
      const order = visibleOrder();
      const next = state.items.get(order[order.indexOf(id) + (event.key === 'ArrowUp' ? -1 : 1)]);
      if (next) next.focus();
    } else if (event.target === li && event.key === 'Enter') {
      event.preventDefault();
      startEditing(id);
    }
  }

  // --- drag and drop (within a date group) ---
  function onDragStart(event, id, li) {
    if (state.readOnly) {
      event.preventDefault();
      return;
    }
    state.drag = { id, group: li.closest('section.group').dataset.group };
    event.dataTransfer.effectAllowed = 'move';
    event.dataTransfer.setData('text/plain', String(id));
    event.dataTransfer.setDragImage(li, 16, 16);
    li.classList.add('dragging');
  }

  function dropSide(event, li) {
    const box = li.getBoundingClientRect();
    return event.clientY < box.top + box.height / 2 ? 'before' : 'after';
  }

  function canDrop(li, id) {
    return state.drag && state.drag.id !== id && li.closest('section.group').dataset.group === state.drag.group;
  }

  function onDragOver(event, id, li) {
    if (!canDrop(li, id)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'move';
    const side = dropSide(event, li);
    li.classList.toggle('drop-before', side === 'before');
    li.classList.toggle('drop-after', side === 'after');
  }

  function onDrop(event, id, li) {
    li.classList.remove('drop-before', 'drop-after');
    if (!canDrop(li, id)) return;
    event.preventDefault();
    const dragged = state.entries.get(state.drag.id);
    const target = state.entries.get(id);
    const side = dropSide(event, li);
    state.drag = null;
    if (!dragged || !target) return;
    const rest = groupEntries(id).filter((e) => e.id !== dragged.id);
    const at = rest.indexOf(target);
    rest.splice(side === 'before' ? at : at + 1, 0, dragged);
    saveOrder(rest);
  }

  function onDragEnd() {
    state.drag = null;
    for (const li of groupsBox.querySelectorAll('.dragging, .drop-before, .drop-after')) {
      li.classList.remove('dragging', 'drop-before', 'drop-after');
    }
  }

  // --- edit in place ---
  function startEditing(id) {
    const entry = state.entries.get(id);
    const li = state.items.get(id);
    if (!entry || !li || state.readOnly || state.editing === id) return;
    if (state.editing !== null) stopEditing(state.editing, false);
    state.editing = id;
    li.classList.add('editing');
    const title = h('input', { class: 'edit-title', id: `edit-title-${id}`, value: entry.title, maxlength: '1000',
      autocomplete: 'off', required: true });
    const date = h('input', { class: 'edit-date', id: `edit-date-${id}`, type: 'date', value: entry.date, required: true });
    const form = h('form', { class: 'edit-form', novalidate: true },
      h('label', { for: title.id, class: 'visually-hidden', text: 'Title' }), title,
      h('label', { for: date.id, class: 'visually-hidden', text: 'Date' }), date,
      h('span', { class: 'actions' },
        h('button', { type: 'submit', class: 'save small primary' }, 'Save'),
        h('button', { type: 'button', class: 'cancel small', onclick: () => stopEditing(id, true) }, 'Cancel')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      saveEdit(id, title, date, form);
    });
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        stopEditing(id, true);
      }
    });
    for (const part of li.querySelectorAll(':scope > .body, :scope > .actions, :scope > .handle')) part.hidden = true;
    li.append(form);
    title.focus();
    title.select();
  }

  function stopEditing(id, restoreFocus) {
    const li = state.items.get(id);
    if (state.editing === id) state.editing = null;
    if (!li) return;
    li.classList.remove('editing');
    const form = li.querySelector('.edit-form');
    const hadFocus = form && form.contains(document.activeElement);
    if (form) form.remove();
    for (const part of li.querySelectorAll(':scope > [hidden]')) part.hidden = false;
    fillEntry(li, state.entries.get(id));
    if (restoreFocus || hadFocus) li.querySelector('button.edit').focus();
  }

  async function saveEdit(id, titleInputEl, dateInputEl, form) {
    const entry = state.entries.get(id);
    if (!entry) return;
    clearError();
    const title = titleInputEl.value.trim();
    const date = dateInputEl.value;
    if (!title) {
      showError('A title cannot be empty.');
      titleInputEl.focus();
      return;
    }
    if (!date) {
      showError('Choose a date.');
      dateInputEl.focus();
      return;
    }
    const changes = {};
    if (title !== entry.title) changes.title = title;
    if (date !== entry.date) changes.date = date;
    if (!Object.keys(changes).length) {
      stopEditing(id, true);
      return;
    }
    for (const el of form.elements) el.disabled = true;
    try {
      await patch(id, changes);
      stopEditing(id, true);
      render();
      const li = state.items.get(id);
      if (li && li.isConnected) li.querySelector('button.edit').focus();
    } catch (error) {
      for (const el of form.elements) el.disabled = false;
      if (error.code === 'entry_not_found') {
        forget(id);
        render();
      }
      writeFailed(error);
      if (titleInputEl.isConnected) titleInputEl.focus();
    }
  }

  // --- live updates ---
  function parse(event) {
    try {
      return JSON.parse(event.data);
    } catch {
      return null;
    }
  }

  function applied(event) {
    state.events += 1;
    if (event.lastEventId) main.dataset.version = event.lastEventId;
    state.retryDelay = 1000;
    render();
    firstLoad();
  }

  function firstLoad() {
    if (state.loaded) return;
    state.loaded = true;
    empty.hidden = state.entries.size > 0;
    render();
    ready();
    if (share) share.load();
  }

  function connect() {
    clearTimeout(state.retryTimer);
    if (state.source) state.source.close();
    const source = new EventSource(`${base}/events`);
    state.source = source;
    setStatus('connecting');
    source.addEventListener('open', () => setStatus('live'));
    source.addEventListener('error', () => {
      if (state.source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        state.source = null;
        setStatus('offline');
        probe();
      } else {
        setStatus('offline');
      }
    });
    source.addEventListener('snapshot', (event) => {
      const list = parse(event);
      if (!Array.isArray(list)) return;
      state.entries = new Map();
      for (const entry of list) put(entry);
      applied(event);
    });
    const upsert = (event) => {
      put(parse(event));
      applied(event);
    };
    source.addEventListener('added', upsert);
    source.addEventListener('updated', upsert);
    source.addEventListener('deleted', (event) => {
      const data = parse(event);
      if (data && typeof data.id === 'number') forget(data.id);
      applied(event);
    });
    source.addEventListener('cleared', (event) => {
      state.gone.clear(); // a fresh start: whatever comes next is new
      state.entries.clear();
      applied(event);
    });
  }

  // The event stream failed for good (an HTTP error, which EventSource does not retry):
  // read the entries to learn why, and try the stream again later if it may pass.
  async function probe() {
    try {
      const list = await api('GET', `${base}/entries`);
      if (!current || current.state !== state) return;
      state.entries = new Map();
      for (const entry of list) put(entry);
      render();
      firstLoad();
      scheduleReconnect();
    } catch (error) {
      if (!current || current.state !== state) return;
      if (error.status === 0 || error.status >= 500 || error.status === 429) {
        if (error.status !== 0 && error.code !== 'too_many_subscribers') fail(error);
        scheduleReconnect();
      } else {
        fail(error);
        if (error.status === 401) return;
        setStatus('online');
      }
      firstLoad();
    }
  }

  function scheduleReconnect() {
    clearTimeout(state.retryTimer);
    if (!navigator.onLine) return; // the online event reconnects
    state.retryTimer = setTimeout(connect, state.retryDelay);
    state.retryDelay = Math.min(state.retryDelay * 2, 5000);
  }

  async function resync() {
    try {
      const list = await api('GET', `${base}/entries`);
      if (!current || current.state !== state) return;
      state.entries = new Map();
      for (const entry of list) put(entry);
      render();
    } catch {
      // the event stream corrects the view once it is back
    }
  }

  // Re-group at midnight (and after the machine slept).
  state.dayTimer = setInterval(() => {
    if (today() !== state.day) {
      if (dateInput.value === state.day) dateInput.value = today();
      state.day = today();
      render();
    }
  }, 30000);

  current = {
    state,
    close() {
      clearTimeout(state.retryTimer);
      clearInterval(state.dayTimer);
      if (state.source) state.source.close();
      state.source = null;
    },
    reconnect() {
      if (!state.source || state.source.readyState === EventSource.CLOSED) connect();
      else if (state.source.readyState === EventSource.OPEN) setStatus('live');
    },
  };
  connect();
}

// ---------- share panel ----------

function roleSelect(id, cls, value, labelText) {
  const select = h('select', { id, class: cls },
    h('option', { value: 'read' }, 'Can read'),
    h('option', { value: 'write' }, 'Can change'));
  if (value) select.value = value;
  return labelText ? h('label', { class: 'inline' }, hidden(labelText), select) : select;
}

function sharePanel(name, base) {
  const token = viewToken;
  const members = h('ul', { id: 'members', class: 'plain' });
  const noMembers = h('p', { class: 'muted', hidden: true, text: 'Only you can use this list.' });
  const links = h('ul', { id: 'links', class: 'plain' });
  const noLinks = h('p', { class: 'muted', hidden: true, text: 'No share links.' });
  const userInput = h('input', { id: 'member-user', name: 'user', autocomplete: 'off', autocapitalize: 'none',
    spellcheck: 'false', required: true, maxlength: '64' });
  const memberForm = h('form', { id: 'member-form', class: 'row wrap', novalidate: true },
    field('Share with (user name)', userInput),
    h('div', { class: 'field' }, h('label', { for: 'member-role', text: 'Role' }), roleSelect('member-role')),
    h('button', { type: 'submit', class: 'primary' }, 'Share'));
  const linkRole = roleSelect('link-role');
  const createLink = h('button', { id: 'create-link', type: 'button' }, 'Create link');
  const newLink = h('div', { class: 'new-link', hidden: true });

  const alive = () => token === viewToken;

  async function loadMembers() {
    const list = await api('GET', `${base}/members`);
    if (!alive()) return;
    members.replaceChildren(...list.map(memberItem));
    noMembers.hidden = list.length > 0;
  }

  async function loadLinks() {
    const list = await api('GET', `${base}/links`);
    if (!alive()) return;
    links.replaceChildren(...list.map(linkItem));
    noLinks.hidden = list.length > 0;
  }

  const run = async (work) => {
    clearError();
    try {
      await work();
    } catch (error) {
      if (alive()) fail(error);
    }
  };

  function memberItem(member) {
    const wrap = roleSelect(null, 'member-role', member.role, `Role of ${member.user}`);
    const select = wrap.querySelector('select');
    select.addEventListener('change', () => run(async () => {
      try {
        await api('PUT', `${base}/members/${encodeURIComponent(member.user)}`, { role: select.value });
      } finally {
        await loadMembers().catch(() => {});
        const again = members.querySelector(`li[data-user="${CSS.escape(member.user)}"] select`);
        if (again) again.focus();
      }
    }));
    return h('li', { dataset: { user: member.user } },
      h('span', { class: 'member-name', text: member.user }), wrap,
      h('button', { type: 'button', class: 'remove-member small subtle', onclick: () => run(async () => {
        await api('DELETE', `${base}/members/${encodeURIComponent(member.user)}`);
        await loadMembers();
        userInput.focus();
      }) }, 'Remove', hidden(` ${member.user}`)));
  }

  function linkItem(link) {
    const kind = link.role === 'write' ? 'Link that can change' : 'Read-only link';
    return h('li', { dataset: { linkId: String(link.id) } },
      h('span', { class: 'link-info' }, `${kind} #${link.id}`,
        h('span', { class: 'muted', text: ` · created ${formatTimestamp(link.created_at)}` })),
      h('button', { type: 'button', class: 'revoke-link small subtle', onclick: () => run(async () => {
        await api('DELETE', `${base}/links/${link.id}`);
        await loadLinks();
        createLink.focus();
      }) }, 'Revoke', hidden(` link #${link.id}`)));
  }

  memberForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const user = userInput.value.trim();
    if (!user) {
      showError('Type the user name to share with.');
      userInput.focus();
      return;
    }
    run(async () => {
      const role = document.getElementById('member-role').value;
      await api('PUT', `${base}/members/${encodeURIComponent(user)}`, { role });
      userInput.value = '';
      await loadMembers();
      userInput.focus();
    });
  });

  createLink.addEventListener('click', () => run(async () => {
    const link = await api('POST', `${base}/links`, { role: linkRole.value });
    if (!alive()) return;
    const url = location.origin + link.path;
    const input = h('input', { id: 'new-link-url', readonly: true, value: url, class: 'grow', spellcheck: 'false' });
    const copied = h('span', { class: 'muted', role: 'status' });
    const copy = h('button', { type: 'button', id: 'copy-link', onclick: async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(url);
      } catch {
        document.execCommand('copy');
      }
      copied.textContent = 'Copied.';
    } }, 'Copy');
    newLink.replaceChildren(
      h('label', { for: 'new-link-url', text: 'New link: copy it now, it is shown only once' }),
      h('div', { class: 'row' }, input, copy, copied),
      h('p', { class: 'hint', text: 'Anyone with it can use the list without an account. Programs add /entries, '
        + '/todos or /calendar.ics to its end (a calendar app can subscribe to …/calendar.ics).' }));
    newLink.hidden = false;
    input.focus();
    input.select();
    await loadLinks();
  }));

  const section = h('section', { id: 'share', class: 'card share', 'aria-labelledby': 'share-heading' },
    h('h2', { id: 'share-heading', text: 'Sharing' }),
    h('h3', { text: 'People' }), members, noMembers, memberForm,
    h('h3', { text: 'Links' }), links, noLinks,
    h('div', { class: 'row wrap' }, h('div', { class: 'field' }, h('label', { for: 'link-role', text: 'Link role' }), linkRole), createLink),
    newLink);

  return {
    section,
    load() {
      run(() => Promise.all([loadMembers(), loadLinks()]));
    },
  };
}

// ---------- keyboard: undo ----------

document.addEventListener('keydown', (event) => {
  if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === 'z' && toast.action
    && !event.target.matches('input:not([type=checkbox]), textarea, select')) {
    event.preventDefault();
    runToastAction();
  }
});

// ---------- start ----------

async function boot() {
  document.body.dataset.ready = '0';
  if (linkBase) {
    // The link is the credential: no session is asked for, none is needed.
    app.mode = 'link';
    route(false);
    return;
  }
  try {
    const me = await api('GET', '/auth/me');
    if (me && me.mode === 'accounts' && !me.user) {
      app.mode = 'accounts';
      showLogin();
      return;
    }
    setMe(me);
  } catch (error) {
    if (error.status === 401) {
      app.mode = 'accounts';
      showLogin();
      return;
    }
    showError(messageOf(error));
    mount(h('h1', { text: 'todo' }),
      h('p', {}, h('button', { type: 'button', onclick: () => { clearError(); boot(); } }, 'Try again')));
    setStatus('offline');
    ready();
    return;
  }
  route(false);
}

boot();
