// The oxchain block explorer: one page with hash routes (#/block/12, #/tx/<txid>,
// #/account/<address>, #/network), reading the node's /v1 API and kept live by the
// /v1/events WebSocket. No framework and no build step: the node embeds this file.
//
// Every piece of API data reaches the page through textContent or attributes (the `el`
// helper below), never through innerHTML, so a hostile string cannot become markup.

'use strict';

/** Base units in one coin. */
const COIN = 100000000;
/** The dev accounts funded in genesis on dev and regtest. */
const DEV_ACCOUNTS = ['alice', 'bob', 'charlie', 'dave', 'eve'];
/** Networks where the node signs for dev accounts and mines on request. */
const DEV_NETWORKS = ['dev', 'regtest'];
/** Rows in the dashboard's lists. */
const LIST_LENGTH = 10;
/** Blocks the dashboard's charts cover. */
const CHART_BLOCKS = 60;
/** Heights of the best chain the fork tree shows. */
const FORK_WINDOW = 30;
/** The deepest fork tree drawn (one page of /v1/blocks), to reach a recent reorg. */
const FORK_WINDOW_MAX = 100;
/** Reorgs listed in the Reorgs card, newest first. */
const REORGS_SHOWN = 5;
/** Blocks or history items on a page. */
const PAGE_SIZE = 20;
/** The longest wait between two tries to reconnect to /v1/events. */
const MAX_RECONNECT_MS = 30000;
/** How often the status is read even without events (peers, hash rate). */
const STATUS_POLL_MS = 15000;

const app = {
  /** The last /v1/status answer. */
  status: null,
  /** Dev account name by address (dev and regtest only). */
  devNames: new Map(),
  /**
   * Node name by miner address: this node's (from /v1/node) and its peers' (what they
   * say through identify, from /v1/peers), for nodes started with --name (a devnet's).
   */
  nodeNames: new Map(),
  /** The page on screen: { onEvent(event), onStatus(), onResize() }, all optional. */
  view: {},
  /** Bumped on every route change, so late answers for an old page are dropped. */
  renderId: 0,
  /** Whether the next route change moves focus to the new page's heading. */
  moveFocus: false,
};

// ---------------------------------------------------------------------------------------
// DOM building

/** An element with attributes (`on*` are listeners) and children (strings become text). */
function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG. */
function svg(tag, attrs, ...children) {
  return build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
}

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function $(selector) {
  return document.querySelector(selector);
}

// ---------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** JSON from the node; a failure throws ApiError with the node's own message. */
async function api(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {
    throw new ApiError(`the node did not answer (${e.message})`, 0, 'unreachable');
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = (body && body.message) || `${response.status} ${response.statusText}`;
    throw new ApiError(message, response.status, body && body.code);
  }
  return body;
}

function post(path, jsonText) {
  return api(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: jsonText,
  });
}

/** Like `api`, but `null` for a 404. */
async function apiOrNull(path) {
  try {
    return await api(path);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------
// Formatting

/** Base units as coins, exact ("2.5"). Amounts here stay far below 2^53 units. */
function coins(units) {
  const whole = Math.floor(units / COIN);
  const fraction = String(units % COIN).padStart(8, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : String(whole);
}

function coinText(coinString) {
  return `${coinString} ${coinString === '1' ? 'coin' : 'coins'}`;
}

function shortHash(hash) {
  return hash.length > 16 ? `${hash.slice(0, 8)}…${hash.slice(-6)}` : hash;
}

function utcTime(ms) {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

function timeAgo(ms) {
  const seconds = Math.round((Date.now() - ms) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function duration(ms) {
  const seconds = ms / 1000;
  if (seconds < 100) return `${round(seconds)} s`;
  if (seconds < 6000) return `${round(seconds / 60)} min`;
  if (seconds < 48 * 3600) return `${round(seconds / 3600)} h`;
  return `${round(seconds / 86400)} d`;
}

function hashRate(perSecond) {
  if (perSecond > 0 && perSecond < 1) return '< 1 H/s';
  const units = ['H/s', 'kH/s', 'MH/s', 'GH/s', 'TH/s', 'PH/s'];
  let value = perSecond;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${round(value)} ${units[unit]}`;
}

/** Three significant digits, never an exponent. */
function round(value) {
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toLocaleString('en-US', { maximumSignificantDigits: 3 });
}

/** An axis label that fits the chart's margin: 12.4M, not 12,383,761. */
function compact(value) {
  return value.toLocaleString('en-US', { notation: 'compact', maximumSignificantDigits: 3 });
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

// ---------------------------------------------------------------------------------------
// Links and small pieces

function blockLink(id, text) {
  return el('a', { href: `#/block/${id}`, class: 'mono' }, text ?? String(id));
}

function hashLink(hash) {
  return el('a', { href: `#/block/${hash}`, class: 'mono', title: hash }, shortHash(hash));
}

function txLink(txid) {
  return el('a', { href: `#/tx/${txid}`, class: 'mono', title: txid }, shortHash(txid));
}

/**
 * An address: in full (`full`) with the dev account name before it, or short, where a
 * dev account shows by name alone.
 */
/**
 * A hash or address in full with a button that copies it. The button says "copied" for
 * a moment, or "select and copy" where the page may not write the clipboard.
 */
function copyable(text, what, node = el('span', { class: 'mono wrap' }, text)) {
  const button = el('button', { type: 'button', class: 'copy', 'aria-label': `Copy ${what}`, title: `Copy ${what}` }, 'copy');
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'copied';
    } catch {
      button.textContent = 'select and copy';
    }
    setTimeout(() => { button.textContent = 'copy'; }, 1500);
  });
  return el('span', { class: 'copyable' }, node, ' ', button);
}

function addressLink(address, full) {
  const name = app.devNames.get(address) || app.nodeNames.get(address);
  if (full) {
    return el('a', { href: `#/account/${address}`, title: address },
      name ? el('span', { class: 'dev-name' }, name) : null,
      el('span', { class: 'mono wrap' }, address));
  }
  return el('a', { href: `#/account/${address}`, class: 'address', title: address },
    name ? el('span', { class: 'dev-name' }, name) : el('span', { class: 'mono' }, shortHash(address)));
}

function badge(text, kind) {
  return el('span', { class: `badge ${kind || ''}` }, text);
}

/** A definition list of [term, value] pairs; a null value drops its row. */
function facts(pairs) {
  return el('dl', { class: 'facts' },
    pairs.filter(([, value]) => value !== null && value !== undefined)
      .map(([term, value]) => el('div', { class: 'fact' }, el('dt', {}, term), el('dd', {}, value))));
}

function card(title, ...children) {
  const headingId = `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return el('section', { class: 'card', 'aria-labelledby': headingId },
    el('h2', { id: headingId }, title), children);
}

function emptyNote(text) {
  return el('p', { class: 'muted empty' }, text);
}

/** Calls `fn` once, `ms` after the last of a burst of calls (for resizing). */
function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/**
 * Calls `fn` at most once every `ms`, and always once after the last call. Unlike
 * `debounce`, a steady stream of calls (a devnet finds several blocks a second) cannot
 * put it off for ever.
 */
function throttle(fn, ms) {
  let timer = null;
  let wanted = false;
  const fire = () => {
    timer = null;
    if (!wanted) return;
    wanted = false;
    fn();
    timer = setTimeout(fire, ms);
  };
  return () => {
    wanted = true;
    if (timer === null) timer = setTimeout(fire, 50);
  };
}

// ---------------------------------------------------------------------------------------
// Page frame

/**
 * Starts a page: its heading, a body to fill, and a view object for live events. Returns
 * `{ body, view, current() }`; `current()` is false once the user has moved on.
 */
function startPage(title, subtitle) {
  const id = ++app.renderId;
  const main = $('#main');
  const heading = el('h1', { tabindex: '-1' }, title);
  const body = el('div', { class: 'page-body' }, el('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(el('div', { class: 'page-head' }, heading, subtitle || null), body);
  main.dataset.state = 'loading';
  // For tests and tools: which route the page on screen belongs to.
  main.dataset.route = location.hash || '#/';
  document.title = `${title} · oxchain explorer`;
  if (app.moveFocus) heading.focus();
  app.view = {};
  return { heading, body, view: app.view, current: () => id === app.renderId };
}

function setReady(page) {
  if (page.current()) $('#main').dataset.state = 'ready';
}

function showError(page, error) {
  if (!page.current()) return;
  page.body.replaceChildren(el('p', { class: 'error', role: 'alert' }, error.message));
  $('#main').dataset.state = 'error';
}

/**
 * Loads a page's data with `load()` and shows it with `draw(data)`; live events that
 * matter to it (`wants(event)`) load it again, without the "Loading…" flash, and so
 * does `page.view.reload()`.
 */
function livePage(page, load, draw, wants) {
  let latest = 0;
  const refresh = async () => {
    // Answers can come back out of order: only the newest load is drawn.
    const mine = ++latest;
    try {
      const data = await load();
      if (!page.current() || mine !== latest) return;
      page.body.replaceChildren(draw(data));
      setReady(page);
    } catch (e) {
      if (mine === latest) showError(page, e);
    }
  };
  const again = throttle(refresh, 500);
  page.view.onEvent = (event) => {
    if (wants(event)) again();
  };
  page.view.reload = again;
  refresh();
}

// ---------------------------------------------------------------------------------------
// Routes

const ROUTES = [
  [/^$/, () => renderDashboard()],
  [/^blocks$/, (m, query) => renderBlocks(query.get('before'))],
  [/^block\/([^/]+)$/, (m) => renderBlock(m[1])],
  [/^tx\/([^/]+)$/, (m) => renderTransfer(m[1])],
  [/^account\/([^/]+)$/, (m, query) => renderAccount(m[1], query.get('before'))],
  [/^network$/, () => renderNetwork()],
  [/^mempool$/, () => renderMempool()],
  [/^verify$/, () => renderVerify()],
];

function route() {
  $('#search-message').textContent = '';
  const [raw, query] = location.hash.replace(/^#\/?/, '').split('?');
  const params = new URLSearchParams(query || '');
  let path = raw;
  try {
    path = decodeURIComponent(raw);
  } catch {
    // A malformed %-escape: match the text as it is.
  }
  for (const [pattern, render] of ROUTES) {
    const match = path.match(pattern);
    if (match) {
      markNav(path);
      render(match, params);
      app.moveFocus = true;
      return;
    }
  }
  renderNotFound(path);
}

function markNav(path) {
  const section = path === '' ? '#/' : `#/${path.split('/')[0]}`;
  for (const link of document.querySelectorAll('nav a')) {
    const here = link.getAttribute('href') === section
      || (section === '#/block' && link.getAttribute('href') === '#/blocks');
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function renderNotFound(path) {
  const page = startPage('Not found');
  page.body.replaceChildren(
    el('p', {}, `There is no page "${path}". `, el('a', { href: '#/' }, 'Go to the dashboard.')));
  setReady(page);
}

// ---------------------------------------------------------------------------------------
// Status and live events

async function refreshStatus() {
  const [status] = await Promise.all([api('/v1/status'), loadNodeNames().catch(() => {})]);
  app.status = status;
  $('#foot-version').textContent = `oxchain ${app.status.version} · ${app.status.network}`;
  if (app.view.onStatus) app.view.onStatus();
}

const refreshStatusSoon = throttle(() => refreshStatus().catch(() => {}), 500);

function isDevNetwork() {
  return Boolean(app.status) && DEV_NETWORKS.includes(app.status.network);
}

/** Learns which node mines to which address, to show "node-1" beside its miner's. */
async function loadNodeNames() {
  const [node, peers] = await Promise.all([api('/v1/node'), api('/v1/peers')]);
  const names = new Map();
  for (const p of peers.peers) if (p.name && p.miner_address) names.set(p.miner_address, p.name);
  names.set(node.miner_address, node.name ? `${node.name} (this node)` : 'this node');
  app.nodeNames = names;
}

/** Learns the dev accounts' addresses, to show "alice" beside hers. */
async function loadDevNames() {
  const accounts = await Promise.all(DEV_ACCOUNTS.map((name) => api(`/v1/accounts/${name}`)));
  accounts.forEach((account, i) => app.devNames.set(account.address, DEV_ACCOUNTS[i]));
}

function setLive(connected) {
  const live = $('#live');
  live.textContent = connected ? `${app.status ? app.status.network : ''} · live` : 'reconnecting…';
  live.classList.toggle('on', connected);
  live.title = connected
    ? 'Connected to the node: new blocks and transfers appear as they arrive'
    : 'Not connected to the node\'s events; trying again';
}

/** Follows /v1/events, reconnecting with a growing delay when the socket closes. */
function connectEvents(attempt) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/v1/events`);
  let opened = false;
  socket.addEventListener('open', () => {
    opened = true;
    setLive(true);
    // Events may have been missed while the socket was down.
    refreshStatusSoon();
    if (attempt > 0 && app.view.onEvent) app.view.onEvent({ type: 'reconnected' });
  });
  socket.addEventListener('message', (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    onEvent(event);
  });
  socket.addEventListener('close', () => {
    setLive(false);
    const next = opened ? 0 : attempt + 1;
    const delay = Math.min(MAX_RECONNECT_MS, 1000 * 2 ** next) * (0.75 + Math.random() / 2);
    setTimeout(() => connectEvents(Math.max(next, 1)), delay);
  });
}

function onEvent(event) {
  if (event.type === 'block' && app.status) {
    // Show the new height at once; the rest of the status follows.
    app.status.height = event.height;
    app.status.tip = event.hash;
    if (app.view.onStatus) app.view.onStatus();
  }
  refreshStatusSoon();
  if (app.view.onEvent) app.view.onEvent(event);
}

// ---------------------------------------------------------------------------------------
// Search

/** Where a search leads: the node says what the query names (GET /v1/search). */
async function resolveSearch(query) {
  const found = await api(`/v1/search?q=${encodeURIComponent(query)}`);
  const page = { block: 'block', transaction: 'tx', account: 'account' }[found.kind];
  return `#/${page}/${found.id}`;
}

async function onSearch(event) {
  event.preventDefault();
  const input = $('#search-input');
  const message = $('#search-message');
  const query = input.value.trim();
  if (!query) {
    message.textContent = 'Type a height, a block hash, a txid or an address.';
    return;
  }
  message.textContent = 'Searching…';
  try {
    const target = await resolveSearch(query);
    message.textContent = '';
    input.value = '';
    if (location.hash === target) route();
    else location.hash = target;
  } catch (e) {
    message.textContent = e.message;
  }
}

// ---------------------------------------------------------------------------------------
// Dashboard

function renderDashboard() {
  const page = startPage('Dashboard');
  const stats = el('div', { class: 'stats' });
  const timeChart = el('div', { class: 'chart' });
  const difficultyChart = el('div', { class: 'chart' });
  const blockList = el('ol', { class: 'rows', 'aria-label': 'Latest blocks' });
  const transferList = el('ol', { class: 'rows', 'aria-label': 'Latest transfers' });
  const data = { blocks: [], transfers: [] };

  const drawStats = () => stats.replaceChildren(...statCards(app.status));
  const drawCharts = () => {
    timeChart.replaceChildren(blockTimeChart(data.blocks, timeChart.clientWidth));
    difficultyChart.replaceChildren(difficultyLineChart(data.blocks, difficultyChart.clientWidth));
  };
  const drawLists = () => {
    blockList.replaceChildren(...blockRows(data.blocks.slice(0, LIST_LENGTH)));
    transferList.replaceChildren(...transferRows(data.transfers.slice(0, LIST_LENGTH)));
    // Highlight a row once, when it arrives, not again on every redraw.
    for (const item of [...data.blocks, ...data.transfers]) item.fresh = false;
  };
  const reloadBlocks = throttle(async () => {
    try {
      data.blocks = (await api(`/v1/blocks?limit=${CHART_BLOCKS}`)).blocks;
      if (!page.current()) return;
      drawCharts();
      drawLists();
    } catch {
      // The next event or reload tries again.
    }
  }, 1000);

  page.body.replaceChildren(
    stats,
    el('div', { class: 'grid two' },
      card('Block times', timeChart),
      card('Difficulty', difficultyChart)),
    isDevNetwork() ? devTools() : null,
    el('div', { class: 'grid two' },
      card('Latest blocks', blockList, el('p', { class: 'more' }, el('a', { href: '#/blocks' }, 'All blocks →'))),
      card('Latest transfers', transferList)));
  drawStats();

  page.view.onStatus = drawStats;
  page.view.onResize = drawCharts;
  page.view.onEvent = (event) => {
    if (event.type === 'block') {
      addLiveBlock(data, event);
      noteTransfers(data, event.transactions || [], event.height, true);
      drawCharts();
      drawLists();
    } else if (event.type === 'tx') {
      noteTransfers(data, [event.transaction], null, true);
      drawLists();
    } else if (['block_disconnected', 'reorg', 'reconnected'].includes(event.type)) {
      reloadBlocks();
    }
  };

  loadDashboard(data).then(() => {
    if (!page.current()) return;
    drawCharts();
    drawLists();
    setReady(page);
  }, (e) => showError(page, e));
}

async function loadDashboard(data) {
  const [page, mempool] = await Promise.all([
    api(`/v1/blocks?limit=${CHART_BLOCKS}`),
    api(`/v1/mempool?limit=${LIST_LENGTH}`),
  ]);
  data.blocks = page.blocks;
  // Transfers of the newest blocks that hold any (a block's first transaction is its
  // coinbase), so the list is not empty until the next one arrives.
  const withTransfers = page.blocks.filter((b) => b.tx_count > 1).slice(0, 5);
  const full = await Promise.all(withTransfers.map((b) => api(`/v1/blocks/${b.hash}`)));
  for (const block of full.reverse()) noteTransfers(data, block.transactions, block.height);
  noteTransfers(data, mempool.transactions, null);
}

/** Puts a block from a `block` event at the top of the list (a reorg may replace some). */
function addLiveBlock(data, event) {
  // A block event carries the same summary as /v1/blocks, and its transactions.
  const { type, transactions, ...summary } = event;
  data.blocks = [{ ...summary, fresh: true }, ...data.blocks.filter((b) => b.height < event.height)]
    .slice(0, CHART_BLOCKS);
}

/**
 * Records transfers (not coinbases): pending if `height` is null, else confirmed there;
 * `live` ones are highlighted as they arrive.
 */
function noteTransfers(data, transactions, height, live) {
  for (const tx of transactions) {
    if (tx.kind !== 'transfer') continue;
    const known = data.transfers.find((t) => t.tx.txid === tx.txid);
    if (known) {
      known.height = height;
      known.fresh = Boolean(live);
    } else {
      data.transfers.push({ tx, height, fresh: Boolean(live) });
    }
  }
  // Pending first, then the newest blocks.
  data.transfers.sort((a, b) => (b.height ?? Infinity) - (a.height ?? Infinity));
  data.transfers.length = Math.min(data.transfers.length, 50);
}

function statCards(status) {
  const stat = (label, value, note) => el('div', { class: 'stat' },
    el('span', { class: 'stat-label' }, label),
    el('span', { class: 'stat-value' }, value),
    note ? el('span', { class: 'stat-note' }, note) : null);
  return [
    stat('Height', blockLink(status.height, status.height.toLocaleString('en-US')), `tip ${shortHash(status.tip)}`),
    stat('Difficulty', round(status.difficulty), `work ${round(Number(status.total_work))}`),
    stat('Network hash rate', hashRate(status.network_hashes_per_s),
      `this node: ${hashRate(status.mining.hashes_per_s)}`),
    stat('Peers', el('a', { href: '#/network' }, String(status.peers)), status.sync ? `syncing: ${status.sync.height} of ${status.sync.target}` : 'in sync'),
    stat('Mempool', String(status.mempool), plural(status.mempool, 'pending transfer')),
    stat('Network', status.network, `mining: ${status.mining.mode}`),
  ];
}

/** Newest first: each block with its miner, size, fees and the time since its parent. */
function blockRows(blocks) {
  if (blocks.length === 0) return [el('li', {}, emptyNote('No blocks yet.'))];
  return blocks.map((b, i) => {
    const parent = blocks[i + 1];
    const interval = parent && parent.height === b.height - 1 && parent.height > 0
      ? ` · ${duration(Math.max(0, b.time_ms - parent.time_ms))} after #${parent.height}` : '';
    return el('li', { class: b.fresh ? 'row fresh' : 'row' },
      el('span', { class: 'row-main' }, blockLink(b.height, `#${b.height}`), ' ', hashLink(b.hash),
        b.miner && b.height > 0 ? el('span', { class: 'muted' }, ' by ', addressLink(b.miner)) : null),
      el('span', { class: 'row-side' },
        plural(b.tx_count, 'tx'), ` · ${(b.size / 1024).toFixed(1)} KiB`,
        b.fees ? ` · fees ${coins(b.fees)}` : '', interval, ' · ',
        el('time', { datetime: new Date(b.time_ms).toISOString(), title: utcTime(b.time_ms) }, timeAgo(b.time_ms))));
  });
}

function transferRows(transfers) {
  if (transfers.length === 0) return [el('li', {}, emptyNote('No transfers yet. Send one below, or with POST /transactions/new.'))];
  return transfers.map(({ tx, height, fresh }) => el('li', { class: fresh ? 'row fresh' : 'row' },
    el('span', { class: 'row-main' }, txLink(tx.txid), ' ',
      el('span', { class: 'flow' }, addressLink(tx.from), ' → ', addressLink(tx.to))),
    el('span', { class: 'row-side' },
      el('strong', {}, coinText(tx.amount_coins)), ' · ',
      height === null ? badge('pending', 'warn') : blockLink(height, `block ${height}`))));
}

// ---------------------------------------------------------------------------------------
// Charts (inline SVG, drawn to the container's width)

const CHART_HEIGHT = 150;
const CHART_PAD = { left: 56, right: 10, top: 12, bottom: 24 };

/** The frame of a chart: axis labels for the value range and the heights covered. */
function chartFrame(width, label, yMax, yLabel, fromHeight, toHeight) {
  const { left, right, top, bottom } = CHART_PAD;
  const base = CHART_HEIGHT - bottom;
  return svg('svg', {
    width, height: CHART_HEIGHT, viewBox: `0 0 ${width} ${CHART_HEIGHT}`,
    role: 'img', 'aria-label': label, class: 'chart-svg',
  },
  svg('title', {}, label),
  svg('line', { x1: left, y1: top, x2: left, y2: base, class: 'axis' }),
  svg('line', { x1: left, y1: base, x2: width - right, y2: base, class: 'axis' }),
  svg('line', { x1: left, y1: top, x2: width - right, y2: top, class: 'grid-line' }),
  svg('text', { x: left - 6, y: top + 4, class: 'tick', 'text-anchor': 'end' }, yLabel(yMax)),
  svg('text', { x: left - 6, y: base, class: 'tick', 'text-anchor': 'end' }, yLabel(0)),
  fromHeight === toHeight ? null : svg('text', { x: left, y: CHART_HEIGHT - 6, class: 'tick' }, `#${fromHeight}`),
  svg('text', { x: width - right, y: CHART_HEIGHT - 6, class: 'tick', 'text-anchor': 'end' }, `#${toHeight}`));
}

/**
 * Bars of the time between each block and its parent, oldest on the left. Genesis is
 * left out: its time is fixed when the network is defined, not when it was mined.
 */
function blockTimeChart(blocksNewestFirst, width) {
  const blocks = [...blocksNewestFirst].reverse();
  const gaps = [];
  for (let i = 1; i < blocks.length; i += 1) {
    if (blocks[i].height === blocks[i - 1].height + 1 && blocks[i - 1].height > 0) {
      gaps.push({ height: blocks[i].height, ms: Math.max(0, blocks[i].time_ms - blocks[i - 1].time_ms) });
    }
  }
  if (gaps.length === 0) return emptyNote('Block times appear once two blocks have been mined after genesis.');
  width = Math.max(width, 200);
  const max = Math.max(...gaps.map((g) => g.ms), 1);
  const average = gaps.reduce((sum, g) => sum + g.ms, 0) / gaps.length;
  const label = `Block times of the last ${plural(gaps.length, 'block')}: average ${duration(average)}, `
    + `newest ${duration(gaps[gaps.length - 1].ms)}, longest ${duration(max)}`;
  const frame = chartFrame(width, label, max, (v) => duration(v), gaps[0].height, gaps[gaps.length - 1].height);
  const { left, right, top, bottom } = CHART_PAD;
  const plotWidth = width - left - right;
  const plotHeight = CHART_HEIGHT - top - bottom;
  const slot = plotWidth / gaps.length;
  const barWidth = Math.max(1, Math.min(slot * 0.7, 24));
  gaps.forEach((gap, i) => {
    const h = Math.max(1, (gap.ms / max) * plotHeight);
    frame.append(svg('rect', {
      x: left + i * slot + (slot - barWidth) / 2, y: top + plotHeight - h,
      width: barWidth, height: h, class: 'bar',
    }, svg('title', {}, `block ${gap.height}: ${duration(gap.ms)} after its parent`)));
  });
  const avgY = top + plotHeight - (average / max) * plotHeight;
  frame.append(svg('line', { x1: left, y1: avgY, x2: width - right, y2: avgY, class: 'average' }));
  return el('figure', {}, frame, el('figcaption', { class: 'muted' }, `average ${duration(average)} (dashed)`));
}

/** A line of each block's difficulty, oldest on the left. */
function difficultyLineChart(blocksNewestFirst, width) {
  const blocks = [...blocksNewestFirst].reverse().filter((b) => typeof b.difficulty === 'number');
  if (blocks.length === 0) return emptyNote('No blocks yet.');
  width = Math.max(width, 200);
  const max = Math.max(...blocks.map((b) => b.difficulty)) * 1.1 || 1;
  const newest = blocks[blocks.length - 1];
  const label = `Difficulty over the last ${plural(blocks.length, 'block')}: now ${round(newest.difficulty)}`;
  const frame = chartFrame(width, label, max, compact, blocks[0].height, newest.height);
  const { left, right, top, bottom } = CHART_PAD;
  const plotWidth = width - left - right;
  const plotHeight = CHART_HEIGHT - top - bottom;
  const x = (i) => left + (blocks.length === 1 ? plotWidth / 2 : (i / (blocks.length - 1)) * plotWidth);
  const y = (d) => top + plotHeight - (d / max) * plotHeight;
  const points = blocks.map((b, i) => `${x(i).toFixed(1)},${y(b.difficulty).toFixed(1)}`).join(' ');
  frame.append(svg('polyline', { points, class: 'line' }));
  frame.append(svg('circle', { cx: x(blocks.length - 1), cy: y(newest.difficulty), r: 3, class: 'dot' },
    svg('title', {}, `block ${newest.height}: difficulty ${round(newest.difficulty)}`)));
  return el('figure', {}, frame, el('figcaption', { class: 'muted' }, `now ${round(newest.difficulty)}`));
}

// ---------------------------------------------------------------------------------------
// Dev tools: send and mine (dev and regtest only)

function devTools() {
  const log = el('ul', { class: 'log', id: 'dev-log', role: 'status', 'aria-live': 'polite' });
  const say = (kind, ...parts) => {
    log.prepend(el('li', { class: kind }, parts));
    while (log.children.length > 5) log.lastChild.remove();
  };
  const form = el('form', { class: 'send', id: 'send-form', novalidate: true },
    el('div', { class: 'field' },
      el('label', { for: 'send-from' }, 'From'),
      el('select', { id: 'send-from', name: 'from' },
        DEV_ACCOUNTS.map((name) => el('option', { value: name }, name)))),
    el('div', { class: 'field grow' },
      el('label', { for: 'send-to' }, 'To'),
      el('input', {
        id: 'send-to', name: 'to', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false',
        placeholder: 'bob or an address',
      })),
    el('div', { class: 'field' },
      el('label', { for: 'send-amount' }, 'Amount (coins)'),
      el('input', {
        id: 'send-amount', name: 'amount', type: 'text', inputmode: 'decimal', required: true,
        autocomplete: 'off', placeholder: '2.5',
      })),
    el('button', { type: 'submit', class: 'primary' }, 'Send'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    sendTransfer(form, say);
  });
  const mine = el('button', { type: 'button', id: 'mine-button' }, 'Mine a block');
  mine.addEventListener('click', () => mineBlock(mine, say));
  return card('Send and mine',
    el('p', { class: 'muted' },
      `On ${app.status.network} the node signs transfers for the dev accounts, `
      + 'and mines a block when asked. Pending transfers wait in the mempool for the next block.'),
    form,
    el('div', { class: 'actions' }, mine),
    log);
}

/** "2.5" from what the user typed, or null if it is not a number of coins. */
function normalizeCoins(text) {
  const match = text.trim().replace(',', '.').match(/^(\d*)(?:\.(\d{0,8}))?$/);
  if (!match || (match[1] === '' && !match[2])) return null;
  const whole = match[1].replace(/^0+(?=\d)/, '') || '0';
  const fraction = (match[2] || '').replace(/0+$/, '');
  const normal = fraction ? `${whole}.${fraction}` : whole;
  return /^0(\.0*)?$/.test(normal) ? null : normal;
}

/**
 * The body of POST /transactions/new. The amount goes as the string typed (the node takes
 * coins as a string or a number), so no float ever rounds it.
 */
function transferBody(from, to, amount) {
  return JSON.stringify({ sender: from, recipient: to, amount });
}

async function sendTransfer(form, say) {
  const from = form.elements.from.value;
  const to = form.elements.to.value.trim();
  const amount = normalizeCoins(form.elements.amount.value);
  if (!to) return say('error', 'Enter a recipient: an address or a dev account name like bob.');
  if (!amount) return say('error', 'Enter an amount of coins above 0, with at most 8 decimals, like 2.5.');
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const answer = await post('/transactions/new', transferBody(from, to, amount));
    say('ok', `${from} → ${to}: ${coinText(amount)}. ${answer.message}. `, txLink(answer.txid));
    form.elements.amount.value = '';
  } catch (e) {
    say('error', `Not sent: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}

async function mineBlock(button, say) {
  button.disabled = true;
  button.textContent = 'Mining…';
  try {
    const answer = await post('/v1/mine', '{"count":1}');
    const block = answer.blocks[answer.blocks.length - 1];
    say('ok', 'Mined block ', blockLink(block.height, `#${block.height}`), ` (${shortHash(block.hash)}).`);
  } catch (e) {
    say('error', `Not mined: ${e.message}`);
  } finally {
    button.disabled = false;
    button.textContent = 'Mine a block';
  }
}

// ---------------------------------------------------------------------------------------
// Blocks

function renderBlocks(before) {
  const page = startPage('Blocks', el('p', { class: 'muted' }, 'The best chain, newest first.'));
  const query = `/v1/blocks?limit=${PAGE_SIZE}${before ? `&before=${encodeURIComponent(before)}` : ''}`;
  livePage(page, () => api(query), (answer) => el('div', {},
    el('section', { class: 'card' },
      el('ol', { class: 'rows', 'aria-label': 'Blocks' }, blockRows(answer.blocks))),
    pager(before ? '#/blocks' : null,
      answer.next_before !== null && answer.next_before !== undefined
        ? `#/blocks?before=${answer.next_before}` : null)),
  (event) => !before && ['block', 'block_disconnected', 'reconnected'].includes(event.type));
}

/** Links to the newest page and to the next (older) page. */
function pager(newest, older) {
  if (!newest && !older) return null;
  return el('nav', { class: 'pager', 'aria-label': 'Pages' },
    newest ? el('a', { href: newest }, '← Newest') : el('span'),
    older ? el('a', { href: older }, 'Older →') : el('span', { class: 'muted' }, 'No older items'));
}

function renderBlock(id) {
  const page = startPage(/^\d+$/.test(id) ? `Block ${id}` : 'Block');
  livePage(page, () => api(`/v1/blocks/${encodeURIComponent(id)}`), (block) => {
    page.heading.textContent = `Block ${block.height}`;
    document.title = `Block ${block.height} · oxchain explorer`;
    return blockDetails(block);
  }, (event) => ['block', 'block_disconnected', 'reorg', 'reconnected'].includes(event.type));
}

function blockDetails(block) {
  const tipHeight = app.status ? app.status.height : block.height;
  const genesis = /^0+$/.test(block.prev_hash);
  return el('div', {},
    el('nav', { class: 'pager', 'aria-label': 'Neighbouring blocks' },
      block.height > 0 ? el('a', { href: `#/block/${block.height - 1}` }, `← Block ${block.height - 1}`) : el('span'),
      block.height < tipHeight
        ? el('a', { href: `#/block/${block.height + 1}` }, `Block ${block.height + 1} →`)
        : el('span', { class: 'muted' }, 'the tip')),
    el('section', { class: 'card' },
      el('p', {}, block.best_chain
        ? badge(`${plural(block.confirmations, 'confirmation')}`, 'ok')
        : badge('side block: not on the best chain', 'warn')),
      facts([
        ['Hash', copyable(block.hash, 'block hash')],
        ['Parent', genesis ? el('span', { class: 'muted' }, 'none (genesis)') : el('a', { href: `#/block/${block.prev_hash}`, class: 'mono wrap' }, block.prev_hash)],
        ['Time', el('span', {}, utcTime(block.time_ms), ' ', el('span', { class: 'muted' }, `(${timeAgo(block.time_ms)})`))],
        ['Merkle root', copyable(block.merkle_root, 'merkle root')],
        ['Difficulty', `${round(block.difficulty)} (bits ${block.bits})`],
        ['Nonce', String(block.nonce)],
        ['Size', `${block.size.toLocaleString('en-US')} bytes`],
        ['Miner', block.miner ? copyable(block.miner, 'miner address', addressLink(block.miner, true)) : null],
        ['Reward', genesis ? null : `${coinText(coins(block.reward))} (fees ${coinText(coins(block.fees))})`],
      ])),
    card(`Transactions (${block.tx_count})`,
      el('ol', { class: 'rows' }, block.transactions.map((tx) => txRow(tx)))));
}

function txRow(tx) {
  return el('li', { class: 'row' },
    el('span', { class: 'row-main' }, txLink(tx.txid), ' ',
      tx.kind === 'coinbase'
        ? el('span', { class: 'flow' }, badge('coinbase'), ' → ', addressLink(tx.to))
        : el('span', { class: 'flow' }, addressLink(tx.from), ' → ', addressLink(tx.to))),
    el('span', { class: 'row-side' }, el('strong', {}, coinText(tx.amount_coins)),
      tx.fee ? ` · fee ${coins(tx.fee)}` : null));
}

// ---------------------------------------------------------------------------------------
// Transfers

function renderTransfer(txid) {
  const page = startPage('Transfer');
  livePage(page, async () => {
    const lookup = await api(`/v1/transactions/${encodeURIComponent(txid)}`);
    const id = lookup.transaction.txid;
    const proof = lookup.status === 'confirmed' ? await apiOrNull(`/v1/transactions/${id}/proof`) : null;
    // Checked against the root in the block's header, read apart from the proof.
    const block = proof ? await apiOrNull(`/v1/blocks/${proof.block}`) : null;
    const verified = proof && block ? await verifyProof(proof, block.merkle_root) : null;
    return { lookup, proof, verified };
  }, ({ lookup, proof, verified }) => {
    const tx = lookup.transaction;
    page.heading.textContent = tx.kind === 'coinbase' ? 'Coinbase' : 'Transfer';
    return el('div', {}, transferDetails(lookup), proofDetails(proof, verified));
  }, (event) => ['block', 'block_disconnected', 'reorg', 'reconnected'].includes(event.type));
}

function transferDetails(lookup) {
  const tx = lookup.transaction;
  const confirmed = lookup.status === 'confirmed';
  return el('section', { class: 'card' },
    el('div', { class: 'headline' },
      el('span', { class: 'amount' }, coinText(tx.amount_coins)),
      confirmed
        ? badge(plural(lookup.confirmations, 'confirmation'), 'ok')
        : badge('pending: waiting in the mempool for a block', 'warn')),
    facts([
      ['Txid', copyable(tx.txid, 'txid')],
      ['Status', confirmed ? 'confirmed' : 'pending'],
      ['Confirmations', el('span', { class: 'confirmations' }, String(lookup.confirmations))],
      ['Block', confirmed ? el('span', {}, blockLink(lookup.height, `#${lookup.height}`), ' ', hashLink(lookup.block)) : null],
      ['Position', confirmed ? `${lookup.position} in its block` : null],
      ['From', tx.kind === 'coinbase' ? el('span', {}, badge('coinbase'), ` block reward for height ${tx.coinbase_height}`) : copyable(tx.from, 'sender address', addressLink(tx.from, true))],
      ['To', copyable(tx.to, 'recipient address', addressLink(tx.to, true))],
      ['Amount', coinText(tx.amount_coins)],
      ['Fee', tx.kind === 'transfer' ? coinText(coins(tx.fee)) : null],
      ['Nonce', tx.nonce ?? null],
      ['Sender key', tx.from_key ? el('span', { class: 'mono wrap' }, tx.from_key) : null],
      ['Data', tx.data ? dataView(tx.data) : null],
    ]));
}

function proofDetails(proof, verified) {
  if (!proof) {
    return card('Merkle proof', emptyNote('A merkle proof exists once the transfer is in a block.'));
  }
  const verdict = verified === null
    ? el('p', { class: 'muted' }, 'This browser cannot check the proof here (it needs a secure context: localhost or https).')
    : el('p', { class: verified ? 'verdict ok' : 'verdict error' },
      verified
        ? '✓ Verified in this browser: the path hashes up to the block\'s merkle root.'
        : '✗ The path does not hash to the block\'s merkle root.');
  return card('Merkle proof',
    el('p', { class: 'muted' },
      `Leaf ${proof.index} of ${proof.leaf_count} in block ${proof.height}. `
      + 'A leaf is SHA-256(0x00 ‖ txid), a node SHA-256(0x01 ‖ left ‖ right); hashing the txid with '
      + 'each sibling below, from the leaf up, must give the merkle root in the block header.'),
    verdict,
    facts([
      ['Merkle root', el('span', { class: 'mono wrap' }, proof.merkle_root)],
      ['Block', el('span', {}, blockLink(proof.height, `#${proof.height}`), ' ', hashLink(proof.block))],
      ['Confirmations', String(proof.confirmations)],
      ['Path', proof.path.length === 0
        ? el('span', { class: 'muted' }, 'empty: the block holds only this transaction, so its leaf is the root')
        : el('ol', { class: 'proof-path', 'aria-label': 'Sibling hashes, from the leaf up' },
          proof.path.map((hash) => el('li', { class: 'mono wrap' }, hash)))],
    ]));
}

function hexBytes(hex) {
  return Uint8Array.from(hex.match(/../g).map((b) => parseInt(b, 16)));
}

async function sha256(prefix, ...parts) {
  const bytes = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0));
  bytes[0] = prefix;
  let at = 1;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

/**
 * Checks a merkle proof as the node does (RFC 6962 prefixes; a node without a sibling is
 * promoted unchanged) against `headerRoot`, the merkle root in the block's header. Null
 * where the browser offers no SHA-256 (plain http off loopback).
 */
async function verifyProof(proof, headerRoot) {
  if (!window.crypto || !crypto.subtle) return null;
  let hash = await sha256(0, hexBytes(proof.txid));
  let index = proof.index;
  let count = proof.leaf_count;
  const siblings = proof.path.map(hexBytes);
  while (count > 1) {
    if (index % 2 === 1) {
      if (siblings.length === 0) return false;
      hash = await sha256(1, siblings.shift(), hash);
    } else if (index + 1 < count) {
      if (siblings.length === 0) return false;
      hash = await sha256(1, hash, siblings.shift());
    }
    index = Math.floor(index / 2);
    count = Math.ceil(count / 2);
  }
  const hex = Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
  return siblings.length === 0 && hex === headerRoot;
}

/**
 * A transfer's data: as text when it is printable UTF-8, else as hex; a notarised file's
 * record (a SHA-256, then a label) as the hash and the label.
 */
function dataView(hex) {
  const bytes = hex ? hexBytes(hex) : new Uint8Array(0);
  const text = printable(bytes);
  if (text !== null) return el('span', { class: 'wrap', 'data-shown': 'text' }, text);
  const label = bytes.length >= 32 ? printable(bytes.slice(32)) : null;
  if (label !== null) {
    return el('span', { 'data-shown': 'record' },
      el('span', { class: 'mono wrap' }, hexOf(bytes.slice(0, 32))),
      el('span', { class: 'muted' }, label ? ` then the text “${label}”` : ''),
      ' ', el('a', { href: '#/verify' }, 'verify a file against it'));
  }
  return el('span', { class: 'mono wrap', 'data-shown': 'hex' }, hex);
}

/** `bytes` as text if they are UTF-8 with no control characters but tab and newline. */
function printable(bytes) {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(text) ? null : text;
  } catch {
    return null;
  }
}

function hexOf(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// ---------------------------------------------------------------------------------------
// Verify a file: hashed in the page, found through the node's data index, and each link
// from the file to a header with proof of work checked here.

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

async function sha256d(bytes) {
  const once = await crypto.subtle.digest('SHA-256', bytes);
  return new Uint8Array(await crypto.subtle.digest('SHA-256', once));
}

/** An address's 20 bytes from its bech32m text (the txid check covers the checksum). */
function addressBytes(address) {
  const data = address.slice(address.lastIndexOf('1') + 1, -6);
  const out = [];
  let acc = 0;
  let bits = 0;
  for (const c of data) {
    const value = CHARSET.indexOf(c);
    if (value < 0) throw new Error(`the address ${address} is not bech32`);
    acc = ((acc << 5) | value) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return Uint8Array.from(out);
}

function u64le(value) {
  const out = new Uint8Array(8);
  let v = BigInt(value);
  for (let i = 0; i < 8; i += 1) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A transfer's encoding (docs/protocol.md, "Transfer"), rebuilt from its API view. */
function transferBytes(tx) {
  const data = tx.data ? hexBytes(tx.data) : new Uint8Array(0);
  const length = [];
  let n = data.length;
  do {
    length.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n >>= 7;
  } while (n > 0);
  return concat([Uint8Array.of(1), hexBytes(tx.from_key), addressBytes(tx.to), u64le(tx.amount),
    u64le(tx.fee), u64le(tx.nonce), Uint8Array.from(length), data, hexBytes(tx.signature)]);
}

/** Each network's easiest target (`ChainParams::pow_limit`). */
const POW_LIMITS = {
  main: (1n << 248n) - 1n,
  test: (1n << 248n) - 1n,
  dev: (1n << 248n) - 1n,
  regtest: 0x7fffffn << 232n,
};

/**
 * The target a header's compact `bits` name, or null where the node would refuse them
 * (`CompactTarget::to_target`: negative, overflowing, zero; or above `limit`).
 */
function targetOf(bits, limit) {
  const size = bits >>> 24;
  const word = bits & 0x007fffff;
  if (word !== 0 && (bits & 0x00800000) !== 0) return null;
  if (word !== 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32))) return null;
  const target = size <= 3 ? BigInt(word >>> (8 * (3 - size))) : BigInt(word) << BigInt(8 * (size - 3));
  if (target === 0n || limit === undefined || target > limit) return null;
  return target;
}

/** Whether an 88-byte header of version 1 meets its own target on `network`. */
function meetsTarget(headerBytes, hashBytes, network) {
  if (headerBytes.length !== 88) return false;
  const view = new DataView(headerBytes.buffer, headerBytes.byteOffset, headerBytes.byteLength);
  if (view.getUint32(0, true) !== 1) return false;
  const target = targetOf(view.getUint32(76, true), POW_LIMITS[network]);
  return target !== null && BigInt(`0x${hexOf(hashBytes)}`) <= target;
}

function renderVerify() {
  const page = startPage('Verify a file');
  const input = el('input', { type: 'file', id: 'verify-file' });
  const result = el('div', { id: 'verify-result', 'aria-live': 'polite' });
  const zone = el('label', { class: 'dropzone', for: 'verify-file' },
    el('strong', {}, 'Drop a file here, or choose one'),
    el('span', { class: 'muted' }, 'It is hashed in this browser; only its SHA-256 is sent to the node.'),
    input);
  let latest = 0;
  const take = (file) => {
    if (!file) return;
    // Only the last file chosen may write its verdict.
    const run = ++latest;
    const current = () => page.current() && run === latest;
    checkFile(file, result, current).catch((e) => {
      if (current()) verdictLine(result, 'error', e.message);
    });
  };
  input.addEventListener('change', () => take(input.files[0]));
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    take(e.dataTransfer.files[0]);
  });
  page.body.replaceChildren(
    el('p', {}, 'Was this file recorded on the chain, and when? ', el('code', {}, 'oxchain notarize FILE'),
      ' records a file\'s SHA-256; this page finds the record and checks it here: the transfer hashes '
      + 'to its txid, its merkle proof leads to the block header\'s root, and the header meets its '
      + 'proof of work. This page comes from the node, and the header\'s place in the chain is its '
      + 'word: for a check that trusts no node, against the whole chain from genesis, run ',
      el('code', {}, 'oxchain verify FILE'), '.'),
    zone, result);
  setReady(page);
}

function verdictLine(result, verdict, text, ...more) {
  result.dataset.verdict = verdict;
  result.replaceChildren(el('p', { class: `verdict ${verdict === 'recorded' ? 'ok' : 'error'}` }, text), ...more);
}

async function checkFile(file, result, current) {
  if (!window.crypto || !crypto.subtle) {
    verdictLine(result, 'error', 'This browser cannot hash files here (it needs a secure context: localhost or https).');
    return;
  }
  result.dataset.verdict = 'checking';
  result.replaceChildren(el('p', { class: 'muted' }, `Hashing ${file.name}…`));
  const hash = hexOf(new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer())));
  const found = await api(`/v1/data/${hash}?limit=1`);
  if (!current()) return;
  const record = found.records[0];
  const hashLine = facts([['File', file.name], ['SHA-256', copyable(hash, 'SHA-256')]]);
  if (!record) {
    verdictLine(result, 'not-recorded',
      '✗ Not recorded: no transfer on this node\'s best chain records this SHA-256.', hashLine);
    return;
  }
  const tx = record.transaction;
  const [proof, headers] = await Promise.all([
    api(`/v1/transactions/${tx.txid}/proof`),
    api(`/v1/headers?from=${record.height}&count=1`),
  ]);
  if (headers.headers.length === 0) {
    verdictLine(result, 'error', 'The chain moved while the record was read: choose the file again.');
    return;
  }
  const headerBytes = hexBytes(headers.headers[0]);
  const headerView = new DataView(headerBytes.buffer, headerBytes.byteOffset, headerBytes.byteLength);
  const blockHash = await sha256d(headerBytes);
  const checks = [
    ['The transfer\'s data starts with the file\'s SHA-256', tx.data.startsWith(hash)],
    ['The transfer\'s fields hash to its txid', hexOf(await sha256d(transferBytes(tx))) === tx.txid],
    ['The header hashes to the block', hexOf(blockHash) === record.block],
    ['The merkle proof leads from the txid to the header\'s root',
      proof.txid === tx.txid && await verifyProof(proof, hexOf(headerBytes.slice(36, 68)))],
    ['The header\'s hash meets its proof-of-work target', meetsTarget(headerBytes, blockHash, app.status?.network)],
  ];
  if (!current()) return;
  // The time is the checked header's, not the node's word beside it.
  const timeMs = headerBytes.length === 88 ? Number(headerView.getBigUint64(68, true)) : record.time_ms;
  const list = el('ul', { class: 'checks' },
    checks.map(([what, ok]) => el('li', { class: ok ? 'ok' : 'error' }, `${ok ? '✓' : '✗'} ${what}`)));
  const label = printable(hexBytes(tx.data).slice(32));
  const details = facts([
    ['File', file.name],
    ['SHA-256', copyable(hash, 'SHA-256')],
    ['Label', label || null],
    ['Recorded', el('span', {}, utcTime(timeMs), ' ', el('span', { class: 'muted' }, `(${timeAgo(timeMs)}, the header's time)`))],
    ['Block', el('span', {}, blockLink(record.height, `#${record.height}`), ' ', hashLink(record.block))],
    ['Confirmations', String(record.confirmations)],
    ['Transfer', el('a', { href: `#/tx/${tx.txid}`, class: 'mono wrap' }, tx.txid)],
  ]);
  if (checks.every(([, ok]) => ok)) {
    verdictLine(result, 'recorded',
      `✓ Recorded at height ${record.height}, ${plural(record.confirmations, 'confirmation')}.`, details, list);
  } else {
    verdictLine(result, 'invalid', '✗ The node\'s record does not check: see which link failed.', details, list);
  }
}

// ---------------------------------------------------------------------------------------
// Accounts

function renderAccount(id, before) {
  const page = startPage('Account');
  const historyQuery = `limit=${PAGE_SIZE}${before ? `&before=${encodeURIComponent(before)}` : ''}`;
  livePage(page, async () => {
    const [account, history] = await Promise.all([
      api(`/v1/accounts/${encodeURIComponent(id)}`),
      api(`/v1/accounts/${encodeURIComponent(id)}/transactions?${historyQuery}`),
    ]);
    return { account, history };
  }, ({ account, history }) => {
    const name = app.devNames.get(account.address);
    page.heading.textContent = name ? `Account ${name}` : 'Account';
    return el('div', {}, accountDetails(account, name), historyCard(account.address, history, before));
  }, (event) => ['block', 'tx', 'block_disconnected', 'reconnected'].includes(event.type));
}

function accountDetails(account, name) {
  const pending = account.next_nonce - account.nonce;
  return el('section', { class: 'card' },
    el('div', { class: 'headline' },
      el('span', { class: 'amount', id: 'account-balance' }, coinText(account.balance_coins)),
      name ? badge(`dev account ${name}`) : null),
    facts([
      ['Address', copyable(account.address, 'address')],
      ['Balance', coinText(account.balance_coins)],
      ['Nonce', `${account.nonce} (transfers sent and confirmed)`],
      ['Pending', pending > 0 ? `${plural(pending, 'transfer')} in the mempool` : null],
    ]));
}

function historyCard(address, history, before) {
  const rows = history.transactions.map((item) => historyRow(address, item));
  const older = history.next_before
    ? `#/account/${address}?before=${encodeURIComponent(history.next_before)}` : null;
  return card('History',
    rows.length
      ? el('ol', { class: 'rows', 'aria-label': 'Confirmed transactions, newest first' }, rows)
      : emptyNote(before ? 'No older transactions.' : 'No confirmed transactions yet.'),
    pager(before ? `#/account/${address}` : null, rows.length ? older : null));
}

function historyRow(address, item) {
  const tx = item.transaction;
  const incoming = tx.to === address;
  const outgoing = tx.from === address;
  let sign = '';
  let other = null;
  if (tx.kind === 'coinbase') {
    sign = '+';
    other = badge('coinbase');
  } else if (incoming && outgoing) {
    other = el('span', {}, 'to itself');
  } else if (incoming) {
    sign = '+';
    other = el('span', {}, 'from ', addressLink(tx.from));
  } else {
    sign = '−';
    other = el('span', {}, 'to ', addressLink(tx.to));
  }
  return el('li', { class: 'row' },
    el('span', { class: 'row-main' }, txLink(tx.txid), ' ', el('span', { class: 'flow' }, other)),
    el('span', { class: 'row-side' },
      el('strong', { class: sign === '+' ? 'in' : sign ? 'out' : '' }, `${sign}${coinText(tx.amount_coins)}`),
      outgoing && tx.fee ? ` · fee ${coins(tx.fee)}` : null,
      ' · ', blockLink(item.height, `block ${item.height}`)));
}

// ---------------------------------------------------------------------------------------
// Network: peers and the fork tree

/** Pending transfers, best fee rate first (the order a miner takes them), kept live. */
function renderMempool() {
  const page = startPage('Mempool', el('p', { class: 'muted' },
    'Transfers this node holds for the next blocks, best fee rate first: the order its miner takes them in.'));
  livePage(page, () => api('/v1/mempool?limit=100'), (pool) => el('div', {},
    el('p', {}, `${plural(pool.count, 'pending transfer')}, ${(pool.bytes / 1024).toFixed(1)} KiB`,
      pool.count > pool.transactions.length ? ` (the best ${pool.transactions.length} shown)` : ''),
    card('Pending transfers',
      pool.transactions.length === 0
        ? emptyNote('Nothing pending: every transfer this node heard of is in a block.')
        : el('ol', { class: 'rows', 'aria-label': 'Pending transfers, best fee rate first' },
          pool.transactions.map((tx) => el('li', { class: 'row' },
            el('span', { class: 'row-main' }, txLink(tx.txid), ' ',
              el('span', { class: 'flow' }, addressLink(tx.from), ' → ', addressLink(tx.to))),
            el('span', { class: 'row-side' }, el('strong', {}, coinText(tx.amount_coins)),
              ` · fee ${coins(tx.fee)} · ${round(tx.fee_rate)} units/byte · ${tx.size} bytes`)))))),
  (event) => event.type === 'tx' || event.type === 'block');
}

function renderNetwork() {
  const page = startPage('Network', el('p', { class: 'muted' },
    'This node, its peers, and the recent fork tree: the best chain with the side blocks this node has seen since it started.'));
  const events = [];
  livePage(page, loadNetwork, (data) => el('div', {},
    el('div', { class: 'grid two' },
      forkCard(data),
      el('div', {}, reorgsCard(data.forks.reorgs, treeBottom(data.blocks)), eventsCard(events), peersCard(data.peers))),
    nodeCard(data.node)),
  (event) => {
    if (['side_block', 'reorg', 'peer_connected', 'peer_disconnected', 'block_disconnected'].includes(event.type)) {
      events.unshift({ event, at: Date.now() });
      events.length = Math.min(events.length, 12);
    }
    return event.type !== 'tx';
  });
  // The fork tree's labels are shorter on narrow screens.
  page.view.onResize = page.view.reload;
}

async function loadNetwork() {
  const [node, peers, forks] = await Promise.all([api('/v1/node'), api('/v1/peers'), api('/v1/forks')]);
  const blocks = await api(`/v1/blocks?limit=${forkWindow(forks)}&before=${forks.tip_height + 1}`);
  return { node, peers, blocks: blocks.blocks, forks };
}

/**
 * How many best-chain blocks the fork tree draws: the last FORK_WINDOW, or down to the
 * fork point of the reorgs the Reorgs card lists and the side blocks remembered, so that
 * the two show the same forks (at most FORK_WINDOW_MAX).
 */
function forkWindow(forks) {
  const heights = [
    ...shownReorgs(forks.reorgs).map((r) => r.fork_height),
    ...forks.side_blocks.map((s) => s.height - 1),
  ];
  const lowest = Math.min(forks.tip_height, ...heights);
  return Math.max(FORK_WINDOW, Math.min(FORK_WINDOW_MAX, forks.tip_height - Math.max(0, lowest) + 1));
}

function shownReorgs(reorgs) {
  return reorgs.slice(-REORGS_SHOWN).reverse();
}

function nodeCard(node) {
  return card('This node', facts([
    ['Network', node.network],
    ['Version', node.version],
    ['Name', node.name || el('span', { class: 'muted' }, 'none (start the node with --name)')],
    ['Mines to', addressLink(node.miner_address, true)],
    ['Peer id', node.peer_id ? el('span', { class: 'mono wrap' }, node.peer_id) : 'no peer-to-peer network'],
    ['Listens on', node.listen_addrs.length
      ? el('ul', { class: 'plain' }, node.listen_addrs.map((a) => el('li', { class: 'mono wrap' }, a))) : null],
    ['Genesis', el('a', { href: `#/block/${node.genesis}`, class: 'mono wrap' }, node.genesis)],
  ]));
}

/**
 * A peer by what says most: its name, else its API address, else its peer id; then its
 * API (a link to its own explorer) and where it listens.
 */
function peersCard(peers) {
  const rows = peers.peers.map((p) => el('li', { class: 'row' },
    el('span', { class: 'row-main' },
      el('strong', { title: `peer id ${p.peer_id}` }, p.name || (p.api ? p.api.replace('http://', '') : shortHash(p.peer_id))), ' ',
      p.api ? el('a', { href: `${p.api}/explorer/`, class: 'mono', title: 'its own explorer' }, p.api.replace('http://', '')) : null, ' ',
      el('span', { class: 'mono wrap muted', title: p.listen_address ? `connected via ${p.address}` : '' }, p.listen_address || p.address)),
    el('span', { class: 'row-side' },
      p.height === null || p.height === undefined ? 'height unknown' : blockLink(p.height, `height ${p.height}`))));
  return card(`Peers (${peers.count})`,
    rows.length ? el('ol', { class: 'rows' }, rows) : el('p', { class: 'muted empty' },
      'No peers connected. Start another node with ', el('code', {}, '--peer'), ', or ', el('code', {}, 'POST /v1/peers'), '.'),
    peers.sync ? el('p', {}, `Syncing: at ${peers.sync[0]} of ${peers.sync[1]}.`) : null,
    peers.banned ? el('p', { class: 'muted' }, `${plural(peers.banned, 'peer')} banned for misbehaving.`) : null);
}

function eventsCard(events) {
  return card('Fork and peer events',
    events.length
      ? el('ol', { class: 'rows' }, events.map(({ event, at }) => el('li', { class: 'row' },
        el('span', { class: 'row-main' }, describeEvent(event)),
        el('span', { class: 'row-side muted' }, new Date(at).toLocaleTimeString('en-GB')))))
      : emptyNote('Side blocks, reorgs and peers coming and going appear here while this page is open.'));
}

function describeEvent(event) {
  switch (event.type) {
    case 'side_block':
      return el('span', {}, badge('side block', 'warn'), ' ', hashLink(event.hash), ` at height ${event.height}, on parent `, hashLink(event.parent));
    case 'reorg':
      return el('span', {}, badge('reorg', 'error'), ` ${plural(event.depth, 'block')} replaced above height ${event.fork_height}: new tip `, hashLink(event.new_tip));
    case 'block_disconnected':
      return el('span', {}, badge('disconnected', 'warn'), ' ', hashLink(event.hash), ` left the best chain at height ${event.height}`);
    case 'peer_connected':
      return el('span', {}, badge('peer', 'ok'), ` connected: ${shortHash(event.peer_id)} ${event.address || ''}`);
    default:
      return el('span', {}, badge('peer'), ` disconnected: ${shortHash(event.peer_id)}`);
  }
}

/** The lowest height the fork tree draws. */
function treeBottom(blocks) {
  return blocks.length ? blocks[blocks.length - 1].height : 0;
}

function reorgsCard(reorgs, bottom) {
  const recent = shownReorgs(reorgs);
  return card('Reorgs',
    recent.length
      ? el('ol', { class: 'rows', 'aria-label': 'Reorgs, newest first' }, recent.map((r) => el('li', { class: 'row' },
        el('span', { class: 'row-main' }, `${plural(r.depth, 'block')} replaced above height ${r.fork_height}: `,
          hashLink(r.old_tip), ' → ', hashLink(r.new_tip),
          r.fork_height < bottom ? el('span', { class: 'muted' }, ' (below the fork tree)') : null),
        el('span', { class: 'row-side muted' }, timeAgo(r.time_ms)))))
      : emptyNote('No reorgs since this node started.'));
}

function forkCard(data) {
  const tree = forkTree(data.blocks, data.forks);
  const sideCount = tree.nodes.filter((n) => n.lane > 0).length;
  const bottom = treeBottom(data.blocks);
  const shown = shownReorgs(data.forks.reorgs);
  const drawn = shown.filter((r) => r.fork_height >= bottom).length;
  const deeper = shown.length - drawn;
  const reorgNote = [
    drawn ? `${plural(drawn, 'reorg')} of the Reorgs card ${drawn === 1 ? 'is' : 'are'} marked ⤴ where the branches part.` : '',
    deeper ? `${plural(deeper, 'older reorg')} of the Reorgs card forked below height ${bottom}, deeper than this tree reaches.` : '',
  ].filter(Boolean).join(' ');
  return card('Fork tree',
    el('p', { class: 'muted', 'data-fork-note': '' },
      sideCount === 0
        ? `No side blocks from height ${bottom} up. A fork happens when two miners find a block at the same height `
          + 'at about the same time; every node then follows the branch with the most work, and the other '
          + 'block becomes a side block (or is reorged out).'
        : `${plural(sideCount, 'block')} off the best chain from height ${bottom} up. The best chain is the left `
          + 'column; side branches lost the race for the most work.',
      reorgNote ? ` ${reorgNote}` : ''),
    legend(),
    el('div', { class: 'tree-scroll' }, tree.svg));
}

function legend() {
  const item = (kind, text) => el('span', { class: 'legend-item' },
    svg('svg', { width: 14, height: 14, 'aria-hidden': 'true' }, svg('circle', { cx: 7, cy: 7, r: 5, class: `node ${kind}` })),
    text);
  return el('p', { class: 'legend' },
    item('main', 'best chain'), item('side', 'side block'), item('reorged', 'reorged out'));
}

const ROW = 26;
const LANE = 24;
const TREE_LEFT = 54;

/**
 * Lays out the fork tree: one row per height (the tip on top), the best chain in lane 0
 * and each side branch in a lane of its own to the right, with a line to each parent.
 */
function layoutForkTree(blocks, forks) {
  const nodes = new Map();
  blocks.forEach((b, i) => {
    nodes.set(b.hash, { hash: b.hash, height: b.height, parent: b.prev_hash, lane: 0, kind: 'main', tip: i === 0 });
  });
  const bottom = blocks.length ? blocks[blocks.length - 1].height : 0;
  const sides = forks.side_blocks
    .filter((s) => s.height >= bottom && !nodes.has(s.hash))
    .sort((a, b) => a.height - b.height);
  const laneTop = [];
  for (const s of sides) {
    const parent = nodes.get(s.parent);
    let lane;
    if (parent && parent.lane > 0 && laneTop[parent.lane] === parent.height) {
      lane = parent.lane;
    } else {
      lane = 1;
      while (laneTop[lane] !== undefined && laneTop[lane] >= s.height - 1) lane += 1;
    }
    laneTop[lane] = s.height;
    nodes.set(s.hash, { hash: s.hash, height: s.height, parent: s.parent, lane, kind: s.reorged_out ? 'reorged' : 'side' });
  }
  const list = [...nodes.values()];
  const top = Math.max(forks.tip_height, ...list.map((n) => n.height));
  const lanes = Math.max(1, laneTop.length);
  return { nodes, list, top, bottom, lanes };
}

function forkTree(blocks, forks) {
  const { nodes, list, top, bottom, lanes } = layoutForkTree(blocks, forks);
  const labelX = TREE_LEFT + lanes * LANE + 4;
  const reorgsAt = new Map(forks.reorgs.map((r) => [r.fork_height, r]));
  const rows = [];
  for (let h = top; h >= bottom; h -= 1) rows.push({ height: h, texts: rowTexts(list.filter((n) => n.height === h), reorgsAt.get(h)) });
  const width = Math.ceil(labelX + Math.max(...rows.map((r) => rowTextsWidth(r.texts))) + 8);
  const height = (top - bottom + 1) * ROW + 8;
  const x = (n) => TREE_LEFT + n.lane * LANE;
  const y = (h) => (top - h) * ROW + ROW / 2 + 4;
  const picture = svg('svg', {
    width, height, viewBox: `0 0 ${width} ${height}`, class: 'tree',
    role: 'group', 'aria-label': `Fork tree from height ${bottom} to ${top}`,
  });
  for (const row of rows) {
    picture.append(
      svg('text', { x: TREE_LEFT - 14, y: y(row.height) + 4, class: 'tick', 'text-anchor': 'end' }, String(row.height)),
      rowLabel(row.texts, labelX, y(row.height) + 4));
  }
  for (const n of list) {
    const parent = nodes.get(n.parent);
    if (parent) {
      picture.append(svg('line', { x1: x(n), y1: y(n.height), x2: x(parent), y2: y(parent.height), class: `edge ${n.kind}` }));
    } else if (n.height > 0) {
      // The parent is below the window.
      picture.append(svg('line', { x1: x(n), y1: y(n.height), x2: x(n), y2: y(n.height) + ROW / 2 + 4, class: `edge ${n.kind} cut` }));
    }
  }
  for (const n of list) picture.append(treeNode(n, x(n), y(n.height)));
  return { svg: picture, nodes: list };
}

const KIND_NAMES = { main: 'best chain', side: 'side block', reorged: 'reorged out' };

/**
 * The text beside a row: best-chain hash, side blocks' hashes, tip and reorg notes. On a
 * narrow screen a hash shows its end only (on dev its start is zeros, the proof of work).
 */
function rowTexts(rowNodes, reorg) {
  const label = (hash) => (window.innerWidth < 600 ? `…${hash.slice(-6)}` : shortHash(hash));
  const texts = [...rowNodes].sort((a, b) => a.lane - b.lane).map((n) => ({
    class: `hash-label ${n.kind}`,
    text: n.lane === 0 ? label(n.hash) : `${n.kind === 'reorged' ? 'out' : 'side'} ${label(n.hash)}`,
  }));
  if (rowNodes.some((n) => n.tip)) texts.splice(1, 0, { class: 'tip-note', text: '← tip' });
  if (reorg) texts.push({ class: 'reorg-note', text: `⤴ reorg, depth ${reorg.depth}` });
  return texts;
}

/** Roughly how wide `rowTexts` draw, in pixels (12 px text, 10 px between pieces). */
function rowTextsWidth(texts) {
  return texts.reduce((sum, t) => sum + t.text.length * 7.3 + 10, 0);
}

function rowLabel(texts, x, y) {
  if (texts.length === 0) return null;
  return svg('text', { x, y }, texts.map((t, i) => svg('tspan', { class: t.class, dx: i === 0 ? 0 : 10 }, t.text)));
}

function treeNode(n, cx, cy) {
  const what = KIND_NAMES[n.kind];
  return svg('a', { href: `#/block/${n.hash}`, 'aria-label': `Block ${n.height}, ${what}, ${shortHash(n.hash)}` },
    svg('title', {}, `height ${n.height}, ${what}\n${n.hash}`),
    svg('circle', { cx, cy, r: 7, class: `node ${n.kind}` }));
}

// ---------------------------------------------------------------------------------------
// Start

function start() {
  $('#search').addEventListener('submit', onSearch);
  $('.skip').addEventListener('click', (event) => {
    event.preventDefault();
    $('#main').focus();
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', debounce(() => app.view.onResize && app.view.onResize(), 150));
  boot();
}

/** Reads the status (and dev names), then shows the page and follows the events. */
async function boot() {
  try {
    await refreshStatus();
    if (isDevNetwork()) await loadDevNames();
  } catch (e) {
    $('#main').replaceChildren(el('p', { class: 'error', role: 'alert' }, `Cannot read the node's status: ${e.message}. Trying again…`));
    $('#main').dataset.state = 'error';
    setTimeout(boot, 5000);
    return;
  }
  route();
  connectEvents(0);
  setInterval(() => refreshStatus().catch(() => {}), STATUS_POLL_MS);
}

start();
