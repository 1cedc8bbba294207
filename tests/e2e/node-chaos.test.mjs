// The chaos suite against the Node.js server (node/, `durable-ws-server` on npm: the Rust core in wasm over ws):
// the npm build of the browser client (www/pkg) in headless Chromium, through the real chaos proxy (every
// connection cut after 50–400 ms, 25 ms one-way latency), against the package's reference program
// (node/dist/bin.js, the same routes and flags as the Rust durable-ws-server).
//
//   node --test tests/e2e/node-chaos.test.mjs     (scripts/test.sh runs it in the node-server stage)
//
// Scenarios, as tests/e2e/chaos.test.mjs has them for the Rust server:
// - echo: 2000 numbered messages out and 2000 echoes back → lost = duplicated = reordered = 0, ≥ 20 cuts;
// - chat: two clients, 2000 messages each, both receive all 4000 in the same order;
// - server restart mid-stream (SIGKILL): one `sessionlost` listing exactly the unconfirmed messages;
// - half-open link (`/admin/stall`): detected by the client's heartbeat, resumed, nothing lost;
// - credentials: a wrong one gets close 4403 and the client stops (one attempt, no loop), a missing one 4401
//   (terminal without a URL provider), a right one echoes.
// It needs the Node package built (cd node && npm ci && npm run build) and the chaos-proxy binary
// (DURABLE_WS_BIN_DIR, else target/release, else target/debug). Inside scripts/test.sh's e2e-tests stage (DURABLE_WS_SERVER set)
// it skips itself: the node-server stage runs it, after building the package (DURABLE_WS_NODE_TESTS=1).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { analyze } from "../chaos/analysis.mjs";
import { admin, launchBrowser, openPage, serverStats, siteDir, sleep, startProxy, stopProcess, waitForSummaries } from "../chaos/harness.mjs";
import { startNodeServer } from "../../node/test/e2e-support.mjs";

const skip = process.env.DURABLE_WS_SERVER && process.env.DURABLE_WS_NODE_TESTS !== "1" ? "run by the node-server stage of scripts/test.sh" : false;

const MESSAGES = 2000;
const PACING = { batch: 3, intervalMs: 20 };
const MIN_CUTS = 20;
const CUT_LIFETIME_MS = [50, 400];
const LATENCY_MS = 25;
const DURABLE_OPTIONS = { reconnect: { minDelayMs: 10, maxDelayMs: 250 } };

let site;
let server;
let proxy;
let browser;
let context;
let page;
let problems;
const started = Date.now();

before(async () => {
  if (skip) return;
  site = siteDir({ "index.html": "tests/chaos/page.html", "page.js": "tests/chaos/page.js", pkg: "www/pkg", "rws.mjs": "node_modules/reconnecting-websocket/dist/reconnecting-websocket-mjs.js" });
  server = await startNodeServer({ www: site.dir });
  proxy = await startProxy({ target: `127.0.0.1:${server.port}`, lifetimeMs: CUT_LIFETIME_MS, latencyMs: LATENCY_MS });
  browser = await launchBrowser();
  context = await browser.newContext();
  ({ page, problems } = await openPage(context, `${server.http}/index.html`, () => window.chaos?.ready === true));
}, { timeout: 30_000 });

after(async () => {
  await browser?.close();
  await proxy?.stop();
  await server?.stop();
  site?.remove();
  console.log(`node chaos suite: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

const summary = (name) => page.evaluate((n) => window.chaos.summary(n), name);
const details = (name) => page.evaluate((n) => window.chaos.details(n), name);

const waitFor = (names, done, timeoutMs, what) => waitForSummaries(summary, names, done, timeoutMs, what);

const settled = (expected) => (s) => !s.sending && s.received >= expected && s.pending === 0;

test("node server, echo: 2000 messages each way through a proxy that cuts every 50–400 ms: none lost, duplicated or reordered", { skip, timeout: 50_000 }, async () => {
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
  console.log(`node echo: cuts ${cuts}, client→server ${JSON.stringify(toServer)}, echoes ${JSON.stringify(echoes)}, resumes ${after.resumes - before.resumes}`);
  assert.equal(result.received, MESSAGES, "exactly 2000 messages came back");
  assert.deepEqual(echoes, { delivered: MESSAGES, lost: 0, duplicated: 0, reordered: 0 }, "server→client: every echo once, in order");
  assert.equal(toServer.delivered, MESSAGES, "client→server: the server delivered each message exactly once");
  assert.equal(result.resolved, MESSAGES, "every send() promise resolved (acknowledged)");
  assert.equal(result.sessionLost, 0, "the session was never lost");
  assert.ok(cuts >= MIN_CUTS, `the proxy cut the connection at least ${MIN_CUTS} times (saw ${cuts})`);
  assert.deepEqual(problems, [], "no uncaught page errors");
});

test("node server, chat: two clients send 2000 messages each through the cutting proxy: both receive all 4000, same order", { skip, timeout: 50_000 }, async () => {
  await page.evaluate(
    ({ url, options }) => {
      window.chaos.durable("alice", url, options);
      window.chaos.durable("bob", url, options);
    },
    { url: `${proxy.ws}/chat`, options: DURABLE_OPTIONS },
  );
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
    console.log(`node chat ${name}: cuts ${result.events.reconnecting}, from alice ${JSON.stringify(fromAlice)}, from bob ${JSON.stringify(fromBob)}`);
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

test("node server restart mid-stream: one sessionlost listing exactly the unconfirmed messages, none silently missing", { skip, timeout: 40_000 }, async () => {
  let restartable = await startNodeServer({ www: site.dir });
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
    await sleep(700);
    restartable = await startNodeServer({ www: site.dir, port });
    await waitFor(["restart"], (s) => !s.sending && s.pending === 0 && s.sessionLost >= 1 && s.readyState === 1, 18_000, "settled after the restart");
    await sleep(300);
    const result = await details("restart");
    await page.evaluate(() => window.chaos.close("restart"));
    const echoed = new Set(result.receivedMessages);
    const unconfirmed = new Set(result.sessionLostEvents.flatMap((event) => event.unconfirmed));
    const rejected = new Set(result.rejectedMessages.map((r) => r.data));
    const missing = result.sentMessages.filter((m) => !echoed.has(m) && !unconfirmed.has(m));
    const echoes = analyze(result.receivedMessages, "s", total);
    console.log(`node restart: sent ${result.sent}, echoed ${echoed.size}, unconfirmed ${unconfirmed.size}, missing ${missing.length}`);
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

test("node server, half-open link: a stall longer than heartbeat interval + timeout is detected, resumed, nothing lost", { skip, timeout: 30_000 }, async () => {
  const total = 400;
  await page.evaluate(
    ({ url, total }) => {
      window.chaos.durable("stall", url, { heartbeat: { intervalMs: 500, timeoutMs: 500 }, reconnect: { minDelayMs: 50, maxDelayMs: 300 } });
      window.chaos.sendNumbered("stall", "h", total, { batch: 1, intervalMs: 10 });
    },
    { url: `${server.ws}/echo`, total },
  );
  await waitFor(["stall"], (s) => s.received >= 100, 8_000, "100 echoes before the stall");
  const { affected } = await admin(server.http, "/admin/stall?ms=3000&session=all");
  assert.ok(affected >= 1, "the stall reached the connection");
  await waitFor(["stall"], settled(total), 18_000, "all echoes after the stall");
  const result = await details("stall");
  await page.evaluate(() => window.chaos.close("stall"));
  const echoes = analyze(result.receivedMessages, "h", total);
  assert.ok((result.errors.HeartbeatTimeoutError ?? 0) >= 1, "the heartbeat declared the link dead");
  assert.ok(result.events.resumed >= 1, "the session resumed on a new connection");
  assert.equal(result.sessionLost, 0, "the session was not lost");
  assert.deepEqual(echoes, { delivered: total, lost: 0, duplicated: 0, reordered: 0 }, "every echo once, in order");
  assert.deepEqual(problems, [], "no uncaught page errors");
});

test("node server, credentials: a wrong one is told (4403) and does not loop; a missing one gets 4401; a right one echoes", { skip, timeout: 30_000 }, async () => {
  const guarded = await startNodeServer({ www: site.dir, args: ["--auth-token", "alice=right-secret"] });
  try {
    await page.evaluate(
      ({ ws, options }) => {
        window.chaos.durable("wrong", `${ws}/echo?access_token=wrong-secret`, options);
        window.chaos.durable("missing", `${ws}/echo`, options);
        window.chaos.durable("right", `${ws}/echo?access_token=right-secret`, options);
        window.chaos.sendNumbered("wrong", "w", 3);
        window.chaos.sendNumbered("right", "r", 20);
      },
      { ws: guarded.ws, options: DURABLE_OPTIONS },
    );
    await waitFor(["right"], settled(20), 10_000, "the right credential echoes");
    // Long enough for dozens of attempts at a 10–250 ms backoff, had the client looped.
    await sleep(2500);
    const wrong = await details("wrong");
    const missing = await details("missing");
    const stats = await serverStats(guarded.http);
    for (const name of ["wrong", "missing", "right"]) await page.evaluate((n) => window.chaos.close(n), name);
    console.log(`node auth: wrong ${JSON.stringify(wrong.log)}, missing ${JSON.stringify(missing.log)}, server auth_failures ${stats.auth_failures}`);
    assert.equal(wrong.errors.RefusedError, 1, "the wrong credential is reported once, as RefusedError");
    assert.ok(wrong.log.some((line) => /close 4403 willReconnect=false/.test(line)), "closed with 4403, not reconnecting");
    assert.equal(wrong.events.reconnecting, 0, "no reconnect attempt after 4403");
    assert.equal(wrong.readyState, 3, "the client is closed for good");
    assert.equal(wrong.rejected, 3, "its queued messages are rejected, not kept forever");
    assert.equal(missing.errors.RefusedError, 1, "the missing credential is reported once");
    assert.ok(missing.log.some((line) => /close 4401 willReconnect=false/.test(line)), "closed with 4401 (terminal without a URL provider)");
    assert.equal(stats.auth_failures, 2, "the server saw exactly one attempt of each refused client");
    assert.deepEqual(problems, [], "no uncaught page errors");
  } finally {
    await guarded.stop();
  }
});
