// End-to-end test of examples/axum-app (an ordinary axum app whose `/ws` endpoint puts every note into the room
// "lobby"): the npm build of durable-ws (pkg/, else www/pkg; web target) in headless Chromium, through the real
// chaos proxy (each connection cut after 50–400 ms, 25 ms one-way latency), against the real app binary.
//
//   node --test tests/e2e/axum-app.test.mjs     (scripts/test.sh runs it in the e2e-tests stage)
//
// Binaries (axum-app, chaos-proxy) come from DURABLE_WS_BIN_DIR, else target/debug, else target/release
// (`cargo build -p axum-app -p durable-ws-testkit`). The pages are served by a small static server of this file.
// Cases:
// - room: two browser clients ("ann", "bob"), each sending 300 numbered notes through the cutting proxy, while
//   this process POSTs 200 numbered notes to /notes directly and the app's clock ticks every 500 ms. Both clients
//   receive every note exactly once, in one and the same order, each sender's notes in send order, browser notes
//   with the server-side identity as `from`, the ticks without gap or repeat; ≥ 10 cuts; no `sessionlost`;
//   every send() resolved. Summary in test-output/axum-app.md.
// - refusal: without `?user=` the app refuses with close code 4401 and its reason, an `error` event
//   (RefusedError, code 4401), and the client does not reconnect in a loop: with a fixed URL one connection
//   attempt reaches the app in 3 s, with a URL provider two (the provider is asked once more for fresh
//   credentials, then the client stops).
// Time bounds: 30 s set-up, 90 s the room case (its waits 60 s), 25 s the refusal case; a run takes ~25 s.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer, connect as tcpConnect } from "node:net";
import { extname, join, normalize, sep } from "node:path";
import { REPO_ROOT, freePort, launchBrowser, sleep, startProxy, stopProcess } from "../chaos/harness.mjs";

const NOTES_PER_CLIENT = 300;
const HTTP_NOTES = 200;
// One note every 40 ms per client (12 s), one POST every 60 ms (12 s): dozens of 50–400 ms connection lifetimes.
const CLIENT_INTERVAL_MS = 40;
const HTTP_INTERVAL_MS = 60;
const CUT_LIFETIME_MS = [50, 400];
const LATENCY_MS = 25;
const MIN_CUTS = 10;
const MIN_TICKS = 10;
// Connections never live long: the backoff must stay short (as in the chaos suite).
const DURABLE_OPTIONS = { json: true, reconnect: { minDelayMs: 10, maxDelayMs: 250 } };
const REFUSAL_REASON = "sign in with ?user=NAME";
const OUTPUT_DIR = join(REPO_ROOT, "test-output");
const started = Date.now();

/** The directory holding `axum-app` and `chaos-proxy`. */
function binDir() {
  const candidates = [process.env.DURABLE_WS_BIN_DIR, join(REPO_ROOT, "target/debug"), join(REPO_ROOT, "target/release")];
  const found = candidates.find((dir) => dir && existsSync(join(dir, "axum-app")) && existsSync(join(dir, "chaos-proxy")));
  if (!found) throw new Error("no axum-app + chaos-proxy binaries: run `cargo build -p axum-app -p durable-ws-testkit` or set DURABLE_WS_BIN_DIR");
  return found;
}

/** The npm build of durable-ws (web target). */
function pkgDir() {
  const found = ["pkg", "www/pkg"].map((dir) => join(REPO_ROOT, dir)).find((dir) => existsSync(join(dir, "durable_ws.js")));
  if (!found) throw new Error("no pkg/durable_ws.js nor www/pkg/durable_ws.js: run `bash scripts/test.sh wasm-package`");
  return found;
}

/** Starts axum-app on a free loopback port; resolves once it printed "axum-app listening on". */
async function startApp(bin) {
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const child = spawn(join(bin, "axum-app"), [], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LISTEN: listen } });
  const log = [];
  await new Promise((resolve, reject) => {
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) {
        child.kill("SIGKILL");
        reject(new Error(`${error}\n--- axum-app output:\n${log.join("").slice(-4000)}`));
      } else resolve();
    };
    const timer = setTimeout(() => finish("axum-app did not print 'axum-app listening on' within 20 s"), 20_000);
    const onData = (chunk) => {
      if (log.length < 2000) log.push(chunk.toString());
      if (log.join("").includes(`axum-app listening on ${listen}`)) finish();
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("error", (error) => finish(`axum-app did not start: ${error.message}`));
    child.once("exit", (code, signal) => finish(`axum-app exited (code ${code}, signal ${signal})`));
  });
  return { child, log, port, address: listen, http: `http://${listen}`, ws: `ws://${listen}`, stop: () => stopProcess(child) };
}

/** The proxy's latest `stats` report (it logs `connections=N cuts=M` every 5 s on stderr). */
function watchProxyStats(proxy) {
  const latest = { connections: 0, cuts: 0, reports: 0 };
  let pending = "";
  proxy.child.stderr.on("data", (chunk) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop();
    for (const line of lines) {
      const match = line.match(/connections=(\d+) cuts=(\d+)/);
      if (match) Object.assign(latest, { connections: Number(match[1]), cuts: Number(match[2]), reports: latest.reports + 1 });
    }
  });
  return latest;
}

/** A TCP forwarder to `target` that counts the connections made through it (= connection attempts at the app). */
async function countingForwarder(targetPort) {
  const sockets = new Set();
  const counter = { connections: 0 };
  const server = createTcpServer((client) => {
    counter.connections++;
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => sockets.delete(socket));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    counter,
    ws: `ws://127.0.0.1:${port}`,
    stop: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// The page: clients that record everything they see, driven from Node through `window.app`.
const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>axum-app e2e</title><script type="module" src="/page.js"></script>`;
const PAGE_JS = `
import init, { DurableWebSocket } from "./pkg/durable_ws.js";
await init();

const clients = new Map();

function connect(name, url, options, { provider = false } = {}) {
  const record = {
    received: [], sent: 0, sending: false, resolved: 0, rejected: [], sessionLost: [], closes: [], errors: [],
    events: { open: 0, reconnecting: 0, resumed: 0, sessionlost: 0, close: 0, error: 0 }, providerCalls: 0, log: [],
  };
  const note = (type, detail) => {
    record.events[type]++;
    if (record.log.length < 300) record.log.push(Math.round(performance.now()) + " " + type + (detail ? " " + detail : ""));
  };
  const target = provider ? () => { record.providerCalls++; return url; } : url;
  const socket = new DurableWebSocket(target, options);
  socket.addEventListener("open", (e) => note("open", "durable=" + e.durable));
  socket.addEventListener("message", (e) => record.received.push(e.data));
  socket.addEventListener("reconnecting", (e) => note("reconnecting", "attempt=" + e.attempt + " delay=" + e.delayMs));
  socket.addEventListener("resumed", (e) => note("resumed", "replayed=" + e.replayed));
  socket.addEventListener("sessionlost", (e) => {
    note("sessionlost", e.reason + " unconfirmed=" + e.unconfirmed.length);
    record.sessionLost.push({ reason: e.reason, unconfirmed: e.unconfirmed.length });
  });
  socket.addEventListener("close", (e) => {
    note("close", e.code + " willReconnect=" + e.willReconnect);
    record.closes.push({ code: e.code, reason: e.reason, wasClean: e.wasClean, willReconnect: e.willReconnect });
  });
  socket.addEventListener("error", (e) => {
    note("error", e.error?.name);
    record.errors.push({ name: e.error?.name ?? null, code: e.error?.code ?? null, message: e.error?.message ?? e.message ?? null });
  });
  clients.set(name, { record, socket });
}

function get(name) {
  const client = clients.get(name);
  if (!client) throw new Error("no client " + name);
  return client;
}

/** Sends notes {from: spoofed, text: prefix + i}, i = 1..count, one every intervalMs, in the background. */
function sendNumbered(name, spoofed, prefix, count, intervalMs) {
  const { record, socket } = get(name);
  record.sending = true;
  let next = 1;
  const tick = () => {
    const note = { from: spoofed, text: prefix + next++ };
    record.sent++;
    socket.send(note).then(() => record.resolved++, (error) => record.rejected.push(error?.name ?? String(error)));
    if (next <= count) setTimeout(tick, intervalMs);
    else record.sending = false;
  };
  tick();
}

function summary(name) {
  const { record, socket } = get(name);
  return {
    sent: record.sent, sending: record.sending, received: record.received.length, resolved: record.resolved,
    rejected: record.rejected.length, sessionLost: record.sessionLost.length, events: { ...record.events },
    pending: socket.pending, readyState: socket.readyState, providerCalls: record.providerCalls,
    notes: record.received.filter((m) => m?.from !== "clock").length, stats: socket.stats(),
  };
}

function details(name) {
  const { record } = get(name);
  return { ...summary(name), receivedMessages: record.received, rejectedMessages: record.rejected,
    sessionLostEvents: record.sessionLost, closes: record.closes, errors: record.errors, log: record.log };
}

function close(name) {
  get(name).socket.close();
  clients.delete(name);
}

window.app = { connect, sendNumbered, summary, details, close, ready: true };
`;

const MIME = { ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json", ".ts": "text/plain" };

/** Serves the page and the npm build under /pkg/ on a free loopback port (a loopback origin: the app allows it). */
async function startSite(pkg) {
  const server = createHttpServer((request, response) => {
    const path = new URL(request.url, "http://x").pathname;
    const send = (status, type, body) => {
      response.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      response.end(body);
    };
    if (path === "/" || path === "/index.html") return send(200, "text/html; charset=utf-8", PAGE_HTML);
    if (path === "/page.js") return send(200, "text/javascript", PAGE_JS);
    if (path.startsWith("/pkg/")) {
      const file = normalize(join(pkg, decodeURIComponent(path.slice("/pkg/".length))));
      if (file.startsWith(pkg + sep) && existsSync(file) && statSync(file).isFile()) {
        return send(200, MIME[extname(file)] ?? "application/octet-stream", readFileSync(file));
      }
    }
    send(404, "text/plain", "not found");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

let bin;
let app;
let proxy;
let proxyStats;
let site;
let browser;
const problems = [];
const pages = [];
const report = {};

/** A new browser context with the page loaded and `window.app` ready. */
async function openClientPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  await page.goto(site.url);
  await page.waitForFunction(() => window.app?.ready === true, null, { timeout: 20_000 });
  pages.push(context);
  return page;
}

before(async () => {
  bin = binDir();
  site = await startSite(pkgDir());
  app = await startApp(bin);
  proxy = await startProxy({ target: app.address, lifetimeMs: CUT_LIFETIME_MS, latencyMs: LATENCY_MS, bin });
  proxyStats = watchProxyStats(proxy);
  // Two pages in the same headless browser: neither may be throttled as a background page.
  browser = await launchBrowser(["--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"]);
}, { timeout: 30_000 });

after(async () => {
  for (const context of pages) await context.close().catch(() => {});
  await browser?.close();
  await proxy?.stop();
  await app?.stop();
  await site?.stop();
  report.runSeconds = (Date.now() - started) / 1000;
  writeSummary();
  console.log(`axum-app e2e: ${report.runSeconds.toFixed(1)} s`);
});

function writeSummary() {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const lines = [`# axum-app end to end (examples/axum-app through the cutting proxy)`, ""];
  if (report.room) {
    const r = report.room;
    lines.push(
      `Room case: ${NOTES_PER_CLIENT} notes from each of ann and bob (through the proxy, cut every ${CUT_LIFETIME_MS.join("–")} ms, ` +
        `${LATENCY_MS} ms latency), ${HTTP_NOTES} notes POSTed to /notes, the clock's ticks; ${r.seconds.toFixed(1)} s.`,
      "",
      "| client | received | notes (ann/bob/http) | lost | duplicated | out of order | ticks (first–last) | tick gaps/repeats | reconnects | resumed | sessionlost |",
      "|--------|----------|----------------------|------|------------|--------------|--------------------|-------------------|------------|---------|-------------|",
      ...r.clients.map(
        (c) =>
          `| ${c.name} | ${c.received} | ${c.counts.ann}/${c.counts.bob}/${c.counts.http} | ${c.lost} | ${c.duplicated} | ${c.reordered} | ` +
          `${c.ticks.count} (${c.ticks.first}–${c.ticks.last}) | ${c.ticks.gaps}/${c.ticks.repeats} | ${c.reconnecting} | ${c.resumed} | ${c.sessionLost} |`,
      ),
      "",
      `Proxy: ${r.proxy.connections} connections, ${r.proxy.cuts} cuts (its last 5-second report). ` +
        `Common history compared: ${r.commonLength} items, identical: ${r.sameOrder}.`,
      "",
    );
  }
  if (report.refusal) {
    lines.push("Refusal case (no `?user=`): connection attempts at the app over 3 s:", "");
    for (const [label, r] of Object.entries(report.refusal)) {
      lines.push(`- ${label}: ${r.attempts} attempt(s), closes ${JSON.stringify(r.closes)}, errors ${JSON.stringify(r.errors)}, provider calls ${r.providerCalls}`);
    }
    lines.push("");
  }
  lines.push(`Run time: ${(report.runSeconds ?? 0).toFixed(1)} s.`, "");
  writeFileSync(join(OUTPUT_DIR, "axum-app.md"), lines.join("\n"));
}

/** Polls `probe()` until `done(value)` holds; fails with the last value after `timeoutMs`. */
async function waitFor(probe, done, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms; state:\n${JSON.stringify(value, null, 1)}`);
    await sleep(100);
  }
}

/** POSTs `${prefix}1..count` to /notes, one every `intervalMs`; resolves with the response statuses. */
async function postNotes(http, prefix, count, intervalMs) {
  const statuses = [];
  for (let n = 1; n <= count; n++) {
    const next = Date.now() + intervalMs;
    const response = await fetch(new URL("/notes", http), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ from: "http", text: `${prefix}${n}` }),
      signal: AbortSignal.timeout(5000),
    });
    await response.arrayBuffer();
    statuses.push(response.status);
    await sleep(Math.max(0, next - Date.now()));
  }
  return statuses;
}

const key = (m) => `${m?.from}\u0000${m?.text}`;

/** What one client's received sequence says about one sender's numbered notes (`from`, `${prefix}N`). */
function analyzeSender(received, from, prefix, count) {
  const seen = new Map();
  let reordered = 0;
  let highest = 0;
  let wrongFrom = 0;
  for (const m of received) {
    if (typeof m?.text !== "string" || !m.text.startsWith(prefix)) continue;
    if (m.from !== from) wrongFrom++;
    const n = Number(m.text.slice(prefix.length));
    seen.set(n, (seen.get(n) ?? 0) + 1);
    if (seen.get(n) > 1) continue;
    if (n < highest) reordered++;
    else highest = n;
  }
  let lost = 0;
  for (let n = 1; n <= count; n++) if (!seen.has(n)) lost++;
  const duplicated = [...seen.values()].reduce((sum, times) => sum + times - 1, 0);
  const extra = [...seen.keys()].filter((n) => !(n >= 1 && n <= count)).length;
  return { delivered: seen.size, lost, duplicated, reordered, wrongFrom, extra };
}

/** The clock's ticks in a received sequence: count, range, gaps and repeats (consecutive numbers expected). */
function analyzeTicks(received) {
  const numbers = received.filter((m) => m?.from === "clock").map((m) => Number(String(m.text).replace(/^tick /, "")));
  let gaps = 0;
  let repeats = 0;
  for (let i = 1; i < numbers.length; i++) {
    if (numbers[i] === numbers[i - 1] + 1) continue;
    if (numbers[i] <= numbers[i - 1]) repeats++;
    else gaps++;
  }
  return { count: numbers.length, first: numbers[0], last: numbers.at(-1), gaps, repeats, malformed: numbers.filter((n) => !Number.isInteger(n)).length };
}

test(
  `room: ann and bob send ${NOTES_PER_CLIENT} notes each through the cutting proxy, ${HTTP_NOTES} POSTed, clock ticking: all at both, once, same order`,
  { timeout: 90_000 },
  async () => {
    const caseStarted = Date.now();
    const annPage = await openClientPage();
    const bobPage = await openClientPage();
    const clients = [
      { name: "ann", page: annPage },
      { name: "bob", page: bobPage },
    ];
    for (const { name, page } of clients) {
      await page.evaluate(({ name, url, options }) => window.app.connect(name, url, options), {
        name,
        url: `${proxy.ws}/ws?user=${name}`,
        options: DURABLE_OPTIONS,
      });
    }
    const summary = ({ name, page }) => page.evaluate((n) => window.app.summary(n), name);
    const both = () => Promise.all(clients.map(summary));
    // Both must be members of the lobby before the first note, or one would miss it.
    await waitFor(both, (all) => all.every((s) => s.events.open >= 1), 10_000, "both clients joined the lobby");

    for (const { name, page } of clients) {
      await page.evaluate(({ name, count, interval }) => window.app.sendNumbered(name, "mallory", `${name}:`, count, interval), {
        name,
        count: NOTES_PER_CLIENT,
        interval: CLIENT_INTERVAL_MS,
      });
    }
    const statuses = await postNotes(app.http, "http:", HTTP_NOTES, HTTP_INTERVAL_MS);
    const expectedNotes = 2 * NOTES_PER_CLIENT + HTTP_NOTES;
    await waitFor(
      both,
      (all) => all.every((s) => !s.sending && s.notes >= expectedNotes && s.pending === 0 && s.resolved + s.rejected === NOTES_PER_CLIENT),
      60_000,
      "both clients received every note and got every acknowledgement",
    );
    const results = await Promise.all(clients.map(({ name, page }) => page.evaluate((n) => window.app.details(n), name)));
    for (const { name, page } of clients) await page.evaluate((n) => window.app.close(n), name);
    const seconds = (Date.now() - caseStarted) / 1000;

    const analyses = results.map((result, i) => {
      const name = clients[i].name;
      const received = result.receivedMessages;
      const fromAnn = analyzeSender(received, "ann", "ann:", NOTES_PER_CLIENT);
      const fromBob = analyzeSender(received, "bob", "bob:", NOTES_PER_CLIENT);
      const fromHttp = analyzeSender(received, "http", "http:", HTTP_NOTES);
      const ticks = analyzeTicks(received);
      const others = received.filter((m) => m?.from !== "clock" && !/^(ann|bob|http):\d+$/.test(m?.text ?? ""));
      return { name, result, fromAnn, fromBob, fromHttp, ticks, others };
    });

    // The two histories from the first item both hold: identical, except that the later snapshot may end with
    // ticks the other had not received yet.
    const [a, b] = results.map((r) => r.receivedMessages.map(key));
    const inB = new Set(b);
    const startA = a.findIndex((k) => inB.has(k));
    const startB = startA < 0 ? -1 : b.indexOf(a[startA]);
    const tailA = startA < 0 ? [] : a.slice(startA);
    const tailB = startB < 0 ? [] : b.slice(startB);
    const commonLength = Math.min(tailA.length, tailB.length);
    const firstDifference = [...Array(commonLength).keys()].find((i) => tailA[i] !== tailB[i]);
    const leftover = [...tailA.slice(commonLength), ...tailB.slice(commonLength)].filter((k) => !k.startsWith("clock\u0000"));

    report.room = {
      seconds,
      commonLength,
      sameOrder: firstDifference === undefined && leftover.length === 0,
      proxy: { ...proxyStats },
      clients: analyses.map(({ name, result, fromAnn, fromBob, fromHttp, ticks }) => ({
        name,
        received: result.received,
        counts: { ann: fromAnn.delivered, bob: fromBob.delivered, http: fromHttp.delivered },
        lost: fromAnn.lost + fromBob.lost + fromHttp.lost,
        duplicated: fromAnn.duplicated + fromBob.duplicated + fromHttp.duplicated,
        reordered: fromAnn.reordered + fromBob.reordered + fromHttp.reordered,
        ticks,
        reconnecting: result.events.reconnecting,
        resumed: result.events.resumed,
        sessionLost: result.sessionLost,
      })),
    };
    for (const { name, result, fromAnn, fromBob, fromHttp, ticks } of analyses) {
      console.log(
        `room ${name}: received ${result.received}, reconnects ${result.events.reconnecting}, resumed ${result.events.resumed}, ` +
          `ann ${JSON.stringify(fromAnn)}, bob ${JSON.stringify(fromBob)}, http ${JSON.stringify(fromHttp)}, ticks ${JSON.stringify(ticks)}, ` +
          `stats ${JSON.stringify(result.stats)}`,
      );
    }
    console.log(`room: proxy ${JSON.stringify(proxyStats)}, common history ${commonLength} items, run ${seconds.toFixed(1)} s`);

    assert.deepEqual(
      statuses.filter((s) => s !== 202),
      [],
      "every POST /notes was accepted (202)",
    );
    for (const { name, result, fromAnn, fromBob, fromHttp, ticks, others } of analyses) {
      const exact = (count) => ({ delivered: count, lost: 0, duplicated: 0, reordered: 0, wrongFrom: 0, extra: 0 });
      assert.deepEqual(fromAnn, exact(NOTES_PER_CLIENT), `${name} got each of ann's notes once, in send order, from "ann"`);
      assert.deepEqual(fromBob, exact(NOTES_PER_CLIENT), `${name} got each of bob's notes once, in send order, from "bob"`);
      assert.deepEqual(fromHttp, exact(HTTP_NOTES), `${name} got each POSTed note once, in order`);
      assert.deepEqual(others, [], `${name} received nothing but the notes and the ticks`);
      assert.equal(ticks.malformed, 0, `${name}: every tick reads "tick N"`);
      assert.ok(ticks.count >= MIN_TICKS, `${name} saw at least ${MIN_TICKS} ticks (saw ${ticks.count})`);
      assert.equal(ticks.gaps, 0, `${name}: no tick missing between ${ticks.first} and ${ticks.last}`);
      assert.equal(ticks.repeats, 0, `${name}: no tick twice or out of order`);
      assert.equal(result.resolved, NOTES_PER_CLIENT, `${name}: every send() promise resolved`);
      assert.deepEqual(result.rejectedMessages, [], `${name}: no send() promise rejected`);
      assert.equal(result.sessionLost, 0, `${name}: no sessionlost event (${JSON.stringify(result.sessionLostEvents)})`);
      assert.ok(result.events.reconnecting >= MIN_CUTS, `${name}: cut at least ${MIN_CUTS} times (saw ${result.events.reconnecting})`);
    }
    assert.ok(startA >= 0, "the two clients have items in common");
    assert.equal(firstDifference, undefined, `both histories identical from their first common item (first difference at ${firstDifference}: ${JSON.stringify([tailA[firstDifference], tailB[firstDifference]])})`);
    assert.deepEqual(leftover, [], "beyond the shorter history, only ticks");
    assert.ok(commonLength >= 2 * NOTES_PER_CLIENT + HTTP_NOTES, "the common history holds every note");
    assert.ok(proxyStats.reports >= 1, "the proxy reported its counters");
    assert.ok(proxyStats.cuts >= MIN_CUTS, `the proxy cut at least ${MIN_CUTS} connections (its counters: ${JSON.stringify(proxyStats)})`);
    assert.deepEqual(problems, [], "no uncaught page errors");
  },
);

test("refusal: without ?user= the app closes with 4401 and its reason, RefusedError, and the client does not retry in a loop", { timeout: 25_000 }, async () => {
  const forwarder = await countingForwarder(app.port);
  const page = await openClientPage();
  report.refusal = {};
  try {
    for (const [label, provider, expectedAttempts, queued] of [
      ["fixed URL", false, 1, false],
      ["URL provider", true, 2, false],
      ["fixed URL, a message queued", false, 1, true],
    ]) {
      const before = forwarder.counter.connections;
      const name = `anon-${provider ? "provider" : "fixed"}${queued ? "-queued" : ""}`;
      await page.evaluate(({ name, url, options, provider, queued }) => {
        window.app.connect(name, url, options, { provider });
        if (queued) window.app.sendNumbered(name, "anon", "before the refusal ", 1, 0);
      }, {
        name,
        url: `${forwarder.ws}/ws`,
        options: DURABLE_OPTIONS,
        provider,
        queued,
      });
      await sleep(3000);
      const result = await page.evaluate((n) => window.app.details(n), name);
      const attempts = forwarder.counter.connections - before;
      await page.evaluate((n) => window.app.close(n), name);
      report.refusal[label] = { attempts, closes: result.closes, errors: result.errors, providerCalls: result.providerCalls };
      console.log(`refusal (${label}): ${attempts} attempt(s), events ${JSON.stringify(result.events)}, log ${JSON.stringify(result.log)}`);

      assert.equal(attempts, expectedAttempts, `${label}: exactly ${expectedAttempts} connection attempt(s) reached the app in 3 s`);
      if (provider) assert.equal(result.providerCalls, 2, "the provider was asked twice (once more for fresh credentials)");
      assert.ok(result.closes.length >= 1, `${label}: a close event`);
      for (const close of result.closes) {
        assert.equal(close.code, 4401, `${label}: closed with 4401`);
        assert.equal(close.reason, REFUSAL_REASON, `${label}: with the app's reason`);
      }
      assert.equal(result.closes.at(-1).willReconnect, false, `${label}: the last close is for good`);
      assert.ok(result.errors.length >= 1, `${label}: an error event`);
      for (const error of result.errors) {
        assert.equal(error.name, "RefusedError", `${label}: the error is a RefusedError`);
        assert.equal(error.code, 4401, `${label}: with code 4401`);
      }
      assert.equal(result.events.open, 0, `${label}: never open`);
      if (queued) {
        assert.deepEqual(result.sessionLostEvents, [{ reason: "refused", unconfirmed: 1 }], `${label}: the queued message, reported as refused`);
        assert.deepEqual(result.rejectedMessages, ["SessionLostError"], `${label}: its send() rejected`);
      } else {
        assert.equal(result.sessionLost, 0, `${label}: nothing was sent, so no sessionlost`);
      }
    }
    assert.deepEqual(problems, [], "no uncaught page errors");
  } finally {
    await forwarder.stop();
  }
});
