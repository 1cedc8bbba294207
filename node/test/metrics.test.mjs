// The Node.js server's metrics (`durable.metrics()`, the reference program's /metrics) and its health routes:
// the Rust server's names, labels and buckets (the core's table), moved by the right amounts in scripted
// scenarios of raw durable.v1 frames.
//   cd node && npm run build && node --test test/metrics.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { networkInterfaces } from "node:os";
import WebSocket from "ws";
import { METRICS_CONTENT_TYPE, Refusal } from "../dist/index.js";
import { startNodeServer } from "./e2e-support.mjs";
import { parsePrometheus, sample } from "./prometheus.mjs";
import { Raw, serve } from "./raw.mjs";

const require = createRequire(import.meta.url);
const { KNOWN_SERIES, METRIC_SPECS } = require("../dist/core.js");
const { Registry } = require("../dist/metrics.js");

const scrape = (durable) => parsePrometheus(durable.metrics());
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `read()` is `want` (deep-equal), then returns it; fails with the last value after 3 s. */
async function until(read, want, what) {
  const deadline = Date.now() + 3000;
  for (;;) {
    const got = read();
    try {
      assert.deepEqual(got, want);
      return got;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: ${error.message}`);
    }
    await sleep(10);
  }
}

test("every metric of the core's table but the shared-storage ones is in every scrape, with its help, type and buckets", async () => {
  const { durable, close } = await serve();
  const families = scrape(durable);
  const expected = METRIC_SPECS.filter((spec) => !spec.storeOnly);
  assert.ok(expected.length >= 16, "the table came through the wasm");
  assert.deepEqual([...families.keys()], expected.map((spec) => spec.name), "the names, in the table's order");
  for (const spec of expected) {
    const family = families.get(spec.name);
    assert.equal(family.help, spec.help, spec.name);
    assert.equal(family.type, spec.kind, spec.name);
    if (spec.labels.length > 0) {
      // The series whose label values are known in advance (the core's known_series) are there at 0, as the Rust
      // server's; the others (a histogram's close codes) appear once recorded.
      const known = KNOWN_SERIES.filter((series) => series.name === spec.name).map((series) => series.values);
      const shown = family.samples.map((s) => spec.labels.map((label) => s.labels[label]));
      assert.deepEqual(shown, known, `${spec.name}: the known series, at 0`);
      assert.ok(family.samples.every((s) => s.value === 0), `${spec.name}: at 0`);
    } else if (spec.kind === "histogram") {
      const les = family.samples.filter((s) => s.name.endsWith("_bucket")).map((s) => s.labels.le);
      assert.deepEqual(les, [...spec.buckets.map(String), "+Inf"], `${spec.name}: the core's buckets`);
    } else {
      assert.deepEqual(family.samples, [{ name: spec.name, labels: {}, value: 0 }], `${spec.name}: at 0 from the start`);
    }
  }
  for (const spec of METRIC_SPECS.filter((spec) => spec.storeOnly)) assert.ok(!families.has(spec.name), `${spec.name}: shared storage only`);
  await close();
});

test("a scripted session moves the counters by the right amounts: new, duplicate, ack delay, cut, resume and replay, goodbye", async () => {
  const { durable, url, close } = await serve();
  let session;
  const got = [];
  durable.on("session", (s) => {
    session = s;
    s.on("message", (data) => got.push(data));
  });
  const a = await Raw.open(url);
  const { token } = await a.hello();
  let m = scrape(durable);
  assert.equal(sample(m, "durable_ws_handshakes_total", { outcome: "new", reason: "none" }), 1);
  assert.equal(sample(m, "durable_ws_connections_active", { mode: "durable" }), 1);
  assert.equal(sample(m, "durable_ws_sessions_active"), 1);
  // Two messages in, then the second again: a duplicate, dropped.
  a.send(1, "one");
  a.send(2, "two");
  a.send(2, "two");
  await a.next(5);
  await until(() => sample(scrape(durable), "durable_ws_duplicate_messages_total"), 1, "duplicates");
  assert.deepEqual(got, ["one", "two"]);
  m = scrape(durable);
  assert.equal(sample(m, "durable_ws_messages_total", { direction: "in" }), 2);
  assert.equal(sample(m, "durable_ws_message_bytes_total", { direction: "in" }), 6);
  // One out, held in the replay buffer until the client's ACK; its ACK is one ack-delay observation.
  session.send("héllo"); // 6 bytes in UTF-8
  assert.deepEqual(await a.text(), { seq: 1, text: "héllo" });
  m = scrape(durable);
  assert.equal(sample(m, "durable_ws_replay_buffer_messages"), 1);
  assert.equal(sample(m, "durable_ws_replay_buffer_bytes"), 6);
  await sleep(30);
  a.ack(1);
  await until(() => sample(scrape(durable), "durable_ws_ack_delay_seconds_count"), 1, "ack delay observations");
  m = scrape(durable);
  assert.ok(sample(m, "durable_ws_ack_delay_seconds_sum") >= 0.025, "the delay covers the 30 ms before the ACK");
  assert.equal(sample(m, "durable_ws_ack_delay_seconds_bucket", { le: "0.025" }), 0);
  assert.equal(sample(m, "durable_ws_ack_delay_seconds_bucket", { le: "+Inf" }), 1);
  assert.equal(sample(m, "durable_ws_replay_buffer_messages"), 0);
  // A message while the link is cut (no close frame: 1006), then a resume that replays it.
  session.send("while away");
  a.ws.terminate();
  await a.closed;
  await until(() => sample(scrape(durable), "durable_ws_connections_active", { mode: "durable" }), 0, "connections after the cut");
  m = scrape(durable);
  assert.equal(sample(m, "durable_ws_connection_duration_seconds_count", { code: "1006" }), 1);
  assert.equal(sample(m, "durable_ws_sessions_active"), 1, "the session waits for its client");
  const b = await Raw.open(url);
  assert.equal((await b.hello({ token, last: 1 })).status, 1, "resumed");
  assert.deepEqual(await b.text(), { seq: 2, text: "while away" });
  m = scrape(durable);
  assert.equal(sample(m, "durable_ws_handshakes_total", { outcome: "resumed", reason: "none" }), 1);
  assert.equal(sample(m, "durable_ws_replayed_messages_total"), 1);
  assert.equal(sample(m, "durable_ws_messages_total", { direction: "out" }), 2);
  assert.equal(sample(m, "durable_ws_message_bytes_total", { direction: "out" }), 16);
  // The client says goodbye without confirming the replayed message: ended (goodbye), one unconfirmed.
  const ended = new Promise((resolve) => session.on("ended", resolve));
  b.goodbye();
  const info = await ended;
  assert.equal(info.reason, "goodbye");
  b.ws.close(1000);
  await b.closed;
  await until(() => sample(scrape(durable), "durable_ws_connection_duration_seconds_count", { code: "1000" }), 1, "the closed connection");
  m = scrape(durable);
  assert.equal(sample(m, "durable_ws_sessions_ended_total", { reason: "goodbye" }), 1);
  assert.equal(sample(m, "durable_ws_unconfirmed_at_end_total"), info.unconfirmed.length);
  assert.equal(info.unconfirmed.length, 1);
  assert.equal(sample(m, "durable_ws_sessions_active"), 0);
  assert.equal(sample(m, "durable_ws_connections_active", { mode: "durable" }), 0);
  assert.equal(sample(m, "durable_ws_connection_duration_seconds_count", { code: "1000" }), 1);
  assert.equal(sample(m, "durable_ws_handshakes_total", { outcome: "new", reason: "none" }), 1, "still one new session");
  assert.equal(sample(m, "durable_ws_protocol_errors_total"), 0);
  assert.equal(sample(m, "durable_ws_heartbeat_timeouts_total"), 0);
  // The /stats counters count the same events.
  const stats = durable.stats();
  assert.equal(stats.messages_in, 2);
  assert.equal(stats.messages_out, 2);
  assert.equal(stats.duplicates_dropped, 1);
  assert.equal(stats.replayed, 1);
  assert.equal(stats.resumes, 1);
  await close();
});

test("handshakes lost and refused by reason, the limits they hit, protocol errors and message sizes", async () => {
  const users = (request) => new URL(request.url, "http://x").searchParams.get("user") ?? Refusal.unauthorized();
  const { durable, url, close } = await serve({ authenticate: users, maxSessions: 2, maxSessionsPerIdentity: 1, maxMessageBytes: 16 });
  // Lost: a resume of a session this server never had.
  const lost = await Raw.open(`${url}?user=ann`);
  assert.equal((await lost.hello({ token: Array(16).fill(7), last: 0 })).status, 2, "lost (unknown)");
  // Refused: ann holds her one session; then the server holds its two.
  const again = await Raw.open(`${url}?user=ann`);
  again.ws.send(Buffer.from([1, 0]));
  assert.equal((await again.closed).code, 1013);
  const bob = await Raw.open(`${url}?user=bob`);
  await bob.hello();
  const carl = await Raw.open(`${url}?user=carl`);
  carl.ws.send(Buffer.from([1, 0]));
  assert.equal((await carl.closed).code, 1013);
  // Refused: no credentials (4401); a text first frame (1002, a protocol error).
  const anonymous = await Raw.open(url);
  assert.equal((await anonymous.closed).code, 4401);
  const malformed = await Raw.open(`${url}?user=dan`);
  malformed.ws.send("hello?");
  assert.equal((await malformed.closed).code, 1002);
  // Too large for maxMessageBytes: 1009, a protocol error and the message_size limit.
  bob.send(1, "x".repeat(17));
  assert.equal((await bob.closed).code, 1009);
  // Only the connection of the session made for the lost one is left.
  await until(() => sample(scrape(durable), "durable_ws_connections_active", { mode: "durable" }), 1, "connections");
  const m = scrape(durable);
  const handshakes = (outcome, reason) => sample(m, "durable_ws_handshakes_total", { outcome, reason });
  assert.equal(handshakes("new", "none"), 1);
  assert.equal(handshakes("lost", "expired"), 1);
  assert.equal(handshakes("refused", "owner_limit"), 1);
  assert.equal(handshakes("refused", "capacity"), 1);
  assert.equal(handshakes("refused", "auth"), 1);
  assert.equal(handshakes("refused", "malformed"), 1);
  const limits = (limit) => sample(m, "durable_ws_limit_refusals_total", { limit });
  assert.equal(limits("owner_sessions"), 1);
  assert.equal(limits("capacity"), 1);
  assert.equal(limits("message_size"), 1);
  assert.equal(sample(m, "durable_ws_protocol_errors_total"), 2, "the malformed hello and the oversized message");
  assert.equal(durable.stats().protocol_errors, 2, "/stats counts the same");
  assert.equal(sample(m, "durable_ws_connection_duration_seconds_count", { code: "4401" }), 1);
  assert.equal(sample(m, "durable_ws_connection_duration_seconds_count", { code: "1013" }), 2);
  lost.ws.close();
  await close();
});

test("plain connections: their own mode, messages and bytes both ways; refused without a plain handler", async () => {
  const { durable, url, close } = await serve({ plain: (ws) => ws.on("message", (data) => ws.send(`echo ${data}`)) });
  const ws = new WebSocket(url);
  await new Promise((resolve) => ws.once("open", resolve));
  ws.send("hi");
  await new Promise((resolve) => ws.once("message", resolve));
  let m = scrape(durable);
  assert.equal(sample(m, "durable_ws_connections_active", { mode: "plain" }), 1);
  assert.equal(sample(m, "durable_ws_messages_total", { direction: "in" }), 1);
  assert.equal(sample(m, "durable_ws_message_bytes_total", { direction: "in" }), 2);
  assert.equal(sample(m, "durable_ws_messages_total", { direction: "out" }), 1);
  assert.equal(sample(m, "durable_ws_message_bytes_total", { direction: "out" }), 7);
  ws.close(1000);
  await until(() => sample(scrape(durable), "durable_ws_connections_active", { mode: "plain" }), 0, "plain connections after close");
  await close();
  const strict = await serve();
  const refused = new WebSocket(strict.url);
  assert.equal(await new Promise((resolve) => refused.once("close", resolve)), 1008);
  m = scrape(strict.durable);
  assert.equal(sample(m, "durable_ws_handshakes_total", { outcome: "refused", reason: "not_durable" }), 1);
  await strict.close();
});

test("the registry's text: label values escaped, histograms cumulative with +Inf, _sum and _count", () => {
  const registry = new Registry([
    { name: "t_total", kind: "counter", help: 'a "help"\\ with a\nnewline', labels: ["v"], buckets: [], storeOnly: false },
    { name: "t_seconds", kind: "histogram", help: "h", labels: ["code"], buckets: [0.1, 1], storeOnly: false },
  ]);
  registry.counter("t_total").with('a"b\\c\nd').inc(2);
  const histogram = registry.histogram("t_seconds").with("1000");
  for (const value of [0.05, 0.1, 0.5, 2]) histogram.observe(value);
  const text = registry.render();
  assert.ok(text.includes('# HELP t_total a "help"\\\\ with a\\nnewline\n'), text);
  assert.ok(text.includes('t_total{v="a\\"b\\\\c\\nd"} 2\n'), text);
  const families = parsePrometheus(text);
  assert.equal(sample(families, "t_total", { v: 'a"b\\c\nd' }), 2);
  assert.equal(families.get("t_total").help, 'a "help"\\ with a\nnewline');
  assert.deepEqual(
    families.get("t_seconds").samples.map((s) => [s.name, s.labels.le, s.value]),
    [
      ["t_seconds_bucket", "0.1", 2],
      ["t_seconds_bucket", "1", 3],
      ["t_seconds_bucket", "+Inf", 4],
      ["t_seconds_sum", undefined, 2.65],
      ["t_seconds_count", undefined, 4],
    ],
  );
  assert.throws(() => registry.counter("t_seconds"), TypeError);
  assert.throws(() => registry.counter("t_total").with(), RangeError);
});

test("the reference program: /metrics (Prometheus text), /healthz, and /readyz turning 503 while it drains after SIGTERM", { timeout: 30_000 }, async () => {
  const server = await startNodeServer({ www: "/nonexistent" });
  try {
    const get = async (path) => {
      const response = await fetch(`${server.http}${path}`);
      return { status: response.status, type: response.headers.get("content-type"), body: await response.text() };
    };
    assert.deepEqual(await get("/healthz"), { status: 200, type: "text/plain; charset=utf-8", body: "ok" });
    assert.equal((await get("/readyz")).status, 200);
    const client = await Raw.open(`${server.ws}/echo`);
    await client.hello();
    client.send(1, "ping");
    assert.deepEqual(await client.text(), { seq: 1, text: "ping" });
    const metrics = await get("/metrics");
    assert.equal(metrics.status, 200);
    assert.equal(metrics.type, METRICS_CONTENT_TYPE);
    const m = parsePrometheus(metrics.body);
    assert.equal(sample(m, "durable_ws_handshakes_total", { outcome: "new", reason: "none" }), 1);
    assert.equal(sample(m, "durable_ws_messages_total", { direction: "in" }), 1);
    assert.equal(sample(m, "durable_ws_messages_total", { direction: "out" }), 1);
    assert.equal(sample(m, "durable_ws_connections_active", { mode: "durable" }), 1);
    // The client stops reading: the server's 1012 goes unanswered, so the drain lasts until the closing handshake
    // times out (the core's CLOSE_TIMEOUT_MS, 1 s).
    client.ws._socket.pause();
    const exited = new Promise((resolve) => server.child.once("exit", (code) => resolve(code)));
    server.child.kill("SIGTERM");
    const deadline = Date.now() + 2000;
    let ready;
    while ((ready = await get("/readyz")).status === 200 && Date.now() < deadline) await sleep(20);
    assert.deepEqual(ready, { status: 503, type: "text/plain; charset=utf-8", body: "not ready" });
    assert.equal((await get("/healthz")).status, 200, "alive while draining");
    assert.equal(await exited, 0);
  } finally {
    await server.stop();
  }
});

const external = Object.values(networkInterfaces())
  .flat()
  .find((address) => address && address.family === "IPv4" && !address.internal)?.address;

test(
  "the reference program: /stats and /metrics answer loopback clients and --metrics-token only (403 otherwise); /healthz and /readyz are open",
  { skip: external ? false : "no non-loopback IPv4 address to connect from", timeout: 30_000 },
  async () => {
    const { freePort } = await import("../../tests/support/net.mjs");
    const port = await freePort();
    const server = await startNodeServer({ www: "/nonexistent", port, args: ["--listen", `${external}:${port}`, "--metrics-token", "s3cret"] });
    try {
      const status = async (path, token) => {
        const response = await fetch(`http://${external}:${port}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
        await response.text();
        return response.status;
      };
      for (const path of ["/stats", "/metrics"]) {
        assert.equal(await status(path), 403, `${path} from ${external}`);
        assert.equal(await status(path, "wrong"), 403, `${path} with a wrong token`);
        assert.equal(await status(path, "s3cret"), 200, `${path} with the token`);
      }
      assert.equal(await status("/healthz"), 200);
      assert.equal(await status("/readyz"), 200);
    } finally {
      await server.stop();
    }
  },
);
