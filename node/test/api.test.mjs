// The package's API as an application uses it, against raw durable.v1 frames from a `ws` client:
//   cd node && npm run build && node --test test/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { Refusal, UnconfirmedError } from "../dist/index.js";
import { PACKAGE_DIR, REPO_ROOT } from "./e2e-support.mjs";
import { attachedSession, Raw, serve } from "./raw.mjs";

test("a session per session, messages once and in order, send resolves on the client's ACK, resumes keep the session", async () => {
  const { durable, url, close } = await serve();
  const sessions = [];
  const got = [];
  const events = [];
  durable.on("session", (session) => {
    sessions.push(session);
    session.on("message", (data) => got.push(data));
    session.on("resumed", () => events.push("resumed"));
    session.on("disconnected", () => events.push("disconnected"));
  });
  const a = await Raw.open(url);
  const { status, token } = await a.hello();
  assert.equal(status, 0);
  a.send(1, "one");
  a.send(2, "two");
  a.send(2, "two again (a duplicate: dropped)");
  await a.next(5); // the server's ACK
  assert.deepEqual(got, ["one", "two"]);
  assert.equal(sessions.length, 1);
  const session = sessions[0];
  assert.equal(session.startedAs, "new");
  assert.equal(session.identity, null);
  const delivery = session.send({ hello: "json" });
  assert.equal(delivery.seq, 1);
  assert.deepEqual(await a.text(), { seq: 1, text: '{"hello":"json"}' });
  let confirmed = false;
  const waiting = delivery.then(() => (confirmed = true));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(confirmed, false, "not before the ACK");
  a.ack(1);
  await waiting;
  // The connection drops; the session stays and resumes on a new one, without a new "session" event.
  session.send("while away");
  a.ws.terminate();
  await a.closed;
  const b = await Raw.open(url);
  const resumed = await b.hello({ token, last: 1 });
  assert.equal(resumed.status, 1, "Resumed");
  assert.deepEqual(await b.text(), { seq: 2, text: "while away" });
  b.send(3, "three");
  await b.next(5);
  assert.deepEqual(got, ["one", "two", "three"]);
  assert.equal(sessions.length, 1);
  assert.deepEqual(events, ["disconnected", "resumed"]);
  b.ws.close();
  await close();
});

test("rooms keep one order for every member and take sends from anywhere; sendToUser reaches every session of a user", async () => {
  const { durable, url, close } = await serve({ authenticate: (request) => new URL(request.url, "http://x").searchParams.get("user") });
  durable.on("session", (session) => session.join("lobby"));
  const ann1 = await Raw.open(`${url}?user=ann`);
  await ann1.hello();
  const ann2 = await Raw.open(`${url}?user=ann`);
  await ann2.hello();
  const bob = await Raw.open(`${url}?user=bob`);
  await bob.hello();
  assert.equal(durable.room("lobby").size, 3);
  for (let i = 1; i <= 20; i++) assert.equal(durable.room("lobby").send(`m${i}`), 3);
  assert.equal(durable.sendToUser("ann", "for ann"), 2);
  for (const client of [ann1, ann2, bob]) {
    const texts = [];
    for (let i = 0; i < 20; i++) texts.push((await client.text()).text);
    assert.deepEqual(texts, Array.from({ length: 20 }, (_, i) => `m${i + 1}`));
  }
  assert.equal((await ann1.text()).text, "for ann");
  assert.equal((await ann2.text()).text, "for ann");
  assert.deepEqual(durable.sessionsOf("ann").map((s) => s.identity), ["ann", "ann"]);
  for (const client of [ann1, ann2, bob]) client.ws.close();
  await close();
});

test("an expired session ends with what its client never confirmed; its send promises reject; the connection gets 4004", async () => {
  const { durable, close, session, client: a } = await attachedSession();
  const first = session.send("one");
  const second = session.send("two");
  await a.text();
  await a.text();
  const ended = new Promise((resolve) => session.on("ended", resolve));
  durable.expire(session);
  const info = await ended;
  assert.equal(info.reason, "expired");
  assert.deepEqual(info.unconfirmed, [{ seq: 1, data: "one" }, { seq: 2, data: "two" }]);
  await assert.rejects(first, (error) => error instanceof UnconfirmedError && error.seq === 1 && error.reason === "expired");
  await assert.rejects(second, UnconfirmedError);
  assert.equal((await a.closed).code, 4004);
  assert.throws(() => session.send("late"), { name: "SendError", code: "ended" });
  await close();
});

test("authenticate refuses after the upgrade with its close code and reason; close() sends 1012", async () => {
  const { durable, url, close } = await serve({
    authenticate: async (request) => {
      const token = new URL(request.url, "http://x").searchParams.get("token");
      if (!token) return Refusal.unauthorized();
      if (token !== "good") throw Refusal.forbidden();
      return "ann";
    },
  });
  const missing = await Raw.open(url);
  assert.equal(missing.ws.protocol, "durable.v1", "the refused upgrade still selects durable.v1");
  assert.deepEqual(await missing.closed, { code: 4401, reason: "missing credentials" });
  const wrong = await Raw.open(`${url}?token=bad`);
  assert.deepEqual(await wrong.closed, { code: 4403, reason: "invalid credentials" });
  const good = await Raw.open(`${url}?token=good`);
  await good.hello();
  assert.equal(durable.stats().auth_failures, 2);
  const closing = close();
  assert.deepEqual(await good.closed, { code: 1012, reason: "server restart" });
  await closing;
});

test("a session the application ends says goodbye; a client that does not close is closed with 1000 after 5 s (the core's policy)", { timeout: 10_000 }, async () => {
  const { close, session, client: a } = await attachedSession();
  const ended = new Promise((resolve) => session.on("ended", resolve));
  session.end();
  assert.equal((await ended).reason, "closed");
  await a.next(8); // GOODBYE; the client does not close
  const since = Date.now();
  assert.deepEqual(await a.closed, { code: 1000, reason: "goodbye" });
  const waited = Date.now() - since;
  assert.ok(waited >= 4_500 && waited < 7_000, `closed after ${waited} ms`);
  await close();
});

test("a close reason is cut to 123 bytes on a character boundary; a refusal's invalid code becomes 4403", async () => {
  const reason = `${"a".repeat(120)}😀x`; // 125 bytes: the emoji does not fit
  const { url, close } = await serve({ authenticate: () => Refusal.forbidden(reason) });
  const raw = await Raw.open(url);
  assert.deepEqual(await raw.closed, { code: 4403, reason: "a".repeat(120) });
  await close();
  const invalid = await serve({ authenticate: () => new Refusal(1006, "reserved code") });
  const refused = await Raw.open(invalid.url);
  assert.deepEqual(await refused.closed, { code: 4403, reason: "reserved code" });
  await invalid.close();
});

test("a superseded or an ended session's connection closes without a `disconnected` event (as in the Rust server)", async () => {
  const { durable, url, close, session, client: a, token } = await attachedSession();
  const events = [];
  for (const name of ["disconnected", "resumed", "ended"]) session.on(name, () => events.push(name));
  const b = await Raw.open(url);
  await b.hello({ token, last: 0 });
  assert.equal((await a.closed).code, 4409);
  durable.expire(session);
  assert.equal((await b.closed).code, 4004);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(events, ["resumed", "ended"]);
  await close();
});

test("plain connections are pinged once per heartbeat interval (as by the Rust server), not once per timeout", async () => {
  const { url, close } = await serve({ heartbeat: { intervalMs: 300, timeoutMs: 100 }, plain: () => {} });
  const ws = new WebSocket(url); // no durable.v1: plain mode
  let pings = 0;
  ws.on("ping", () => pings++);
  await new Promise((resolve) => ws.once("open", resolve));
  await new Promise((resolve) => setTimeout(resolve, 1_050));
  ws.close();
  assert.ok(pings >= 2 && pings <= 4, `${pings} pings in 1 s (one per 300 ms interval)`);
  await close();
});

test("node/README.md shows examples/express-app/server.mjs verbatim", () => {
  const readme = readFileSync(join(PACKAGE_DIR, "README.md"), "utf8");
  const marker = "<!-- example: examples/express-app/server.mjs -->\n```js\n";
  const at = readme.indexOf(marker);
  assert.ok(at >= 0, "the marker and its code block");
  const block = readme.slice(at + marker.length, readme.indexOf("\n```\n", at + marker.length) + 1);
  assert.equal(block, readFileSync(join(REPO_ROOT, "examples/express-app/server.mjs"), "utf8"));
});
