// durable-ws chat demo: two independent clients in one room, plus buttons that break their connections.
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

/** The room's WebSocket URL, derived from where the page was served. */
function chatUrl() {
  const url = new URL("/chat", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

// ---------------------------------------------------------------------------------------------------------------
// Fault injection (the reference server's --enable-faults endpoints).

async function postAdmin(path) {
  const response = await fetch(path, { method: "POST" });
  if (!response.ok) {
    const hint = response.status === 404 ? " (is the server running with --enable-faults?)" : "";
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

/** Decodes a received (or handed back) payload into { from, n, text }; unknown shapes are shown as text. */
function decodeChatMessage(data) {
  const value = asValue(data);
  if (value && typeof value === "object" && typeof value.from === "string" && Number.isInteger(value.n)) {
    return { from: value.from, n: value.n, text: String(value.text ?? "") };
  }
  return { from: null, n: null, text: typeof value === "string" ? value : JSON.stringify(value) };
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
  constructor(name, panel) {
    this.name = name;
    this.panel = panel;
    this.ui = Object.fromEntries([...panel.querySelectorAll("[data-ref]")].map((el) => [el.dataset.ref, el]));
    this.counterCells = Object.fromEntries(
      [...panel.querySelectorAll("[data-counter]")].map((el) => [el.dataset.counter, el]),
    );
    /** Keys (`Alice#3`) of every chat message in the order this client received them. */
    this.history = [];
    this.nextNumber = 1;
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

    this.socket = new DurableWebSocket(chatUrl, SOCKET_OPTIONS);
    this.bindSocket();
    this.log("connecting to /chat");
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
      const detail = eventField(event, "message") ?? eventField(event, "error") ?? "connection error";
      this.log(`error: ${detail}`, "bad");
    });
  }

  // --- sending -------------------------------------------------------------------------------------------------

  send(text) {
    const n = this.nextNumber++;
    let pending;
    try {
      pending = this.socket.send({ from: this.name, n, text });
    } catch (error) {
      this.refused += 1;
      this.log(`send #${n} refused: ${error?.message ?? error}`, "bad");
      return;
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

  async cut(source) {
    const selector = this.sessionSelector();
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
    return {
      state: this.state.kind,
      sent: this.sent,
      acknowledged: this.acknowledged,
      pending: Number(pending),
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
    const parts = [token ? `session ${token.slice(0, 8)}…` : "durable.v1"];
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
// Chaos: cut a random client's connection every 1–2 s.

class Chaos {
  constructor(clients, toggle, counter) {
    this.clients = clients;
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
      victim.cut("chaos");
      this.schedule();
    }, delay);
  }
}

// ---------------------------------------------------------------------------------------------------------------

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
  const chaos = new Chaos(clients, document.getElementById("chaos-toggle"), document.getElementById("chaos-count"));
  setInterval(() => clients.forEach((client) => client.refresh()), REFRESH_INTERVAL_MS);
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
  };
  document.documentElement.dataset.ready = "true";
}

main();
