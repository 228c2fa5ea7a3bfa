// The network page's fork tree and its Reorgs card show the same forks, also when the
// reorg lies deeper than the tree's usual 30 blocks, and say so when it lies deeper than
// the tree can reach.
//
//   OXCHAIN_URL=http://127.0.0.1:5990 SCREENSHOTS=/tmp/shots FORK_HEIGHT=0 DEPTH=3 \
//     node ui/tests/forks.mjs
//
// The node (regtest, mining on demand) has had exactly one reorg, which took DEPTH blocks
// off above FORK_HEIGHT, and its tip is more than 30 blocks above it. The script mines
// on that node. Prints one "ok - ..." or "not ok - ..." line per check and exits 0 only
// if all passed.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  BASE, STEP_TIMEOUT_MS, VIEWPORTS, api, assert, check, finish, visit, withBrowser,
} from './harness.mjs';

const SHOTS = process.env.SCREENSHOTS;
const FORK_HEIGHT = Number(process.env.FORK_HEIGHT);
const DEPTH = Number(process.env.DEPTH);
/** The API address (HOST:PORT) of the node's one peer, started with --name beta; the
 * node itself is alpha. */
const PEER_API = process.env.PEER_API;
const DEADLINE_MS = 40_000;
/** The deepest tree the page draws (app.js: FORK_WINDOW_MAX). */
const TREE_MAX = 100;

/** What the network page shows of forks. */
async function seen(page) {
  return page.evaluate(() => {
    const reorgs = document.querySelector('ol[aria-label="Reorgs, newest first"]');
    return {
      note: document.querySelector('[data-fork-note]')?.textContent || '',
      tree: document.querySelector('svg.tree')?.getAttribute('aria-label') || '',
      reorged: document.querySelectorAll('svg.tree circle.node.reorged').length,
      rows: reorgs ? [...reorgs.querySelectorAll('li')].map((li) => li.textContent) : [],
    };
  });
}

async function main() {
  assert(BASE && SHOTS && DEPTH > 0 && FORK_HEIGHT >= 0, 'set OXCHAIN_URL, SCREENSHOTS, FORK_HEIGHT and DEPTH');
  mkdirSync(SHOTS, { recursive: true });
  await withBrowser(DEADLINE_MS, run);
}

async function run(browser) {
  const page = await browser.newPage({ viewport: VIEWPORTS.desktop });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const tip = (await api('/v1/status')).height;
  assert(tip > FORK_HEIGHT + 30, `the tip (${tip}) must be over 30 blocks above the fork (${FORK_HEIGHT})`);
  await page.goto(`${BASE}/explorer/#/network`);
  await visit(page, '#/network');

  await check(`a reorg ${tip - FORK_HEIGHT} blocks down is drawn in the tree the Reorgs card lists it beside`, async () => {
    const s = await seen(page);
    assert(s.rows.length === 1, `the Reorgs card lists ${s.rows.length} reorgs`);
    assert(s.rows[0].includes(`above height ${FORK_HEIGHT}`) && !s.rows[0].includes('below the fork tree'), s.rows[0]);
    assert(s.tree === `Fork tree from height ${FORK_HEIGHT} to ${tip}`, s.tree);
    assert(s.reorged === DEPTH, `${s.reorged} reorged-out blocks drawn, not ${DEPTH}`);
    assert(!s.note.includes('No side blocks') && s.note.includes('1 reorg of the Reorgs card is marked'), s.note);
  });
  await check('screenshots of the network page with the reorg, desktop and phone', async () => {
    for (const [size, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      await visit(page, '#/');
      await visit(page, '#/network');
      await page.screenshot({ path: join(SHOTS, `network-reorg-${size}.png`), fullPage: true });
    }
    await page.setViewportSize(VIEWPORTS.desktop);
  });

  await check('the peer shows by its name and API address, and blocks by the node that mined them', async () => {
    const peers = await page.locator('.card', { hasText: 'Peers (1)' }).innerText();
    assert(peers.includes('beta') && peers.includes(PEER_API), `peers card: ${peers}`);
    const link = await page.locator('.card', { hasText: 'Peers (1)' }).locator(`a[href="http://${PEER_API}/explorer/"]`).count();
    assert(link === 1, 'no link to the peer\'s own explorer');
    const node = await page.locator('.card', { hasText: 'This node' }).innerText();
    assert(node.includes('alpha'), `this node's card: ${node}`);
    await visit(page, '#/blocks');
    const rows = await page.locator('#main').innerText();
    // Blocks 1-5 are beta's (A took B's chain), the 40 above them alpha's.
    assert(rows.includes('by alpha (this node)'), 'no block shown as mined by alpha (this node)');
    await visit(page, '#/block/3');
    assert((await page.locator('#main').innerText()).includes('beta'), 'block 3 is not shown as beta\'s');
    await visit(page, '#/network');
  });

  // Out of the tree's reach: both say so.
  const more = TREE_MAX - (tip - FORK_HEIGHT) + 5;
  // Mining this many blocks outlasts one step's timeout on a busy machine.
  await api('/v1/mine', {
    method: 'POST',
    body: JSON.stringify({ count: more }),
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(60_000),
  });
  const newTip = tip + more;
  await visit(page, '#/');
  await visit(page, '#/network');
  await check('a reorg deeper than the tree reaches is named in both the card and the tree', async () => {
    const s = await seen(page);
    const bottom = newTip - TREE_MAX + 1;
    assert(s.tree === `Fork tree from height ${bottom} to ${newTip}`, s.tree);
    assert(s.rows.length === 1 && s.rows[0].includes('(below the fork tree)'), s.rows.join(' | '));
    assert(s.reorged === 0, `${s.reorged} reorged-out blocks drawn`);
    assert(s.note.includes(`1 older reorg of the Reorgs card forked below height ${bottom}`), s.note);
  });
}

await finish(main);
