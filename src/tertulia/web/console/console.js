// Tertulia's operator console: a small hash-routed page over the public /api/v1 endpoints.
'use strict';

const API = '/api/v1';
const TOKEN_KEY = 'tertulia.console.token';
const BOT_KEY = 'tertulia.console.bot';
const JOB_POLL_MS = 1000;
const INBOX_REFRESH_MS = 5000;
const SOCKET_OPEN_TIMEOUT_MS = 5000;
const SOCKET_RETRY_MS = 3000;
const SIGNED_OUT = 'SIGNED_OUT'; // the code of the error a request ends with once a 401 signed the user out
const LANGUAGES = { en: 'English', es: 'Español', pt: 'Português', zh: '中文' };
const INBOX_FILTERS = {
  all: { label: 'All', query: {} },
  active: { label: 'Open', query: { status: 'active' } },
  unresolved: { label: 'Unresolved', query: { status: 'unresolved' } },
  human_requested: { label: 'Human requested', query: { human_requested: 'true' } },
  resolved: { label: 'Resolved', query: { status: 'resolved' } },
};
const SENDER_LABELS = { user: 'User', bot: 'Bot', agent: 'Operator', system: 'System', tool: 'Tool' };

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  bots: [],
  botId: sessionStorage.getItem(BOT_KEY),
  // Upload rows outlive the view that started them, so a job keeps its row when you come back.
  jobRows: new Map(), // knowledge base id → [<li>]
  inboxFilter: 'all',
  inboxBotId: '',
};

// Timers and sockets belong to the view that opened them and end when the route changes.
let leaving = [];
function onLeave(release) { leaving.push(release); }
function leaveView() { leaving.forEach((release) => release()); leaving = []; }

// --- small DOM and API tools --------------------------------------------------------------

const $ = (selector) => document.querySelector(selector);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  el.append(...children.flat().filter((child) => child != null && child !== false));
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'value') el.value = value; // after the children, so a <select> finds its option
    else if (name === 'testid') el.dataset.testid = value;
    else el.setAttribute(name, value === true ? '' : value);
  }
  return el;
}

function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', {}, label), input, hint && h('small', { class: 'muted' }, hint));
}

const empty = (text) => h('p', { class: 'empty muted' }, text);
const loading = () => h('p', { class: 'muted' }, 'Loading…');
const badge = (text, kind = '') => h('span', { class: `badge ${kind}` }, text);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

function toast(message, kind = 'error') {
  const el = h('div', { class: `toast ${kind}` }, message);
  $('#toasts').append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The server cannot be reached.');
  }
  const data = await response.json().catch(() => null);
  if (response.status === 401 && path !== '/auth/login') {
    signOut('Your session has ended. Please sign in again.');
    throw new ApiError(401, SIGNED_OUT, 'Signed out');
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    const message = error.message || (data && typeof data.detail === 'string' && data.detail);
    throw new ApiError(response.status, error.code, message || `${response.status} ${response.statusText}`);
  }
  return data;
}

function query(params) {
  const text = new URLSearchParams(Object.entries(params).filter(([, value]) => value)).toString();
  return text ? `?${text}` : '';
}

// Being signed out has already been said, and the sign-in form shown.
function report(error) {
  if (error.code !== SIGNED_OUT) toast(error.message);
}

// Runs a user action: its button is disabled meanwhile, and a failure becomes a toast.
async function act(button, work) {
  if (button) button.disabled = true;
  try {
    return await work();
  } catch (error) {
    report(error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

function socketUrl(conversationId) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const token = encodeURIComponent(state.token);
  return `${scheme}://${location.host}${API}/ws/conversations/${encodeURIComponent(conversationId)}?token=${token}`;
}

// Resolves to an open WebSocket, or null when one cannot be had (the caller then uses REST).
function openSocket(conversationId, onFrame, onClose) {
  return new Promise((resolve) => {
    let socket;
    try {
      socket = new WebSocket(socketUrl(conversationId));
    } catch {
      resolve(null);
      return;
    }
    const timer = setTimeout(() => { socket.close(); resolve(null); }, SOCKET_OPEN_TIMEOUT_MS);
    onLeave(() => socket.close()); // a socket belongs to the view that opened it
    socket.addEventListener('open', () => { clearTimeout(timer); resolve(socket); });
    socket.addEventListener('error', () => { clearTimeout(timer); resolve(null); });
    socket.addEventListener('close', (event) => { clearTimeout(timer); resolve(null); if (onClose) onClose(event); });
    socket.addEventListener('message', (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.type === 'error' && frame.error && frame.error.code === 'UNAUTHORIZED') {
        signOut('Your session has ended. Please sign in again.');
        return;
      }
      onFrame(frame);
    });
  });
}

async function copyText(text, textarea) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // The Clipboard API needs a secure context; a plain-HTTP console falls back to selection.
    textarea.select();
    document.execCommand('copy');
  }
  toast('Copied to the clipboard.', 'ok');
}

// --- chrome, sign-in and routing ------------------------------------------------------------

function myName() {
  return state.me ? state.me.nickname || state.me.username : '';
}

function renderChrome(section) {
  const signedIn = Boolean(state.token);
  $('#nav').hidden = !signedIn;
  $('#sign-out').hidden = !signedIn;
  $('#who').textContent = signedIn ? myName() : '';
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.getAttribute('href') === `#/${section}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function setView(...content) {
  const app = $('#app');
  app.replaceChildren(...content);
  app.removeAttribute('aria-busy');
}

function signOut(message) {
  state.token = null;
  state.me = null;
  sessionStorage.removeItem(TOKEN_KEY);
  if (message) toast(message);
  route();
}

async function loadMe() {
  state.me = await api('GET', '/auth/me');
}

function showLogin() {
  const email = h('input', { testid: 'login-email', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', {
    testid: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true,
  });
  const submit = h('button', { testid: 'login-submit', type: 'submit' }, 'Sign in');
  const form = h('form', { testid: 'login-form', class: 'card narrow' },
    h('h1', {}, 'Sign in'), field('Email or username', email), field('Password', password), submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    await act(submit, async () => {
      const reply = await api('POST', '/auth/login', { username: email.value.trim(), password: password.value });
      state.token = reply.access_token;
      sessionStorage.setItem(TOKEN_KEY, state.token);
      await loadMe();
      if (!location.hash || location.hash === '#/') location.hash = '#/bots';
      else route();
    });
  });
  setView(form);
  email.focus();
}

function route() {
  leaveView();
  const [, section = '', id = '', tab = ''] = location.hash.split('/').map(decodeURIComponent);
  renderChrome(section);
  if (!state.token) {
    showLogin();
    return;
  }
  const views = { bots: showBots, playground: showPlayground, inbox: showInbox };
  if (!views[section]) {
    location.replace('#/bots');
    return;
  }
  views[section](id, tab).catch(report);
}

async function loadBots() {
  const page = await api('GET', '/bots?limit=100');
  state.bots = page.bots;
  return state.bots;
}

function botName(botId) {
  const bot = state.bots.find((item) => item.id === botId);
  return bot ? bot.name : botId;
}

function selectBot(botId) {
  state.botId = botId;
  sessionStorage.setItem(BOT_KEY, botId);
}

// --- bots ----------------------------------------------------------------------------------

async function showBots(botId, tab) {
  const list = h('ul', { testid: 'bot-list', class: 'list' }, h('li', {}, loading()));
  const detail = h('section', { class: 'detail' }, botId ? loading() : empty('Select a bot, or create one.'));
  setView(h('div', { class: 'split' },
    h('aside', {}, h('h1', {}, 'Bots'), list, botCreateForm()),
    detail));
  const bots = await loadBots();
  list.replaceChildren(...bots.map((bot) => h('li', { testid: 'bot-item', 'data-bot-id': bot.id },
    h('a', { href: `#/bots/${encodeURIComponent(bot.id)}`, 'aria-current': bot.id === botId && 'true' },
      h('span', { class: 'line' }, h('strong', {}, bot.name),
        badge(bot.is_active ? 'running' : 'stopped', bot.is_active ? 'ok' : '')),
      h('code', {}, bot.id)))));
  if (!bots.length) list.replaceChildren(h('li', {}, empty('No bots yet.')));
  if (botId) {
    selectBot(botId);
    await showBotDetail(detail, botId, tab).catch((error) => {
      detail.replaceChildren(empty('This bot could not be loaded.'));
      throw error;
    });
  }
}

function botCreateForm() {
  const name = h('input', { testid: 'bot-name', required: true, maxlength: 128 });
  const prompt = h('textarea', { testid: 'bot-prompt', rows: 4, placeholder: 'You are a helpful assistant for…' });
  const description = h('input', { maxlength: 4000 });
  const submit = h('button', { testid: 'bot-create-submit', type: 'submit' }, 'Create bot');
  const form = h('form', { testid: 'bot-create-form', class: 'card' },
    h('h2', {}, 'New bot'), field('Name', name), field('System prompt', prompt),
    field('Description (optional)', description), submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), description: description.value.trim() };
    if (prompt.value.trim()) body.llm_config = { system_prompt: prompt.value };
    const bot = await act(submit, () => api('POST', '/bots', body));
    if (bot) {
      toast(`Bot “${bot.name}” created.`, 'ok');
      location.hash = `#/bots/${encodeURIComponent(bot.id)}`;
    }
  });
  return form;
}

async function showBotDetail(root, botId, tab) {
  const bot = await api('GET', `/bots/${encodeURIComponent(botId)}`);
  const base = `#/bots/${encodeURIComponent(bot.id)}`;
  const tabLink = (href, label, testid, current) =>
    h('a', { href, testid, 'aria-current': current && 'page' }, label);
  const body = h('div', {}, loading());
  root.replaceChildren(
    h('h2', {}, bot.name),
    bot.description && h('p', { class: 'muted' }, bot.description),
    h('p', { class: 'muted' }, h('code', {}, bot.id), ' · ', bot.llm_config.provider,
      bot.llm_config.model ? ` / ${bot.llm_config.model}` : ''),
    h('nav', { class: 'tabs', 'aria-label': 'Bot' },
      tabLink(base, 'Knowledge', 'tab-knowledge', tab !== 'widget'),
      tabLink(`${base}/widget`, 'Widget', 'tab-widget', tab === 'widget'),
      tabLink('#/playground', 'Playground', 'tab-playground', false)),
    body);
  if (tab === 'widget') await showWidget(body, bot);
  else await showKnowledge(body, bot);
}

// --- knowledge: bases, uploads and their ingestion jobs -------------------------------------

async function showKnowledge(root, bot) {
  const bases = await Promise.all(
    bot.knowledge_base_ids.map((id) => api('GET', `/knowledge/bases/${encodeURIComponent(id)}`)));
  const create = baseCreateForm(bot);
  if (!bases.length) {
    root.replaceChildren(empty('This bot has no knowledge base yet. Create one to upload documents.'), create);
    return;
  }
  const panel = h('div');
  const picker = h('select', { testid: 'kb-select' },
    bases.map((item) => h('option', { value: item.id }, item.name)));
  picker.addEventListener('change', () => showBase(panel, bases.find((item) => item.id === picker.value)));
  root.replaceChildren(
    bases.length > 1 ? field('Knowledge base', picker) : h('h3', {}, bases[0].name),
    panel,
    h('details', {}, h('summary', {}, 'Add another knowledge base'), create));
  showBase(panel, bases[0]);
}

function baseCreateForm(bot) {
  const name = h('input', { testid: 'kb-name', required: true, maxlength: 128, value: `${bot.name} knowledge` });
  const submit = h('button', { testid: 'kb-create-submit', type: 'submit' }, 'Create knowledge base');
  const form = h('form', { testid: 'kb-create-form', class: 'card' }, field('Knowledge base name', name), submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const linked = await act(submit, async () => {
      const created = await api('POST', '/knowledge/bases', { name: name.value.trim() });
      return api('PUT', `/bots/${encodeURIComponent(bot.id)}`,
        { knowledge_base_ids: [...bot.knowledge_base_ids, created.id] });
    });
    if (linked) {
      toast('Knowledge base created and linked to the bot.', 'ok');
      route();
    }
  });
  return form;
}

function showBase(panel, base) {
  const documents = h('ul', { testid: 'document-list', class: 'list', 'data-base-id': base.id });
  const jobs = h('ul', { class: 'jobs', 'aria-label': 'Uploads' }, state.jobRows.get(base.id) || []);
  panel.replaceChildren(
    uploadForm(base, jobs), textForm(base, jobs), jobs,
    h('h3', {}, 'Documents'), documents);
  refreshDocuments(base.id);
}

function uploadForm(base, jobs) {
  const files = h('input', { testid: 'upload-input', type: 'file', multiple: true, required: true });
  const submit = h('button', { testid: 'upload-submit', type: 'submit' }, 'Upload');
  const form = h('form', { class: 'card inline' }, field('Files to add', files,
    'Text, Markdown, HTML, PDF, DOCX, XLSX, CSV or JSON'), submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    await act(submit, async () => {
      for (const file of files.files) {
        const body = new FormData();
        body.append('file', file);
        const accepted = await api('POST', `/knowledge/bases/${encodeURIComponent(base.id)}/documents`, body);
        jobs.prepend(trackJob(base.id, accepted.name, accepted.job));
      }
      form.reset();
    });
    refreshDocuments(base.id);
  });
  return form;
}

function textForm(base, jobs) {
  const name = h('input', { testid: 'text-name', required: true, maxlength: 512 });
  const content = h('textarea', { testid: 'text-content', rows: 5, required: true });
  const submit = h('button', { testid: 'text-submit', type: 'submit' }, 'Add text');
  const form = h('form', { class: 'card' }, field('Document name', name), field('Text', content), submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const accepted = await act(submit, () => api('POST',
      `/knowledge/bases/${encodeURIComponent(base.id)}/documents/text`,
      { name: name.value.trim(), content: content.value }));
    if (accepted) {
      jobs.prepend(trackJob(base.id, accepted.name, accepted.job));
      form.reset();
      refreshDocuments(base.id);
    }
  });
  return h('details', {}, h('summary', {}, 'Paste text instead'), form);
}

// A row that follows an ingestion job until it is done or failed.
function trackJob(baseId, name, job) {
  const bar = h('progress', { max: 1, value: 0 });
  const label = h('span', { class: 'muted' });
  const row = h('li', { testid: 'job', class: 'job' }, h('strong', {}, name), label, bar);
  state.jobRows.set(baseId, [row, ...(state.jobRows.get(baseId) || [])]);
  const show = (current) => {
    row.dataset.status = current.status;
    bar.value = current.progress;
    bar.textContent = `${Math.round(current.progress * 100)}%`;
    label.textContent = [current.status, current.stage, `${Math.round(current.progress * 100)}%`, current.error]
      .filter(Boolean).join(' · ');
  };
  const poll = async () => {
    if (!state.token) return;
    try {
      job = await api('GET', `/jobs/${encodeURIComponent(job.id)}`);
      show(job);
    } catch (error) {
      if (error.code === SIGNED_OUT) return;
      label.textContent = `Could not check progress: ${error.message}`;
    }
    if (job.status === 'done' || job.status === 'failed') refreshDocuments(baseId);
    else setTimeout(poll, JOB_POLL_MS);
  };
  show(job);
  setTimeout(poll, JOB_POLL_MS);
  return row;
}

// Refreshes the document list if the page shows that knowledge base's list right now.
async function refreshDocuments(baseId) {
  const list = document.querySelector(`[data-testid="document-list"][data-base-id="${CSS.escape(baseId)}"]`);
  if (!list) return;
  try {
    const page = await api('GET', `/knowledge/bases/${encodeURIComponent(baseId)}/documents?limit=100`);
    list.replaceChildren(...page.documents.map((doc) => h('li', { 'data-status': doc.status },
      h('strong', {}, doc.name),
      badge(doc.status, doc.status === 'ready' ? 'ok' : doc.status === 'failed' ? 'bad' : ''),
      h('span', { class: 'muted' }, `${doc.chunk_count} chunks`),
      doc.error && h('span', { class: 'error-text' }, doc.error))));
    if (!page.documents.length) list.replaceChildren(h('li', {}, empty('No documents yet.')));
  } catch (error) {
    report(error);
  }
}

// --- widget settings and keys ---------------------------------------------------------------

async function showWidget(root, bot) {
  const path = `/bots/${encodeURIComponent(bot.id)}/widget`;
  const settings = await api('GET', path);
  const colors = settings.colors || {};
  const origins = h('textarea', {
    testid: 'widget-origins', rows: 3, value: (settings.allowed_origins || []).join('\n'),
    placeholder: 'https://shop.example.com',
  });
  const title = h('input', { value: settings.title || '', maxlength: 128 });
  const greeting = h('textarea', { rows: 2, value: settings.greeting || '' });
  const language = h('select', { value: settings.language || 'en' },
    Object.entries(LANGUAGES).map(([code, label]) => h('option', { value: code }, label)));
  const primary = h('input', { type: 'color', value: sixDigitColor(colors.primary) });
  const position = h('select', { value: settings.position || 'right' },
    h('option', { value: 'right' }, 'Right'), h('option', { value: 'left' }, 'Left'));
  const handoff = h('input', { type: 'checkbox', testid: 'widget-handoff', checked: Boolean(settings.human_handoff) });
  const leadForm = h('input', { type: 'checkbox', testid: 'widget-lead-form', checked: Boolean(settings.lead_form) });
  const save = h('button', { testid: 'widget-save', type: 'submit' }, 'Save settings');
  const form = h('form', { testid: 'widget-form', class: 'card' },
    h('h3', {}, 'Widget settings'),
    field('Allowed origins', origins, 'One per line; * allows any site.'),
    field('Title', title, 'Empty: the bot’s name.'), field('Greeting', greeting),
    h('div', { class: 'row' }, field('Language', language), field('Primary colour', primary),
      field('Position', position)),
    h('div', { class: 'row' },
      field('Offer “talk to a person”', handoff, 'Also offered when the bot has the request-human plugin.'),
      field('Offer the contact form', leadForm, 'Also offered when the bot has the lead-capture plugin.')),
    settings.visitor_rate_limit && h('p', { class: 'muted' }, `Per-visitor limit: ${settings.visitor_rate_limit}`),
    save);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const saved = await act(save, () => api('PUT', path, {
      allowed_origins: origins.value.split('\n').map((line) => line.trim()).filter(Boolean),
      title: title.value.trim() || null,
      greeting: greeting.value,
      language: language.value,
      colors: { ...colors, primary: primary.value },
      position: position.value,
      human_handoff: handoff.checked,
      lead_form: leadForm.checked,
    }));
    if (saved) toast('Widget settings saved.', 'ok');
  });
  root.replaceChildren(form, widgetKeys(path));
}

// <input type=color> only takes #rrggbb; the server also allows #rgb.
function sixDigitColor(color) {
  if (/^#[0-9a-f]{6}$/i.test(color || '')) return color;
  if (/^#[0-9a-f]{3}$/i.test(color || '')) return `#${[...color.slice(1)].map((digit) => digit + digit).join('')}`;
  return '#2563eb';
}

function widgetKeys(path) {
  const name = h('input', { required: true, maxlength: 128, value: 'website' });
  const create = h('button', { testid: 'widget-key-create', type: 'submit' }, 'Create key');
  const created = h('div', { 'aria-live': 'polite' });
  const list = h('ul', { testid: 'widget-keys', class: 'list' }, h('li', {}, loading()));
  const form = h('form', { class: 'inline' }, field('Key name', name), create);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = await act(create, () => api('POST', `${path}/keys`, { name: name.value.trim() }));
    if (!key) return;
    const embed = h('textarea', { testid: 'widget-embed', readonly: true, rows: 3, value: key.embed });
    created.replaceChildren(
      field('Embed snippet (the key is shown only now)', embed),
      h('button', { type: 'button', class: 'secondary', onclick: () => copyText(key.embed, embed) }, 'Copy snippet'));
    loadKeys();
  });
  const loadKeys = async () => {
    try {
      const { keys } = await api('GET', `${path}/keys`);
      list.replaceChildren(...keys.map((key) => h('li', { 'data-key-id': key.id },
        h('strong', {}, key.name), h('code', {}, `${key.prefix}…`),
        h('span', { class: 'muted' }, `created ${when(key.created_at)}`),
        key.revoked_at ? badge(`revoked ${when(key.revoked_at)}`, 'bad')
          : h('button', { type: 'button', class: 'secondary', onclick: (event) => revoke(event.target, key) }, 'Revoke'))));
      if (!keys.length) list.replaceChildren(h('li', {}, empty('No keys yet.')));
    } catch (error) {
      report(error);
    }
  };
  const revoke = async (button, key) => {
    if (!confirm(`Revoke “${key.name}”? Sites using it stop working and its visitors are signed out.`)) return;
    const done = await act(button, () => api('DELETE', `${path}/keys/${encodeURIComponent(key.id)}`));
    if (done !== undefined) loadKeys();
  };
  loadKeys();
  return h('section', { class: 'card' }, h('h3', {}, 'Widget keys'), form, created, list);
}

// --- playground ------------------------------------------------------------------------------

async function showPlayground() {
  const root = h('div', {}, loading());
  setView(root);
  const bots = await loadBots();
  if (!bots.length) {
    root.replaceChildren(h('h1', {}, 'Playground'), empty('Create a bot first.'), h('a', { href: '#/bots' }, 'Go to bots'));
    return;
  }
  if (!bots.some((bot) => bot.id === state.botId)) selectBot(bots[0].id);
  const picker = h('select', { value: state.botId }, bots.map((bot) => h('option', { value: bot.id }, bot.name)));
  const log = h('ol', { class: 'log', 'aria-live': 'polite' });
  const sources = h('ol', { testid: 'playground-sources', class: 'sources' });
  const input = h('textarea', { testid: 'playground-input', rows: 2, required: true, placeholder: 'Ask something…' });
  const send = h('button', { testid: 'playground-send', type: 'submit' }, 'Send');
  const form = h('form', { class: 'composer' }, field('Message', input), send);
  const restart = h('button', { type: 'button', class: 'secondary' }, 'New conversation');
  // One conversation at a time; its socket streams the answers.
  let conversation = null;
  let socket = null;
  let answer = null; // the answer being streamed: {el, text}

  const reset = () => {
    if (socket) socket.close();
    socket = null;
    conversation = null;
    answer = null;
    send.disabled = false;
    log.replaceChildren(empty('Ask the bot something to start a conversation.'));
    showSources([]);
  };
  const showSources = (items) => {
    sources.replaceChildren(...items.map((source) => h('li', { testid: 'playground-source' },
      h('strong', {}, source.document_name || 'Untitled'),
      h('span', { class: 'score' }, Number(source.score).toFixed(3)),
      h('p', {}, snippet(source.content)))));
    if (!items.length) sources.replaceChildren(h('li', {}, empty('No sources for the last answer.')));
  };
  const bubble = (sender, text) => {
    log.querySelector('.empty')?.remove();
    const el = h('li', { class: `message ${sender}`, 'data-sender': sender },
      h('span', { class: 'sender' }, SENDER_LABELS[sender] || sender), h('div', { class: 'text' }, text));
    log.append(el);
    el.scrollIntoView({ block: 'nearest' });
    return el;
  };
  const finish = (text, items, failed = false) => {
    if (!answer) return;
    answer.el.querySelector('.text').textContent = text;
    answer.el.classList.toggle('failed', failed);
    answer.el.removeAttribute('aria-busy');
    showSources(items || []);
    answer = null;
    send.disabled = false;
  };
  const onFrame = (frame) => {
    if (frame.type === 'stream_chunk' && answer) {
      answer.text += frame.content;
      answer.el.querySelector('.text').textContent = answer.text;
    } else if (frame.type === 'stream_complete') {
      finish(frame.full_content, frame.sources);
    } else if (frame.type === 'conversation_held') {
      const holder = operatorName(frame.operator) || 'A person';
      finish(`${holder} holds this conversation; the bot stays quiet until it is handed back.`, []);
    } else if (frame.type === 'error') {
      toast(frame.error.message);
      finish(answer ? answer.text || 'No answer.' : '', [], true);
    } else if (frame.type === 'tool_call') {
      log.insertBefore(h('li', { class: 'note muted' }, `Using ${frame.tool_call.name}…`), answer ? answer.el : null);
    } else if (frame.type === 'new_message') {
      bubble(frame.message.sender_type, frame.message.content);
    } else if (frame.type === 'conversation_status') {
      log.append(h('li', { class: 'note muted' }, `Conversation is now ${frame.status}.`));
    }
  };
  const onClose = () => {
    socket = null;
    if (answer) {
      toast('The connection closed before the answer was complete.');
      finish(answer.text || 'No answer.', [], true);
    }
  };
  const ask = async (content) => {
    if (!conversation) {
      conversation = await api('POST', '/conversations', { bot_id: picker.value, title: 'Playground' });
    }
    if (!socket) socket = await openSocket(conversation.id, onFrame, onClose);
    bubble('user', content);
    // Only the newest answer carries the hook, so "the answer" always means the latest one.
    log.querySelector('[data-testid="playground-answer"]')?.removeAttribute('data-testid');
    const el = bubble('bot', '…');
    el.dataset.testid = 'playground-answer';
    el.setAttribute('aria-busy', 'true');
    answer = { el, text: '' };
    if (socket) {
      socket.send(JSON.stringify({ type: 'user_message', content }));
      return;
    }
    try {
      const exchange = await api('POST', `/conversations/${encodeURIComponent(conversation.id)}/messages`, { content });
      finish(exchange.bot_response.content, exchange.bot_response.metadata.sources);
    } catch (error) {
      finish('No answer.', [], true);
      throw error;
    }
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const content = input.value.trim();
    if (!content || answer) return;
    input.value = '';
    send.disabled = true;
    try {
      await ask(content);
    } catch (error) {
      send.disabled = false;
      report(error);
    }
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  picker.addEventListener('change', () => { selectBot(picker.value); reset(); });
  restart.addEventListener('click', reset);
  reset();
  root.replaceChildren(
    h('h1', {}, 'Playground'),
    h('div', { class: 'row' }, field('Bot', picker), restart),
    h('div', { class: 'playground' },
      h('section', { class: 'chat' }, log, form),
      h('aside', { class: 'card' }, h('h2', {}, 'Sources'), sources)));
}

function snippet(text, limit = 240) {
  const flat = String(text || '').replace(/\s+/g, ' ').trim();
  return flat.length > limit ? `${flat.slice(0, limit)}…` : flat;
}

// --- inbox: conversations people have with the bots, and taking them over ----------------------

async function showInbox(conversationId) {
  const filters = h('div', { testid: 'inbox-filter', class: 'filters', role: 'group', 'aria-label': 'Show' },
    Object.entries(INBOX_FILTERS).map(([key, filter]) => h('button', {
      type: 'button', class: 'secondary', 'data-filter': key, 'aria-pressed': String(key === state.inboxFilter),
      onclick: () => { state.inboxFilter = key; route(); },
    }, filter.label)));
  const botPicker = h('select', {}, h('option', { value: '' }, 'All bots'));
  const list = h('ul', { testid: 'conversation-list', class: 'list' }, h('li', {}, loading()));
  const view = h('section', { class: 'detail' },
    conversationId ? loading() : empty('Select a conversation to read it.'));
  setView(h('h1', {}, 'Inbox'),
    h('div', { class: 'row' }, filters, field('Bot', botPicker)),
    h('div', { class: 'split' }, h('aside', {}, list), view));

  const bots = await loadBots();
  botPicker.append(...bots.map((bot) => h('option', { value: bot.id }, bot.name)));
  botPicker.value = state.inboxBotId;
  botPicker.addEventListener('change', () => { state.inboxBotId = botPicker.value; refresh(); });

  let shown = ''; // the last list drawn: an unchanged refresh leaves the DOM (and focus) alone
  const refresh = async () => {
    const params = { ...INBOX_FILTERS[state.inboxFilter].query, bot_id: state.inboxBotId, limit: 100 };
    try {
      const page = await api('GET', `/conversations${query(params)}`);
      const drawn = JSON.stringify(page.conversations);
      if (drawn === shown) return;
      shown = drawn;
      list.replaceChildren(...page.conversations.map((item) => conversationItem(item, conversationId)));
      if (!page.conversations.length) list.replaceChildren(h('li', {}, empty('No conversations here.')));
    } catch (error) {
      report(error);
    }
  };
  const timer = setInterval(refresh, INBOX_REFRESH_MS);
  onLeave(() => clearInterval(timer));
  await refresh();
  if (conversationId) {
    await showConversation(view, conversationId, refresh).catch((error) => {
      view.replaceChildren(empty('This conversation could not be loaded.'));
      throw error;
    });
  }
}

function operatorName(operator) {
  return operator && typeof operator === 'object' ? operator.name : operator;
}

function conversationItem(item, selectedId) {
  const contact = item.contact && [item.contact.name, item.contact.email, item.contact.phone].filter(Boolean).join(' · ');
  const operator = operatorName(item.operator);
  return h('li', { testid: 'conversation-item', 'data-conversation-id': item.id },
    h('a', { href: `#/inbox/${encodeURIComponent(item.id)}`, 'aria-current': item.id === selectedId && 'true' },
      h('span', { class: 'line' }, h('strong', {}, item.title || (item.visitor_id ? 'Web visitor' : 'Untitled conversation')),
        badge(item.status, item.status), item.human_requested && badge('person requested', 'warn')),
      h('span', { class: 'line muted' }, botName(item.bot_id), operator && ` · with ${operator}`),
      contact && h('span', { class: 'line' }, contact),
      h('span', { class: 'line muted' },
        `${item.message_count} message${item.message_count === 1 ? '' : 's'} · last ${when(item.last_message_at)}`)));
}

async function showConversation(view, conversationId, refreshList) {
  const path = `/conversations/${encodeURIComponent(conversationId)}`;
  const title = h('h2');
  const status = h('p', { testid: 'conversation-status', 'aria-live': 'polite' });
  const log = h('ol', { class: 'log', 'aria-live': 'polite' });
  const seen = new Set();
  const button = (testid, label, onclick) => h('button', { testid, type: 'button', onclick }, label);
  const reply = h('textarea', { testid: 'operator-input', rows: 2, required: true });
  const send = h('button', { testid: 'operator-send', type: 'submit' }, 'Send reply');
  const replyForm = h('form', { class: 'composer' }, field('Reply as operator', reply), send);
  let conversation;

  const draw = (current) => {
    conversation = current;
    const context = current.context || {};
    const operator = context.operator;
    const heldByMe = Boolean(operator) && (operator.account_id
      ? operator.account_id === (state.me && state.me.id) : operatorName(operator) === myName());
    title.textContent = current.title || 'Conversation';
    status.textContent = [`Status: ${current.status}`, context.human_requested && 'person requested',
      operator && `held by ${operatorName(operator) || 'an operator'}`].filter(Boolean).join(' · ');
    takeover.hidden = heldByMe;
    handback.hidden = !operator && !context.human_requested;
    resolve.hidden = current.status === 'resolved';
    replyForm.hidden = !heldByMe;
  };
  const change = (target, method, suffix, body) => act(target, async () => {
    draw(await api(method, `${path}/${suffix}`, body));
    refreshList();
  });
  const takeover = button('takeover', 'Take over', (event) =>
    change(event.target, 'POST', 'takeover', { name: myName() }));
  const handback = button('handback', 'Hand back to bot', (event) => change(event.target, 'POST', 'handback'));
  const resolve = button('resolve', 'Resolve', (event) =>
    change(event.target, 'PUT', 'status', { status: 'resolved' }));

  const append = (message) => {
    if (seen.has(message.id)) return;
    seen.add(message.id);
    log.querySelector('.empty')?.remove();
    const sender = message.sender_type;
    const name = sender === 'agent' ? (message.metadata || {}).sender_name || SENDER_LABELS.agent : SENDER_LABELS[sender] || sender;
    const el = h('li', { testid: 'conversation-message', 'data-sender': sender, class: `message ${sender}` },
      h('span', { class: 'sender' }, name, h('time', { datetime: message.created_at }, ` ${when(message.created_at)}`)),
      h('div', { class: 'text' }, message.content));
    log.append(el);
    el.scrollIntoView({ block: 'nearest' });
  };

  // Frames that arrive while the history loads wait for it, so the order stays right.
  let early = [];
  const onFrame = (frame) => {
    if (early) {
      early.push(frame);
      return;
    }
    if (frame.type === 'new_message') append(frame.message);
    else if (frame.type === 'conversation_status') api('GET', path).then(draw, report);
    else return;
    refreshList(); // its counts and badges change too
  };
  let stopped = false;
  const watch = async () => {
    if (stopped) return;
    await openSocket(conversationId, onFrame, (event) => {
      // 1008 is the server refusing this socket (credential, conversation): retrying cannot help.
      if (!stopped && state.token && event.code !== 1008) setTimeout(watch, SOCKET_RETRY_MS);
    });
  };
  onLeave(() => { stopped = true; });
  await watch();

  const current = await api('GET', path);
  let page = await api('GET', `${path}/messages?limit=200`);
  if (page.total > page.messages.length) {
    page = await api('GET', `${path}/messages?limit=200&offset=${page.total - 200}`); // the newest 200
  }
  replyForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const content = reply.value.trim();
    if (!content) return;
    const message = await act(send, () => api('POST', `${path}/operator-messages`, { content, name: myName() }));
    if (message) {
      append(message);
      reply.value = '';
    }
  });
  view.dataset.testid = 'conversation-view';
  view.replaceChildren(title, status, h('div', { class: 'actions' }, takeover, handback, resolve), log, replyForm);
  draw(current);
  page.messages.forEach(append);
  if (!page.messages.length) log.append(empty('No messages yet.'));
  const waiting = early;
  early = null;
  waiting.forEach(onFrame);
}

// --- start ------------------------------------------------------------------------------------

async function start() {
  $('#sign-out').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', route);
  if (state.token) {
    try {
      await loadMe();
    } catch (error) {
      report(error);
    }
  }
  route();
}

start();
