// Both servers close the same way: the Rust reference binary (crates/reference) and the Node.js one (node/dist/bin.js)
// are started side by side with the same flags, and a raw durable.v1 client (the `ws` package, no library) drives
// each into every way a connection ends that a client can cause or observe; the close code, the reason and when it
// came must be the same from both, and what the core's policy (crates/core/src/server/policy.rs) and docs/SERVER.md
// say. Rows the WebSocket layer closes itself (a message over the size limit) compare the code only: `ws` sends its
// own (empty) reason.
//
//   node --test tests/e2e/node-close-policy.test.mjs     (scripts/test.sh runs it in the node-server stage)
//
// It needs the Node package built (cd node && npm ci && npm run build) and the reference binary (DURABLE_WS_BIN_DIR,
// else target/release, else target/debug). Inside the e2e-tests stage (DURABLE_WS_SERVER set) it skips itself.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { admin, siteDir, startServer } from "../chaos/harness.mjs";
import { startNodeServer } from "../../node/test/e2e-support.mjs";

const skip = process.env.DURABLE_WS_SERVER && process.env.DURABLE_WS_NODE_TESTS !== "1" ? "run by the node-server stage of scripts/test.sh" : false;

const HEARTBEAT = ["--heartbeat-interval-ms", "300", "--heartbeat-timeout-ms", "300"];
const MAX_MESSAGE_BYTES = 4096;
// A client that does not read is closed (1013) once 64 KiB wait for it for 300 ms.
const ARGS = ["--max-message-bytes", String(MAX_MESSAGE_BYTES), "--max-outgoing-bytes", "65536", "--send-timeout-ms", "300"];

let site;
/** { rust, node }: servers with the default heartbeat, and with a short one (for the heartbeat and the shutdown). */
let servers;
let quick;

before(async () => {
  if (skip) return;
  site = siteDir({});
  const start = (args) => Promise.all([startServer({ www: site.dir, args }), startNodeServer({ www: site.dir, args })]);
  const [[rust, node], [rustQuick, nodeQuick]] = await Promise.all([start(ARGS), start([...ARGS, ...HEARTBEAT])]);
  servers = { rust, node };
  quick = { rust: rustQuick, node: nodeQuick };
}, { timeout: 60_000 });

after(async () => {
  await Promise.all([...Object.values(servers ?? {}), ...Object.values(quick ?? {})].map((s) => s.stop()));
  site?.remove();
});

/** A raw client: frames kept in order; `closed` resolves with the server's close and when it came. */
async function client(server, { path = "/echo", protocols = ["durable.v1"] } = {}) {
  const ws = new WebSocket(`${server.ws}${path}`, protocols);
  const frames = [];
  let wake = () => {};
  ws.on("message", (data) => {
    frames.push(Buffer.from(data));
    wake();
  });
  const closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })));
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const next = async (type, timeoutMs = 3000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const i = frames.findIndex((f) => f[0] === type);
      if (i >= 0) return frames.splice(i, 1)[0];
      if (Date.now() > until) throw new Error(`no frame ${type} from ${server.ws} within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  };
  const hello = async () => {
    ws.send(Buffer.from([1, 0]));
    const welcome = await next(2);
    return welcome.subarray(2, 18).toString("hex");
  };
  return { ws, next, hello, closed, send: (bytes) => ws.send(Buffer.from(bytes)) };
}

/** How long after `since` a close came, as the rows compare it. */
const when = (ms) => (ms < 2_000 ? "at once" : ms >= 4_000 && ms < 7_000 ? "after ≈5 s" : `after ${ms} ms`);

/** The server's close of `c`: code, reason, and when it came after `since`. */
async function closeOf(c, since) {
  const { code, reason, at } = await c.closed;
  return { code, reason, delay: when(at - since) };
}

/** Runs `scenario(server)` against both servers at once; each returns { code, reason, delay }. */
async function both(pair, scenario) {
  const [rust, node] = await Promise.all([scenario(pair.rust), scenario(pair.node)]);
  return { rust, node };
}

const rows = [
  {
    name: "the application ends the session (GOODBYE), the client does not close",
    expect: { code: 1000, reason: "goodbye", delay: "after ≈5 s" },
    async run(server) {
      const c = await client(server);
      const token = await c.hello();
      await admin(server.http, `/admin/end?session=${token}`);
      await c.next(8);
      const since = Date.now();
      return closeOf(c, since);
    },
  },
  {
    name: "the client says GOODBYE and does not close",
    expect: { code: 1000, reason: "goodbye", delay: "after ≈5 s" },
    async run(server) {
      const c = await client(server);
      await c.hello();
      const since = Date.now();
      c.send([8]);
      return closeOf(c, since);
    },
  },
  {
    name: "the session is forgotten while attached (/admin/expire)",
    expect: { code: 4004, reason: "session expired", delay: "at once" },
    async run(server) {
      const c = await client(server);
      const token = await c.hello();
      const since = Date.now();
      await admin(server.http, `/admin/expire?session=${token}`);
      return closeOf(c, since);
    },
  },
  {
    name: "the first frame is not a HELLO",
    expect: { code: 1002, reason: "first frame must be hello", delay: "at once" },
    async run(server) {
      const c = await client(server);
      const since = Date.now();
      c.send([5, 0]);
      return closeOf(c, since);
    },
  },
  {
    name: "a gap in the client's numbering",
    expect: { code: 1002, delay: "at once" },
    async run(server) {
      const c = await client(server);
      await c.hello();
      const since = Date.now();
      c.send([3, 5, 0x68, 0x69]); // DATA seq 5 "hi": 1 was expected
      return closeOf(c, since);
    },
  },
  {
    name: "a frame of an unknown type",
    expect: { code: 1002, delay: "at once" },
    async run(server) {
      const c = await client(server);
      await c.hello();
      const since = Date.now();
      c.send([0x7f]);
      return closeOf(c, since);
    },
  },
  {
    name: "a text message on a durable connection",
    expect: { delay: "at once" },
    async run(server) {
      const c = await client(server);
      await c.hello();
      const since = Date.now();
      c.ws.send("plain text");
      return closeOf(c, since);
    },
  },
  {
    name: "/chat without durable.v1",
    expect: { code: 1008, reason: "durable.v1 required", delay: "at once" },
    async run(server) {
      const since = Date.now();
      const c = await client(server, { path: "/chat", protocols: [] });
      return closeOf(c, since);
    },
  },
  {
    name: "a plain client that does not read while its echoes pile up (slow client)",
    expect: { code: 1013, reason: "client too slow: outgoing queue full" },
    async run(server) {
      const c = await client(server, { protocols: [] });
      const tcp = c.ws._socket;
      tcp.pause(); // reads nothing: the echoes wait at the server
      const chunk = "x".repeat(MAX_MESSAGE_BYTES - 96);
      for (let i = 0; i < 2000; i++) c.ws.send(chunk);
      // The server gives up 300 ms after its queue filled, then waits up to 1 s for its close to be read.
      await new Promise((resolve) => setTimeout(resolve, 700));
      tcp.resume();
      const { code, reason } = await c.closed;
      return { code, reason };
    },
  },
  {
    name: "a message over --max-message-bytes (the WebSocket layer's close: code only)",
    expect: { code: 1009, delay: "at once" },
    codeOnly: true,
    async run(server) {
      const c = await client(server);
      await c.hello();
      const since = Date.now();
      c.send([3, 1, ...Buffer.alloc(MAX_MESSAGE_BYTES * 2, 0x61)]);
      return closeOf(c, since);
    },
  },
];

for (const row of rows) {
  test(`both servers close the same way: ${row.name}`, { skip, timeout: 20_000 }, async () => {
    const { rust, node } = await both(servers, row.run);
    const compared = (r) => (row.codeOnly ? { code: r.code, delay: r.delay } : r);
    assert.deepEqual(compared(node), compared(rust), `Node ${JSON.stringify(node)} against Rust ${JSON.stringify(rust)}`);
    for (const [key, value] of Object.entries(row.expect)) assert.equal(rust[key], value, `${key}: ${JSON.stringify(rust)}`);
  });
}

test("both servers close the same way: a client that stops answering PINGs (heartbeat timeout)", { skip, timeout: 20_000 }, async () => {
  const silent = await both(quick, async (server) => {
    const c = await client(server);
    await c.hello();
    return closeOf(c, Date.now()); // the PINGs go unanswered
  });
  assert.deepEqual(silent.node, silent.rust);
  assert.deepEqual(silent.rust, { code: 4000, reason: "heartbeat timeout", delay: "at once" });
});

// Last: it stops the servers.
test("both servers close the same way: a shutdown (SIGTERM)", { skip, timeout: 20_000 }, async () => {
  const stopping = await both(servers, async (server) => {
    const c = await client(server);
    await c.hello();
    const stopped = server.stop("SIGTERM");
    const { code, reason } = await c.closed;
    await stopped;
    return { code, reason };
  });
  assert.deepEqual(stopping.node, stopping.rust);
  assert.deepEqual(stopping.rust, { code: 1012, reason: "server restart" });
});
