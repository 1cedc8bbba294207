// The browser side of tests/e2e/js-api.test.mjs: the npm build of durable-ws (`pkg/`, web target) loaded as an
// application would load it, and small helpers on `window.api` that the test's page functions use. Served by the
// reference server (started with --enable-faults), so the echo endpoint and the fault endpoints are same-origin.
import init, { DurableWebSocket } from "./pkg/durable_ws.js";

await init();

/** Safety net for every wait in the page: far above anything a passing run needs (a hang fails, not a speed check). */
const PATIENCE_MS = 15_000;

/** Every exception reported to the window (`error` event): listener exceptions must end up here. */
const reported = [];
window.addEventListener("error", (event) => reported.push(String(event.error?.message ?? event.message)));

/** Sockets made through `api.socket`, freed by `api.cleanup()` after each case. */
const sockets = new Set();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `done()` every 10 ms; throws, naming `what` and `state()`, after PATIENCE_MS. */
async function waitUntil(what, done, state = () => "") {
  const deadline = performance.now() + PATIENCE_MS;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${PATIENCE_MS} ms waiting for ${what}; ${state()}`);
    await sleep(10);
  }
}

/** Every event dispatched to listeners added (with addEventListener) for `kinds`. */
function record(ws, kinds) {
  const events = [];
  for (const kind of kinds) ws.addEventListener(kind, (event) => events.push([kind, event]));
  const seen = () => `saw [${events.map(([k]) => k).join(", ")}]`;
  return {
    events,
    of: (kind) => events.filter(([k]) => k === kind).map(([, e]) => e),
    count: (kind) => events.filter(([k]) => k === kind).length,
    kinds: () => events.map(([k]) => k),
    waitFor: (kind, count) => waitUntil(`${count} ${kind} event(s)`, () => events.filter(([k]) => k === kind).length >= count, seen),
    /** Events that are not `Event`s or whose `type` is not the kind they were listened for. */
    wrong: () => events.filter(([k, e]) => !(e instanceof Event) || e.type !== k).map(([k, e]) => `${k}: ${e?.constructor?.name} ${e?.type}`),
  };
}

/**
 * The outcome of `run()` as plain data: `threw` (it threw at once) or, for what it returned, `isPromise` and
 * whether that settled `ok` (resolved) or not (rejected); with the error's name, message and kind.
 */
async function outcome(run) {
  let result;
  try {
    result = run();
  } catch (error) {
    return { ok: false, threw: true, isPromise: false, ...describeError(error) };
  }
  const isPromise = result instanceof Promise;
  try {
    await result;
    return { ok: true, threw: false, isPromise };
  } catch (error) {
    return { ok: false, threw: false, isPromise, ...describeError(error) };
  }
}

function describeError(error) {
  return {
    name: error?.name,
    message: String(error?.message ?? error),
    isTypeError: error instanceof TypeError,
    isError: error instanceof Error,
  };
}

/** POSTs to a fault endpoint of the server; returns `[status, body text]`. */
async function admin(pathAndQuery) {
  const response = await fetch(pathAndQuery, { method: "POST" });
  return [response.status, await response.text()];
}

window.api = {
  /**
   * Calls the function whose source is `source` with `arg`, compiled here, in the page's own realm: as an
   * application's code (Firefox's WebDriver runs the scripts it is sent in a sandbox with its own ArrayBuffer,
   * Error, … and reports their listeners' exceptions there).
   */
  run(source, arg) {
    return (0, eval)(`(${source})`)(arg);
  },
  DurableWebSocket,
  echoUrl: `ws://${location.host}/echo`,
  reported,
  sleep,
  waitUntil,
  record,
  outcome,
  describeError,
  admin,
  /** `new DurableWebSocket(url, options)`, freed after the case. */
  socket(url, options) {
    const ws = new DurableWebSocket(url, options);
    sockets.add(ws);
    return ws;
  },
  /** `ws.free()`, and not again by `cleanup()`. */
  free(ws) {
    sockets.delete(ws);
    ws.free();
  },
  /** Frees every socket of the case not freed yet; returns how many. */
  cleanup() {
    const count = sockets.size;
    for (const ws of sockets) ws.free();
    sockets.clear();
    return count;
  },
  ready: true,
};
