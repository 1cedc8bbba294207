// End-to-end test of the chat demo (www/): real reference server, real headless Chromium, real wasm package.
//
// Both panels chat (150+ messages each, through the page's own auto-chat toggles) while the chaos toggle and
// explicit "Cut my connection" clicks keep dropping connections. Once everything settled, both panels must hold
// the same complete history: every sent message exactly once, in the order the server broadcast them.
// "Reload mid-stream": Alice's persisted session (and a plain WebSocket beside it) sends a numbered burst, the
// network stalls, the page reloads itself; the reloaded page must get every message of the burst, in order.
//
//   DURABLE_WS_HTTP=http://127.0.0.1:8080 node --test tests/e2e/demo.test.mjs
//
// (scripts/test.sh starts the server with --enable-faults --www www and builds www/pkg first.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser } from "../support/browser.mjs";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUTPUT_DIR = join(REPO_ROOT, "test-output");
const BASE_URL = process.env.DURABLE_WS_HTTP;
const MESSAGES_PER_CLIENT = 150;
const NAMES = ["Alice", "Bob"];

let browser;

before(async () => {
  assert.ok(BASE_URL, "DURABLE_WS_HTTP is not set: start the reference server (scripts/test.sh e2e-tests does)");
  mkdirSync(OUTPUT_DIR, { recursive: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** Opens the demo and records what would make it untrustworthy: page errors and failed fault requests. */
async function openDemo(context) {
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("response", (response) => {
    if (new URL(response.url()).pathname.startsWith("/admin/") && !response.ok()) {
      problems.push(`${response.request().method()} ${response.url()} → HTTP ${response.status()}`);
    }
  });
  await page.goto(new URL("/", BASE_URL).href);
  await page.waitForFunction(() => window.demo !== undefined, null, { timeout: 30_000 });
  await waitUntilConnected(page);
  return { page, problems };
}

function waitUntilConnected(page, timeout = 30_000) {
  return page.waitForFunction(
    (names) => names.every((name) => ["open", "resumed"].includes(window.demo.counters(name).state)),
    NAMES,
    { timeout, polling: 100 },
  );
}

const panel = (page, name) => page.locator(`[data-client="${name.toLowerCase()}"]`);

async function setToggle(scope, on) {
  const input = scope.locator("input[type=checkbox]");
  if ((await input.isChecked()) !== on) await scope.click();
  assert.equal(await input.isChecked(), on);
}

const autoChatToggle = (page, name) => panel(page, name).locator("label.toggle");
const chaosToggle = (page) => page.locator("label.toggle:has(#chaos-toggle)");

const counters = (page, name) => page.evaluate((n) => window.demo.counters(n), name);
const history = (page, name) => page.evaluate((n) => window.demo.history(n), name);

/** Both clients connected, nothing pending, and each received every message both of them sent. */
function waitUntilSettled(page, timeout = 120_000) {
  return page.waitForFunction(
    (names) => {
      const all = names.map((name) => window.demo.counters(name));
      const sent = all.reduce((sum, c) => sum + c.sent, 0);
      return all.every((c) => ["open", "resumed"].includes(c.state) && c.pending === 0 && c.received >= sent);
    },
    NAMES,
    { timeout, polling: 250 },
  );
}

/** Turns auto-chat on for both panels until each sent `count` more messages, then off again. */
async function autoChat(page, count, duringChat = async () => {}) {
  const start = {};
  for (const name of NAMES) start[name] = (await counters(page, name)).sent;
  for (const name of NAMES) await setToggle(autoChatToggle(page, name), true);
  await duringChat();
  for (const name of NAMES) {
    await page.waitForFunction(
      ([n, count]) => window.demo.counters(n).sent >= count,
      [name, start[name] + count],
      { timeout: 120_000, polling: 50 },
    );
    await setToggle(autoChatToggle(page, name), false);
  }
}

function assertOrderedWithoutDuplicates(name, keys) {
  assert.equal(new Set(keys).size, keys.length, `${name} received no message twice`);
  for (const sender of NAMES) {
    const numbers = keys.filter((key) => key.startsWith(`${sender}#`)).map((key) => Number(key.slice(sender.length + 1)));
    assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), `${name} sees ${sender}'s messages in order`);
  }
}

/** Every message either client sent, exactly once, in the same order on both panels. */
function assertCompleteIdenticalHistories(final) {
  const expected = NAMES.flatMap((name) =>
    Array.from({ length: final[name].counters.sent }, (_, i) => `${name}#${i + 1}`),
  ).sort();
  for (const name of NAMES) {
    assert.deepEqual([...final[name].history].sort(), expected, `${name} received every message exactly once`);
    assertOrderedWithoutDuplicates(name, final[name].history);
  }
  assert.deepEqual(final.Alice.history, final.Bob.history, "both panels hold the identical history");
}

async function finalState(page) {
  const final = {};
  for (const name of NAMES) final[name] = { counters: await counters(page, name), history: await history(page, name) };
  return final;
}

async function describeState(page) {
  const lines = [];
  for (const name of NAMES) {
    const c = await counters(page, name).catch((error) => ({ error: error.message }));
    lines.push(`${name}: ${JSON.stringify(c)}`);
  }
  return lines.join("\n");
}

test("chat demo: both clients end with the same complete, ordered history under repeated cuts", { timeout: 300_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const { page, problems } = await openDemo(context);
  try {
    // Chat from both panels while the chaos toggle cuts a random client every 1–2 s, and besides chaos, cut each
    // client explicitly with its own button a few times.
    await setToggle(chaosToggle(page), true);
    await autoChat(page, MESSAGES_PER_CLIENT, async () => {
      for (let round = 0; round < 3; round++) {
        for (const name of NAMES) {
          await page.waitForTimeout(1500);
          await panel(page, name).locator("button[data-ref=cut]").click();
        }
      }
    });
    await setToggle(chaosToggle(page), false);
    const cuts = await page.evaluate(() => window.demo.chaosCuts());

    try {
      await waitUntilSettled(page);
    } catch (error) {
      throw new Error(`the demo did not settle:\n${await describeState(page)}\n${error.message}`);
    }

    const final = await finalState(page);
    console.log(
      `chaos cuts: ${cuts}\n` + NAMES.map((name) => `${name}: ${JSON.stringify(final[name].counters)}`).join("\n"),
    );

    assert.deepEqual(problems, [], "no page errors and every fault request succeeded");
    assert.ok(cuts > 0, "the chaos toggle cut connections");
    const reconnects = NAMES.reduce((sum, name) => sum + final[name].counters.reconnects, 0);
    assert.ok(reconnects > 0, "the clients reconnected after the cuts");

    for (const name of NAMES) {
      const c = final[name].counters;
      assert.ok(c.sent >= MESSAGES_PER_CLIENT, `${name} sent at least ${MESSAGES_PER_CLIENT} messages`);
      assert.equal(c.lost, 0, `${name}: no message lost`);
      assert.equal(c.pending, 0, `${name}: nothing pending`);
      assert.equal(c.acknowledged, c.sent, `${name}: every message acknowledged`);
      assert.equal(c.unconfirmed, 0, `${name}: no session was lost, so nothing was handed back`);
    }

    assertCompleteIdenticalHistories(final);

    await page.screenshot({ path: join(OUTPUT_DIR, "demo.png"), fullPage: true });
  } catch (error) {
    await page.screenshot({ path: join(OUTPUT_DIR, "demo-failure.png"), fullPage: true }).catch(() => {});
    throw error;
  } finally {
    await context.close();
  }
});

test("chat demo: \"Go offline for 5 s\" — the heartbeat notices the half-open link and the session resumes", { timeout: 180_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const { page, problems } = await openDemo(context);
  try {
    await autoChat(page, 60, async () => {
      await page.waitForFunction(() => window.demo.counters("Alice").sent >= 10, null, { timeout: 30_000 });
      await panel(page, "Alice").locator("button[data-ref=stall]").click();
      // The server neither reads nor writes nor closes: only the client's heartbeat can tell.
      await page.waitForFunction(() => window.demo.counters("Alice").reconnects >= 1, null, { timeout: 30_000 });
    });
    await waitUntilSettled(page);
    const final = await finalState(page);
    assert.deepEqual(problems, []);
    for (const name of NAMES) {
      const c = final[name].counters;
      assert.equal(c.sessionsLost, 0, `${name}: the session was resumed, not lost`);
      assert.equal(c.lost, 0);
      assert.equal(c.pending, 0);
      assert.equal(c.acknowledged, c.sent);
    }
    assertCompleteIdenticalHistories(final);
  } finally {
    await context.close();
  }
});

test("chat demo: \"Restart session\" — every unconfirmed message is handed back, none is lost", { timeout: 180_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const { page, problems } = await openDemo(context);
  try {
    await autoChat(page, 40, async () => {
      await page.waitForFunction(() => window.demo.counters("Bob").sent >= 10, null, { timeout: 30_000 });
      await panel(page, "Bob").locator("button[data-ref=expire]").click();
      await page.waitForFunction(() => window.demo.counters("Bob").sessionsLost >= 1, null, { timeout: 30_000 });
    });
    await page.waitForFunction(
      (names) => names.every((name) => window.demo.counters(name).state === "open" || window.demo.counters(name).state === "resumed"),
      NAMES,
      { timeout: 60_000 },
    );
    await page.waitForFunction((names) => names.every((name) => window.demo.counters(name).pending === 0), NAMES, {
      timeout: 60_000,
    });
    assert.deepEqual(problems, []);
    for (const name of NAMES) {
      const c = await counters(page, name);
      assert.equal(c.lost, 0, `${name}: no message lost`);
      assert.equal(c.pending, 0, `${name}: nothing pending`);
      assert.equal(c.acknowledged + c.unconfirmed, c.sent, `${name}: every message acknowledged or handed back`);
      assertOrderedWithoutDuplicates(name, await history(page, name));
    }
  } finally {
    await context.close();
  }
});

test("chat demo: \"Reload mid-stream\" — the persisted chat completes the burst across the reload, without a gap", { timeout: 90_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const { page, problems } = await openDemo(context);
  try {
    const reloaded = page.waitForEvent("framenavigated", { predicate: (frame) => frame === page.mainFrame(), timeout: 30_000 });
    await page.locator("#burst-start").click();
    await reloaded;
    await page.waitForFunction(() => window.demo !== undefined, null, { timeout: 30_000 });
    try {
      await page.waitForFunction(() => window.demo.burst()?.phase === "done", null, { timeout: 45_000, polling: 100 });
    } catch (error) {
      const burst = await page.evaluate(() => window.demo.burst()).catch((e) => e.message);
      throw new Error(`the burst did not finish after the reload:\n${JSON.stringify(burst)}\n${await describeState(page)}\n${error.message}`);
    }
    const burst = await page.evaluate(() => window.demo.burst());
    console.log(`${burst.reloadLine}\ndurable-ws: ${burst.results.durable}\nplain WebSocket: ${burst.results.plain}`);

    const all = Array.from({ length: burst.total }, (_, i) => i + 1);
    assert.deepEqual(problems, [], "no page errors and every fault request succeeded, before and after the reload");
    assert.equal(burst.page, 2, "the page reloaded itself once, mid-stream");
    assert.equal(burst.stall, "ok", "the network stalled before the reload");
    assert.equal(burst.left.sent, burst.reloadAt, `the previous page sent #1–#${burst.reloadAt}`);
    assert.ok(burst.left.pending > 0, "the previous page left unconfirmed messages behind");
    assert.ok(burst.left.outstanding > 0, "the previous page left messages whose echo had not come back");
    assert.equal(burst.resume?.how, "resumed", "the reloaded page resumed the stored session (no new one)");
    assert.deepEqual(burst.durableOrder, all, "Alice got every message of the burst back exactly once, in order");
    assert.equal(
      burst.durable.filter(([k, pageNumber]) => pageNumber === 2 && k <= burst.reloadAt).length,
      burst.left.outstanding,
      "what the previous page left arrived after the reload",
    );
    assert.deepEqual(burst.handedBack, [], "nothing was handed back: the session went on");
    assert.deepEqual(burst.lost.durable, [], "the durable lane lost nothing");
    assert.deepEqual([...new Set(burst.bob)].sort((a, b) => a - b), all, "Bob received the whole burst too");
    assert.equal(burst.bob.length, burst.total, "Bob received no message twice");
    // The plain lane is the comparison, not under test: its figures only have to add up.
    assert.equal(burst.plain.length + burst.lost.plain.length, burst.total, "the plain lane accounts for every message");
    const alice = await counters(page, "Alice");
    assert.equal(alice.lost, 0);
    assert.equal(alice.pending, 0);
    assert.equal(alice.unstored, 0);
    await page.screenshot({ path: join(OUTPUT_DIR, "demo-reload.png"), fullPage: true });
  } catch (error) {
    await page.screenshot({ path: join(OUTPUT_DIR, "demo-reload-failure.png"), fullPage: true }).catch(() => {});
    throw error;
  } finally {
    await context.close();
  }
});

test("chat demo: phone-size layout", { timeout: 120_000 }, async () => {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  const { page, problems } = await openDemo(context);
  try {
    const input = panel(page, "Alice").locator("input[type=text]");
    await input.fill("Hi Bob! Cutting my connection now…");
    await panel(page, "Alice").locator("button[type=submit]").click();
    await panel(page, "Alice").locator("button[data-ref=cut]").click();
    await panel(page, "Bob").locator("input[type=text]").fill("Still here. Nothing got lost.");
    await panel(page, "Bob").locator("button[type=submit]").click();
    await waitUntilSettled(page, 60_000);
    await waitUntilConnected(page);
    for (const name of NAMES) {
      assert.deepEqual(await history(page, name), await history(page, "Alice"), `${name} has the same history`);
      assert.equal((await counters(page, name)).lost, 0);
    }
    assert.deepEqual(problems, []);
    await page.screenshot({ path: join(OUTPUT_DIR, "demo-mobile.png"), fullPage: true });
  } finally {
    await context.close();
  }
});
