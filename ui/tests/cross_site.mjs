// A real Chromium on another site's page tries to drive a regtest node on loopback, and
// a DNS-rebinding name tries to read it; then the node's own page does the same
// legitimately.
//
//   OXCHAIN_URL=http://127.0.0.1:5990 node ui/tests/cross_site.mjs
//
// The node must be fresh, on regtest, mining on demand. Prints one "ok - ..." or
// "not ok - ..." line per check and exits 0 only if all passed. The "other site" is
// http://evil.example:PORT, a server of this script that Chromium resolves to 127.0.0.1
// (--host-resolver-rules); nothing leaves the machine.

import { createServer } from 'node:http';
import { BASE, STEP_TIMEOUT_MS, finish, report, withBrowser } from './harness.mjs';

const DEADLINE_MS = 40_000;
const TRANSFER = JSON.stringify({ sender: 'alice', recipient: 'bob', amount: 1 });

const dialled = [];

async function api(path) {
  const response = await fetch(BASE + path);
  return response.json();
}

// The attacker's page: every simple request a page can make without a preflight.
const EVIL_PAGE = `<!doctype html><title>a page of another site</title>
<iframe name="sink"></iframe>
<form id="form" target="sink" method="POST" enctype="text/plain">
  <input name='{"sender":"alice","recipient":"bob","amount":1,"x":"' value='"}'>
</form>
<script>
  const node = new URL(location).searchParams.get('node');
  const simple = (path, body) => fetch(node + path, {
    method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body,
  }).catch(() => {});
  simple('/transactions/new', ${JSON.stringify(TRANSFER)});
  simple('/v1/peers', JSON.stringify({ address: location.origin.replace('evil.example', '127.0.0.1') }));
  simple('/nodes/register', JSON.stringify({ nodes: [location.origin.replace('evil.example', '127.0.0.1')] }));
  new Image().src = node + '/mine';
  const frame = document.createElement('iframe');
  frame.src = node + '/nodes/resolve';
  document.body.append(frame);
  const form = document.getElementById('form');
  form.action = node + '/transaction';
  form.submit();
  window.socket = 'pending';
  const ws = new WebSocket(node.replace('http', 'ws') + '/v1/events');
  ws.onopen = () => { window.socket = 'open'; };
  ws.onerror = () => { if (window.socket === 'pending') window.socket = 'refused'; };
</script>`;

async function main() {
  if (!BASE) throw new Error('set OXCHAIN_URL');
  const server = createServer((req, res) => {
    // Anything but the page itself is the node dialling where the page told it to.
    if (!req.url.startsWith('/?node=') && req.url !== '/favicon.ico') dialled.push(req.url);
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(EVIL_PAGE);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const evilPort = server.address().port;
  try {
    await withBrowser(DEADLINE_MS, (browser) => run(browser, evilPort),
      ['--host-resolver-rules=MAP evil.example 127.0.0.1']);
  } finally {
    server.close();
  }
}

async function run(browser, evilPort) {
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const before = await api('/v1/status');

  // 1. The other site's page: every request reaches the node and is refused.
  const answers = new Map();
  const sent = new Set();
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.origin === BASE) sent.add(`${request.method()} ${url.pathname}`);
  });
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (url.origin === BASE) answers.set(`${response.request().method()} ${url.pathname}`, response.status());
  });
  await page.goto(`http://evil.example:${evilPort}/?node=${encodeURIComponent(BASE)}`);
  // The image's answer is JSON, which Chromium keeps from the page (and from
  // Playwright): that it was sent is seen, and that nothing was mined below.
  const expected = ['POST /transactions/new', 'POST /v1/peers', 'POST /nodes/register',
    'POST /transaction', 'GET /nodes/resolve'];
  const until = Date.now() + STEP_TIMEOUT_MS;
  while (Date.now() < until && (expected.some((k) => !answers.has(k)) || !sent.has('GET /mine')
    || (await page.evaluate(() => window.socket)) === 'pending')) {
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const key of expected) {
    report(`another site's ${key} is refused with 403`, answers.get(key) === 403,
      `answered ${answers.get(key)}`);
  }
  report("another site's <img src=/mine> was sent", sent.has('GET /mine'), [...sent].join(', '));
  const socket = await page.evaluate(() => window.socket);
  report("another site's page cannot open the events WebSocket", socket === 'refused', socket);
  const after = await api('/v1/status');
  report('nothing was signed or mined', after.height === before.height && after.mempool === 0,
    `height ${after.height}, mempool ${after.mempool}`);
  report("the node dialled none of the page's addresses", dialled.length === 0, dialled.join(', '));

  // 2. DNS rebinding: the node reached under the other site's name.
  const nodePort = new URL(BASE).port;
  const rebound = await page.goto(`http://evil.example:${nodePort}/v1/status`);
  report('the node refuses to answer under another name (DNS rebinding)', rebound.status() === 403,
    `answered ${rebound.status()}`);
  const local = await page.goto(`http://localhost:${nodePort}/v1/status`);
  report('localhost is answered', local.status() === 200, `answered ${local.status()}`);

  // 3. The node's own page, and an address typed in, still drive it.
  await page.goto(`${BASE}/explorer/`);
  const own = await page.evaluate(async (body) => {
    const response = await fetch('/transactions/new', {
      method: 'POST', headers: { 'Content-Type': 'text/plain' }, body,
    });
    return response.status;
  }, TRANSFER);
  report("the node's own page submits a transfer", own === 201, `answered ${own}`);
  const typed = await page.goto(`${BASE}/mine`);
  report('/mine typed in the address bar mines', typed.status() === 200, `answered ${typed.status()}`);
  const last = await api('/v1/status');
  report('the block holds the own page\'s transfer', last.height === before.height + 1 && last.mempool === 0,
    `height ${last.height}, mempool ${last.mempool}`);
}

await finish(main);
