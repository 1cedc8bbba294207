// The Express example (examples/express-app: an Express app with its own routes, a durable endpoint from the
// Node.js package, and HTTP routes that push into a room or to a user) under cuts: three browser clients (the npm
// build in headless Chromium) behind the chaos proxy (every connection cut after 50–400 ms); everything pushed
// over HTTP arrives once, in order, at every member, and a push to one user reaches only that user.
//
//   node --test tests/e2e/node-express.test.mjs     (scripts/test.sh runs it in the node-server stage)
//
// Needs the Node package built (cd node && npm ci && npm run build), the example installed
// (cd examples/express-app && npm ci) and the chaos-proxy binary (DURABLE_WS_BIN_DIR, else target/{release,debug}).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { analyze } from "../chaos/analysis.mjs";
import { freePort, launchBrowser, openPage, siteDir, sleep, startProxy } from "../chaos/harness.mjs";
import { REPO_ROOT, spawnUntil, startNodeServer, stop } from "../../node/test/e2e-support.mjs";

const NOTES = 300;
const MEMBERS = ["alice", "bob", "carol"];
const DURABLE_OPTIONS = { reconnect: { minDelayMs: 10, maxDelayMs: 250 } };
const skip = process.env.DURABLE_WS_SERVER && process.env.DURABLE_WS_NODE_TESTS !== "1" ? "run by the node-server stage of scripts/test.sh" : false;

let site;
let pages;
let example;
let exampleHttp;
let proxy;
let browser;
let page;
let problems;

before(async () => {
  if (skip) return;
  site = siteDir({ "index.html": "tests/chaos/page.html", "page.js": "tests/chaos/page.js", pkg: "www/pkg", "rws.mjs": "node_modules/reconnecting-websocket/dist/reconnecting-websocket-mjs.js" });
  pages = await startNodeServer({ www: site.dir });
  const port = await freePort();
  ({ child: example } = await spawnUntil(process.execPath, ["server.mjs"], /express-app listening on /, {
    timeoutMs: 20_000,
    cwd: join(REPO_ROOT, "examples/express-app"),
    env: { LISTEN: `127.0.0.1:${port}` },
  }));
  exampleHttp = `http://127.0.0.1:${port}`;
  proxy = await startProxy({ target: `127.0.0.1:${port}`, lifetimeMs: [50, 400], latencyMs: 10 });
  browser = await launchBrowser();
  const context = await browser.newContext();
  ({ page, problems } = await openPage(context, `${pages.http}/index.html`, () => window.chaos?.ready === true));
}, { timeout: 30_000 });

after(async () => {
  await browser?.close();
  await proxy?.stop();
  await stop(example);
  await pages?.stop();
  site?.remove();
});

const summary = (name) => page.evaluate((n) => window.chaos.summary(n), name);
const details = (name) => page.evaluate((n) => window.chaos.details(n), name);

async function waitFor(names, done, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await Promise.all(names.map(summary));
    if (done(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms; state:\n${last.map((s) => JSON.stringify(s)).join("\n")}`);
    await sleep(100);
  }
}

/** The texts of the notes a client received from `from`. */
const notesFrom = (received, from) =>
  received.flatMap((message) => {
    try {
      const note = JSON.parse(message);
      return note.from === from ? [note.text] : [];
    } catch {
      return [];
    }
  });

async function post(path, body) {
  const response = await fetch(`${exampleHttp}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(response.status, 200, `POST ${path}`);
  return response.json();
}

test("express example under cuts: every note POSTed over HTTP reaches every member once, in order; a user push reaches only that user", { skip, timeout: 60_000 }, async () => {
  await page.evaluate(
    ({ url, members, options }) => members.forEach((name) => window.chaos.durable(name, `${url}/ws?user=${name}`, options)),
    { url: proxy.ws, members: MEMBERS, options: DURABLE_OPTIONS },
  );
  await waitFor(MEMBERS, (all) => all.every((s) => s.events.open >= 1), 10_000, "every member connected");
  for (let n = 1; n <= NOTES; n++) {
    // `reached` counts sessions in the room: a member whose first connection was cut before its
    // WELCOME left a session it never learned (kept for the TTL), so it may exceed the members.
    // What every member receives is checked exactly below.
    const { reached } = await post("/notes", { text: `p${n}` });
    assert.ok(reached >= MEMBERS.length, `note ${n} was taken by every member's session (reached ${reached})`);
    if (n % 3 === 0) await sleep(20);
  }
  for (let n = 1; n <= 20; n++) assert.ok((await post("/users/alice/notify", { text: `u${n}` })).reached >= 1);
  await waitFor(MEMBERS, (all) => all.every((s) => s.received >= NOTES), 30_000, "every member received every note");
  await sleep(500);
  const results = await Promise.all(MEMBERS.map(details));
  const health = await (await fetch(`${exampleHttp}/health`)).json();
  for (const name of MEMBERS) await page.evaluate((n) => window.chaos.close(n), name);
  const orders = [];
  results.forEach((result, i) => {
    const name = MEMBERS[i];
    const notes = notesFrom(result.receivedMessages, "http");
    const fromHttp = analyze(notes, "p", NOTES);
    const toUser = analyze(notes, "u", 20);
    console.log(`express ${name}: cuts ${result.events.reconnecting}, notes ${JSON.stringify(fromHttp)}, user pushes ${JSON.stringify(toUser)}`);
    assert.deepEqual(fromHttp, { delivered: NOTES, lost: 0, duplicated: 0, reordered: 0 }, `${name}: every note once, in order`);
    assert.ok(result.events.reconnecting >= 5, `${name} was cut at least 5 times (saw ${result.events.reconnecting})`);
    assert.equal(result.sessionLost, 0, `${name}: the session was never lost`);
    if (name === "alice") assert.deepEqual(toUser, { delivered: 20, lost: 0, duplicated: 0, reordered: 0 }, "alice got every push to her, in order");
    else assert.equal(toUser.delivered, 0, `${name} got none of alice's pushes`);
    orders.push(notes.filter((text) => text.startsWith("p")));
  });
  assert.deepEqual(orders[1], orders[0], "bob and alice: one order");
  assert.deepEqual(orders[2], orders[0], "carol and alice: one order");
  assert.ok(health.resumes > 0, "the example's sessions resumed across the cuts");
  assert.deepEqual(problems, [], "no uncaught page errors");
});

test("express example: a browser without ?user is refused with 4401 and told the reason; it does not loop", { skip, timeout: 15_000 }, async () => {
  await page.evaluate(({ url, options }) => window.chaos.durable("anonymous", `${url}/ws`, options), { url: proxy.ws, options: DURABLE_OPTIONS });
  await sleep(2000);
  const result = await details("anonymous");
  await page.evaluate(() => window.chaos.close("anonymous"));
  assert.equal(result.errors.RefusedError, 1, "refused once");
  assert.ok(result.log.some((line) => /close 4401 willReconnect=false/.test(line)), `closed with 4401 for good: ${JSON.stringify(result.log)}`);
  assert.equal(result.events.reconnecting, 0, "no reconnect loop");
});
