/* Tertulia chat widget: a chat with one bot on any page, over the web channel API (docs/web-channel.md). */
(() => {
  'use strict';

  // currentScript is only set while this file first runs, so everything it gives is read now.
  const script = document.currentScript || document.querySelector('script[src*="widget.js"][data-bot]');
  if (!script || document.getElementById('tertulia-widget')) return; // embedded twice: keep the first
  const botId = script.dataset.bot;
  const widgetKey = script.dataset.key;
  if (!botId || !widgetKey) {
    console.warn('Tertulia widget: the script tag needs data-bot and data-key.');
    return;
  }
  const apiBase = `${new URL(script.src, location.href).origin}/api/v1/widget/${encodeURIComponent(botId)}`;
  const visitorStorageKey = `tertulia:visitor:${botId}`;

  const STRINGS = {
    en: {
      open: 'Open chat', openUnread: 'Open chat (new message)', close: 'Close chat',
      inputLabel: 'Your message', placeholder: 'Type your message…', send: 'Send',
      handoff: 'Talk to a person', personHere: 'A person will answer you here.',
      personSoon: 'A person will answer you here soon.', joined: '{name} joined the conversation.',
      resolved: 'This conversation was resolved.', operator: '{name} (person)', someone: 'A person',
      tooFast: "You're sending messages too fast; try again in a moment.",
      offline: 'Cannot reach the chat right now.', failed: 'Something went wrong.', sources: 'Sources',
      lead: 'Leave your contact', name: 'Name', email: 'Email', phone: 'Phone', leadSubmit: 'Send contact',
      leadNeeded: 'Please give an email or a phone number.', leadThanks: 'Thank you! We will get in touch.',
    },
    es: {
      open: 'Abrir chat', openUnread: 'Abrir chat (mensaje nuevo)', close: 'Cerrar chat',
      inputLabel: 'Tu mensaje', placeholder: 'Escribe tu mensaje…', send: 'Enviar',
      handoff: 'Hablar con una persona', personHere: 'Una persona te responderá aquí.',
      personSoon: 'Una persona te responderá aquí pronto.', joined: '{name} se unió a la conversación.',
      resolved: 'Esta conversación quedó resuelta.', operator: '{name} (persona)', someone: 'Una persona',
      tooFast: 'Estás enviando mensajes demasiado rápido; inténtalo de nuevo en un momento.',
      offline: 'No se puede conectar con el chat ahora mismo.', failed: 'Algo salió mal.', sources: 'Fuentes',
      lead: 'Déjanos tu contacto', name: 'Nombre', email: 'Correo electrónico', phone: 'Teléfono',
      leadSubmit: 'Enviar contacto', leadNeeded: 'Indica un correo o un teléfono.',
      leadThanks: '¡Gracias! Nos pondremos en contacto.',
    },
    pt: {
      open: 'Abrir chat', openUnread: 'Abrir chat (nova mensagem)', close: 'Fechar chat',
      inputLabel: 'Sua mensagem', placeholder: 'Escreva sua mensagem…', send: 'Enviar',
      handoff: 'Falar com uma pessoa', personHere: 'Uma pessoa vai responder aqui.',
      personSoon: 'Uma pessoa vai responder aqui em breve.', joined: '{name} entrou na conversa.',
      resolved: 'Esta conversa foi resolvida.', operator: '{name} (pessoa)', someone: 'Uma pessoa',
      tooFast: 'Você está enviando mensagens rápido demais; tente novamente em instantes.',
      offline: 'Não é possível acessar o chat agora.', failed: 'Algo deu errado.', sources: 'Fontes',
      lead: 'Deixe seu contato', name: 'Nome', email: 'E-mail', phone: 'Telefone', leadSubmit: 'Enviar contato',
      leadNeeded: 'Informe um e-mail ou um telefone.', leadThanks: 'Obrigado! Entraremos em contato.',
    },
    zh: {
      open: '打开聊天', openUnread: '打开聊天（新消息）', close: '关闭聊天',
      inputLabel: '你的消息', placeholder: '输入消息…', send: '发送',
      handoff: '联系人工客服', personHere: '人工客服会在这里回复你。',
      personSoon: '人工客服很快会在这里回复你。', joined: '{name} 加入了对话。',
      resolved: '此对话已解决。', operator: '{name}（人工客服）', someone: '人工客服',
      tooFast: '你发送消息太快了，请稍后再试。',
      offline: '暂时无法连接聊天服务。', failed: '出错了。', sources: '来源',
      lead: '留下联系方式', name: '姓名', email: '电子邮箱', phone: '电话', leadSubmit: '提交联系方式',
      leadNeeded: '请填写电子邮箱或电话。', leadThanks: '谢谢！我们会与你联系。',
    },
  };
  // Chosen before the config loads (so its failure reads in the page's language), then again with it.
  let t = STRINGS[pickLanguage(script.dataset.language, navigator.language)];

  const CSS = `
:host { all: initial; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
.root { font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--text); }
button { font: inherit; color: inherit; cursor: pointer; min-width: 44px; min-height: 44px; border: 0; border-radius: 22px; background: none; }
button:disabled { opacity: .5; cursor: default; }
:focus-visible { outline: 3px solid var(--primary); outline-offset: 2px; }
header :focus-visible { outline-color: var(--on-primary); outline-offset: -4px; }
.launcher, .panel { position: fixed; right: 20px; z-index: 2147483000; }
[data-position="left"] .launcher, [data-position="left"] .panel { right: auto; left: 20px; }
.launcher { bottom: 20px; width: 56px; height: 56px; border-radius: 50%; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
.launcher[aria-expanded="true"] .chat, .launcher[aria-expanded="false"] .shut { display: none; }
.launcher[data-unread]::after { content: ""; position: absolute; top: 2px; right: 2px; width: 10px; height: 10px;
  border-radius: 50%; background: #dc2626; border: 2px solid #fff; }
.panel { bottom: 88px; width: 370px; height: min(600px, calc(100vh - 108px)); display: flex; flex-direction: column;
  background: var(--bg); border-radius: 14px; overflow: hidden; box-shadow: 0 12px 40px rgba(0,0,0,.28); }
.launcher, .primary, header { background: var(--primary); color: var(--on-primary); }
header { display: flex; align-items: center; gap: 10px; padding: 6px 6px 6px 14px; }
header img { width: 34px; height: 34px; border-radius: 50%; object-fit: cover; }
h2 { flex: 1; margin: 0; font-size: 17px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
svg { display: block; margin: auto; fill: currentColor; stroke: currentColor; stroke-linecap: round; }
.log { flex: 1; overflow-y: auto; overscroll-behavior: contain; padding: 14px; display: flex; flex-direction: column; gap: 12px; }
.message { display: flex; flex-direction: column; align-items: flex-start; max-width: 85%; }
[data-role="user"] { align-self: flex-end; align-items: flex-end; }
.sender { font-size: 13px; opacity: .75; margin-left: 4px; }
.bubble { padding: 9px 13px; border-radius: 16px; white-space: pre-wrap; overflow-wrap: anywhere; background: rgba(127,127,127,.14); }
[data-role="user"] .bubble { background: var(--primary); color: var(--on-primary); }
[data-role="operator"] .bubble { background: none; border: 2px solid var(--primary); }
[data-streaming="true"] .bubble:empty::after { content: "\\2022 \\2022 \\2022"; animation: blink 1.2s infinite; }
@keyframes blink { 50% { opacity: .3; } }
@media (prefers-reduced-motion: reduce) { .bubble::after { animation: none !important; } }
.sources { margin: 6px 0 0 4px; font-size: 13px; }
.sources p { margin: 0; font-weight: 600; opacity: .75; }
.sources ul { margin: 2px 0 0; padding: 0; list-style: none; display: grid; gap: 6px; }
.sources a { color: inherit; font-weight: 600; }
.snippet { display: block; opacity: .75; }
.status, .error, .note { margin: 0; padding: 6px 14px; font-size: 14px; }
.status { text-align: center; opacity: .85; }
.error { color: #991b1b; background: #fef2f2; }
.status:empty, .error:empty, .note:empty { padding: 0; }
.lead { border-top: 1px solid rgba(127,127,127,.25); font-size: 15px; }
.lead summary { padding: 10px 14px; cursor: pointer; }
.lead form { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; padding: 0 14px 10px; }
.lead label:first-child, .lead button { grid-column: 1 / -1; }
input, textarea { width: 100%; font: inherit; font-size: 16px; color: inherit; background: var(--bg);
  border: 1px solid rgba(127,127,127,.5); border-radius: 10px; padding: 8px 10px; }
.handoff { margin: 8px 10px 0; align-self: center; border: 1px solid var(--primary); padding: 0 16px; }
.composer { display: flex; align-items: flex-end; gap: 8px; padding: 10px; }
textarea { flex: 1; resize: none; max-height: 120px; min-height: 44px; }
.hidden-label { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 480px) {
  .root .panel { inset: 0; width: 100%; height: 100%; border-radius: 0; z-index: 2147483001; }
}`;

  const CLOSE_ICON = '<svg width="22" height="22" viewBox="0 0 24 24" stroke-width="2.5" aria-hidden="true"><path d="M6 6l12 12M18 6 6 18"/></svg>';

  // Static markup only: every word from the bot, the server or a person is set with textContent.
  // data-text, data-label and data-placeholder name the string that fills the text, aria-label or placeholder.
  const TEMPLATE = `
<div class="root">
  <button class="launcher" type="button" data-testid="launcher" aria-expanded="false" aria-controls="panel" data-label="open">
    <svg class="chat" width="28" height="28" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>
    <span class="shut">${CLOSE_ICON}</span>
  </button>
  <div class="panel" id="panel" role="dialog" data-testid="panel" hidden>
    <header><img alt=""><h2></h2><button type="button" data-testid="close" data-label="close">${CLOSE_ICON}</button></header>
    <div class="log" role="log" aria-live="polite" data-testid="log"></div>
    <p class="status" data-testid="status" aria-live="polite"></p>
    <p class="error" data-testid="error" role="alert"></p>
    <details class="lead">
      <summary data-testid="lead-toggle" data-text="lead"></summary>
      <form data-testid="lead-form">
        <label><span class="hidden-label" data-text="name"></span><input name="name" autocomplete="name" data-testid="lead-name" data-placeholder="name"></label>
        <label><span class="hidden-label" data-text="email"></span><input name="email" type="email" autocomplete="email" data-testid="lead-email" data-placeholder="email"></label>
        <label><span class="hidden-label" data-text="phone"></span><input name="phone" type="tel" autocomplete="tel" data-testid="lead-phone" data-placeholder="phone"></label>
        <button class="primary" type="submit" data-testid="lead-submit" data-text="leadSubmit"></button>
      </form>
      <p class="note" data-testid="lead-note" role="status"></p>
    </details>
    <button class="handoff" type="button" data-testid="handoff" data-text="handoff"></button>
    <form class="composer">
      <label class="hidden-label" for="input" data-text="inputLabel"></label>
      <textarea id="input" rows="1" data-testid="input" data-placeholder="placeholder"></textarea>
      <button class="primary" type="submit" data-testid="send" data-label="send">
        <svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true"><path d="M3 20.5 21 12 3 3.5v6.6L15 12 3 13.9z"/></svg>
      </button>
    </form>
  </div>
</div>`;

  const MESSAGE_ROLES = new Set(['user', 'assistant', 'operator']);
  const SNIPPET_LENGTH = 160;

  // ---- talking to the server ------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status = 0) {
      super(message);
      this.status = status;
    }
  }

  // localStorage throws in some privacy modes and sandboxed frames; the visitor then lasts this page view.
  let visitorToken = null;
  try { visitorToken = localStorage.getItem(visitorStorageKey); } catch { /* memory only */ }

  function storeVisitorToken(token) {
    visitorToken = token;
    try {
      if (token) localStorage.setItem(visitorStorageKey, token);
      else localStorage.removeItem(visitorStorageKey);
    } catch { /* memory only */ }
  }

  async function send(path, { method = 'GET', body, token, signal } = {}) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      return await fetch(apiBase + path, {
        method, headers, signal, credentials: 'omit', body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw new ApiError(t.offline);
    }
  }

  async function errorOf(response) {
    if (response.status === 429) return new ApiError(t.tooFast, 429);
    try {
      const message = (await response.json()).error.message;
      if (message) return new ApiError(message, response.status);
    } catch { /* not the API's envelope: a proxy's page, say */ }
    return new ApiError(t.failed, response.status);
  }

  let pendingVisitor = null;

  function ensureVisitor() {
    if (visitorToken) return Promise.resolve(visitorToken);
    // History, the live stream and a first message may all ask at once: they share one new visitor.
    pendingVisitor = pendingVisitor || (async () => {
      const response = await send('/visitors', { method: 'POST', token: widgetKey });
      if (!response.ok) throw await errorOf(response);
      storeVisitorToken((await response.json()).visitor_token);
      return visitorToken;
    })().finally(() => { pendingVisitor = null; });
    return pendingVisitor;
  }

  async function callAsVisitor(path, options = {}) {
    let token = await ensureVisitor();
    let response = await send(path, { ...options, token });
    if (response.status === 401) {
      // The token expired or its widget key was revoked: become a new visitor, once.
      if (visitorToken === token) storeVisitorToken(null);
      token = await ensureVisitor();
      response = await send(path, { ...options, token });
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  const readJson = async (path, options) => (await callAsVisitor(path, options)).json();

  // Reads a text/event-stream body as it arrives, calling onEvent(name, data) for each JSON event.
  async function readEventStream(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let eventName = '';
    let dataLines = [];
    const takeLine = (line) => {
      if (line === '') {
        if (dataLines.length) {
          let data = null;
          try { data = JSON.parse(dataLines.join('\n')); } catch { /* not ours to show */ }
          if (data) onEvent(eventName || 'message', data);
        }
        eventName = '';
        dataLines = [];
      } else if (!line.startsWith(':')) { // ": ping" comments only keep proxies awake
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') eventName = value;
        else if (field === 'data') dataLines.push(value);
      }
    };
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let lineEnd;
      while ((lineEnd = /\r\n|\r|\n/.exec(buffer))) {
        // A "\r" ending the buffer may be the first half of a "\r\n" split across two chunks.
        if (!done && lineEnd[0] === '\r' && lineEnd.index === buffer.length - 1) break;
        takeLine(buffer.slice(0, lineEnd.index));
        buffer = buffer.slice(lineEnd.index + lineEnd[0].length);
      }
      if (done) return;
    }
  }

  // ---- small pure helpers ---------------------------------------------------------------

  function el(tag, attributes = {}, text = '') {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.textContent = text;
    return node;
  }

  function pickLanguage(...candidates) {
    for (const candidate of candidates) {
      const prefix = String(candidate || '').toLowerCase().split(/[-_]/)[0];
      if (STRINGS[prefix]) return prefix;
    }
    return 'en';
  }

  // Black or white text on the primary colour, whichever contrasts more (WCAG relative luminance).
  function readableOn(color) {
    const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(String(color).trim());
    if (!hex) return '#ffffff';
    const pairs = hex[1].length === 3 ? [...hex[1]].map((digit) => digit + digit) : hex[1].match(/../g);
    const [r, g, b] = pairs.map((pair) => {
      const channel = parseInt(pair, 16) / 255;
      return channel <= 0.03928 ? channel / 12.92 : ((channel + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 ? '#111111' : '#ffffff';
  }

  // Only web links become links: a "javascript:" url from a poisoned document must stay text.
  function webUrl(url) {
    try {
      const parsed = new URL(url);
      return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
    } catch {
      return null;
    }
  }

  function shorten(text) {
    const flat = String(text || '').replace(/\s+/g, ' ').trim();
    if (flat.length <= SNIPPET_LENGTH) return flat;
    const cut = flat.slice(0, SNIPPET_LENGTH);
    const lastSpace = cut.lastIndexOf(' ');
    return `${lastSpace > SNIPPET_LENGTH * 0.6 ? cut.slice(0, lastSpace) : cut}\u2026`;
  }

  const sleep = (ms, signal) => new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });

  // ---- the widget -----------------------------------------------------------------------

  // configError: the config could not be had; the widget still shows, to say so when opened.
  function mount(config, configError) {
    const language = pickLanguage(script.dataset.language, config.language, navigator.language);
    t = STRINGS[language];
    const colors = config.colors || {};
    const primary = colors.primary || '#2563eb';
    const title = config.title || 'Chat';

    const host = el('div', { id: 'tertulia-widget' });
    host.style.cssText = 'all: initial !important'; // the page's own rules for divs must not draw the host
    const shadow = host.attachShadow({ mode: 'open' });
    shadow.innerHTML = `<style>${CSS}</style>${TEMPLATE}`;
    const find = (testId) => shadow.querySelector(`[data-testid="${testId}"]`);
    const root = shadow.querySelector('.root');
    const launcher = find('launcher');
    const panel = find('panel');
    const log = find('log');
    const statusLine = find('status');
    const errorLine = find('error');
    const lead = shadow.querySelector('.lead');
    const leadForm = find('lead-form');
    const leadNote = find('lead-note');
    const handoffButton = find('handoff');
    const composer = shadow.querySelector('.composer');
    const input = find('input');
    const sendButton = find('send');

    root.lang = language;
    root.dataset.position = config.position === 'left' ? 'left' : 'right';
    root.style.setProperty('--primary', primary);
    root.style.setProperty('--on-primary', readableOn(primary));
    root.style.setProperty('--bg', colors.background || '#ffffff');
    root.style.setProperty('--text', colors.text || '#111827');
    for (const node of shadow.querySelectorAll('[data-text]')) node.textContent = t[node.dataset.text];
    for (const node of shadow.querySelectorAll('[data-label]')) node.setAttribute('aria-label', t[node.dataset.label]);
    for (const node of shadow.querySelectorAll('[data-placeholder]')) node.placeholder = t[node.dataset.placeholder];
    panel.setAttribute('aria-label', title);
    shadow.querySelector('h2').textContent = title;
    const avatar = shadow.querySelector('header img');
    if (config.avatar_url) {
      avatar.src = config.avatar_url;
      avatar.addEventListener('error', () => avatar.remove());
    } else {
      avatar.remove();
    }
    if (!config.lead_capture) lead.remove();
    if (!config.request_human) handoffButton.remove();

    let isOpen = false;
    let historyRequested = false;
    let historyLoaded = false;
    let sending = false;
    let leadOffered = false;
    let conversation = null;
    let liveStream = null; // {controller, conversationId} while GET /events is wanted
    let pageLeaving = false;
    const shownMessageIds = new Set();

    const showError = (message) => { errorLine.textContent = message; };
    const updateComposer = () => { sendButton.disabled = sending || !historyLoaded; };

    // Keeps the log following new text unless the visitor has scrolled up to read.
    function changeLog(change, follow = false) {
      const atEnd = follow || log.scrollHeight - log.scrollTop - log.clientHeight < 60;
      change();
      if (atEnd) log.scrollTop = log.scrollHeight;
    }

    function markShown(message, id) {
      if (!id) return;
      message.dataset.messageId = id;
      shownMessageIds.add(id);
    }

    function renderSources(message, sources) {
      message.querySelector('.sources')?.remove();
      if (!sources || !sources.length) return;
      const box = el('div', { class: 'sources' });
      const list = el('ul', { 'aria-label': t.sources });
      for (const source of sources) {
        const item = el('li', { 'data-testid': 'source' });
        const url = webUrl(source.url);
        const label = source.title || url || t.sources;
        item.append(url ? el('a', { href: url, target: '_blank', rel: 'noopener' }, label) : el('strong', {}, label));
        const snippet = shorten(source.snippet);
        if (snippet) item.append(el('span', { class: 'snippet' }, snippet));
        list.append(item);
      }
      box.append(el('p', { 'aria-hidden': 'true' }, t.sources), list);
      message.append(box);
    }

    // A message is its bubble of text plus what goes with it: an operator's name, the sources.
    function addMessage(role, text, { id, senderName, sources, follow } = {}) {
      const message = el('div', { class: 'message', 'data-testid': 'message', 'data-role': role });
      if (role === 'operator') {
        message.append(el('span', { class: 'sender' }, senderName ? t.operator.replace('{name}', senderName) : t.someone));
      }
      message.append(el('div', { class: 'bubble' }, text));
      markShown(message, id);
      renderSources(message, sources);
      changeLog(() => log.append(message), follow);
      return message;
    }

    function renderMessage(message) {
      if (shownMessageIds.has(message.id) || !MESSAGE_ROLES.has(message.role)) return false;
      if (message.role === 'user') {
        // A question whose id never came back (a held one) is already on screen: it only needs the id.
        const unnamed = [...log.querySelectorAll('[data-role="user"]:not([data-message-id])')]
          .find((question) => question.querySelector('.bubble').textContent === message.content);
        if (unnamed) {
          markShown(unnamed, message.id);
          return false;
        }
      }
      addMessage(message.role, message.content, {
        id: message.id, senderName: message.sender_name, sources: message.sources,
      });
      return true;
    }

    function describe(current) {
      if (current.status === 'resolved') return t.resolved;
      if (current.operator) return t.joined.replace('{name}', current.operator);
      return current.human_requested ? t.personSoon : '';
    }

    function setConversation(next, statusText) {
      if (!next) return;
      conversation = next;
      statusLine.textContent = statusText ?? describe(next);
      handoffButton.disabled = next.status !== 'resolved' && Boolean(next.human_requested || next.operator);
      connectLiveStream();
    }

    // ---- live updates: GET /events ----

    function connectLiveStream() {
      if (!conversation || pageLeaving) return;
      if (liveStream && liveStream.conversationId === conversation.id) return;
      liveStream?.controller.abort(); // the stream follows the latest conversation: a new one needs a new stream
      const controller = new AbortController();
      liveStream = { controller, conversationId: conversation.id };
      followLiveStream(controller.signal).finally(() => {
        if (liveStream?.controller === controller) liveStream = null;
      });
    }

    async function followLiveStream(signal) {
      let delay = 1000;
      for (let attempt = 0; !signal.aborted; attempt++) {
        try {
          const response = await callAsVisitor('/events', { signal });
          delay = 1000;
          // Whatever happened while disconnected is not replayed: fetch it (not mid-reply,
          // where the question on screen has no id yet and would show twice).
          if (attempt > 0 && !sending) catchUp();
          await readEventStream(response, onLiveEvent);
        } catch (error) {
          if (signal.aborted) return;
          // 404: no conversation (a new one comes with the next "start"); 403: not allowed at all.
          if (error.status === 404 || error.status === 403) return;
        }
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 30000);
      }
    }

    function onLiveEvent(name, data) {
      if (name === 'message') {
        if (renderMessage(data) && !isOpen) {
          launcher.dataset.unread = 'true';
          launcher.setAttribute('aria-label', t.openUnread);
        }
      } else if (name === 'status') {
        setConversation(data.conversation);
      }
    }

    async function catchUp() {
      try {
        const latest = await readJson('/conversation');
        latest.messages.forEach(renderMessage);
        setConversation(latest.conversation);
      } catch { /* the next reconnect tries again */ }
    }

    addEventListener('pagehide', () => {
      pageLeaving = true;
      liveStream?.controller.abort();
      liveStream = null;
    });
    addEventListener('pageshow', (event) => { // back from the back/forward cache
      if (!event.persisted) return;
      pageLeaving = false;
      connectLiveStream();
    });

    // ---- history, sending, asking for a person, leaving a contact ----

    function greet() {
      if (config.greeting) addMessage('greeting', config.greeting);
    }

    async function loadHistory() {
      try {
        if (configError) throw configError;
        // A visitor who never wrote has no history: become one only when there is something to send.
        if (visitorToken) {
          const history = await readJson('/conversation');
          if (history.messages.length) history.messages.forEach(renderMessage);
          else greet();
          leadOffered = history.messages.some((message) => message.role === 'assistant');
          setConversation(history.conversation);
        } else {
          greet();
        }
      } catch (error) {
        greet();
        showError(error.message);
      }
      historyLoaded = true;
      updateComposer();
    }

    function offerLeadForm() {
      if (leadOffered || !lead.isConnected) return;
      leadOffered = true;
      lead.open = true;
    }

    async function sendMessage(content) {
      sending = true;
      updateComposer();
      showError('');
      const question = addMessage('user', content, { follow: true });
      const reply = addMessage('assistant', '', { follow: true });
      const replyText = reply.querySelector('.bubble');
      reply.dataset.streaming = 'true';
      log.setAttribute('aria-busy', 'true'); // screen readers hear the whole answer, not every token
      let stored = false;
      let finished = false;
      try {
        const response = await callAsVisitor('/messages', { method: 'POST', body: { content } });
        await readEventStream(response, (name, data) => {
          if (name === 'start') {
            stored = true;
            markShown(question, data.user_message?.id);
            setConversation(data.conversation);
          } else if (name === 'sources') {
            changeLog(() => renderSources(reply, data.sources));
          } else if (name === 'token') {
            changeLog(() => replyText.append(data.text));
          } else if (name === 'done') {
            finished = true;
            const message = data.message;
            replyText.textContent = message.content; // the stored answer is the one a reload shows
            reply.dataset.streaming = 'false';
            markShown(reply, message.id);
            markShown(question, data.user_message?.id); // said here as well as (or instead of) at "start"
            if (message.sources) renderSources(reply, message.sources);
            setConversation(data.conversation);
            offerLeadForm();
          } else if (name === 'held') {
            finished = true;
            reply.remove();
            setConversation(data.conversation, t.personHere);
          } else if (name === 'error') {
            finished = true;
            reply.remove();
            showError(data.message || t.failed);
          }
        });
        if (!finished) throw new ApiError(t.offline);
      } catch (error) {
        if (!finished) { // a connection lost after "done" takes nothing away
          reply.remove();
          if (!stored) { // the server never had the question: give it back to edit and resend
            question.remove();
            if (!input.value) input.value = content;
          }
          showError(error.message);
        }
      } finally {
        log.setAttribute('aria-busy', 'false');
        sending = false;
        updateComposer();
      }
    }

    function submitMessage() {
      const content = input.value.trim();
      if (!content || sendButton.disabled) return;
      input.value = '';
      fitInput();
      sendMessage(content);
    }

    function fitInput() {
      input.style.height = 'auto';
      input.style.height = `${Math.min(input.scrollHeight + 2, 120)}px`;
    }

    async function requestHuman() {
      handoffButton.disabled = true;
      showError('');
      try {
        setConversation((await readJson('/handoff', { method: 'POST' })).conversation);
      } catch (error) {
        handoffButton.disabled = false;
        showError(error.message);
      }
    }

    async function submitContact(event) {
      event.preventDefault();
      const contact = {};
      for (const [field, value] of new FormData(leadForm)) if (value.trim()) contact[field] = value.trim();
      if (!contact.email && !contact.phone) {
        leadNote.textContent = t.leadNeeded;
        return;
      }
      const submit = find('lead-submit');
      submit.disabled = true;
      leadNote.textContent = '';
      try {
        setConversation((await readJson('/contact', { method: 'POST', body: contact })).conversation);
        leadForm.remove();
        leadOffered = true;
        leadNote.textContent = t.leadThanks;
      } catch (error) {
        leadNote.textContent = error.message;
      } finally {
        submit.disabled = false;
      }
    }

    // ---- opening and closing ----

    function open({ focus = true } = {}) {
      isOpen = true;
      panel.hidden = false;
      launcher.setAttribute('aria-expanded', 'true');
      launcher.setAttribute('aria-label', t.close);
      delete launcher.dataset.unread;
      log.scrollTop = log.scrollHeight;
      if (!historyRequested) {
        historyRequested = true;
        loadHistory();
      }
      if (focus) input.focus();
    }

    function close() {
      isOpen = false;
      const hadFocus = panel.contains(shadow.activeElement);
      panel.hidden = true;
      launcher.setAttribute('aria-expanded', 'false');
      launcher.setAttribute('aria-label', t.open);
      if (hadFocus) launcher.focus();
    }

    launcher.addEventListener('click', () => (isOpen ? close() : open()));
    find('close').addEventListener('click', close);
    root.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && isOpen) close();
    });
    input.addEventListener('keydown', (event) => {
      // isComposing: Enter also confirms a Chinese or Japanese input method's candidate.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submitMessage();
      }
    });
    input.addEventListener('input', fitInput);
    composer.addEventListener('submit', (event) => {
      event.preventDefault();
      submitMessage();
    });
    handoffButton.addEventListener('click', requestHuman);
    leadForm.addEventListener('submit', submitContact);

    updateComposer();
    document.body.append(host);
    window.TertuliaWidget = { open: () => open(), close };
    if (script.dataset.open === 'true') open({ focus: false }); // focus stays where the page put it
  }

  async function start() {
    let config = {};
    let configError = null;
    try {
      const response = await send('/config', { token: widgetKey });
      if (!response.ok) throw await errorOf(response);
      config = await response.json();
    } catch (error) {
      // A page not allowed to use this bot, or a server that is down: the visitor is told on opening.
      console.warn(`Tertulia widget: ${error.message}`);
      configError = error;
    }
    if (document.readyState === 'loading') {
      await new Promise((resolve) => document.addEventListener('DOMContentLoaded', resolve, { once: true }));
    }
    mount(config, configError);
  }

  start();
})();
