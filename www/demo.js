// durable-ws chat demo: two independent clients in one room, plus buttons that break their connections, and a
// "reload mid-stream" burst that races Alice's persisted session against a plain reconnecting WebSocket.
// No framework, no build step: the page loads the wasm package that wasm-pack builds into www/pkg/.
import init, { DurableWebSocket } from "./pkg/durable_ws.js";

const CLIENT_NAMES = ["Alice", "Bob"];
const AUTO_CHAT_INTERVAL_MS = 200;
const CHAOS_MIN_DELAY_MS = 1000;
const CHAOS_MAX_DELAY_MS = 2000;
const STALL_MS = 5000;
const LOG_LIMIT = 200;
// The full history stays in memory (window.demo.history); only the newest messages are kept in the DOM.
const RENDERED_MESSAGE_LIMIT = 300;
const REFRESH_INTERVAL_MS = 100;
// Each client's session is persisted under a fixed name (one per client, the same in every tab and after a reload):
// reloading the page resumes it. A second tab waits until the first lets the name go.
const persistName = (name) => `demo-chat-${name.toLowerCase()}`;
// The app's own state that outlives the page (the library stores the session, the app stores what it numbered).
const NEXT_NUMBER_KEY = (name) => `demo-chat:${name.toLowerCase()}:next`;

// The "reload mid-stream" burst: TOTAL numbered messages on each lane, one every BURST_INTERVAL_MS; at #STALL_AT every
// connection stalls (POST /admin/stall), at #RELOAD_AT the page reloads itself and the new page sends the rest.
const BURST = { total: 200, intervalMs: 5, stallAt: 60, stallMs: 1500, reloadAt: 100 };
const BURST_KEY = "demo-burst";
// After its last send, a lane with messages still missing counts them lost once nothing came back for this long
// (the durable lane only once nothing is pending either: until then they are on their way, not lost).
const BURST_GRACE_MS = 2500;
// The reloaded page waits for what the previous one left before it sends the rest (at most this long).
const BURST_DRAIN_TIMEOUT_MS = 8000;

// A short heartbeat so that a half-open link ("Go offline for 5 s") is noticed within seconds.
const SOCKET_OPTIONS = {
  reconnect: { minDelayMs: 200, maxDelayMs: 2000, factor: 2, jitter: true, stableAfterMs: 1000 },
  connectTimeoutMs: 4000,
  heartbeat: { intervalMs: 2000, timeoutMs: 2000 },
  buffer: { maxMessages: 20000, maxBytes: 8 * 1024 * 1024 },
  // Chat messages are JSON objects both ways.
  json: true,
};

// Errors with which `send` refuses a message up front: the caller is told, so nothing is lost silently.
const REFUSAL_ERRORS = new Set(["BufferFullError", "TooLargeError", "InvalidStateError", "TypeError", "EncodeError"]);

// `?proxy=HOST:PORT`: the WebSockets go through a chaos proxy (`chaos-proxy --target <this server>`), the fault
// requests still go to the page's server. Without it, straight to the server the page came from.
const PROXY = (() => {
  const value = new URLSearchParams(location.search).get("proxy");
  return value && /^[\w.-]+:\d+$/.test(value) ? value : null;
})();

/** The WebSocket URL of `path` on the server the page came from (or through the proxy). */
function wsUrl(path) {
  const url = new URL(path, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (PROXY) url.host = PROXY;
  return url.href;
}

/** The room's WebSocket URL. */
const chatUrl = () => wsUrl("/chat");

/** localStorage, when the browser lets the page use it (private modes may not). */
function storageGet(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function storageSet(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {}
}

// ---------------------------------------------------------------------------------------------------------------
// Fault injection (the reference server's --enable-faults endpoints).

async function postAdmin(path) {
  const response = await fetch(path, { method: "POST" });
  if (!response.ok) {
    // Without --enable-faults the server has no /admin routes (404, or 405 from its static files).
    const hint = response.status === 404 || response.status === 405 ? " (is the server running with --enable-faults?)" : "";
    throw new Error(`POST ${path} failed: HTTP ${response.status}${hint}`);
  }
  return response.text();
}

// ---------------------------------------------------------------------------------------------------------------
// Chat messages: JSON objects { from, n, text }, where n numbers each sender's messages from 1.

function tryParseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function asValue(data) {
  if (typeof data === "string") return tryParseJson(data);
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return tryParseJson(new TextDecoder().decode(data));
  return data;
}

/** Decodes a received (or handed back) payload into { from, n, text, burst }; unknown shapes are shown as text. */
function decodeChatMessage(data) {
  const value = asValue(data);
  if (value && typeof value === "object" && typeof value.from === "string" && Number.isInteger(value.n)) {
    const burst = value.burst && typeof value.burst === "object" ? value.burst : null;
    return { from: value.from, n: value.n, text: String(value.text ?? ""), burst };
  }
  return { from: null, n: null, text: typeof value === "string" ? value : JSON.stringify(value), burst: null };
}

const messageKey = (message) => (message.n === null ? `?${message.text}` : `${message.from}#${message.n}`);

// Reads a field of a library event (plain properties, or a CustomEvent's detail).
function eventField(event, name) {
  if (event && event[name] !== undefined) return event[name];
  return event?.detail?.[name];
}

function timestamp() {
  const now = new Date();
  const pad = (value, width = 2) => String(value).padStart(width, "0");
  return `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(now.getMilliseconds(), 3)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// One chat client with its panel.

class ChatClient {
  constructor(name, panel, hooks = {}) {
    this.name = name;
    this.panel = panel;
    this.ui = Object.fromEntries([...panel.querySelectorAll("[data-ref]")].map((el) => [el.dataset.ref, el]));
    this.counterCells = Object.fromEntries(
      [...panel.querySelectorAll("[data-counter]")].map((el) => [el.dataset.counter, el]),
    );
    /** Keys (`Alice#3`) of every chat message in the order this client received them. */
    this.history = [];
    // Numbers go on after a reload: the persisted session may still carry the previous page's messages.
    this.nextNumber = Math.max(1, Number(storageGet(NEXT_NUMBER_KEY(name))) || 1);
    /** Called with each received chat message (the burst counts its echoes). */
    this.onChatMessage = hooks.onMessage ?? (() => {});
    this.persisted = true;
    /** n → "pending" | "acked" | "rejected" for each message this client sent. */
    this.outbox = new Map();
    /** Numbers of our messages that sessionlost handed back as unconfirmed. */
    this.handedBack = new Set();
    this.sent = 0;
    this.acknowledged = 0;
    this.refused = 0;
    this.state = { kind: "connecting" };
    this.autoChatTimer = null;
    this.lastCounters = {};
    this.opened = false;

    this.ui.name.textContent = name;
    this.ui.avatar.textContent = name[0];
    panel.dataset.client = name.toLowerCase();
    this.bindControls();

    this.socket = new DurableWebSocket(chatUrl, { ...SOCKET_OPTIONS, persist: persistName(name) });
    this.bindSocket();
    this.log(`connecting to /chat${PROXY ? ` through the proxy at ${PROXY}` : ""}; session persisted as "${persistName(name)}"`);
  }

  bindControls() {
    this.ui.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.ui.input.value.trim();
      if (!text) return;
      this.send(text);
      this.ui.input.value = "";
    });
    this.ui.auto.addEventListener("change", () => this.setAutoChat(this.ui.auto.checked));
    this.ui.cut.addEventListener("click", () => this.cut("button"));
    this.ui.stall.addEventListener("click", () => this.stall());
    this.ui.expire.addEventListener("click", () => this.restartSession());
  }

  bindSocket() {
    const socket = this.socket;
    socket.addEventListener("open", (event) => {
      const durable = eventField(event, "durable");
      this.opened = true;
      this.setState({ kind: "open" });
      this.log(`open — new ${durable === false ? "plain (not durable!)" : "durable"} session ${this.shortToken()}`.trim(), "good");
    });
    socket.addEventListener("message", (event) => this.receive(eventField(event, "data")));
    socket.addEventListener("reconnecting", (event) => {
      const attempt = eventField(event, "attempt");
      const delayMs = Number(eventField(event, "delayMs") ?? 0);
      this.setState({ kind: "reconnecting", attempt, until: performance.now() + delayMs });
      this.log(`reconnecting: attempt ${attempt} in ${Math.round(delayMs)} ms`, "warn");
    });
    socket.addEventListener("resumed", (event) => {
      const replayed = Number(eventField(event, "replayed") ?? 0);
      // After a reload, the persisted session resumes without an `open`: the session the previous page stored.
      if (!this.opened) {
        this.renderNote(
          `Resumed the session the previous page stored${replayed ? `: ${replayed} message(s) it left unconfirmed sent again` : ""}.`,
          "info",
        );
      }
      this.opened = true;
      this.setState({ kind: "resumed", replayed });
      this.log(`resumed session ${this.shortToken()}`.trim() + ` — replayed ${replayed} unacknowledged message(s)`, "good");
    });
    socket.addEventListener("sessionlost", (event) => this.sessionLost(event));
    socket.addEventListener("close", (event) => {
      const code = eventField(event, "code");
      const reason = eventField(event, "reason");
      const wasClean = eventField(event, "wasClean");
      const willReconnect = eventField(event, "willReconnect");
      this.setState({ kind: willReconnect ? "offline" : "closed" });
      const how = wasClean ? "clean" : "abrupt";
      this.log(
        `close ${code}${reason ? ` "${reason}"` : ""} (${how})${willReconnect ? ", will reconnect" : ", for good"}`,
        willReconnect ? "warn" : "bad",
      );
    });
    socket.addEventListener("error", (event) => {
      const error = eventField(event, "error");
      if (error?.name === "PersistError") {
        // Storage is unusable (private mode, quota, blocked): the session goes on, in this page's memory only.
        this.persisted = false;
        this.log(`storage unusable (${error.message}): the session goes on in memory only, a reload would end it`, "bad");
        return;
      }
      const detail = eventField(event, "message") ?? error ?? "connection error";
      this.log(`error: ${detail}`, "bad");
    });
  }

  // --- sending -------------------------------------------------------------------------------------------------

  /** Sends a chat message (`burst`: its place in a burst); whether it was accepted. */
  send(text, burst) {
    // Another tab that drove this session meanwhile numbered on from the same stored counter.
    this.nextNumber = Math.max(this.nextNumber, Number(storageGet(NEXT_NUMBER_KEY(this.name))) || 1);
    const n = this.nextNumber++;
    storageSet(NEXT_NUMBER_KEY(this.name), String(this.nextNumber));
    let pending;
    try {
      pending = this.socket.send(burst ? { from: this.name, n, text, burst } : { from: this.name, n, text });
    } catch (error) {
      this.refused += 1;
      this.log(`send #${n} refused: ${error?.message ?? error}`, "bad");
      return false;
    }
    this.sent += 1;
    this.outbox.set(n, "pending");
    Promise.resolve(pending).then(
      () => {
        this.outbox.set(n, "acked");
        this.acknowledged += 1;
      },
      (error) => {
        const message = `${error?.name ?? "Error"}: ${error?.message ?? error}`;
        if (REFUSAL_ERRORS.has(error?.name) && !this.handedBack.has(n)) {
          // Refused up front (back-pressure): the caller was told, nothing was lost.
          this.outbox.delete(n);
          this.sent -= 1;
          this.refused += 1;
          this.log(`send #${n} refused: ${message}`, "bad");
        } else {
          this.outbox.set(n, "rejected");
          if (!this.handedBack.has(n)) this.log(`send #${n} rejected: ${message}`, "warn");
        }
      },
    );
    return true;
  }

  setAutoChat(on) {
    this.ui.auto.checked = on;
    clearInterval(this.autoChatTimer);
    this.autoChatTimer = null;
    if (on) {
      this.autoChatTimer = setInterval(() => this.send(`auto-chat message ${this.nextNumber}`), AUTO_CHAT_INTERVAL_MS);
      this.log("auto-chat on: one message every 200 ms");
    } else {
      this.log("auto-chat off");
    }
  }

  // --- receiving -----------------------------------------------------------------------------------------------

  receive(data) {
    const message = decodeChatMessage(data);
    this.history.push(messageKey(message));
    this.render(message);
    this.onChatMessage(message);
  }

  render(message) {
    const list = this.ui.messages;
    const stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const item = document.createElement("li");
    const mine = message.from === this.name;
    item.className = `bubble ${mine ? "mine" : "theirs"}`;
    if (message.from) item.dataset.from = message.from.toLowerCase();
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = message.from ? `${message.from} · #${message.n}` : "raw";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = message.text;
    item.append(meta, text);
    list.append(item);
    while (list.childElementCount > RENDERED_MESSAGE_LIMIT) list.firstElementChild.remove();
    this.ui.empty.hidden = true;
    if (stickToBottom) list.scrollTop = list.scrollHeight;
  }

  renderNote(text, tone) {
    const item = document.createElement("li");
    item.className = `note ${tone}`;
    item.textContent = text;
    this.ui.messages.append(item);
    this.ui.empty.hidden = true;
    this.ui.messages.scrollTop = this.ui.messages.scrollHeight;
  }

  sessionLost(event) {
    const reason = eventField(event, "reason") ?? "unknown";
    const unconfirmed = Array.from(eventField(event, "unconfirmed") ?? []);
    const numbers = [];
    for (const item of unconfirmed) {
      // Each entry is the payload, or { seq, data } / [seq, data] depending on the binding.
      const data = item && typeof item === "object" && "data" in item ? item.data : Array.isArray(item) ? item[1] : item;
      const message = decodeChatMessage(data);
      if (message.from === this.name && message.n !== null) {
        this.handedBack.add(message.n);
        numbers.push(`#${message.n}`);
        this.onHandedBack?.(message);
      }
    }
    const list = numbers.length ? `: ${numbers.slice(0, 12).join(", ")}${numbers.length > 12 ? ", …" : ""}` : "";
    this.log(`sessionlost (${reason}) — ${unconfirmed.length} unconfirmed message(s) handed back${list}`, "bad");
    this.renderNote(
      `Session lost (${reason}). ${unconfirmed.length} unconfirmed message(s) handed back to the app${list}. ` +
        "Messages sent to the room meanwhile are not replayed to the new session.",
      "bad",
    );
  }

  // --- faults --------------------------------------------------------------------------------------------------

  currentToken() {
    return this.socket?.sessionToken ?? null;
  }

  shortToken() {
    const token = this.currentToken();
    return token ? `${token.slice(0, 8)}…` : "";
  }

  /** `session=<token>` of this client, or `session=all` before its first handshake. */
  sessionSelector() {
    const token = this.currentToken();
    return token ? `session=${encodeURIComponent(token)}` : "session=all";
  }

  /** `everyone`: every connection on the server (during a burst, so that the plain socket is cut as well). */
  async cut(source, everyone = false) {
    const selector = everyone ? "session=all" : this.sessionSelector();
    const what = selector === "session=all" ? "every connection" : "the connection";
    this.log(`${source === "chaos" ? "chaos: " : ""}cutting ${what} (no close frame)`, "fault");
    try {
      await postAdmin(`/admin/cut?${selector}`);
    } catch (error) {
      this.log(error.message, "bad");
    }
  }

  async stall() {
    const selector = this.sessionSelector();
    this.log(`going offline for ${STALL_MS / 1000} s: the link turns half-open, the heartbeat has to notice`, "fault");
    try {
      await postAdmin(`/admin/stall?ms=${STALL_MS}&${selector}`);
    } catch (error) {
      this.log(error.message, "bad");
    }
  }

  async restartSession() {
    const selector = this.sessionSelector();
    this.log("asking the server to forget this session (it drops the connection too)", "fault");
    try {
      await postAdmin(`/admin/expire?${selector}`);
    } catch (error) {
      this.log(error.message, "bad");
    }
  }

  // --- state, counters, log ------------------------------------------------------------------------------------

  stats() {
    try {
      const stats = this.socket.stats();
      return stats && typeof stats === "object" ? stats : {};
    } catch {
      return {};
    }
  }

  counters() {
    const stats = this.stats();
    const read = (...names) => {
      for (const name of names) {
        for (const source of [stats, stats.session]) {
          const value = source?.[name];
          if (value !== undefined && value !== null) return Number(value);
        }
      }
      return 0;
    };
    let pending = this.socket.pending;
    if (pending === undefined || pending === null) pending = read("pending");
    let lost = 0;
    for (const [n, status] of this.outbox) {
      if (status === "rejected" && !this.handedBack.has(n)) lost += 1;
    }
    let unstored = this.socket.unstored;
    if (unstored === undefined || unstored === null) unstored = read("unstored");
    return {
      state: this.state.kind,
      sent: this.sent,
      acknowledged: this.acknowledged,
      pending: Number(pending),
      unstored: Number(unstored),
      replayed: read("replayed"),
      duplicatesDropped: read("duplicates", "duplicatesDropped"),
      reconnects: read("reconnects"),
      sessionsLost: read("sessionsLost"),
      unconfirmed: this.handedBack.size,
      refused: this.refused,
      received: this.history.length,
      lost,
    };
  }

  setState(state) {
    this.state = state;
    this.renderBadge();
  }

  renderBadge() {
    const state = this.state;
    let text;
    switch (state.kind) {
      case "reconnecting": {
        const remaining = Math.max(0, Math.round(state.until - performance.now()));
        text = remaining > 0 ? `reconnecting in ${remaining} ms` : `connecting (attempt ${state.attempt})`;
        break;
      }
      case "resumed":
        text = `resumed (replayed ${state.replayed})`;
        break;
      case "connecting":
        text = "connecting…";
        break;
      default:
        text = state.kind;
    }
    const badge = this.ui.badge;
    if (badge.textContent !== text) badge.textContent = text;
    badge.className = `badge state-${state.kind}`;
  }

  refresh() {
    if (this.state.kind === "reconnecting") this.renderBadge();
    const counters = this.counters();
    for (const [name, cell] of Object.entries(this.counterCells)) {
      const value = String(counters[name]);
      if (this.lastCounters[name] !== value) cell.textContent = value;
    }
    this.lastCounters = Object.fromEntries(Object.entries(counters).map(([k, v]) => [k, String(v)]));
    this.ui["lost-box"].classList.toggle("bad", counters.lost > 0);
    const token = this.currentToken();
    const rtt = this.stats().lastRttMs;
    const parts = [this.persisted ? "persisted" : "in memory only", token ? `session ${token.slice(0, 8)}…` : "durable.v1"];
    if (rtt !== null && rtt !== undefined) parts.push(`rtt ${rtt} ms`);
    const tokenText = parts.join(" · ");
    if (this.ui.token.textContent !== tokenText) this.ui.token.textContent = tokenText;
  }

  log(text, tone = "info") {
    const item = document.createElement("li");
    item.className = tone;
    const time = document.createElement("time");
    time.textContent = timestamp();
    item.append(time, document.createTextNode(text));
    const log = this.ui.log;
    log.prepend(item);
    while (log.childElementCount > LOG_LIMIT) log.lastElementChild.remove();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The comparison: a plain WebSocket in a small reconnecting wrapper, as applications commonly write one (and as
// reconnecting-websocket does): reconnect with backoff, queue what is sent while disconnected, send it once the next
// connection opens. What a connection swallowed before it died, or what a page left when it unloaded, is gone.

class PlainSocket {
  constructor(url, onMessage) {
    this.url = url;
    this.onMessage = onMessage;
    this.queue = [];
    this.delayMs = 200;
    this.reconnects = 0;
    this.socket = null;
    this.wasOpen = false;
    this.connect();
  }

  connect() {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.wasOpen = true;
      this.delayMs = 200;
      for (const text of this.queue.splice(0)) socket.send(text);
    };
    socket.onmessage = (event) => this.onMessage(event.data);
    socket.onclose = () => {
      if (this.wasOpen) this.reconnects += 1;
      this.wasOpen = false;
      setTimeout(() => this.connect(), this.delayMs);
      this.delayMs = Math.min(this.delayMs * 2, 2000);
    };
  }

  send(text) {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(text);
    else this.queue.push(text);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// "Reload mid-stream": Alice (persisted) and the plain socket send the same numbered burst; the network stalls, the
// page reloads itself, the reloaded page sends the rest. The burst's progress is the app's own state in localStorage
// (written in the same task as each send and each echo, so it is as current as the session the library stored).

const rangesOf = (numbers) => {
  const sorted = [...numbers].sort((a, b) => a - b);
  const ranges = [];
  for (const n of sorted) {
    const last = ranges.at(-1);
    if (last && n === last[1] + 1) last[1] = n;
    else ranges.push([n, n]);
  }
  const text = ranges.slice(0, 4).map(([a, b]) => (a === b ? `#${a}` : `#${a}–#${b}`)).join(", ");
  return ranges.length > 4 ? `${text}, …` : text;
};

class Burst {
  constructor(alice, bob, root) {
    this.alice = alice;
    this.ui = {
      start: root.querySelector("#burst-start"),
      reload: root.querySelector("#burst-reload"),
      lanes: Object.fromEntries(
        [...root.querySelectorAll("[data-lane]")].map((lane) => [
          lane.dataset.lane,
          {
            strip: lane.querySelector("[data-ref=strip]"),
            result: lane.querySelector("[data-ref=result]"),
            counters: Object.fromEntries([...lane.querySelectorAll("[data-lane-counter]")].map((el) => [el.dataset.laneCounter, el])),
            lost: lane.querySelector(".lane-lost"),
          },
        ]),
      ),
    };
    for (const [key, value] of [["total", BURST.total], ["stall-at", BURST.stallAt], ["reload-at", BURST.reloadAt]]) {
      root.querySelectorAll(`[data-burst="${key}"]`).forEach((el) => (el.textContent = String(value)));
    }
    this.plain = new PlainSocket(wsUrl("/echo"), (data) => this.plainEcho(data));
    this.timer = null;
    this.owner = false;
    this.pageStart = performance.now();
    this.lastActivity = { durable: this.pageStart, plain: this.pageStart };
    this.cells = { durable: [], plain: [] };
    this.state = this.load();

    alice.onChatMessage = (message) => this.durableEcho(message, "durable");
    bob.onChatMessage = (message) => this.durableEcho(message, "bob");
    alice.onHandedBack = (message) => this.handedBack(message);
    this.ui.start.addEventListener("click", () => this.start());
    addEventListener("pagehide", (event) => this.pageHidden(event));
    if (this.running()) this.continueAfterReload();
    this.render();
  }

  load() {
    try {
      const state = JSON.parse(storageGet(BURST_KEY) ?? "null");
      return state && typeof state.id === "string" && Array.isArray(state.durable) ? state : null;
    } catch {
      return null;
    }
  }

  save() {
    storageSet(BURST_KEY, JSON.stringify(this.state));
  }

  running() {
    return !!this.state && this.state.phase !== "done";
  }

  start() {
    if (this.running()) return;
    this.state = {
      id: `b${Date.now().toString(36)}`,
      ...BURST,
      phase: "sending",
      sent: 0,
      page: 1,
      // [number, page] in arrival order; bob: numbers as Bob received them; handedBack: numbers sessionlost returned.
      durable: [],
      plain: [],
      bob: [],
      handedBack: [],
      stall: null,
      left: null,
      resume: null,
    };
    this.owner = true;
    this.cells = { durable: [], plain: [] };
    this.lastActivity = { durable: performance.now(), plain: performance.now() };
    this.save();
    this.alice.log(`burst: ${BURST.total} numbered messages, stall at #${BURST.stallAt}, reload at #${BURST.reloadAt}`);
    this.tick();
  }

  tick() {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.sendNext(), BURST.intervalMs);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  sendNext() {
    const state = this.state;
    const k = state.sent + 1;
    const burst = { id: state.id, k };
    if (!this.alice.send(`burst ${k}/${state.total}`, burst)) state.refused = (state.refused ?? 0) + 1;
    this.plain.send(JSON.stringify({ burst }));
    state.sent = k;
    this.lastActivity.durable = this.lastActivity.plain = performance.now();
    // The stall is in place before the burst goes on (and so before the reload).
    if (k === state.stallAt && state.page === 1) {
      this.stop();
      this.stallEverything().then(() => this.tick());
    }
    if (k === state.total) {
      state.phase = "settling";
      this.stop();
    }
    const reload = k === state.reloadAt && state.page === 1;
    if (reload) this.stop();
    this.save();
    this.scheduleRender();
    // The reload: this page goes on running (and receiving) until the new one replaces it; pagehide records what it left.
    if (reload) location.reload();
  }

  async stallEverything() {
    try {
      await postAdmin(`/admin/stall?ms=${this.state.stallMs}&session=all`);
      this.state.stall = "ok";
    } catch (error) {
      this.state.stall = error.message;
    }
    this.save();
  }

  /** The page unloads mid-burst: what it leaves to the next one, as the next one will tell it. */
  pageHidden(event) {
    if (!this.owner || !this.running() || event.persisted) return;
    const state = this.state;
    const socket = this.alice.socket;
    state.left = {
      sent: state.sent,
      pending: socket.pending,
      unstored: socket.unstored,
      outstanding: state.sent - this.settled("durable").size,
      plainOutstanding: state.sent - this.settled("plain").size,
    };
    this.save();
  }

  /** A reloaded page picks the burst up once Alice's session is back (in a second tab that waits, never). */
  continueAfterReload() {
    const socket = this.alice.socket;
    const started = performance.now();
    let taken = false;
    const take = (kind, event) => {
      if (taken) return;
      taken = true;
      // As stored now (another tab may have driven the burst while this one waited for the session).
      const state = (this.state = this.load() ?? this.state);
      if (state.phase === "done") return;
      state.page += 1;
      this.owner = true;
      if (state.left) {
        state.resume = {
          how: kind,
          replayed: kind === "resumed" ? Number(eventField(event, "replayed") ?? 0) : 0,
          pendingAtResume: socket.pending,
          afterMs: Math.round(performance.now() - started),
          drainedMs: null,
        };
      }
      this.save();
      if (state.phase === "sending") this.waitForDrain(started);
    };
    socket.addEventListener("resumed", (event) => take("resumed", event), { once: true });
    socket.addEventListener("open", (event) => take("open", event), { once: true });
  }

  /** Before sending the rest, let what the previous page left arrive (pending going down to 0). */
  waitForDrain(started) {
    const state = this.state;
    const poll = setInterval(() => {
      const drained = this.outstanding("durable").length === 0 && this.alice.socket.pending === 0;
      const late = performance.now() - started > BURST_DRAIN_TIMEOUT_MS;
      if (!drained && !late) return;
      clearInterval(poll);
      if (state.resume) state.resume.drainedMs = drained ? Math.round(performance.now() - started) : null;
      this.save();
      this.scheduleRender();
      this.tick();
    }, 10);
  }

  /** Numbers that came back (or, on the durable lane, were handed back) on `lane`. */
  settled(lane) {
    const numbers = new Set(this.state[lane].map(([k]) => k));
    if (lane === "durable") for (const k of this.state.handedBack) numbers.add(k);
    return numbers;
  }

  /** Numbers sent on `lane` that have not come back. */
  outstanding(lane) {
    const settled = this.settled(lane);
    const missing = [];
    for (let k = 1; k <= this.state.sent; k++) if (!settled.has(k)) missing.push(k);
    return missing;
  }

  record(lane, k) {
    const state = this.state;
    if (!Number.isInteger(k) || k < 1 || k > state.total) return;
    if (lane === "bob") state.bob.push(k);
    else if (state[lane].some(([seen]) => seen === k)) state.duplicates = (state.duplicates ?? 0) + 1;
    else state[lane].push([k, state.page]);
    if (lane !== "bob") this.lastActivity[lane] = performance.now();
    this.save();
    this.scheduleRender();
  }

  durableEcho(message, lane) {
    if (this.state && message.from === "Alice" && message.burst?.id === this.state.id) this.record(lane, message.burst.k);
  }

  plainEcho(data) {
    let value;
    try {
      value = JSON.parse(data);
    } catch {
      return;
    }
    if (this.state && value?.burst?.id === this.state.id) this.record("plain", value.burst.k);
  }

  handedBack(message) {
    if (this.state && message.burst?.id === this.state.id) {
      this.state.handedBack.push(message.burst.k);
      this.save();
    }
  }

  /** After the last send: a lane is settled once complete, or once nothing came back (nor is pending) for a while. */
  settle() {
    const state = this.state;
    if (!this.owner || state?.phase !== "settling") return;
    const now = performance.now();
    const durableDone =
      this.outstanding("durable").length === 0 ||
      (this.alice.socket.pending === 0 && now - this.lastActivity.durable > BURST_GRACE_MS);
    const plainDone = this.outstanding("plain").length === 0 || now - this.lastActivity.plain > BURST_GRACE_MS;
    if (!durableDone || !plainDone) return;
    state.phase = "done";
    state.lost = { durable: this.outstanding("durable"), plain: this.outstanding("plain") };
    this.save();
    this.alice.log(
      `burst done: durable-ws ${state.durable.length}/${state.total} echoed, plain WebSocket ${state.plain.length}/${state.total}`,
      state.lost.durable.length ? "bad" : "good",
    );
  }

  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  /** Called by the page's refresh timer too: live counters and the settle check. */
  render() {
    this.settle();
    const state = this.state;
    this.ui.start.disabled = this.running();
    this.ui.start.textContent = this.running() ? "Burst running…" : "Reload mid-stream";
    const socket = this.alice.socket;
    for (const lane of ["durable", "plain"]) {
      const ui = this.ui.lanes[lane];
      const total = state?.total ?? BURST.total;
      const echoed = state ? state[lane].length : 0;
      const lost = state?.phase === "done" ? state.lost[lane].length : 0;
      const values = {
        sent: state?.sent ?? 0,
        echoed,
        pending: lane === "durable" ? socket.pending : (state ? this.outstanding(lane).length : 0),
        unstored: socket.unstored,
        reconnects: this.plain.reconnects,
        lost,
      };
      for (const [name, cell] of Object.entries(ui.counters)) {
        const text = String(values[name]);
        if (cell.textContent !== text) cell.textContent = text;
      }
      ui.lost.classList.toggle("bad", lost > 0);
      this.renderStrip(lane, total);
      ui.result.textContent = state?.phase === "done" ? this.resultLine(lane) : "";
    }
    const left = state?.left;
    this.ui.reload.hidden = !left;
    if (left) this.ui.reload.textContent = this.reloadLine();
  }

  renderStrip(lane, total) {
    const strip = this.ui.lanes[lane].strip;
    const cells = this.cells[lane];
    if (strip.childElementCount !== total) {
      strip.replaceChildren(...Array.from({ length: total }, () => document.createElement("span")));
      cells.length = 0;
    }
    const state = this.state;
    const page = new Map(state ? state[lane].map(([k, p]) => [k, p]) : []);
    const back = new Set(lane === "durable" && state ? state.handedBack : []);
    const lost = new Set(state?.phase === "done" ? state.lost[lane] : []);
    for (let k = 1; k <= total; k++) {
      let kind = "";
      if (page.has(k)) kind = page.get(k) > 1 ? "after" : "got";
      else if (back.has(k)) kind = "back";
      else if (lost.has(k)) kind = "lost";
      else if (state && k <= state.sent) kind = "sent";
      if (cells[k - 1] !== kind) {
        cells[k - 1] = kind;
        const cell = strip.children[k - 1];
        cell.className = kind;
        cell.title = `#${k}${kind ? `: ${{ got: "echoed", after: "echoed after the reload", back: "handed back", lost: "lost", sent: "sent, no echo yet" }[kind]}` : ""}`;
      }
    }
  }

  reloadLine() {
    const { left, resume, reloadAt, stall } = this.state;
    const arrived = this.state.durable.filter(([k, p]) => p > 1 && k <= left.sent).length;
    const parts = [
      `↻ Reloaded at #${left.sent}${left.sent === reloadAt ? "" : " (by hand)"}${stall && stall !== "ok" ? ` — no stall: ${stall}` : ""}.`,
      `The previous page left ${left.pending} message${left.pending === 1 ? "" : "s"} unconfirmed` +
        ` (${left.unstored} not yet in IndexedDB); ${left.outstanding} of its messages had not come back yet.`,
    ];
    if (resume) {
      const how = resume.how === "resumed" ? `resumed the stored session (${resume.replayed} resent)` : "opened a new session";
      const drained =
        resume.drainedMs === null ? "" : `; pending went from ${resume.pendingAtResume} to 0 within ${resume.drainedMs} ms of the page loading`;
      parts.push(`This page ${how}: ${arrived} of ${left.outstanding} arrived${drained}.`);
    } else {
      parts.push("This page is restoring the session…");
    }
    const plainArrived = this.state.plain.filter(([k, p]) => p > 1 && k <= left.sent).length;
    parts.push(`Plain WebSocket: ${left.plainOutstanding} not echoed at the reload, ${plainArrived} arrived after it.`);
    return parts.join(" ");
  }

  resultLine(lane) {
    const state = this.state;
    const lost = state.lost[lane];
    const echoed = state[lane].length;
    if (lane === "plain") {
      return lost.length
        ? `${echoed}/${state.total} echoed — ${lost.length} lost (${rangesOf(lost)}), nobody told.`
        : `${echoed}/${state.total} echoed — nothing lost this time.`;
    }
    const order = state.durable.map(([k]) => k);
    const inOrder = order.every((k, i) => i === 0 || k > order[i - 1]);
    const bob = new Set(state.bob).size;
    const back = state.handedBack.length ? `, ${state.handedBack.length} handed back by sessionlost` : "";
    const lostText = lost.length ? ` — ${lost.length} LOST (${rangesOf(lost)})` : ", no gap";
    return `${echoed}/${state.total} echoed${inOrder ? ", in order" : ", OUT OF ORDER"}${lostText}${back}; Bob received ${bob}/${state.total}.`;
  }

  /** The test hook's view. */
  summary() {
    const state = this.state;
    if (!state) return null;
    return {
      ...structuredClone(state),
      durableOrder: state.durable.map(([k]) => k),
      plainOrder: state.plain.map(([k]) => k),
      pending: this.alice.socket.pending,
      unstored: this.alice.socket.unstored,
      reloadLine: state.left ? this.reloadLine() : null,
      results: state.phase === "done" ? { durable: this.resultLine("durable"), plain: this.resultLine("plain") } : null,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Chaos: cut a random client's connection every 1–2 s; while a burst runs, every connection (the plain one too).

class Chaos {
  constructor(clients, toggle, counter, burst) {
    this.clients = clients;
    this.burst = burst;
    this.toggle = toggle;
    this.counter = counter;
    this.cuts = 0;
    this.timer = null;
    toggle.addEventListener("change", () => this.set(toggle.checked));
  }

  set(on) {
    this.toggle.checked = on;
    clearTimeout(this.timer);
    this.timer = null;
    this.counter.hidden = !on && this.cuts === 0;
    if (on) this.schedule();
  }

  schedule() {
    const delay = CHAOS_MIN_DELAY_MS + Math.random() * (CHAOS_MAX_DELAY_MS - CHAOS_MIN_DELAY_MS);
    this.timer = setTimeout(() => {
      const victim = this.clients[Math.floor(Math.random() * this.clients.length)];
      this.cuts += 1;
      this.counter.textContent = `${this.cuts} cut${this.cuts === 1 ? "" : "s"}`;
      victim.cut("chaos", this.burst.running());
      this.schedule();
    }, delay);
  }
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * One page drives a persisted session at a time: in a second tab of the demo the sockets wait for the first to let
 * their names go. Say so instead of showing "connecting…" forever (the library asks for a Web Lock per name).
 */
function watchForOtherTab(clients) {
  const banner = document.getElementById("page-wait");
  const check = async () => {
    const waiting = clients.filter((client) => !client.opened).map((client) => `durable-ws:${persistName(client.name)}`);
    let blocked = false;
    if (waiting.length && navigator.locks?.query) {
      const { pending = [] } = await navigator.locks.query().catch(() => ({}));
      blocked = pending.some((lock) => waiting.includes(lock.name));
    }
    banner.hidden = !blocked;
    banner.textContent = blocked
      ? "This chat is open in another tab: a persisted session is driven by one page at a time, so this tab takes " +
        "over when the other one is closed or reloaded."
      : "";
    if (clients.some((client) => !client.opened)) setTimeout(check, 1000);
  };
  setTimeout(check, 1000);
}

function showPageError(text) {
  const banner = document.getElementById("page-error");
  banner.textContent = text;
  banner.hidden = false;
}

async function main() {
  try {
    await init();
  } catch (error) {
    showPageError(
      `Could not load the wasm package from www/pkg/ (${error?.message ?? error}). Build it with scripts/demo.sh.`,
    );
    throw error;
  }
  const template = document.getElementById("panel-template");
  const container = document.getElementById("panels");
  const clients = CLIENT_NAMES.map((name) => {
    const panel = template.content.firstElementChild.cloneNode(true);
    container.append(panel);
    return new ChatClient(name, panel);
  });
  const byName = Object.fromEntries(clients.map((client) => [client.name, client]));
  const find = (name) => {
    const client = byName[name];
    if (!client) throw new Error(`no client named ${name} (have: ${CLIENT_NAMES.join(", ")})`);
    return client;
  };
  const burst = new Burst(byName.Alice, byName.Bob, document.getElementById("burst"));
  const chaos = new Chaos(clients, document.getElementById("chaos-toggle"), document.getElementById("chaos-count"), burst);
  setInterval(() => {
    clients.forEach((client) => client.refresh());
    burst.render();
  }, REFRESH_INTERVAL_MS);
  watchForOtherTab(clients);
  addEventListener("offline", () => clients.forEach((client) => client.log("browser went offline", "warn")));
  addEventListener("online", () => clients.forEach((client) => client.log("browser back online")));

  // Test hook (tests/e2e/demo.test.mjs).
  window.demo = {
    clients: byName,
    names: CLIENT_NAMES,
    history: (name) => [...find(name).history],
    counters: (name) => find(name).counters(),
    send: (name, text) => find(name).send(text),
    setAutoChat: (name, on) => find(name).setAutoChat(on),
    setChaos: (on) => chaos.set(on),
    chaosCuts: () => chaos.cuts,
    startBurst: () => burst.start(),
    burst: () => burst.summary(),
  };
  document.documentElement.dataset.ready = "true";
}

main();
