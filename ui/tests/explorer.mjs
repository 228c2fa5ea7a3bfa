// Browser test of the block explorer against a running regtest node.
//
//   OXCHAIN_URL=http://127.0.0.1:5990 SCREENSHOTS=/tmp/shots node ui/tests/explorer.mjs
//
// The node must be fresh, on regtest, mining on demand. Prints one "ok - ..." or
// "not ok - ..." line per check and exits 0 only if all passed. Uses the system's
// Chromium (/usr/bin/chromium, or CHROMIUM); it never downloads a browser.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  BASE, STEP_TIMEOUT_MS, VIEWPORTS, api, assert, check, finish, mainText, ready, settle,
  trackRequests, visit, watchProblems, withBrowser,
} from './harness.mjs';

const SHOTS = process.env.SCREENSHOTS;
/** The whole run stops here, whatever is still going. */
const DEADLINE_MS = 55_000;
const COIN = 100_000_000;
const SENT_UNITS = 250_000_000; // 2.5 coins

function mine() {
  return api('/v1/mine', {
    method: 'POST',
    body: '{"count":1}',
    headers: { 'content-type': 'application/json' },
  });
}

/** Every control whose accessible name is empty, described (empty when all are named). */
async function unnamedControls(page) {
  return page.evaluate(() => {
    const nameOf = (node) => {
      const labelledBy = node.getAttribute('aria-labelledby');
      const parts = [
        node.getAttribute('aria-label'),
        labelledBy && labelledBy.split(/\s+/).map((id) => document.getElementById(id)?.textContent).join(' '),
        node.labels && [...node.labels].map((l) => l.textContent).join(' '),
        node.tagName === 'BUTTON' || node.tagName === 'A' ? node.textContent : null,
        node.getAttribute('title'),
      ];
      return parts.filter(Boolean).join(' ').trim();
    };
    return [...document.querySelectorAll('button, input, select, textarea, a[href]')]
      .filter((node) => node.type !== 'hidden' && !nameOf(node))
      .map((node) => node.outerHTML.slice(0, 80));
  });
}

async function main() {
  assert(BASE && SHOTS, 'set OXCHAIN_URL and SCREENSHOTS');
  mkdirSync(SHOTS, { recursive: true });
  await withBrowser(DEADLINE_MS, run);
}

async function run(browser) {
  const context = await browser.newContext({ viewport: VIEWPORTS.desktop });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems = watchProblems(page);
  const inflight = trackRequests(page);
  const status = await api('/v1/status');
  const unnamed = new Set();
  const noteUnnamed = async () => (await unnamedControls(page)).forEach((c) => unnamed.add(c));

  // 1. The dashboard, at / (as a browser) and at /explorer/.
  for (const path of ['/', '/explorer/']) {
    await check(`dashboard at ${path} shows the network and height ${status.height}`, async () => {
      const response = await page.goto(BASE + path);
      assert(response.ok() && response.headers()['content-type'].includes('text/html'), `${path} is not the explorer's HTML`);
      await ready(page);
      const height = await page.locator('.stat', { hasText: 'Height' }).locator('.stat-value').innerText();
      assert(height.trim() === String(status.height), `height shows ${height}`);
      assert((await page.locator('.stat', { hasText: 'Network' }).last().innerText()).includes(status.network), 'no network');
      await page.locator('#live.on').waitFor();
      await settle(inflight);
    });
  }
  await noteUnnamed();
  await check('the dashboard loads with no console errors and no failed requests', async () => {
    assert(problems.length === 0, problems.join('; '));
  });

  // 2. A block mined through the API appears without a reload.
  let minedHeight = status.height + 1;
  await check('a block mined through the API appears on the dashboard without a reload', async () => {
    const before = await page.evaluate(() => performance.getEntriesByType('navigation').length);
    const mined = (await mine()).blocks[0];
    minedHeight = mined.height;
    const heightValue = page.locator('.stat', { hasText: 'Height' }).locator('.stat-value');
    await page.waitForFunction(([h]) => document.querySelector('.stat-value').textContent.trim() === String(h), [mined.height]);
    assert((await heightValue.innerText()).trim() === String(mined.height), 'height did not update');
    await page.locator('ol[aria-label="Latest blocks"] li').first().filter({ hasText: `#${mined.height}` }).waitFor();
    // The row says who mined it and how big it is.
    const row = await page.locator('ol[aria-label="Latest blocks"] li').first().innerText();
    assert(/ by /.test(row) && /\d+\.\d KiB/.test(row), `block row: ${row}`);
    const after = await page.evaluate(() => performance.getEntriesByType('navigation').length);
    assert(before === after, 'the page was reloaded');
  });

  // 3. The send form moves funds.
  const bobBefore = (await api('/v1/accounts/bob')).balance;
  let sentTxid = await check('the send form sends 2.5 coins from alice to bob, and Mine mines it', async () => {
    await page.getByLabel('From').selectOption('alice');
    await page.getByLabel('To', { exact: true }).fill('bob');
    await page.getByLabel('Amount (coins)').fill('2.5');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    const sent = page.locator('#dev-log li.ok', { hasText: 'Transaction will be added' });
    await sent.waitFor();
    const link = await sent.locator('a[href^="#/tx/"]').getAttribute('href');
    await page.getByRole('button', { name: 'Mine a block' }).click();
    await page.locator('#dev-log li.ok', { hasText: 'Mined block' }).waitFor();
    return link.replace('#/tx/', '');
  });
  await check('bob\'s balance grew by exactly 2.5 coins (through the API)', async () => {
    const bobAfter = (await api('/v1/accounts/bob')).balance;
    assert(bobAfter - bobBefore === SENT_UNITS, `grew by ${(bobAfter - bobBefore) / COIN} coins`);
  });
  const bob = await api('/v1/accounts/bob');
  let sentHeight = minedHeight + 1;
  await check('the page shows the transfer confirmed and bob\'s new balance', async () => {
    const history = await api('/v1/accounts/bob/transactions?limit=1');
    const tx = history.transactions[0].transaction;
    assert(tx.amount === SENT_UNITS && tx.to === bob.address, 'bob\'s newest transaction is not the 2.5 coins');
    assert(!sentTxid || sentTxid === tx.txid, `the page named txid ${sentTxid}, the chain has ${tx.txid}`);
    sentTxid = tx.txid;
    sentHeight = history.transactions[0].height;
    const row = page.locator('ol[aria-label="Latest transfers"] li', { hasText: '2.5 coins' }).first();
    await row.filter({ hasText: `block ${sentHeight}` }).waitFor();
    await visit(page, `#/account/${bob.address}`);
    const shown = await page.locator('#account-balance').innerText();
    assert(shown.includes(bob.balance_coins), `balance shows ${shown}, the node says ${bob.balance_coins}`);
  });

  // 4. Search: a txid, a height, an address.
  const search = async (text, hash) => {
    const box = page.getByLabel('Search by height, block hash, txid or address');
    await box.fill(text);
    await box.press('Enter');
    await ready(page, hash);
  };
  await check('search by txid opens the transfer with its confirmations and merkle proof', async () => {
    assert(sentTxid, 'no txid from the send step');
    await search(sentTxid, `#/tx/${sentTxid}`);
    const text = await mainText(page);
    assert(text.includes(sentTxid), 'txid missing');
    assert(/Confirmations\s*1\b/.test(text), 'no "Confirmations 1"');
    assert(text.includes('Merkle proof') && text.includes('Verified in this browser'), 'merkle proof not shown as verified');
    assert(text.includes('2.5 coins'), 'amount missing');
  });
  await check('the txid\'s copy button puts it on the clipboard', async () => {
    await page.getByRole('button', { name: 'Copy txid' }).click();
    await page.waitForFunction(() => [...document.querySelectorAll('button.copy')].some((b) => b.textContent === 'copied'));
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert(copied === sentTxid, `the clipboard holds ${copied}`);
  });
  await noteUnnamed();
  await check('search by height opens the block', async () => {
    await search(String(minedHeight), `#/block/${minedHeight}`);
    const text = await mainText(page);
    assert(text.includes(`Block ${minedHeight}`) && text.includes('Merkle root'), 'block page incomplete');
    // The block holding the sent transfer: its miner, reward and fees, as the API has them.
    await search(String(sentHeight), `#/block/${sentHeight}`);
    const sentText = await mainText(page);
    const block = await api(`/v1/blocks/${sentHeight}`);
    assert(block.fees > 0 && block.reward > block.fees, `fees ${block.fees}, reward ${block.reward}`);
    const units = (u) => { const f = String(u % 1e8).padStart(8, '0').replace(/0+$/, ''); return f ? `${Math.floor(u / 1e8)}.${f}` : `${u / 1e8}`; };
    assert(new RegExp(`Reward\\s*${units(block.reward)} coins \\(fees ${units(block.fees)} coins?\\)`).test(sentText),
      `no reward and fees in: ${sentText.slice(0, 800)}`);
    assert(/Miner\s/.test(sentText) && sentText.includes(block.miner), 'no miner');
  });
  await noteUnnamed();
  await check('search by address opens the account with its history', async () => {
    await search(bob.address, `#/account/${bob.address}`);
    const history = page.locator('ol[aria-label="Confirmed transactions, newest first"] li');
    assert(await history.count() >= 2, 'history has fewer than 2 items (genesis and the 2.5 coins)');
    assert((await history.first().innerText()).includes('+2.5 coins'), 'the newest item is not +2.5 coins');
  });
  await check('search by dev name opens the account', async () => {
    await search('alice', `#/account/${(await api('/v1/accounts/alice')).address}`);
    assert((await page.locator('h1').innerText()).includes('alice'), 'not alice\'s account');
  });
  await noteUnnamed();

  // 5. Every page renders; 6. screenshots at both widths.
  const pages = {
    dashboard: '#/',
    block: `#/block/${sentHeight}`,
    transfer: `#/tx/${sentTxid}`,
    account: `#/account/${bob.address}`,
    network: '#/network',
    mempool: '#/mempool',
  };
  await check('the mempool page lists a pending transfer live, with its fee rate, and drops it once mined', async () => {
    await visit(page, pages.mempool);
    await page.locator('#main', { hasText: 'Nothing pending' }).waitFor();
    const queued = await api('/transactions/new', {
      method: 'POST',
      body: JSON.stringify({ sender: 'alice', recipient: 'charlie', amount: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    const row = page.locator('ol[aria-label="Pending transfers, best fee rate first"] li', { hasText: queued.txid.slice(0, 8) });
    await row.waitFor();
    const text = await row.innerText();
    assert(/1 coin\b/.test(text) && /units\/byte/.test(text), `row: ${text}`);
    await mine();
    await page.locator('#main', { hasText: 'Nothing pending' }).waitFor();
  });
  await check('the network page shows this node, its peers and the fork tree', async () => {
    await visit(page, pages.network);
    const text = await mainText(page);
    assert(text.includes('Fork tree') && /Peers \(\d+\)/.test(text) && text.includes('Peer id'), 'network page incomplete');
    const expected = Math.min(30, (await api('/v1/status')).height + 1);
    const nodes = await page.locator('svg.tree circle.node.main').count();
    assert(nodes === expected, `the fork tree has ${nodes} best-chain blocks, not ${expected}`);
  });
  await noteUnnamed();
  await check('the block page shows the transfer', async () => {
    await visit(page, pages.block);
    assert((await mainText(page)).includes(sentTxid.slice(0, 8)), `transfer missing from block ${sentHeight}`);
  });
  await check('screenshots of every page at desktop and phone widths', async () => {
    for (const [size, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      for (const [name, hash] of Object.entries(pages)) {
        await visit(page, hash);
        await page.waitForTimeout(200); // charts redraw to the new width
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert(overflow <= 0, `${name} is ${overflow} px wider than the ${size} screen`);
        // Every chart label lies inside its chart.
        const clipped = await page.evaluate(() => [...document.querySelectorAll('svg.chart-svg text')]
          .filter((t) => {
            const box = t.getBBox();
            const svg = t.ownerSVGElement.viewBox.baseVal;
            return box.x < 0 || box.y < 0 || box.x + box.width > svg.width || box.y + box.height > svg.height;
          })
          .map((t) => t.textContent));
        assert(clipped.length === 0, `${name} at ${size}: labels cut by their chart: ${clipped.join(', ')}`);
        await page.screenshot({ path: join(SHOTS, `${name}-${size}.png`), fullPage: true });
      }
    }
  });

  await check('/docs shows every route with its description and an example request', async () => {
    const spec = await api('/openapi.json');
    const routes = Object.values(spec.paths).flatMap((item) => ['get', 'post'].filter((m) => item[m])).length;
    for (const [size, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      await page.goto(`${BASE}/docs`);
      await page.waitForFunction((n) => document.querySelectorAll('section.op').length === n, routes);
      const seen = await page.evaluate(() => ({
        examples: [...document.querySelectorAll('pre.example')].map((p) => p.textContent),
        // Markdown left as text: a backtick or ** in what the page shows, outside examples.
        raw: [...document.querySelectorAll('section.op > div p, #about p, td p')]
          .map((p) => p.textContent).filter((t) => t.includes('`') || t.includes('**')),
        code: document.querySelectorAll('section.op p code').length,
        overflow: document.documentElement.scrollWidth - window.innerWidth,
      }));
      assert(seen.examples.length === routes, `${seen.examples.length} examples for ${routes} routes`);
      assert(seen.examples.every((e) => e.startsWith('curl ')), seen.examples.find((e) => !e.startsWith('curl ')));
      assert(seen.raw.length === 0, `markdown shown raw: ${seen.raw[0]}`);
      assert(seen.code > 0, 'no inline code rendered');
      assert(seen.overflow <= 0, `/docs is ${seen.overflow} px wider than the ${size} screen`);
      await page.screenshot({ path: join(SHOTS, `docs-${size}.png`), fullPage: true });
    }
    // An example runs as written: GET /v1/status's.
    const status = await page.evaluate(() => [...document.querySelectorAll('section.op')]
      .find((s) => s.querySelector('code')?.textContent === '/v1/status')?.querySelector('pre.example')?.textContent);
    assert(status === `curl '${BASE}/v1/status'`, status);
  });

  await check('every button, input, select and link has an accessible name', async () => {
    await noteUnnamed();
    assert(unnamed.size === 0, [...unnamed].join(', '));
  });
  await check('no console errors and no failed requests during the run', async () => {
    assert(problems.length === 0, problems.join('; '));
  });
  await context.close();
}

await finish(main);
