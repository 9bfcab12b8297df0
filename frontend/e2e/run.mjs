// End to end: the real server on the embedded default (SQLite, in-process
// events, mail as files) serving the built web app, driven by Debian's
// Chromium through playwright-core. Run by `npm run e2e` (after `npm run
// build` and `cargo build -p poison-pill`); POISON_PILL_BIN overrides where
// the server binary is; UPDATE_SCREENSHOTS=1 refreshes docs/screenshots.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

import AxeBuilder from '@axe-core/playwright';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
const BIN = process.env.POISON_PILL_BIN ?? join(targetDir, 'debug', 'poison-pill');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PASSWORD = 'violet kettle drums at dawn';
const ACCESS_TTL = 3; // seconds: long enough to use, short enough to expire in a test
// The auction room's screenshots go to docs/ when asked (UPDATE_SCREENSHOTS=1),
// else next to the test, so a test run leaves the tree as it was.
const screenshots = process.env.UPDATE_SCREENSHOTS
  ? join(root, 'docs', 'screenshots')
  : join(here, 'artifacts');

let server;
let base;
let dataDir;
let browser;

// Mailed links carry PUBLIC_URL; the tests open them on the real address.
const PUBLIC = 'http://auction.test';

function environment() {
  return {
    ...process.env,
    DATA_DIR: dataDir,
    MAIL_DIR: join(dataDir, 'mail'),
    // Port 0: the server binds a free port itself and announces it, so no
    // other process can take it between a probe and the bind.
    BIND_ADDR: '127.0.0.1:0',
    PUBLIC_URL: PUBLIC,
    WEB_DIR: join(root, 'frontend', 'dist'),
    RATE_LIMIT_GLOBAL: '100000/10s',
    RATE_LIMIT_AUTH: '100000/60s',
    RATE_LIMIT_WRITE: '100000/60s',
    ACCESS_TOKEN_TTL_SECS: String(ACCESS_TTL),
    LOG_FORMAT: 'json',
    RUST_LOG: 'warn,poison_pill::app=info',
    DATABASE_URL: '',
    REDIS_URL: '',
  };
}

/** Starts `serve` and resolves with the port it announces it listens on. */
function serve(env) {
  const started = spawnServe(env);
  server = started.child;
  return started.port;
}

/** Starts `serve` with `env`: the process, and the port it announces. */
function spawnServe(env) {
  let child;
  const port = new Promise((ok, fail) => {
    const late = setTimeout(() => fail(new Error('the server did not announce its port within 15 s')), 15_000);
    const settle = (outcome) => {
      clearTimeout(late);
      outcome();
    };
    child = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    child.once('error', (error) => settle(() => fail(error)));
    child.once('exit', (code) => settle(() => fail(new Error(`the server exited (${code}) before it listened`))));
    let pending = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) {
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          continue; // not a JSON line
        }
        // The one line `serve` writes once bound: "listening: open http://…".
        if (typeof entry.message === 'string' && entry.message.startsWith('listening') && entry.port) {
          settle(() => ok(entry.port));
        }
      }
    });
  });
  return { child, port };
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'pp-e2e-'));
  const env = environment();
  const admin = spawnSync(BIN, ['admin', 'create-user', '--email', 'admin@example.com', '--role', 'admin', '--verified', '--password-stdin'], {
    env,
    input: `${PASSWORD}\n`,
  });
  assert.equal(admin.status, 0, `creating the admin failed: ${admin.stderr}`);
  base = `http://127.0.0.1:${await serve(env)}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  mkdirSync(screenshots, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
});

/** The newest link of `kind` mailed to `email`. */
async function mailedLink(email, kind) {
  const dir = join(dataDir, 'mail');
  for (let i = 0; i < 100; i++) {
    let files = [];
    try {
      files = readdirSync(dir).map((name) => join(dir, name));
    } catch {
      // no mail yet
    }
    const links = files
      .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs)
      .map((file) => readFileSync(file, 'utf8').replace(/=\r?\n/g, '').replace(/=3D/g, '='))
      .filter((text) => text.toLowerCase().includes(`to: ${email}`))
      .map((text) => text.match(new RegExp(`${PUBLIC}/${kind}\\?token=[A-Za-z0-9_-]+`))?.[0])
      .filter(Boolean);
    if (links.length) return links.at(-1).replace(PUBLIC, base);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${kind} link for ${email}`);
}

/** No serious or critical axe violations on the page as it is now. */
async function accessible(page, name) {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `accessibility violations on ${name}`,
  );
}

async function registerAndVerify(context, email) {
  const page = await context.newPage();
  await page.goto(`${base}/register`);
  await accessible(page, 'register');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Register' }).click();
  await page
    .getByText('Check your inbox')
    .waitFor()
    .catch(async (error) => {
      throw new Error(`registering ${email}: ${await page.locator('main').innerText()}`, { cause: error });
    });
  await page.goto(await mailedLink(email, 'verify-email'));
  await page.getByText('Your address is verified').waitFor();
  await accessible(page, 'verify-email');
  await page.getByRole('main').getByRole('link', { name: 'Log in' }).click();
  // The verify page's section is labelled "Verify your e-mail": wait for the
  // login page itself (its URL changes before it renders) before looking
  // for its E-mail field.
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await accessible(page, 'login');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Auctions' }).waitFor();
  return page;
}

/** Lists an item through the API as the admin, in `currency` (with `extra` fields); its id. */
async function listItem(closesInSeconds, title = 'A brass lamp', currency = 'usd', extra = {}) {
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@example.com', password: PASSWORD }),
  });
  const { access_token } = await login.json();
  const created = await fetch(`${base}/api/v1/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${access_token}` },
    body: JSON.stringify({
      title,
      description: 'Brass, 1920s, works.',
      currency,
      base_price: 10000,
      min_increment: 500,
      close_at: new Date(Date.now() + closesInSeconds * 1000).toISOString(),
      ...extra,
    }),
  });
  assert.equal(created.status, 201);
  return (await created.json()).id;
}

/** A page of `context` logged in as `email` through the login form. */
async function logIn(context, email) {
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Auctions' }).waitFor();
  return page;
}

/** The admin's user id, read through the API. */
async function adminId() {
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@example.com', password: PASSWORD }),
  });
  const { access_token } = await login.json();
  const me = await fetch(`${base}/api/v1/users/me`, { headers: { authorization: `Bearer ${access_token}` } });
  return (await me.json()).id;
}

/** The audit table's rows as cell texts, once every row passes `each` (the filter has applied). */
async function auditRows(page, each) {
  for (let i = 0; i < 100; i++) {
    const rows = await page
      .getByRole('region', { name: 'Audit entries' })
      .locator('tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())))
      .catch(() => []);
    if (rows.length && rows.every(each)) return rows;
    await page.waitForTimeout(100);
  }
  throw new Error('the audit table never showed only the filtered entries');
}

/** Waits until the page's notifications socket is open (the header's menu says so), so a push reaches it. */
async function socketOpen(page) {
  await page.getByRole('navigation', { name: 'Main' }).locator('.menu[data-live="connected"]').waitFor();
}

const text = async (page, testId) => (await page.getByTestId(testId).textContent())?.trim();

test('two bidders: a poisoned bid defends itself live, then the auction closes for both', async () => {
  const ann = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const bob = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const annPage = await registerAndVerify(ann, 'ann@example.com');
  const bobPage = await registerAndVerify(bob, 'bob@example.com');
  const item = await listItem(25);

  // Ann bids 100.00 with poison up to 200.00 in steps of 10.00.
  await annPage.goto(`${base}/items/${item}`);
  await annPage.getByTestId('current-price').waitFor();
  await accessible(annPage, 'auction room');
  await annPage.getByLabel('Amount (USD)').fill('100.00');
  await annPage.getByLabel(/Poison/).check();
  const slider = annPage.getByLabel(/Budget/);
  await slider.fill('20000');
  await annPage.getByLabel('Step (USD)').fill('10.00');
  await annPage.getByRole('button', { name: 'Place bid' }).click();
  await annPage.getByTestId('bid-state').filter({ hasText: 'Leading at $100.00' }).waitFor();
  await socketOpen(annPage); // the live notices below come through it
  assert.equal(await text(annPage, 'budget-left'), '$100.00 of $100.00 poison left');
  await accessible(annPage, 'auction room with a bid');

  // Bob bids a plain 150.00 on his phone; Ann's page follows without reload.
  await bobPage.goto(`${base}/items/${item}`);
  await bobPage.getByTestId('minimum-next-bid').filter({ hasText: '$105.00' }).waitFor();
  await bobPage.getByLabel('Amount (USD)').fill('150.00');
  await bobPage.getByRole('button', { name: 'Place bid' }).click();
  await bobPage.getByTestId('bid-state').filter({ hasText: 'Outbid' }).waitFor();

  await annPage.getByTestId('current-price').filter({ hasText: '$160.00' }).waitFor();
  await annPage.getByTestId('bid-state').filter({ hasText: 'Leading at $160.00' }).waitFor();
  assert.equal(await text(annPage, 'budget-left'), '$40.00 of $100.00 poison left');
  const fill = await annPage.locator('.budget-fill').evaluate((el) => el.style.width);
  assert.equal(fill, '40%');
  await annPage.getByText(/Your poison raised your bid to \$160\.00/).waitFor();
  await bobPage.getByText(/You were outbid/).waitFor();
  await bobPage.getByTestId('current-price').filter({ hasText: '$160.00' }).waitFor();

  await annPage.waitForTimeout(600); // let the budget bar's transition finish
  await annPage.screenshot({ path: join(screenshots, 'auction-room-desktop.png'), fullPage: true });
  await bobPage.screenshot({ path: join(screenshots, 'auction-room-phone.png'), fullPage: true });

  // The item closes: both pages show the result and every bid.
  for (const page of [annPage, bobPage]) {
    await page.getByTestId('outcome').waitFor({ timeout: 40_000 });
    assert.match(await text(page, 'outcome'), /Sold for \$160\.00/);
    await page.getByTestId('revealed-bid').nth(1).waitFor();
    assert.equal(await page.getByTestId('revealed-bid').count(), 2);
  }
  // The winner's own line follows once the page has re-read its bid.
  await annPage.getByTestId('outcome').filter({ hasText: 'You won.' }).waitFor();
  await annPage.getByTestId('bid-state').filter({ hasText: 'Won at $160.00' }).waitFor();
  await bobPage.getByTestId('bid-state').filter({ hasText: 'Lost' }).waitFor();
  await annPage.getByText('You won! You pay $160.00.').waitFor();
  await accessible(annPage, 'closed auction');
  await accessible(bobPage, 'closed auction on a phone');
  await ann.close();
  await bob.close();
});

/** Bids a plain `amount` (major units of `currency`) on `item` from `page`, and waits until it leads. */
async function bidPlain(page, item, amount, currency = 'USD') {
  await page.goto(`${base}/items/${item}`);
  await page.getByTestId('current-price').waitFor();
  await page.getByLabel(`Amount (${currency})`).fill(amount);
  await page.getByRole('button', { name: 'Place bid' }).click();
  await page.getByTestId('bid-state').filter({ hasText: 'Leading' }).waitFor();
}

test('an outbid bidder finds the notice in the header menu, and marks it read', async () => {
  const eve = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const fay = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const evePage = await registerAndVerify(eve, 'eve@example.com');
  const fayPage = await registerAndVerify(fay, 'fay@example.com');
  // In forints: 2 decimals by ISO 4217 and the server, none by the browser's
  // Intl. Amounts are typed, shown and told with the server's.
  const item = await listItem(600, 'A pewter jug', 'huf');
  const nav = evePage.getByRole('navigation', { name: 'Main' });

  await bidPlain(evePage, item, '100.00', 'HUF');
  await evePage.getByTestId('current-price').filter({ hasText: /^HUF\s100\.00$/ }).waitFor();
  await nav.getByRole('button', { name: 'Notifications', exact: true }).waitFor();
  // Eve's socket is open before Fay bids, so the push (and its toast) reach her.
  await socketOpen(evePage);
  // Fay bids higher; Eve's header counts it live, from the socket's push.
  await bidPlain(fayPage, item, '150.00', 'HUF');
  const menu = nav.getByRole('button', { name: 'Notifications, 1 unread' });
  await menu.waitFor();
  assert.equal((await menu.locator('.badge').textContent()).trim(), '1');
  // The live toast: the socket names no currency, the room's item does.
  await evePage.getByText(/^You were outbid: the price is now HUF\s\d+\.\d\d\.$/).waitFor();

  await menu.click();
  const panel = evePage.getByRole('region', { name: 'Your notifications' });
  const entry = panel.getByRole('listitem');
  await entry.waitFor();
  assert.equal(await entry.count(), 1);
  // The stored notice says its item's currency and decimals.
  assert.match(await entry.textContent(), /^NewA pewter jugYou were outbid: the price is now HUF\s\d+\.\d\d\./);
  assert.equal(await entry.getByRole('link', { name: 'A pewter jug' }).getAttribute('href'), `/items/${item}`);
  assert.equal(await entry.evaluate((li) => li.classList.contains('unread')), true);
  await accessible(evePage, 'notifications menu');
  await evePage.screenshot({ path: join(screenshots, 'notifications-menu.png') });

  await panel.getByRole('button', { name: 'Mark all as read' }).click();
  await nav.getByRole('button', { name: 'Notifications', exact: true }).waitFor();
  assert.equal(await menu.locator('.badge').count(), 0);
  assert.equal(await panel.getByText('New', { exact: true }).count(), 0);

  // Read on the server too: after a reload the list is back, still read.
  await evePage.reload();
  const again = nav.getByRole('button', { name: /^Notifications/ });
  await again.click();
  await panel.getByRole('link', { name: 'A pewter jug' }).waitFor();
  assert.equal(await again.getAttribute('aria-label'), 'Notifications');
  assert.equal(await panel.locator('.unread').count(), 0);
  // Following the entry leads to the auction, and the menu closes.
  await panel.getByRole('link', { name: 'A pewter jug' }).click();
  await evePage.getByRole('heading', { level: 1, name: 'A pewter jug' }).waitFor();
  // The menu closes as the page changes: waited for, not sampled (a busy
  // machine renders the heading a frame before the menu goes).
  await panel.waitFor({ state: 'hidden', timeout: 5_000 });

  // The leader has nothing to hear yet; on a phone the panel spans the screen.
  await fayPage.getByRole('button', { name: 'Notifications', exact: true }).click();
  const fayPanel = fayPage.getByRole('region', { name: 'Your notifications' });
  await fayPanel.getByText(/^Nothing yet/).waitFor();
  const box = await fayPanel.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, `the panel on a phone: ${JSON.stringify(box)}`);
  await accessible(fayPage, 'notifications menu on a phone');
  await fayPage.screenshot({ path: join(screenshots, 'notifications-menu-phone.png') });
  await eve.close();
  await fay.close();
});

test('the account page: a new display name in the header, e-mail notices off for good', async () => {
  const context = await browser.newContext();
  const page = await registerAndVerify(context, 'gil@example.com');
  // Without a display name at registration, the address's local part is one.
  await page.getByRole('link', { name: 'gil, your account' }).click();
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  await page.getByText('gil@example.com').waitFor();
  await accessible(page, 'account');

  await page.getByLabel('Display name').fill('Gil Example');
  await page.getByRole('button', { name: 'Save name' }).click();
  await page.getByText('Your display name is saved.').waitFor();
  const header = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Gil Example, your account' });
  await header.waitFor();
  assert.equal((await header.textContent()).trim(), 'Gil Example');

  const notices = page.getByRole('switch', { name: 'E-mail me when I am outbid, my poisoned bid runs out, or I win' });
  assert.equal(await notices.isChecked(), true, 'e-mail notices are on by default');
  await notices.click();
  await page.getByText('You will not be e-mailed notices.').waitFor();
  assert.equal(await notices.isChecked(), false);
  await accessible(page, 'account, saved');

  await page.reload();
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  assert.equal(await notices.isChecked(), false, 'still off after a reload');
  await header.waitFor();
  assert.equal(await page.getByLabel('Display name').inputValue(), 'Gil Example');
  await context.close();
});

test('the access token expires and is refreshed silently; logout ends the session', async () => {
  const context = await browser.newContext();
  const page = await registerAndVerify(context, 'cat@example.com');
  await page.waitForTimeout((ACCESS_TTL + 6) * 1000); // past expiry and the server's leeway
  await page.getByRole('link', { name: 'My bids' }).click();
  await page.getByText('You have not bid yet.').waitFor();
  await accessible(page, 'my bids');
  await page.reload();
  await page.getByRole('link', { name: 'My bids' }).waitFor(); // the cookie restored the session
  await page.getByRole('link', { name: 'cat, your account' }).click();
  await page.getByRole('link', { name: 'Change your password' }).click();
  await page.getByRole('heading', { name: 'Change your password' }).waitFor();
  await accessible(page, 'change password');
  await page.getByRole('button', { name: /Log out/ }).click();
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await page.goto(`${base}/me/bids`);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await context.close();
});

test('a 422 from the server is shown next to its field', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/register`);
  await page.getByLabel('E-mail').fill('dan@example.com');
  await page.getByLabel('Password').fill('password password password');
  await page.getByRole('button', { name: 'Register' }).click();
  const password = page.getByLabel('Password');
  await page.locator('#' + (await password.getAttribute('id')) + '-error').waitFor();
  assert.equal(await password.getAttribute('aria-invalid'), 'true');
  await accessible(page, 'register with an error');
  await context.close();
});

test('soft close: a rival\'s late bid extends the item on the open page; the chart draws; after close the browser verifies the ledger', async () => {
  const kim = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const lou = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const kimPage = await registerAndVerify(kim, 'kim@example.com');
  const louPage = await registerAndVerify(lou, 'lou@example.com');
  // Closes in 10 s; any change of leader in its last minute moves the close
  // to 12 s after the bid, at most 3 times.
  const rule = { window_secs: 60, extend_by_secs: 12, max_extensions: 3 };
  const item = await listItem(10, 'A carriage clock', 'usd', { soft_close: rule });
  const closeOf = async (page) => Date.parse(await page.getByTestId('status').locator('time').getAttribute('datetime'));

  await kimPage.goto(`${base}/items/${item}`);
  await kimPage.getByTestId('soft-close-rule').filter({ hasText: 'in the last 1 min moves the close to 12 s after it, up to 3 times (0 used)' }).waitFor();
  const listedClose = await closeOf(kimPage);
  await kimPage.getByLabel('Amount (USD)').fill('100.00');
  await kimPage.getByRole('button', { name: 'Place bid' }).click();
  await kimPage.getByTestId('bid-state').filter({ hasText: 'Leading' }).waitFor();
  // The first leader in the window moved the close already.
  await kimPage.getByTestId('soft-close-rule').filter({ hasText: '(1 used)' }).waitFor();
  const afterFirst = await closeOf(kimPage);
  assert.ok(afterFirst > listedClose, 'the first bid moved the close');

  // Lou's late bid takes the lead: Kim's open page follows, the countdown jumps.
  await louPage.goto(`${base}/items/${item}`);
  await louPage.getByLabel('Amount (USD)').fill('150.00');
  await louPage.getByRole('button', { name: 'Place bid' }).click();
  await louPage.getByTestId('bid-state').filter({ hasText: 'Leading' }).waitFor();
  await kimPage.getByTestId('extended').filter({ hasText: '(2 of 3 extensions used)' }).waitFor();
  assert.ok((await closeOf(kimPage)) > afterFirst, 'the rival\'s bid moved the close again');
  await kimPage.getByTestId('price-chart').filter({ hasText: '2 prices' }).waitFor();
  assert.ok((await kimPage.getByTestId('price-chart').locator('svg .recharts-line-curve').count()) >= 1, 'the line is drawn');
  await accessible(kimPage, 'auction room, extended');
  await kimPage.screenshot({ path: join(screenshots, 'auction-room-soft-close.png'), fullPage: true });

  // After the (moved) close, both pages check the revealed bids in the browser.
  for (const page of [kimPage, louPage]) {
    await page.getByTestId('outcome').waitFor({ timeout: 40_000 });
    await page.getByTestId('ledger-check').filter({ hasText: 'Verified: these 2 bids hash to every head this browser saw' }).waitFor();
  }
  await kimPage.getByTestId('price-chart').filter({ hasText: 'Price over the auction' }).waitFor();
  await accessible(kimPage, 'closed auction with its ledger');
  await kimPage.screenshot({ path: join(screenshots, 'revealed-ledger-verified.png'), fullPage: true });
  await louPage.screenshot({ path: join(screenshots, 'revealed-ledger-phone.png'), fullPage: true });
  await kim.close();
  await lou.close();
});

/** A `width` × `height` PNG (a colour gradient), built here so the test needs no fixture file. */
function pngImage(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (bytes) => {
    let c = 0xffffffff;
    for (const byte of bytes) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([(x * 255) / width, (y * 255) / height, 140], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('the admin uploads a photo and sees it in the gallery; a visitor finds the item by a word of its description', async () => {
  const title = 'A carriage clock';
  await listItem(3600, title, 'usd', { description: 'Gilt brass, made in Neuchâtel around 1890.' });
  await listItem(3600, 'A pocket watch', 'usd', { description: 'Silver, made in Geneva.' });

  const adminCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const admin = await logIn(adminCtx, 'admin@example.com');
  await admin.getByRole('link', { name: 'Admin', exact: true }).click();
  await admin.getByRole('region', { name: 'Item list' }).getByRole('button', { name: `Edit ${title}` }).click();
  const photos = admin.getByRole('region', { name: 'Photos' });
  await photos.getByLabel('Choose photos').setInputFiles([
    { name: 'front.png', mimeType: 'image/png', buffer: pngImage(960, 640) },
    { name: 'back.png', mimeType: 'image/png', buffer: pngImage(300, 200) },
  ]);
  await photos.getByRole('img', { name: `${title}, photo 2 of 2` }).waitFor();
  await Promise.all([
    admin.waitForResponse((answer) => answer.url().endsWith('/photos/order') && answer.status() === 204),
    photos.getByRole('listitem').nth(1).getByRole('button', { name: 'Move earlier' }).click(),
  ]);
  await accessible(admin, 'admin with an item\'s photos');
  await admin.screenshot({ path: join(screenshots, 'admin-photos.png'), fullPage: true });

  // The auction room's gallery, on a phone: the thumbnail first, keyboard steps.
  const visitorCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await visitorCtx.newPage();
  await page.goto(`${base}/`);
  await page.getByRole('searchbox', { name: 'Search' }).fill('NEUCHATEL');
  await page.getByRole('button', { name: 'Search' }).click();
  const found = page.getByRole('link', { name: title });
  await found.waitFor();
  assert.equal(await page.getByRole('link', { name: 'A pocket watch' }).count(), 0);
  assert.match(page.url(), /[?&]q=NEUCHATEL/);
  const cover = page.locator('li.card img.cover');
  await cover.waitFor();
  await cover.evaluate((img) => img.decode());
  assert.equal(await cover.evaluate((img) => img.naturalWidth), 300, 'the first photo (moved there) is the cover');
  await found.click();
  const gallery = page.getByRole('region', { name: `Photos of ${title}` });
  const image = gallery.getByTestId('gallery-image');
  await image.waitFor();
  assert.equal(await image.getAttribute('alt'), `${title}, photo 1 of 2`);
  await image.evaluate((img) => img.decode());
  await gallery.focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await image.getAttribute('alt'), `${title}, photo 2 of 2`);
  await accessible(page, 'an auction room with photos on a phone');
  await page.screenshot({ path: join(screenshots, 'auction-room-photos-phone.png'), fullPage: true });
  // The search was kept in the URL: going back shows it again.
  await page.goBack();
  await page.getByRole('link', { name: title }).waitFor();
  assert.equal(await page.getByRole('searchbox', { name: 'Search' }).inputValue(), 'NEUCHATEL');
  await adminCtx.close();
  await visitorCtx.close();
});

test('the admin edits an item and deactivates a user; logging out everywhere ends another browser\'s session', async () => {
  const adminCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const jonCtx = await browser.newContext();
  const ivyHere = await browser.newContext();
  const ivyThere = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const jonPage = await registerAndVerify(jonCtx, 'jon@example.com');
  const ivyPage = await registerAndVerify(ivyHere, 'ivy@example.com');
  const ivyPhone = await logIn(ivyThere, 'ivy@example.com');
  await listItem(600, 'A pine stool');

  const admin = await logIn(adminCtx, 'admin@example.com');
  await admin.getByRole('link', { name: 'Admin', exact: true }).click();
  const items = admin.getByRole('region', { name: 'Item list' });
  await items.getByRole('button', { name: 'Edit A pine stool' }).click();
  const form = admin.getByRole('form', { name: 'Edit “A pine stool”' });
  await form.getByLabel('Title').fill('A pine milking stool');
  await form.getByLabel('Description').fill('Pine, three legs, 1890s.');
  await accessible(admin, 'admin editing an item');
  await admin.screenshot({ path: join(screenshots, 'admin-edit-item.png'), fullPage: true });
  await form.getByRole('button', { name: 'Save changes' }).click();
  await admin.getByText('Saved "A pine milking stool".').waitFor();
  await items.getByRole('link', { name: 'A pine milking stool' }).waitFor();

  await admin.getByLabel('E-mail contains').fill('jon@');
  await admin.getByRole('button', { name: 'Find' }).click();
  const accounts = admin.getByRole('region', { name: 'Account list' });
  // The found list replaces the whole one (shown meanwhile).
  await accounts.getByTestId('admin-user').filter({ hasText: 'ivy@example.com' }).waitFor({ state: 'detached' });
  assert.deepEqual(await accounts.getByTestId('admin-user').locator('td:first-child').allTextContents(), ['jon@example.com']);
  await accounts.getByRole('button', { name: 'Deactivate jon@example.com' }).click();
  await accounts.getByRole('button', { name: 'Yes, deactivate jon@example.com' }).click();
  await accounts.getByRole('button', { name: 'Reactivate jon@example.com' }).waitFor();
  await accessible(admin, 'admin with accounts');
  await admin.screenshot({ path: join(screenshots, 'admin-accounts.png'), fullPage: true });
  // Jon's session ended with the deactivation: his next page is the login.
  await jonPage.goto(`${base}/me/bids`);
  await jonPage.getByRole('heading', { name: 'Log in' }).waitFor();

  // Ivy logs out everywhere on one browser; her phone's session ends too.
  await ivyPage.getByRole('link', { name: 'ivy, your account' }).click();
  await ivyPage.getByRole('button', { name: 'Log out everywhere' }).click();
  await accessible(ivyPage, 'account, asking before logging out everywhere');
  await ivyPage.getByRole('button', { name: 'Yes, log out everywhere' }).click();
  await ivyPage.getByText('You are logged out everywhere').waitFor();
  await ivyPhone.goto(`${base}/account`);
  await ivyPhone.getByRole('heading', { name: 'Log in' }).waitFor();
  for (const context of [adminCtx, jonCtx, ivyHere, ivyThere]) await context.close();
});

test('the other pages have no serious accessibility problems', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  for (const path of ['/', '/forgot-password', '/reset-password?token=x', '/no-such-page']) {
    await page.goto(`${base}${path}`);
    await page.locator('main').waitFor();
    await page.waitForLoadState('networkidle');
    await accessible(page, path);
  }
  const admin = await context.newPage();
  await admin.goto(`${base}/login`);
  await admin.getByLabel('E-mail').fill('admin@example.com');
  await admin.getByLabel('Password').fill(PASSWORD);
  await admin.getByRole('button', { name: 'Log in' }).click();
  // Exactly: the header's link on the admin's own name ("admin, your account") holds it too.
  await admin.getByRole('link', { name: 'Admin', exact: true }).click();
  await admin.getByRole('heading', { name: 'List an item' }).waitFor();
  await accessible(admin, 'admin');
  await admin.getByLabel('Title').fill('A walnut chair');
  await admin.getByRole('button', { name: 'List item' }).click();
  // Told with the server's reading of the amounts.
  await admin.getByText('Listed "A walnut chair": opens at $1.00, raised by at least $1.00.').waitFor();
  await admin.getByRole('button', { name: 'Cancel A walnut chair' }).click();
  await admin.getByRole('button', { name: 'Yes, cancel A walnut chair' }).click();
  await admin.getByText('Cancelled "A walnut chair".').waitFor();

  // The audit trail: the admin's own logins, the registrations, who listed an item.
  const id = await adminId();
  await admin.getByRole('link', { name: 'Audit' }).click();
  await admin.getByRole('heading', { name: 'Audit trail' }).waitFor();
  await admin.getByRole('region', { name: 'Audit entries' }).waitFor();
  await accessible(admin, 'audit trail');
  const account = admin.getByLabel('Account (user id)');
  await account.fill(id.slice(0, 8));
  await admin.getByRole('button', { name: 'Filter' }).click();
  await admin.getByText(/Enter a whole user id/).waitFor();
  assert.equal(await account.getAttribute('aria-invalid'), 'true');
  await accessible(admin, 'audit trail with an error');
  await account.fill(id);
  await admin.getByRole('button', { name: 'Filter' }).click();
  // About the admin, or done by them (an item listed: the admin is the actor).
  const own = await auditRows(admin, (cells) => cells[2] === id || cells[3] === id);
  assert.ok(own.filter((cells) => cells[1] === 'Login succeeded').length >= 2, `the admin's logins: ${JSON.stringify(own)}`);
  await admin.getByRole('button', { name: 'Clear' }).click();
  await admin.getByLabel('Event').selectOption({ label: 'Registered' });
  await admin.getByRole('button', { name: 'Filter' }).click();
  const registered = await auditRows(admin, (cells) => cells[1] === 'Registered');
  assert.ok(registered.length >= 3, `registrations: ${JSON.stringify(registered)}`);
  await admin.getByLabel('Event').selectOption({ label: 'Item created' });
  await admin.getByRole('button', { name: 'Filter' }).click();
  const created = await auditRows(admin, (cells) => cells[1] === 'Item created');
  assert.equal(created[0][3], id, 'the admin who listed the walnut chair');
  await accessible(admin, 'audit trail filtered');
  await context.close();
});

/** A port free a moment ago (the OpenID flow needs the public URL, with its port, before the server starts). */
function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

/** Stops `child` (SIGTERM) and waits until it has exited. */
function stopped(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((ok) => {
    child.once('exit', () => ok());
    child.kill('SIGTERM');
  });
}

/** The tests' OpenID provider (crates/testkit/idp) with one client and one account: the process and its issuer. */
function startProvider(redirectUri) {
  const child = spawn('node', [join(root, 'crates', 'testkit', 'idp', 'idp.mjs'), '0'], {
    env: {
      ...process.env,
      IDP_CLIENTS: JSON.stringify([{ client_id: 'poison-pill', client_secret: 'provider-secret', redirect_uris: [redirectUri] }]),
      IDP_ACCOUNTS: JSON.stringify([{ sub: 'eve-1', email: 'eve@example.com', email_verified: true, name: 'Eve Provider', password: 'eve-password' }]),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const issuer = new Promise((ok, fail) => {
    const late = setTimeout(() => fail(new Error('the OpenID provider did not start within 20 s')), 20_000);
    let pending = '';
    child.stdout.on('data', (chunk) => {
      pending += chunk.toString();
      const line = pending.split('\n')[0];
      if (pending.includes('\n')) {
        clearTimeout(late);
        if (line.startsWith('issuer ')) ok(line.slice('issuer '.length));
        else fail(new Error(`the provider said ${line}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(late);
      fail(new Error(`the provider exited (${code})`));
    });
  });
  return { child, issuer };
}

test('signing in with an OpenID provider: the button, the provider\'s login and consent, back signed in, and again to the same account', async () => {
  // A server of its own: the provider sends the browser back to the public
  // URL, which must be this server's real address (a Secure cookie needs a
  // trustworthy origin such as 127.0.0.1), so its port is chosen first; if
  // something took it meanwhile, another is tried.
  const ownData = mkdtempSync(join(tmpdir(), 'pp-e2e-oidc-'));
  let instance;
  let provider;
  let own;
  try {
    for (let attempt = 1; !instance; attempt++) {
      const port = await freePort();
      own = `http://127.0.0.1:${port}`;
      provider = startProvider(`${own}/api/v1/auth/oidc/local/callback`);
      const issuer = await provider.issuer;
      const started = spawnServe({
        ...environment(),
        DATA_DIR: ownData,
        MAIL_DIR: join(ownData, 'mail'),
        BIND_ADDR: `127.0.0.1:${port}`,
        PUBLIC_URL: own,
        OIDC_PROVIDERS: 'local',
        OIDC_LOCAL_ISSUER: issuer,
        OIDC_LOCAL_CLIENT_ID: 'poison-pill',
        OIDC_LOCAL_CLIENT_SECRET: 'provider-secret',
        OIDC_LOCAL_LABEL: 'Local ID',
      });
      try {
        await started.port;
        instance = started;
      } catch (error) {
        await stopped(provider.child);
        if (attempt === 3) throw error;
      }
    }
    for (const round of [1, 2]) {
      // A new browser each time, so the provider asks who is there again.
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${own}/login`);
      await page.getByRole('link', { name: 'Sign in with Local ID' }).click();
      // The provider's own pages: who is there, then what the app may read.
      await page.locator('#login').fill('eve-1');
      await page.locator('#password').fill('eve-password');
      await page.locator('#submit').click();
      const allow = page.locator('#allow');
      // Whichever comes first; the other's wait ends with the page, quietly.
      const quietly = () => {};
      await Promise.race([allow.waitFor({ state: 'visible' }).catch(quietly), page.waitForURL(`${own}/**`).catch(quietly)]);
      if (await allow.isVisible()) await allow.click();
      await page.getByRole('heading', { name: 'Auctions' }).waitFor();
      const nav = page.getByRole('navigation', { name: 'Main' });
      const account = nav.getByRole('link', { name: 'Eve Provider, your account' });
      await account.click();
      // The same account both times: made by the first sign-in, its identity linked.
      await page.getByText('eve@example.com', { exact: true }).waitFor();
      await page.getByText(/Local ID \(eve@example\.com\), linked/).waitFor();
      if (round === 1) await accessible(page, 'account with a linked identity');
      await nav.getByRole('button', { name: 'Log out' }).click();
      await page.getByRole('link', { name: 'Log in' }).first().waitFor();
      await context.close();
    }
  } finally {
    await Promise.all([stopped(instance?.child), stopped(provider?.child)]);
    rmSync(ownData, { recursive: true, force: true });
  }
});
