// The browser side of the benchmarks, driven from Node (bench/run.mjs) through `window.bench`. Served next to
// `pkg/` (the npm build of durable-ws, web target), `rws.mjs` (reconnecting-websocket) and, when it was built,
// `rust/` (bench/rust-api: the Rust typed API behind a wasm-bindgen hook).
import init, { DurableWebSocket } from "./pkg/durable_ws.js";
import ReconnectingWebSocket from "./rws.mjs";

const wasm = await init();

let rustApi = null;
try {
  const module = await import("./rust/durable_ws_bench.js");
  await module.default();
  rustApi = module;
} catch {
  // Not built: the Rust API rows are skipped.
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable with Node's. */
const epochMs = () => performance.timeOrigin + performance.now();

let persistRuns = 0;
/** A session name no earlier run used (each run's close() ends its session and clears its storage). */
const persistName = () => `bench-${Date.now().toString(36)}-${++persistRuns}`;

/**
 * A DurableWebSocket with `persist` that is open (its stored session read back: nothing, a new name) and stores: a
 * PersistError rejects, since a session that fell back to memory would measure the wrong thing.
 */
function openPersisted(url, options = {}) {
  return new Promise((resolve, reject) => {
    const socket = new DurableWebSocket(url, { ...options, persist: persistName() });
    socket.addEventListener("error", (e) => {
      if (e.error?.name === "PersistError") reject(new Error(`persist unusable in this browser: ${e.error.message}`));
    });
    socket.addEventListener("open", () => resolve(socket), { once: true });
  });
}

/** Closes a persisted socket and waits (at most 5 s) for its close, so that its storage is cleared before the next run. */
function closePersisted(socket) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 5000);
    socket.addEventListener("close", (e) => {
      if (!e.willReconnect) {
        clearTimeout(timer);
        resolve();
      }
    });
    socket.close();
  }).then(() => socket.free());
}

/** A connected client of kind `kind`: `{ send(text), onMessage(fn), close() }`. */
function connect(kind, url, options = {}) {
  return new Promise((resolve, reject) => {
    let handler = () => {};
    const onMessage = (fn) => (handler = fn);
    if (kind === "durable") {
      const socket = new DurableWebSocket(url, options);
      socket.addEventListener("message", (e) => handler(e.data));
      socket.addEventListener("open", () => resolve({ send: (text) => socket.send(text), onMessage, close: () => socket.close(), socket }), { once: true });
    } else if (kind === "persist") {
      openPersisted(url, options).then((socket) => {
        socket.addEventListener("message", (e) => handler(e.data));
        resolve({ send: (text) => socket.send(text), onMessage, close: () => closePersisted(socket), socket });
      }, reject);
    } else if (kind === "raw") {
      const socket = new WebSocket(url);
      socket.onmessage = (e) => handler(e.data);
      socket.onopen = () => resolve({ send: (text) => socket.send(text), onMessage, close: () => socket.close(), socket });
      socket.onerror = () => reject(new Error(`raw WebSocket to ${url} failed`));
    } else if (kind === "rws") {
      const socket = new ReconnectingWebSocket(url, [], { maxRetries: 0 });
      socket.addEventListener("message", (e) => handler(e.data));
      socket.addEventListener("open", () => resolve({ send: (text) => socket.send(text), onMessage, close: () => socket.close(), socket }), { once: true });
    } else {
      reject(new Error(`unknown client kind ${kind}`));
    }
  });
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];

/** Pipelined echo: `count` messages of `size` bytes, at most `window` unanswered; messages per second. */
async function throughput(client, size, count, window) {
  const text = "x".repeat(size);
  let sent = 0;
  let received = 0;
  const started = performance.now();
  await new Promise((resolve) => {
    client.onMessage(() => {
      received++;
      if (received === count) resolve();
      else if (sent < count) {
        sent++;
        client.send(text);
      }
    });
    for (; sent < Math.min(window, count); sent++) client.send(text);
  });
  const seconds = (performance.now() - started) / 1000;
  return count / seconds;
}

/** One message at a time: `samples` round trips after `warmup` ones; percentiles in ms. */
async function roundTrips(client, size, samples, warmup = 50) {
  const text = "x".repeat(size);
  const times = [];
  for (let i = 0; i < warmup + samples; i++) {
    const start = performance.now();
    await new Promise((resolve) => {
      client.onMessage(resolve);
      client.send(text);
    });
    if (i >= warmup) times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), mean: times.reduce((a, b) => a + b, 0) / times.length };
}

/** Throughput then round trips of one client kind on a fresh connection. */
async function echo(kind, url, { size, count, window, samples }) {
  if (kind === "rust") {
    // The Rust API's loop runs in wasm: one call per run.
    if (!rustApi) throw new Error("the Rust API bench hook is not built");
    return rustApi.rustEcho(url, size, count, window, samples, 50);
  }
  const client = await connect(kind, url);
  try {
    const rate = await throughput(client, size, count, window);
    const rtt = samples > 0 ? await roundTrips(client, size, samples) : null;
    return { rate, rtt };
  } finally {
    await client.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Persisted sessions: from send() to stored. A `stored` event says that all but the last `unstored` messages sent
// are durably stored (IndexedDB committed), so each message's time is the first such event that covers it.

/**
 * `count` messages of `size` bytes to the echo endpoint of a persisted session, each timed from its send() to the
 * `stored` event that covers it. `window` 0: one at a time (the next is sent once the previous is stored: the bare
 * commit latency); otherwise pipelined as the throughput run (at most `window` unanswered echoes). Percentiles in ms.
 */
async function storedLatency(url, { count, size = 100, window = 0, warmup = 20 }) {
  const socket = await openPersisted(url);
  const text = "x".repeat(size);
  const sentAt = [];
  const latencies = [];
  let storedUpTo = 0;
  let events = 0;
  let wake = () => {};
  socket.addEventListener("stored", (e) => {
    const now = performance.now();
    events++;
    const upTo = sentAt.length - e.unstored;
    for (; storedUpTo < upTo; storedUpTo++) latencies.push(now - sentAt[storedUpTo]);
    wake();
  });
  const send = () => {
    sentAt.push(performance.now());
    socket.send(text).catch(() => {});
  };
  const started = performance.now();
  try {
    if (window === 0) {
      for (let i = 0; i < warmup + count; i++) {
        const stored = new Promise((resolve) => (wake = () => storedUpTo === sentAt.length && resolve()));
        send();
        await stored;
      }
    } else {
      let received = 0;
      await new Promise((resolve) => {
        socket.addEventListener("message", () => {
          received++;
          if (received === warmup + count) resolve();
          else if (sentAt.length < warmup + count) send();
        });
        while (sentAt.length < Math.min(window, warmup + count)) send();
      });
      // The last ones may be echoed before their commit is reported.
      await new Promise((resolve) => {
        wake = () => storedUpTo === sentAt.length && resolve();
        wake();
      });
    }
  } finally {
    await closePersisted(socket);
  }
  const seconds = (performance.now() - started) / 1000;
  const measured = latencies.slice(warmup).sort((a, b) => a - b);
  return {
    p50: quantile(measured, 0.5),
    p99: quantile(measured, 0.99),
    mean: measured.reduce((a, b) => a + b, 0) / measured.length,
    max: measured.at(-1),
    messages: measured.length,
    messagesPerCommit: sentAt.length / Math.max(1, events),
    seconds,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Memory: a long-lived socket that Node drives in steps, sampling the heaps in between.

const soak = { socket: null, handler: () => {}, resumed: () => {} };

function soakOpen(url) {
  return new Promise((resolve) => {
    const socket = new DurableWebSocket(url, { reconnect: { minDelayMs: 0, maxDelayMs: 0, jitter: false } });
    socket.addEventListener("message", (e) => soak.handler(e.data));
    socket.addEventListener("resumed", () => soak.resumed());
    socket.addEventListener("open", () => resolve(), { once: true });
    soak.socket = socket;
  });
}

function soakEcho(text) {
  return new Promise((resolve) => {
    soak.handler = resolve;
    soak.socket.send(text);
  });
}

/** `cycles` times: one echo, then the server cuts the connection and the session resumes on a new one. */
async function soakCycles(cycles, adminBase) {
  for (let i = 0; i < cycles; i++) {
    await soakEcho(`cycle ${i}`);
    const resumed = new Promise((resolve) => (soak.resumed = resolve));
    await fetch(`${adminBase}/admin/cut?session=all`, { method: "POST" });
    await resumed;
  }
  return soak.socket.stats();
}

/** `count` echoed messages of `size` bytes, pipelined. */
async function soakMessages(count, size = 100, window = 100) {
  const rate = await throughput({ send: (t) => soak.socket.send(t), onMessage: (fn) => (soak.handler = fn) }, size, count, window);
  return { rate, stats: soak.socket.stats() };
}

function soakClose() {
  soak.socket.close();
  soak.socket.free();
  soak.socket = null;
}

// ---------------------------------------------------------------------------------------------------------------
// Time to recover: a receiver behind Node's blockable proxy, a sender direct, both in the /chat room.

const recovery = { receiver: null, sender: null, got: [], lastAt: 0, reconnecting: [], resumedAt: 0 };

function recoveryOpen(receiverUrl, senderUrl, options) {
  recovery.got = [];
  recovery.reconnecting = [];
  const open = (url, onMessage) =>
    new Promise((resolve) => {
      const socket = new DurableWebSocket(url, options);
      socket.addEventListener("message", (e) => onMessage?.(e.data));
      socket.addEventListener("open", () => resolve(socket), { once: true });
    });
  return Promise.all([
    open(receiverUrl, (data) => {
      recovery.got.push(data);
      recovery.lastAt = epochMs();
    }),
    open(senderUrl),
  ]).then(([receiver, sender]) => {
    receiver.addEventListener("reconnecting", (e) => recovery.reconnecting.push({ at: epochMs(), delayMs: e.delayMs }));
    receiver.addEventListener("resumed", () => (recovery.resumedAt = epochMs()));
    recovery.receiver = receiver;
    recovery.sender = sender;
  });
}

/** The sender sends `count` messages tagged `tag`; resolves once the server acknowledged all of them. */
function recoverySend(tag, count) {
  const sends = [];
  for (let i = 1; i <= count; i++) sends.push(recovery.sender.send(`${tag}:${i}`));
  return Promise.all(sends).then(() => true);
}

/** When the receiver got the last of `count` messages tagged `tag` (epoch ms), once it has. */
function recoveryDone(tag, count) {
  const last = `${tag}:${count}`;
  return recovery.got.includes(last) ? { lastAt: recovery.lastAt, resumedAt: recovery.resumedAt, reconnecting: recovery.reconnecting } : null;
}

/** Median time (ms) from `new WebSocket(url)` to its open event, over `tries` connections: the floor for a reconnect. */
async function rawConnectMs(url, tries = 20) {
  const times = [];
  for (let i = 0; i < tries; i++) {
    const start = performance.now();
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
    });
    times.push(performance.now() - start);
    socket.close();
  }
  times.sort((a, b) => a - b);
  return quantile(times, 0.5);
}

function recoveryReset() {
  recovery.reconnecting = [];
}

function recoveryState() {
  return { receiverState: recovery.receiver?.readyState, reconnecting: recovery.reconnecting.length };
}

function recoveryClose() {
  recovery.receiver?.close();
  recovery.sender?.close();
}

window.bench = {
  ready: true,
  rustApi: rustApi !== null,
  wasmMemoryBytes: () => wasm.memory.buffer.byteLength,
  echo,
  storedLatency,
  userAgent: () => navigator.userAgent,
  soakOpen,
  soakCycles,
  soakMessages,
  soakClose,
  recoveryOpen,
  recoverySend,
  recoveryDone,
  recoveryState,
  recoveryReset,
  recoveryClose,
  rawConnectMs,
};
