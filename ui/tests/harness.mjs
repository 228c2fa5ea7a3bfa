// What the browser tests of ui/tests share: the node's address, one "ok - ..." line per
// check, Chromium launched with a deadline, and waits for the explorer's pages.

import { chromium } from 'playwright-core';

/** The node under test (OXCHAIN_URL), without a trailing slash. */
export const BASE = (process.env.OXCHAIN_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** One wait for the page or the node. */
export const STEP_TIMEOUT_MS = 8_000;
/** Desktop and phone screens. */
export const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

const results = [];

export function report(name, ok, detail) {
  results.push(ok);
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}${!ok && detail ? ` (${detail})` : ''}`);
}

/** Runs one check: it passes unless `fn` throws. Returns what `fn` returned. */
export async function check(name, fn) {
  try {
    const value = await fn();
    report(name, true);
    return value;
  } catch (e) {
    report(name, false, String(e && e.message ? e.message : e).split('\n')[0]);
    return undefined;
  }
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Calls the node's API; aborted after STEP_TIMEOUT_MS unless `options.signal` says otherwise. */
export async function api(path, options) {
  const response = await fetch(BASE + path, { ...options, signal: options?.signal ?? AbortSignal.timeout(STEP_TIMEOUT_MS) });
  const body = await response.json();
  assert(response.ok, `${path}: ${response.status} ${body && body.message}`);
  return body;
}

/** Collects console errors, page errors, failed requests and error responses. */
export function watchProblems(page) {
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return problems;
}

/** Counts the page's requests in flight, for `settle`. */
export function trackRequests(page) {
  const inflight = new Set();
  page.on('request', (r) => inflight.add(r));
  page.on('requestfinished', (r) => inflight.delete(r));
  page.on('requestfailed', (r) => inflight.delete(r));
  return inflight;
}

/**
 * Waits until no request has been in flight for 300 ms, so that leaving the page aborts
 * none (an aborted request would count as a failed one).
 */
export async function settle(inflight) {
  let quietSince = Date.now();
  while (Date.now() - quietSince < 300) {
    if (inflight.size > 0) quietSince = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Waits until the explorer has drawn the page for `hash` (default: the current one). */
export async function ready(page, hash) {
  await page.waitForFunction((h) => {
    const main = document.querySelector('#main');
    const route = h || location.hash || '#/';
    return main.dataset.state === 'ready' && main.dataset.route === route;
  }, hash);
}

export async function visit(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await ready(page, hash);
}

export async function mainText(page) {
  return page.locator('#main').innerText();
}

/**
 * Launches Chromium (never one that downloads itself), runs `run(browser)` and closes it;
 * the whole run fails after `deadlineMs`. Chromium's `args` are added to the usual ones.
 */
export async function withBrowser(deadlineMs, run, args = []) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...args],
    // A cold start on a busy machine takes longer than one step.
    timeout: 30_000,
  });
  const deadline = setTimeout(() => {
    report('the run ends within the time limit', false, `still running after ${deadlineMs / 1000} s`);
    browser.close().finally(() => process.exit(1));
  }, deadlineMs);
  try {
    await run(browser);
  } finally {
    clearTimeout(deadline);
    await browser.close();
  }
}

/** Runs `main`, then prints the tally and exits 0 only if every check passed. */
export async function finish(main) {
  try {
    await main();
  } catch (e) {
    report('the test ran to the end', false, e.message);
  }
  const failed = results.filter((ok) => !ok).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 && results.length > 0 ? 0 : 1);
}
