// The "Verify a file" page: a recorded file (chosen through the page's file input) is
// hashed in the browser, found through the node's data index, and every link to its
// block's proof of work checks; a file never recorded is said to be so. Transfer pages
// show data as text, or a record's hash and label.
//
//   OXCHAIN_URL=http://127.0.0.1:5990 SCREENSHOTS=/tmp/shots FOUND_FILE=... \
//     MISSING_FILE=... TEXT_TXID=... RECORD_TXID=... node ui/tests/verify.mjs
//
// The node (regtest) has FOUND_FILE's SHA-256 recorded at height 1 with the label
// "lease, v1" by RECORD_TXID, and a transfer TEXT_TXID whose data is "hello, chain".
// Prints one "ok - ..." or "not ok - ..." line per check and exits 0 only if all passed.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  BASE, STEP_TIMEOUT_MS, VIEWPORTS, assert, check, finish, mainText, visit, withBrowser,
} from './harness.mjs';

const { SCREENSHOTS: SHOTS, FOUND_FILE, MISSING_FILE, TEXT_TXID, RECORD_TXID } = process.env;
const DEADLINE_MS = 40_000;
const VERDICTS = ['recorded', 'not-recorded', 'invalid', 'error'];

/** Chooses `file` in the page's file input and waits for the page's verdict. */
async function choose(page, file) {
  await page.setInputFiles('#verify-file', file);
  await page.waitForFunction((done) => done.includes(
    document.querySelector('#verify-result')?.dataset.verdict), VERDICTS);
  return page.evaluate(() => {
    const result = document.querySelector('#verify-result');
    return {
      verdict: result.dataset.verdict,
      text: result.innerText,
      ok: result.querySelectorAll('ul.checks li.ok').length,
      failed: result.querySelectorAll('ul.checks li.error').length,
    };
  });
}

async function main() {
  assert(BASE && SHOTS && FOUND_FILE && MISSING_FILE && TEXT_TXID && RECORD_TXID,
    'set OXCHAIN_URL, SCREENSHOTS, FOUND_FILE, MISSING_FILE, TEXT_TXID and RECORD_TXID');
  mkdirSync(SHOTS, { recursive: true });
  await withBrowser(DEADLINE_MS, run);
}

async function run(browser) {
  for (const [size, viewport] of Object.entries(VIEWPORTS)) {
    const page = await browser.newPage({ viewport });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${BASE}/explorer/#/`);
    await visit(page, '#/verify');

    await check(`${size}: the nav leads to the verify page`, async () => {
      const current = await page.locator('nav a[aria-current="page"]').innerText();
      assert(current === 'Verify', `the current nav link is ${current}`);
    });

    await check(`${size}: a recorded file is found, and every link checks in the page`, async () => {
      const r = await choose(page, FOUND_FILE);
      assert(r.verdict === 'recorded', `verdict ${r.verdict}: ${r.text}`);
      assert(r.text.includes('Recorded at height 1'), r.text);
      assert(r.text.includes('lease, v1'), `no label in ${r.text}`);
      assert(r.ok === 5 && r.failed === 0, `${r.ok} checks passed, ${r.failed} failed: ${r.text}`);
      const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(wide <= 0, `the page is ${wide} px wider than the window`);
    });
    await page.screenshot({ path: join(SHOTS, `verify-found-${size}.png`), fullPage: true });

    await check(`${size}: a file never recorded is said to be so`, async () => {
      const r = await choose(page, MISSING_FILE);
      assert(r.verdict === 'not-recorded', `verdict ${r.verdict}: ${r.text}`);
      assert(r.text.includes('Not recorded'), r.text);
    });
    await page.screenshot({ path: join(SHOTS, `verify-missing-${size}.png`), fullPage: true });

    await check(`${size}: transfer data shows as text, and a record as its hash and label`, async () => {
      await visit(page, `#/tx/${TEXT_TXID}`);
      const text = await page.locator('[data-shown="text"]').innerText();
      assert(text === 'hello, chain', `shown: ${text}`);
      await visit(page, `#/tx/${RECORD_TXID}`);
      const record = await page.locator('[data-shown="record"]').innerText();
      assert(/^[0-9a-f]{64} then the text “lease, v1”/.test(record), `shown: ${record}`);
      assert(!(await mainText(page)).includes('6c656173'), 'the label is shown as hex too');
    });

    await check(`${size}: compact bits are read as the node reads them`, async () => {
      const got = await page.evaluate(() => [
        targetOf(0x207fffff, POW_LIMITS.regtest) !== null,
        targetOf(0x1d00ffff, POW_LIMITS.dev) !== null,
        targetOf(0x20ffffff, POW_LIMITS.regtest) === null, // negative
        targetOf(0xff7fffff, POW_LIMITS.dev) === null, // overflow
        targetOf(0x03000000, POW_LIMITS.dev) === null, // zero
        targetOf(0x2100ffff, POW_LIMITS.dev) === null, // above the limit
        targetOf(0x207fffff, undefined) === null, // an unknown network
      ]);
      assert(got.every(Boolean), `checks: ${got}`);
    });

    await check(`${size}: no script errors`, async () => {
      assert(errors.length === 0, errors.join('; '));
    });
    await page.close();
  }
}

finish(main);
