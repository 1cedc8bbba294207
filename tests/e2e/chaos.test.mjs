// Chaos suite: the npm build of durable-ws (www/pkg, web target) in real browsers — headless Chromium, Firefox ESR
// and WebKitGTK (the engine of Safari), one after the other, the same scenarios and assertions in each — against
// the real reference server behind the real chaos proxy (each connection cut after 50–400 ms, 25 ms one-way latency).
//
//   node --test tests/e2e/chaos.test.mjs                               (scripts/test.sh runs it in the e2e-tests stage)
//   DURABLE_WS_ENGINES=firefox node --test tests/e2e/chaos.test.mjs    (some engines only; tests/support/browser.mjs)
//
// It starts its own server (it kills and restarts one) and proxies on free ports, with the binaries of
// DURABLE_WS_BIN_DIR (else target/release, else target/debug). Scenarios:
// - echo: 2000 numbered messages out and 2000 echoes back → lost = duplicated = reordered = 0, ≥ 20 cuts;
// - chat: two clients, 2000 messages each, both receive all 4000 in the same order;
// - reconnecting-websocket on the plain echo endpoint, same proxy, same pacing: its loss is reported next to
//   durable-ws (printed and written to test-output/chaos.md, a row per engine), not asserted;
// - server restart mid-stream: every message is echoed or listed by `sessionlost`; none silently missing;
// - half-open link (`/admin/stall` longer than heartbeat interval + timeout): detected, resumed, zero loss.
// Each scenario has a time bound (its test's timeout, which fails it); the bounds add up to under 4 minutes
// (20 + 50 + 50 + 40 + 40 + 30 s) per engine; a run takes about one minute per engine.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { analyze, table } from "../chaos/analysis.mjs";
import {
  REPO_ROOT,
  admin,
  openPage,
  serverStats,
  siteDir,
  sleep,
  startProxy,
  startServer,
  stopProcess,
  waitForSummaries,
} from "../chaos/harness.mjs";
import { launchEngine, selectedEngines } from "../support/browser.mjs";

const MESSAGES = 2000;
// 3 messages every 20 ms: the stream lasts ≥ 13 s, long enough for dozens of 50–400 ms connection lifetimes.
const PACING = { batch: 3, intervalMs: 20 };
const MIN_CUTS = 20;
const CUT_LIFETIME_MS = [50, 400];
const LATENCY_MS = 25;
// Connections never live long, and many are cut before their handshake (which grows the delay): keep the backoff short.
const DURABLE_OPTIONS = { reconnect: { minDelayMs: 10, maxDelayMs: 250 } };
const RWS_OPTIONS = { minReconnectionDelay: 10, maxReconnectionDelay: 250, reconnectionDelayGrowFactor: 1.3, connectionTimeout: 4000 };
const OUTPUT_DIR = join(REPO_ROOT, "test-output");
const comparison = [];

function writeComparison() {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const columns = ["engine", "client", "endpoint", "sent", "delivered", "lost", "duplicated", "reordered", "connection drops"];
  const rows = table(columns, comparison);
  writeFileSync(join(OUTPUT_DIR, "chaos.md"), `# Chaos suite: ${MESSAGES} echoed messages through the cutting proxy\n\n${rows}\n`);
  console.log(`\n${rows}\n`);
}

for (const engine of selectedEngines()) describe(engine, () => chaosSuite(engine));

/** The whole suite in one engine: its own server, proxy and browser. */
function chaosSuite(engine) {

  let site;
  let server;
  let proxy;
  let browser;
  let context;
  let page;
  let problems;
  let started;

  before(async () => {
    started = Date.now();
    site = siteDir({
      "index.html": "tests/chaos/page.html",
      "page.js": "tests/chaos/page.js",
      pkg: "www/pkg",
      "rws.mjs": "node_modules/reconnecting-websocket/dist/reconnecting-websocket-mjs.js",
    });
    server = await startServer({ www: site.dir });
    proxy = await startProxy({ target: `127.0.0.1:${server.port}`, lifetimeMs: CUT_LIFETIME_MS, latencyMs: LATENCY_MS });
    browser = await launchEngine(engine);
    context = await browser.newContext();
    ({ page, problems } = await openPage(context, `${server.http}/index.html`, () => window.chaos?.ready === true));
  }, { timeout: 20_000 });

  after(async () => {
    await browser?.close();
    await proxy?.stop();
    await server?.stop();
    site?.remove();
    console.log(`chaos suite in ${engine}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  const summary = (name) => page.evaluate((n) => window.chaos.summary(n), name);
  const details = (name) => page.evaluate((n) => window.chaos.details(n), name);

  const waitFor = (names, done, timeoutMs, what) => waitForSummaries(summary, names, done, timeoutMs, what);

  /** Sent everything, got `expected` messages, nothing waits for an acknowledgement. */
  const settled = (expected) => (s) => !s.sending && s.received >= expected && s.pending === 0;

  test("echo: 2000 messages each way through a proxy that cuts every 50–400 ms: none lost, duplicated or reordered", { timeout: 50_000 }, async () => {
    const before = await serverStats(server.http);
    await page.evaluate(
      ({ url, options, count, pacing }) => {
        window.chaos.durable("echo", url, options);
        window.chaos.sendNumbered("echo", "e", count, pacing);
      },
      { url: `${proxy.ws}/echo`, options: DURABLE_OPTIONS, count: MESSAGES, pacing: PACING },
    );
    await waitFor(["echo"], settled(MESSAGES), 45_000, "all echoes received and acknowledged");
    const result = await details("echo");
    const after = await serverStats(server.http);
    await page.evaluate(() => window.chaos.close("echo"));

    const echoes = analyze(result.receivedMessages, "e", MESSAGES);
    const cuts = result.events.reconnecting;
    const toServer = { delivered: after.messages_in - before.messages_in, duplicatesDropped: after.duplicates_dropped - before.duplicates_dropped };
    console.log(`${engine} echo: cuts ${cuts}, client→server ${JSON.stringify(toServer)}, echoes ${JSON.stringify(echoes)}, stats ${JSON.stringify(result.stats)}`);
    comparison.push({ engine, client: "DurableWebSocket", endpoint: "/echo (durable.v1)", sent: result.sent, ...echoes, "connection drops": cuts });

    assert.equal(result.received, MESSAGES, "exactly 2000 messages came back");
    assert.deepEqual(echoes, { delivered: MESSAGES, lost: 0, duplicated: 0, reordered: 0 }, "server→client: every echo once, in order");
    assert.equal(toServer.delivered, MESSAGES, "client→server: the server delivered each message exactly once");
    assert.equal(result.resolved, MESSAGES, "every send() promise resolved (acknowledged)");
    assert.equal(result.sessionLost, 0, "the session was never lost");
    assert.ok(cuts >= MIN_CUTS, `the proxy cut the connection at least ${MIN_CUTS} times (saw ${cuts})`);
    assert.deepEqual(problems, [], "no uncaught page errors");
  });

  test("chat: two clients send 2000 messages each through the cutting proxy: both receive all 4000, same order", { timeout: 50_000 }, async () => {
    await page.evaluate(
      ({ url, options }) => {
        window.chaos.durable("alice", url, options);
        window.chaos.durable("bob", url, options);
      },
      { url: `${proxy.ws}/chat`, options: DURABLE_OPTIONS },
    );
    // Both must be members of the room before the first message, or the other one would not get it.
    await waitFor(["alice", "bob"], (a, b) => a.events.open >= 1 && b.events.open >= 1, 8_000, "both clients joined");
    await page.evaluate(
      ({ count, pacing }) => {
        window.chaos.sendNumbered("alice", "A:", count, pacing);
        window.chaos.sendNumbered("bob", "B:", count, pacing);
      },
      { count: MESSAGES, pacing: PACING },
    );
    await waitFor(["alice", "bob"], (a, b) => settled(2 * MESSAGES)(a) && settled(2 * MESSAGES)(b), 38_000, "both received everything");
    const alice = await details("alice");
    const bob = await details("bob");
    await page.evaluate(() => ["alice", "bob"].forEach((name) => window.chaos.close(name)));

    for (const [name, result] of [["alice", alice], ["bob", bob]]) {
      const fromAlice = analyze(result.receivedMessages, "A:", MESSAGES);
      const fromBob = analyze(result.receivedMessages, "B:", MESSAGES);
      console.log(`${engine} chat ${name}: cuts ${result.events.reconnecting}, from alice ${JSON.stringify(fromAlice)}, from bob ${JSON.stringify(fromBob)}`);
      assert.equal(result.received, 2 * MESSAGES, `${name} received exactly 4000 messages`);
      assert.deepEqual(fromAlice, { delivered: MESSAGES, lost: 0, duplicated: 0, reordered: 0 }, `${name} got alice's messages once, in order`);
      assert.deepEqual(fromBob, { delivered: MESSAGES, lost: 0, duplicated: 0, reordered: 0 }, `${name} got bob's messages once, in order`);
      assert.equal(result.resolved, MESSAGES, `${name}: every send() acknowledged`);
      assert.equal(result.sessionLost, 0, `${name}: the session was never lost`);
      assert.ok(result.events.reconnecting >= MIN_CUTS, `${name}: cut at least ${MIN_CUTS} times (saw ${result.events.reconnecting})`);
    }
    assert.deepEqual(alice.receivedMessages, bob.receivedMessages, "both clients hold the same history, in the room's order");
    assert.deepEqual(problems, [], "no uncaught page errors");
  });

  test("reconnecting-websocket, same proxy and pacing, plain /echo: its loss recorded next to durable-ws", { timeout: 40_000 }, async () => {
    await page.evaluate(
      ({ url, options, count, pacing }) => {
        window.chaos.rws("rws", url, options);
        window.chaos.sendNumbered("rws", "r", count, pacing);
      },
      { url: `${proxy.ws}/echo`, options: RWS_OPTIONS, count: MESSAGES, pacing: PACING },
    );
    await waitFor(["rws"], (s) => !s.sending, 18_000, "everything handed to reconnecting-websocket");
    // It has no acknowledgements: wait until nothing more arrives for 2 s (or all came back).
    let last = -1;
    let current = await summary("rws");
    const quietUntil = Date.now() + 15_000;
    while (current.received !== last && current.received < MESSAGES && Date.now() < quietUntil) {
      last = current.received;
      await sleep(2000);
      current = await summary("rws");
    }
    const result = await details("rws");
    await page.evaluate(() => window.chaos.close("rws"));
    const echoes = analyze(result.receivedMessages, "r", MESSAGES);
    comparison.push({ engine, client: "reconnecting-websocket", endpoint: "/echo (plain)", sent: result.sent, ...echoes, "connection drops": result.events.close });
    writeComparison();
    assert.equal(result.sent, MESSAGES, "every message was handed to reconnecting-websocket");
    assert.ok(result.events.close >= 1, "its connections were cut too");
  });

  test("server restart mid-stream: every message is echoed or listed by sessionlost, none silently missing", { timeout: 40_000 }, async () => {
    // A second server of our own, behind a proxy that only delays (so messages are in flight when it dies).
    let restartable = await startServer({ www: site.dir });
    const port = restartable.port;
    const delay = await startProxy({ target: `127.0.0.1:${port}`, lifetimeMs: null, latencyMs: LATENCY_MS });
    const total = 600;
    try {
      await page.evaluate(
        ({ url, total }) => {
          window.chaos.durable("restart", url, { reconnect: { minDelayMs: 50, maxDelayMs: 300 } });
          window.chaos.sendNumbered("restart", "s", total, { batch: 1, intervalMs: 10 });
        },
        { url: `${delay.ws}/echo`, total },
      );
      await waitFor(["restart"], (s) => s.received >= 150, 12_000, "150 echoes before the crash");
      await stopProcess(restartable.child, "SIGKILL");
      await sleep(700); // the client keeps sending into its queue while the server is gone
      restartable = await startServer({ www: site.dir, port });
      await waitFor(["restart"], (s) => !s.sending && s.pending === 0 && s.sessionLost >= 1 && s.readyState === 1, 18_000, "settled after the restart");
      await sleep(300); // echoes of the last acknowledged messages may still be on their way
      const result = await details("restart");
      await page.evaluate(() => window.chaos.close("restart"));

      const echoed = new Set(result.receivedMessages);
      const unconfirmed = new Set(result.sessionLostEvents.flatMap((event) => event.unconfirmed));
      const rejected = new Set(result.rejectedMessages.map((r) => r.data));
      const missing = result.sentMessages.filter((m) => !echoed.has(m) && !unconfirmed.has(m));
      const echoes = analyze(result.receivedMessages, "s", total);
      console.log(
        `${engine} restart: sent ${result.sent}, echoed ${echoed.size}, unconfirmed ${unconfirmed.size} ` +
          `(${result.sessionLostEvents.map((e) => `${e.reason}: ${e.unconfirmed[0]}…${e.unconfirmed.at(-1)}`).join(", ")}), ` +
          `both ${[...unconfirmed].filter((m) => echoed.has(m)).length}, missing ${missing.length}`,
      );
      assert.equal(result.sent, total);
      assert.equal(result.sessionLostEvents.length, 1, "exactly one sessionlost event");
      assert.equal(result.sessionLostEvents[0].reason, "expired", "the restarted server did not know the session");
      assert.ok(unconfirmed.size > 0, "messages queued while the server was down are listed as unconfirmed");
      assert.deepEqual(missing, [], "every message sent was echoed or listed as unconfirmed");
      assert.equal(echoes.duplicated, 0, "no echo twice");
      assert.equal(echoes.reordered, 0, "echoes in order");
      assert.equal(result.resolved + result.rejected, total, "every send() promise settled");
      assert.deepEqual([...rejected].sort(), [...unconfirmed].sort(), "exactly the unconfirmed messages' promises rejected");
      assert.ok(result.rejectedMessages.every((r) => r.name === "SessionLostError"), "with SessionLostError");
      assert.deepEqual(problems, [], "no uncaught page errors");
    } finally {
      await delay.stop();
      await restartable.stop();
    }
  });

  test("half-open link: a stall longer than heartbeat interval + timeout is detected, the session resumes, nothing lost", { timeout: 30_000 }, async () => {
    const total = 400;
    await page.evaluate(
      ({ url, total }) => {
        window.chaos.durable("stall", url, {
          heartbeat: { intervalMs: 500, timeoutMs: 500 },
          reconnect: { minDelayMs: 50, maxDelayMs: 300 },
        });
        window.chaos.sendNumbered("stall", "h", total, { batch: 1, intervalMs: 10 });
      },
      { url: `${server.ws}/echo`, total },
    );
    await waitFor(["stall"], (s) => s.received >= 100, 8_000, "100 echoes before the stall");
    // The server neither reads nor writes nor closes this connection for 3 s (> 500 + 500 ms).
    const { affected } = await admin(server.http, "/admin/stall?ms=3000&session=all");
    assert.ok(affected >= 1, "the stall reached the connection");
    await waitFor(["stall"], settled(total), 18_000, "all echoes after the stall");
    const result = await details("stall");
    await page.evaluate(() => window.chaos.close("stall"));
    const echoes = analyze(result.receivedMessages, "h", total);
    console.log(`${engine} stall: errors ${JSON.stringify(result.errors)}, events ${JSON.stringify(result.events)}, echoes ${JSON.stringify(echoes)}`);
    assert.ok((result.errors.HeartbeatTimeoutError ?? 0) >= 1, "the heartbeat declared the link dead");
    assert.ok(result.events.resumed >= 1, "the session resumed on a new connection");
    assert.equal(result.sessionLost, 0, "the session was not lost");
    assert.deepEqual(echoes, { delivered: total, lost: 0, duplicated: 0, reordered: 0 }, "every echo once, in order");
    assert.equal(result.received, total);
    assert.deepEqual(problems, [], "no uncaught page errors");
  });
}
