// The public face of the npm package: the `DurableWebSocket` class, in JavaScript over the engine's few wasm exports
// (`Core`, src/js/core.rs). The engine owns the browser WebSocket, the protocol, the replay buffer and the timers;
// this module checks arguments, encodes payloads, and turns the engine's outputs into DOM events and errors.
// scripts/minify-pkg.mjs bundles it with wasm-bindgen's glue (imported below as ./durable_ws_glue.js) and the storage
// of persisted sessions (src/store.js, imported as ./store.js) into the package's durable_ws.js.
import init, { initSync as compile, Core } from "./durable_ws_glue.js";
import { openStore } from "./store.js";

/** Whether the wasm module is instantiated (`init()` resolved or `initSync()` returned). */
let ready = false;

/** Compiles and instantiates the wasm module from its bytes or a `WebAssembly.Module`, synchronously. */
export function initSync(module) {
  const exports = compile(module);
  ready = true;
  return exports;
}

/**
 * Fetches and compiles the wasm module (once): `durable_ws_bg.wasm` next to this module unless `input` says otherwise.
 * Vite's dev server pre-bundles dependencies into `node_modules/.vite/deps/` without their files (vitejs/vite#8427):
 * from there, the module is fetched from the package's own directory. Where the module is a file (Node, Deno, Bun
 * without a bundler), it is read from disk: Node's `fetch` reads no `file:` URL.
 */
export default async function load(input) {
  if (input !== undefined) return instantiated(init(input));
  const url = new URL("durable_ws_bg.wasm", import.meta.url); // the form bundlers recognise (and emit the file for)
  const deps = url.pathname.match(/^(.*\/)\.vite\/deps(?:_temp_[^/]*)?\/durable_ws_bg\.wasm$/);
  if (deps) url.pathname = `${deps[1]}durable-ws/durable_ws_bg.wasm`;
  // `process.getBuiltinModule` (Node 20.16+, Deno, Bun) rather than an import of node:fs, which browser bundles reject.
  const fs = url.protocol == "file:" && globalThis.process?.getBuiltinModule?.("fs");
  try {
    const source = fs ? await fs.promises.readFile(url) : url;
    return await instantiated(init({ module_or_path: source }));
  } catch (e) {
    if (!(e instanceof WebAssembly.CompileError) && !fs) throw e;
    // (Under `vite` with another cacheDir: optimizeDeps.exclude, as README.md says.)
    throw new Error(`durable-ws: no wasm module at ${url} (${e.message}); serve it there or pass its URL to init()`, { cause: e });
  }
}

async function instantiated(exports) {
  const done = await exports;
  ready = true;
  return done;
}

// Indices shared with src/js/core.rs: the output kinds (the first seven are the event types), error codes and
// session-lost reasons.
const TYPES = ["open", "message", "reconnecting", "resumed", "sessionlost", "close", "error"];
const [UNCONFIRMED, SETTLE, ASK_URL, STORED, LATER] = [7, 8, 9, 10, 16];
const ERRORS = [
  ,
  ["TooLargeError", "the message exceeds buffer.maxMessageBytes"],
  ["BufferFullError", "the replay buffer is full: wait for acknowledgements"],
  ["InvalidStateError", "the socket is closed"],
  ["SessionLostError", "the session ended before the message was confirmed"],
  ["ConnectTimeoutError", "the connection did not open within connectTimeoutMs"],
  ["HeartbeatTimeoutError", "the server stopped answering: the link is dead"],
  ["ProtocolError", "the server broke the durable.v1 protocol"],
  ["RefusedError", "the server refused the connection"],
  ["UrlError", ""],
  ["SyntaxError", ""],
  ["Error", "unexpected internal state"],
  ["PersistError", "the session's storage cannot be used"],
];
const LOST = ["expired", "overflow", "refused", "notDurable", "closed", "storage", "unknown"];

/** The error for code `code` (ERRORS), with its number (a lost reason, a close code) and message. */
function error(code, number, text) {
  const [name, message] = ERRORS[code];
  const e = new Error(text || message);
  e.name = name;
  if (name == "SessionLostError") e.reason = LOST[number];
  if (name == "RefusedError") e.code = number;
  return e;
}

/** Whether `v` is an ArrayBuffer (of any realm: the getter checks the internal slot, not the prototype chain). */
const isBuffer = brandCheck(globalThis.ArrayBuffer, "byteLength");
/** Whether `v` is a Blob or File (of any realm). */
const isBlob = brandCheck(globalThis.Blob, "size");
function brandCheck(type, getter) {
  const get = type && Object.getOwnPropertyDescriptor(type.prototype, getter)?.get;
  return (v) => {
    try {
      return !!get && (get.call(v), true);
    } catch {
      return false;
    }
  };
}

/** The message of an exception (as the URL function's failure). */
const messageOf = (e) => (e instanceof Error ? e.message : typeof e == "string" ? e : "unknown error");

const CLASS_NAME = "DurableWebSocket";
/** One socket's state, behind a symbol of the class (plain properties: no private fields to lower for older targets). */
const STATE = Symbol(CLASS_NAME);

/** The engine of a socket still alive: after free(), every method throws an InvalidStateError. */
function coreOf(socket) {
  const core = socket[STATE].core;
  if (core) return core;
  throw error(3, 0, "the socket was freed");
}

/** Frees what a socket holds; also when the application drops a socket without calling free(). */
function release(state) {
  const core = state.core;
  state.silenced = true;
  state.core = undefined;
  core?.free();
}
const finalizer = typeof FinalizationRegistry == "function" ? new FinalizationRegistry(release) : null;

/**
 * A WebSocket that reconnects, resumes its session and never silently loses a message.
 *
 * Defined as an object literal's computed property: the key names the class (`DurableWebSocket.name`, exception
 * messages, devtools) whatever a minifier calls the variable, and a minifier does not fold a computed key away.
 */
export const DurableWebSocket = { [CLASS_NAME]: class {
  /**
   * Starts connecting to `url` (a string, or a function returning a string or a promise of one, called before every
   * attempt). Throws a `TypeError` for invalid arguments.
   */
  constructor(url, options) {
    if (!ready)
      throw error(3, 0, "durable-ws is not initialised: `await init()` (the package's default export) before `new DurableWebSocket()`");
    if (typeof url == "string") {
      if (!/^(wss?|https?):\/\//i.test(url))
        throw new TypeError("DurableWebSocket: url must be absolute (ws://, wss://, http:// or https://)");
    } else if (typeof url != "function") {
      throw new TypeError("DurableWebSocket: url must be a string or a function returning one (or a promise of one)");
    }
    const [numbers, protocols, persist, WebSocket] = readOptions(options);
    const state = (this[STATE] = new State(numbers[13] == 1, typeof url == "function" && url));
    const sink = {
      t: (kind, a, b, c, text) => state.output(kind, a, b, c, text),
      b: (kind, bytes) => state.output(kind, 0, 0, 0, bytes.slice().buffer),
    };
    try {
      const open = persist === undefined ? undefined : openStore;
      state.core = new Core(sink, state.urlFunction ? undefined : url, Float64Array.from(numbers), protocols.join(), persist, open, WebSocket);
    } catch (problem) {
      throw typeof problem == "string" ? new TypeError(problem) : problem;
    }
    // Not from inside the constructor: the events it causes must reach listeners added right after it.
    if (state.early) queueMicrotask(() => state.core?.url(...state.early));
    // The engine holds `state` (its sink), never this object: dropping the socket lets it be collected and freed.
    finalizer?.register(this, state, state);
  }

  /**
   * Sends `data` (queued while disconnected). The promise resolves once the server acknowledged it and rejects with a
   * `BufferFullError`, `TooLargeError`, `InvalidStateError` (closed) or, if the session is lost first, a
   * `SessionLostError`.
   */
  send(data) {
    const state = this[STATE];
    const core = coreOf(this);
    let text, bytes;
    // Brand checks, not `instanceof`: a buffer or Blob of another realm (an iframe's) is one too.
    try {
      if (!state.json && typeof data == "string") text = data;
      else if (isBuffer(data)) bytes = new Uint8Array(data);
      else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      else if (isBlob(data))
        throw new TypeError("DurableWebSocket.send: a Blob cannot be sent; send await blob.arrayBuffer()");
      else if ((text = JSON.stringify(data)) === undefined)
        throw new TypeError("DurableWebSocket.send: the value has no JSON form (undefined, a function or a symbol)");
    } catch (e) {
      // A detached buffer, a cyclic value, a throwing toJSON: the promise rejects, as for every other failure.
      return Promise.reject(e);
    }
    const id = ++state.lastId;
    const settled = new Promise((resolve, reject) => state.sends.set(id, [resolve, reject]));
    const code = bytes ? core.sendBytes(id, bytes) : core.sendText(id, text);
    if (!code) return state.pendingChanged(), settled;
    state.sends.delete(id);
    return Promise.reject(error(code));
  }

  /**
   * Closes for good: waits up to `closeTimeoutMs` for outstanding acknowledgements, says goodbye and closes with
   * `code` (1000 or 3000–4999, default 1000) and `reason` (at most 123 UTF-8 bytes). Messages still unconfirmed are
   * listed by a `sessionlost` event.
   */
  close(code, reason) {
    code = code == null ? 1000 : +code;
    reason = reason == null ? "" : String(reason);
    if (!(code === 1000 || (code >= 3000 && code <= 4999 && Number.isInteger(code))))
      throw new TypeError("DurableWebSocket.close: code must be 1000 or an integer in 3000–4999");
    if (new TextEncoder().encode(reason).length > 123)
      throw new TypeError("DurableWebSocket.close: reason must be at most 123 UTF-8 bytes");
    const failed = coreOf(this).close(code, reason);
    if (failed) throw error(failed);
  }

  /** Reconnects now instead of waiting for the backoff delay (also after `maxAttempts`). */
  reconnect() {
    const failed = coreOf(this).reconnect();
    if (failed) throw error(failed);
  }

  /** `0` connecting (or waiting to reconnect, or offline), `1` open, `2` closing, `3` closed. */
  get readyState() {
    return coreOf(this).readyState();
  }

  /** Messages sent or queued and not yet acknowledged. */
  get pending() {
    return coreOf(this).pending();
  }

  /**
   * With `persist`: messages sent and neither durably stored nor confirmed (they would not survive the browser being
   * killed; a reload or a crashed tab they survive). A `stored` event follows whenever it goes down. 0 without
   * `persist`.
   */
  get unstored() {
    return coreOf(this).unstored();
  }

  /**
   * The current durable session's token as 32 hex digits, or `undefined` before the first handshake (and in plain
   * mode). It is a credential: pass it only to tools that need it, such as the reference server's `/admin` fault
   * endpoints.
   */
  get sessionToken() {
    return coreOf(this).token();
  }

  /** Counters since the socket was created. */
  stats() {
    const [sent, acked, pending, replayed, received, duplicates, reconnects, sessionsLost, unstored, rtt] = coreOf(this).stats();
    return { sent, acked, pending, replayed, received, duplicates, reconnects, sessionsLost, unstored, lastRttMs: isNaN(rtt) ? null : rtt };
  }

  /** Registers a listener (as `EventTarget.addEventListener`). */
  addEventListener(type, listener, options) {
    if (type == "pending") this[STATE].watchPending();
    this[STATE].target.addEventListener(type, listener, options);
  }

  /** Removes a listener (as `EventTarget.removeEventListener`). */
  removeEventListener(type, listener, options) {
    this[STATE].target.removeEventListener(type, listener, options);
  }

  /**
   * No event is dispatched after it, not even those already queued; the engine then says goodbye and releases the
   * socket, timer and listeners.
   */
  free() {
    finalizer?.unregister(this[STATE]);
    release(this[STATE]);
  }
} }[CLASS_NAME];

if (Symbol.dispose) DurableWebSocket.prototype[Symbol.dispose] = DurableWebSocket.prototype.free;
// `onopen`, `onmessage`, …: one handler each, a listener like any other; a non-function clears it (as in the DOM).
for (const type of [...TYPES, "stored", "pending"])
  Object.defineProperty(DurableWebSocket.prototype, `on${type}`, {
    get() {
      return this[STATE].handlers[type] ?? null;
    },
    set(handler) {
      const { target, handlers } = this[STATE];
      target.removeEventListener(type, handlers[type] ?? null);
      handlers[type] = typeof handler == "function" ? handler : null;
      if (handlers[type]) this.addEventListener(type, handlers[type]);
    },
  });

class State {
  constructor(json, urlFunction) {
    this.core = undefined;
    this.target = new EventTarget();
    this.handlers = {};
    this.json = json;
    this.urlFunction = urlFunction;
    /** Events of a call, waiting for a microtask; later events wait behind them. */
    this.queue = null;
    /** A promise was settled in this task: its reactions run before the events that follow. */
    this.settling = false;
    /** After free(): no event is dispatched, not even those already queued. */
    this.silenced = false;
    /** Each waiting `send`'s promise functions, by id. */
    this.sends = new Map();
    this.lastId = 0;
    /** The messages of the `sessionlost` being assembled. */
    this.unconfirmed = [];
    /** A URL function's answer given while the constructor was still running. */
    this.early = null;
    /** The `pending` count the last `pending` event said (null: nobody listens for it yet). */
    this.pendingShown = null;
    this.pendingQueued = false;
  }

  watchPending() {
    this.pendingShown ??= this.core?.pending() ?? 0;
  }

  /** `pending` may have changed (a send, a settled send): one `pending` event per task if it did. */
  pendingChanged() {
    if (this.pendingShown === null || this.pendingQueued) return;
    this.pendingQueued = true;
    queueMicrotask(() => {
      this.pendingQueued = false;
      const pending = this.core?.pending();
      if (pending === undefined || pending === this.pendingShown) return;
      this.pendingShown = pending;
      this.silenced || this.target.dispatchEvent(Object.assign(new Event("pending"), { pending }));
    });
  }

  /** An output of the engine (src/js/core.rs `emit`): `data` is a string or an ArrayBuffer. */
  output(kind, a, b, c, data) {
    const later = kind & LATER;
    kind &= LATER - 1;
    if (kind == ASK_URL) return this.askUrl(a);
    if (kind == SETTLE) {
      const [resolve, reject] = this.sends.get(a);
      this.sends.delete(a);
      b ? reject(error(b, c, data)) : resolve();
      this.pendingChanged();
      // The promise's reactions run in microtasks: later events of this input wait behind them (as every event did
      // when each had a microtask of its own), so that after `await ws.send(x)` the application still sees a
      // `close` the same input brought.
      if (!this.settling) {
        this.settling = true;
        queueMicrotask(() => (this.settling = false));
      }
      return;
    }
    if (kind == UNCONFIRMED) return void this.unconfirmed.push(this.decode(data, true));
    let type = kind == STORED ? "stored" : TYPES[kind];
    let fields;
    switch (type) {
      case "stored":
        fields = { unstored: a };
        break;
      case "open":
        fields = { durable: !!a };
        break;
      case "message":
        try {
          fields = { data: this.decode(data) };
        } catch (e) {
          type = "error";
          fields = { message: "a received text message is not JSON", error: e, data };
        }
        break;
      case "reconnecting":
        fields = { attempt: a, delayMs: b };
        break;
      case "resumed":
        fields = { replayed: a };
        break;
      case "sessionlost":
        fields = { reason: LOST[a], unconfirmed: this.unconfirmed };
        this.unconfirmed = [];
        break;
      case "close":
        fields = { code: a, reason: data, wasClean: !!(b & 1), willReconnect: !!(b & 2) };
        break;
      default: {
        const e = error(a, b, data);
        fields = { message: e.message, error: e };
      }
    }
    this.dispatch(Object.assign(new Event(type), fields), later);
  }

  /** A received payload as the application sees it; in JSON mode a text that is not JSON throws (`lenient`: stays). */
  decode(data, lenient) {
    if (!this.json || typeof data != "string") return data;
    try {
      return JSON.parse(data);
    } catch (e) {
      if (lenient) return data;
      throw e;
    }
  }

  /**
   * Like a WebSocket's, events are never dispatched from inside a call such as `close()` or the constructor: those
   * of a call are queued for a microtask, so a listener added right after the call still gets them, and no listener
   * runs while the socket's own method is on the stack. Events of the browser's own tasks (a message, a timer) are
   * dispatched at once, without a microtask per message, unless earlier events still wait (order is kept).
   */
  dispatch(event, later) {
    if (!later && !this.queue && !this.settling) return this.silenced || this.target.dispatchEvent(event);
    if (!this.queue) {
      const queue = (this.queue = []);
      queueMicrotask(() => {
        for (let i = 0; i < queue.length; i++) this.silenced || this.target.dispatchEvent(queue[i]);
        this.queue = null;
      });
    }
    this.queue.push(event);
  }

  /** Asks the URL function for `attempt`'s URL and hands the engine the answer, now or when its promise settles. */
  askUrl(attempt) {
    const answer = (url, problem) => {
      if (this.silenced) return;
      if (this.core) this.core.url(attempt, url, problem);
      else this.early = [attempt, url, problem];
    };
    const given = (url) =>
      typeof url == "string" ? answer(url) : answer(undefined, "the url function did not give a string");
    const urlFunction = this.urlFunction; // called as a plain function (`this` undefined), as before
    let url;
    try {
      url = urlFunction();
    } catch (e) {
      return answer(undefined, messageOf(e));
    }
    if (typeof url == "string") return given(url);
    Promise.resolve(url).then(given, (e) => answer(undefined, messageOf(e)));
  }
}

// The options object, checked field by field: unknown keys (typos), wrong types and out-of-range values throw a
// TypeError naming the field. Gives the numbers `Core` reads (src/js/options.rs) and the subprotocols.
const KEYS = {
  options: ["reconnect", "connectTimeoutMs", "closeTimeoutMs", "heartbeat", "buffer", "protocols", "terminalCloseCodes", "json", "persist", "WebSocket"],
  "options.reconnect": ["minDelayMs", "maxDelayMs", "factor", "jitter", "maxAttempts", "stableAfterMs"],
  "options.heartbeat": ["intervalMs", "timeoutMs"],
  "options.buffer": ["maxMessages", "maxBytes", "maxMessageBytes"],
};
const fail = (field, problem) => { throw new TypeError(`DurableWebSocket: ${field} ${problem}`); };
function fields(value, path) {
  if (value === undefined) return {};
  if (value === null || typeof value != "object" || Array.isArray(value)) fail(path, "must be an object");
  for (const key of Object.keys(value))
    if (!KEYS[path].includes(key)) fail(`${path}.${key}`, `is not a known option (known: ${KEYS[path].join(", ")})`);
  return value;
}
// kind: 0 non-negative ms, 1 positive ms, 2 count, 3 factor, 4 attempts (Infinity: 0), 5 boolean
const PROBLEMS = [
  "must be a non-negative, finite number of milliseconds", "must be a positive, finite number of milliseconds",
  "must be a positive integer", "must be a finite number of at least 1", "must be a positive integer or Infinity",
  "must be a boolean",
];
function field(object, path, key, kind) {
  const v = object[key];
  if (v === undefined) return NaN;
  const ok = kind == 5 ? typeof v == "boolean"
    : typeof v == "number" && (kind == 0 ? v >= 0 && v < Infinity : kind == 1 ? v > 0 && v < Infinity
      : kind == 3 ? v >= 1 && v < Infinity : (kind == 4 && v == Infinity) || (Number.isInteger(v) && v >= 1 && v < 2 ** 32));
  if (!ok) fail(`${path}.${key}`, PROBLEMS[kind]);
  return kind == 5 ? +v : kind < 2 ? Math.ceil(v) : kind == 4 && v == Infinity ? 0 : v;
}
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
function readOptions(options) {
  const o = fields(options ?? undefined, "options");
  const r = fields(o.reconnect, "options.reconnect");
  const b = fields(o.buffer, "options.buffer");
  const off = o.heartbeat === false || o.heartbeat === null;
  const h = off ? {} : fields(o.heartbeat, "options.heartbeat");
  const numbers = [
    field(r, "options.reconnect", "minDelayMs", 0), field(r, "options.reconnect", "maxDelayMs", 0),
    field(r, "options.reconnect", "factor", 3), field(r, "options.reconnect", "jitter", 5),
    field(r, "options.reconnect", "maxAttempts", 4), field(r, "options.reconnect", "stableAfterMs", 0),
    field(o, "options", "connectTimeoutMs", 1), field(o, "options", "closeTimeoutMs", 0),
    off ? 0 : field(h, "options.heartbeat", "intervalMs", 1), off ? 0 : field(h, "options.heartbeat", "timeoutMs", 1),
    field(b, "options.buffer", "maxMessages", 2), field(b, "options.buffer", "maxBytes", 2),
    field(b, "options.buffer", "maxMessageBytes", 2), field(o, "options", "json", 5),
  ];
  const protocols = o.protocols ?? [];
  if (!Array.isArray(protocols) || protocols.some((p) => typeof p != "string"))
    fail("options.protocols", "must be an array of strings");
  protocols.forEach((p, i) => {
    if (!TOKEN.test(p)) fail("options.protocols", `has ${JSON.stringify(p)}, which is not a subprotocol token`);
    if (p == "durable.v1" || protocols.indexOf(p) != i) fail("options.protocols", `offers ${p} twice (durable.v1 is always offered)`);
  });
  let terminal = null;
  if (o.terminalCloseCodes !== undefined) {
    const code = (c) => Number.isInteger(c) && c >= 1000 && c <= 4999;
    const list = o.terminalCloseCodes;
    if (!Array.isArray(list)) fail("options.terminalCloseCodes", "must be an array");
    terminal = list.flatMap((c) => (Array.isArray(c) ? c : [c, c]));
    if (!list.every((c) => code(c) || (Array.isArray(c) && c.length == 2 && code(c[0]) && code(c[1]) && c[0] <= c[1])))
      fail("options.terminalCloseCodes", "must hold close codes (1000–4999) or ascending [from, to] ranges");
  }
  const persist = o.persist;
  if (persist !== undefined && !(typeof persist == "string" && persist.length >= 1 && persist.length <= 200))
    fail("options.persist", "must be a session name of 1 to 200 characters");
  const WebSocket = o.WebSocket;
  if (WebSocket !== undefined && typeof WebSocket != "function") fail("options.WebSocket", "must be a WebSocket constructor");
  if (WebSocket === undefined && typeof globalThis.WebSocket != "function")
    fail("options.WebSocket", 'is needed: this runtime has no WebSocket (in Node 20: `import { WebSocket } from "ws"`, then { WebSocket })');
  return [terminal ? [...numbers, 1, ...terminal] : numbers, protocols, persist, WebSocket];
}
