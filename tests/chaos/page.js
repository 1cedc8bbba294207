// The browser side of the chaos suite: clients that record everything they see, driven from Node through
// `window.chaos`. Served next to `pkg/` (the npm build of durable-ws, web target) and `rws.mjs`
// (reconnecting-websocket's ES module).
import init, { DurableWebSocket } from "./pkg/durable_ws.js";
import ReconnectingWebSocket from "./rws.mjs";

await init();

/** Everything one client saw. */
class Recorder {
  constructor(kind) {
    this.kind = kind;
    this.sent = [];
    this.received = [];
    this.events = { open: 0, reconnecting: 0, resumed: 0, sessionlost: 0, close: 0, error: 0 };
    this.errors = {};
    this.sessionLost = [];
    this.resolved = 0;
    this.rejected = [];
    this.sending = false;
    this.log = [];
  }

  note(type, detail) {
    this.events[type] = (this.events[type] ?? 0) + 1;
    if (this.log.length < 500) this.log.push(`${Math.round(performance.now())} ${type}${detail ? ` ${detail}` : ""}`);
  }
}

const clients = new Map();

function get(name) {
  const client = clients.get(name);
  if (!client) throw new Error(`no client ${name}`);
  return client;
}

/** A DurableWebSocket whose every event is recorded. */
function durable(name, url, options) {
  const record = new Recorder("durable");
  const socket = new DurableWebSocket(url, options);
  socket.addEventListener("open", (e) => record.note("open", `durable=${e.durable}`));
  socket.addEventListener("message", (e) => record.received.push(e.data));
  socket.addEventListener("reconnecting", (e) => record.note("reconnecting", `attempt=${e.attempt} delay=${e.delayMs}`));
  socket.addEventListener("resumed", (e) => record.note("resumed", `replayed=${e.replayed}`));
  socket.addEventListener("sessionlost", (e) => {
    record.note("sessionlost", `${e.reason} unconfirmed=${e.unconfirmed.length}`);
    record.sessionLost.push({ reason: e.reason, unconfirmed: [...e.unconfirmed] });
  });
  socket.addEventListener("close", (e) => record.note("close", `${e.code} willReconnect=${e.willReconnect}`));
  socket.addEventListener("error", (e) => {
    const errorName = e.error?.name ?? "Error";
    record.errors[errorName] = (record.errors[errorName] ?? 0) + 1;
    record.note("error", errorName);
  });
  const send = (data) => {
    record.sent.push(data);
    socket.send(data).then(
      () => record.resolved++,
      (error) => record.rejected.push({ data, name: error?.name ?? String(error) }),
    );
  };
  clients.set(name, { record, socket, send });
}

/** A reconnecting-websocket (plain WebSocket protocol, no subprotocol). */
function rws(name, url, options) {
  const record = new Recorder("rws");
  const socket = new ReconnectingWebSocket(url, [], options);
  socket.addEventListener("open", () => record.note("open"));
  socket.addEventListener("message", (e) => record.received.push(e.data));
  socket.addEventListener("close", (e) => record.note("close", String(e.code)));
  socket.addEventListener("error", () => record.note("error"));
  const send = (data) => {
    record.sent.push(data);
    socket.send(data);
  };
  clients.set(name, { record, socket, send });
}

/** Sends `${prefix}${i}` for i = 1..count, `batch` messages every `intervalMs`, in the background. */
function sendNumbered(name, prefix, count, { batch = 1, intervalMs = 0 } = {}) {
  const client = get(name);
  client.record.sending = true;
  let next = 1;
  const tick = () => {
    for (let i = 0; i < batch && next <= count; i++, next++) client.send(`${prefix}${next}`);
    if (next <= count) setTimeout(tick, intervalMs);
    else client.record.sending = false;
  };
  tick();
}

/** Counters of a client (cheap to poll). */
function summary(name) {
  const { record, socket } = get(name);
  const base = {
    kind: record.kind,
    sent: record.sent.length,
    received: record.received.length,
    sending: record.sending,
    events: { ...record.events },
    errors: { ...record.errors },
    readyState: socket.readyState,
  };
  if (record.kind === "durable") {
    Object.assign(base, {
      pending: socket.pending,
      resolved: record.resolved,
      rejected: record.rejected.length,
      sessionLost: record.sessionLost.length,
      stats: socket.stats(),
    });
  }
  return base;
}

/** Everything a client recorded. */
function details(name) {
  const { record } = get(name);
  return {
    ...summary(name),
    sentMessages: record.sent,
    receivedMessages: record.received,
    sessionLostEvents: record.sessionLost,
    rejectedMessages: record.rejected,
    log: record.log,
  };
}

function close(name) {
  const { socket } = get(name);
  socket.close();
  clients.delete(name);
}

window.chaos = { durable, rws, sendNumbered, summary, details, close, ready: true };
