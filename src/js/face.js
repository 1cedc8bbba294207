// The JavaScript half of the JS API (feature `js`): one module, so a page loads one snippet.

// Events (emitter.rs): dispatched at once from the browser's own tasks, queued for a microtask from a call.
const FIELDS = {
  open: ["durable"], message: ["data"], reconnecting: ["attempt", "delayMs"], resumed: ["replayed"],
  sessionlost: ["reason", "unconfirmed"], close: ["code", "reason", "wasClean", "willReconnect"],
  error: ["message", "error", "data"],
};
const SILENCED = new WeakSet();
const QUEUED = new WeakMap();
export function newTarget() { return new EventTarget(); }
export function silence(target) { SILENCED.add(target); }
export function emit(target, later, type, ...values) {
  const event = new Event(type);
  FIELDS[type].forEach((key, i) => { if (values[i] !== undefined) event[key] = values[i]; });
  let queue = QUEUED.get(target);
  if (!later && !queue) return SILENCED.has(target) || target.dispatchEvent(event);
  if (!queue) {
    QUEUED.set(target, (queue = []));
    queueMicrotask(() => {
      for (let i = 0; i < queue.length; i++) SILENCED.has(target) || target.dispatchEvent(queue[i]);
      QUEUED.delete(target);
    });
  }
  queue.push(event);
}

// socket.rs: stats objects; the URL provider, whose promise is resolved here (no futures in wasm).
export function makeStats(sent, acked, pending, replayed, received, duplicates, reconnects, sessionsLost, lastRttMs) {
  lastRttMs = isNaN(lastRttMs) ? null : lastRttMs;
  return { sent, acked, pending, replayed, received, duplicates, reconnects, sessionsLost, lastRttMs };
}

const DROPPED = new WeakSet();
export function askUrl(provider, attempt, answer) {
  const url = provider();
  if (typeof url == "string") return url;
  const reply = (value, failed) => DROPPED.has(answer) || answer(attempt, value, failed);
  Promise.resolve(url).then((value) => reply(typeof value == "string" ? value : null, false), (e) => reply(e, true));
}
export function dropAnswer(answer) { DROPPED.add(answer); }

// payload.rs: what send() accepts as bytes.
export function bytesOf(v) {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (typeof Blob == "function" && v instanceof Blob)
    throw new TypeError("DurableWebSocket.send: a Blob cannot be sent; send await blob.arrayBuffer()");
}

// options.rs: the options object checked field by field.
const KEYS = {
  options: ["reconnect", "connectTimeoutMs", "closeTimeoutMs", "heartbeat", "buffer", "protocols", "terminalCloseCodes", "json"],
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
export function readOptions(options) {
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
  return [new Float64Array(numbers), protocols, terminal && new Float64Array(terminal)];
}
