// What tests/runtimes/client.mjs (Node, Deno, Bun) and worker.mjs (a Worker, a SharedWorker) run, whatever the
// runtime: the checks of the errors a user meets first, and an exchange of numbered messages with the reference
// server's /echo through a chaos proxy that cuts the connection. It imports nothing: the caller passes the package's
// exports, so this runs unchanged in every runtime.

/** `run()` throws an error named `name` whose message contains `text`; gives `{ ok, name, message }`. */
export function expectError(run, name, text) {
  try {
    run();
  } catch (error) {
    return { ok: error?.name === name && String(error?.message).includes(text), name: error?.name, message: String(error?.message) };
  }
  return { ok: false, name: null, message: "nothing was thrown" };
}

/** Using the class before `init()`: an `InvalidStateError` that says to `await init()`. */
export const beforeInit = (DurableWebSocket, url) =>
  expectError(() => new DurableWebSocket(url), "InvalidStateError", "durable-ws is not initialised: `await init()`");

/** Where no global WebSocket exists (Node 20), leaving out the `WebSocket` option: a TypeError that names it. */
export const withoutWebSocket = (DurableWebSocket, url) =>
  expectError(() => new DurableWebSocket(url), "TypeError", "options.WebSocket is needed");

/** The runtime's name and version. */
export function runtime() {
  if (globalThis.Bun) return { name: "bun", version: globalThis.Bun.version };
  if (globalThis.Deno) return { name: "deno", version: globalThis.Deno.version.deno };
  if (globalThis.process?.versions?.node) return { name: "node", version: globalThis.process.versions.node };
  const scope = typeof SharedWorkerGlobalScope == "function" && globalThis instanceof SharedWorkerGlobalScope ? "shared worker"
    : typeof DedicatedWorkerGlobalScope == "function" && globalThis instanceof DedicatedWorkerGlobalScope ? "worker" : "page";
  const browser = globalThis.navigator?.userAgent?.match(/(HeadlessChrome|Chrome|Firefox)\/([\d.]+)/);
  return { name: `${browser ? browser[1] : "browser"} ${scope}`, version: browser ? browser[2] : globalThis.navigator?.userAgent };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or `fallback` after `ms` (the timer cleared either way, so that it keeps no runtime alive). */
async function within(promise, ms, fallback) {
  let timer;
  const late = new Promise((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Opens a `DurableWebSocket` on `url` (with `options`), sends `count` numbered text messages `intervalMs` apart and
 * waits until every one is acknowledged (its `send()` promise settled) and echoed, at most `timeoutMs`; then closes.
 * Gives the figures: what came back (delivered once, lost, duplicated, out of order), acknowledgements, and the
 * session's events (resumed, reconnecting, sessionlost, error) and stats.
 */
export async function exchange(DurableWebSocket, url, { options = {}, count = 200, intervalMs = 10, timeoutMs = 60_000 } = {}) {
  const started = Date.now();
  const socket = new DurableWebSocket(url, options);
  const events = { open: 0, resumed: 0, replayed: 0, reconnecting: 0, sessionlost: 0, errors: [] };
  const received = [];
  let allEchoed;
  const echoed = new Promise((resolve) => (allEchoed = resolve));
  const seen = new Set();
  socket.addEventListener("open", () => events.open++);
  socket.addEventListener("resumed", (event) => {
    events.resumed++;
    events.replayed += event.replayed;
  });
  socket.addEventListener("reconnecting", () => events.reconnecting++);
  socket.addEventListener("sessionlost", (event) => {
    events.sessionlost++;
    events.errors.push(`sessionlost: ${event.reason} (${event.unconfirmed.length} unconfirmed)`);
  });
  socket.addEventListener("error", (event) => {
    if (events.errors.length < 20) events.errors.push(`${event.error?.name}: ${event.message}`);
  });
  socket.addEventListener("message", (event) => {
    received.push(event.data);
    const number = Number(String(event.data).match(/^message (\d+)$/)?.[1]);
    if (Number.isInteger(number) && number < count) seen.add(number);
    if (seen.size === count) allEchoed();
  });

  let acked = 0;
  const rejected = [];
  const acks = [];
  for (let i = 0; i < count; i++) {
    acks.push(socket.send(`message ${i}`).then(() => acked++, (error) => rejected.push(`${i}: ${error.name}: ${error.message}`)));
    if (intervalMs > 0) await sleep(intervalMs);
  }
  const all = Promise.all([Promise.all(acks), echoed]).then(() => "done");
  const outcome = await within(all, Math.max(0, timeoutMs - (Date.now() - started)), "timeout");
  const pendingBeforeClose = socket.pending;
  const stats = socket.stats();
  const closed = new Promise((resolve) => socket.addEventListener("close", (event) => !event.willReconnect && resolve(event.code)));
  socket.close(1000, "done");
  const closeCode = await within(closed, 5000, "no close event within 5 s");

  // What came back, in arrival order, against 0, 1, …, count - 1.
  const counts = new Map();
  let reordered = 0;
  let expected = 0;
  const unexpected = [];
  for (const data of received) {
    const number = Number(String(data).match(/^message (\d+)$/)?.[1]);
    if (!Number.isInteger(number) || number >= count) {
      unexpected.push(String(data).slice(0, 80));
      continue;
    }
    counts.set(number, (counts.get(number) ?? 0) + 1);
    if (counts.get(number) > 1) continue;
    if (number !== expected) reordered++;
    expected = number + 1;
  }
  const delivered = counts.size;
  return {
    runtime: runtime(),
    outcome,
    count,
    delivered,
    lost: count - delivered,
    duplicated: [...counts.values()].reduce((sum, n) => sum + n - 1, 0),
    reordered,
    unexpected,
    acked,
    rejected,
    pendingBeforeClose,
    ...events,
    stats,
    closeCode,
    elapsedMs: Date.now() - started,
  };
}
