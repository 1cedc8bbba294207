// The browser side of tests/e2e/lifecycle.test.mjs, served next to `pkg/` (the npm build, web target). The query
// string chooses the role:
// - writer (default): `new DurableWebSocket(url, { persist: name })` (without `persist` when `persist=0`) sending
//   `${label}:${n}` every `pace` ms (default 2), n counting on across page loads (`label` defaults to `name`; `from`
//   is the lowest n to continue at), and reporting what happened (below);
// - observer: a plain durable client of `url` (not persisted) that records every message of the room;
// - idle: nothing, a page to navigate away to.
//
// Reports: each event of a writer is numbered within its page instance and pushed through the `lifecycleReport`
// binding when the test exposed one (Playwright), in batches every FLUSH_MS and at pagehide (a binding call costs
// two DevTools round trips: one per event would not keep up), else kept for `lifecycle.take()` (the WebDriver engines
// poll it). What the test is not known to have got is written to localStorage at pagehide and handed over by the
// next page's `take()`, so a reload or a closed tab loses no report; a crash loses the last batch or what the last
// poll had not taken, which the test then does not know about and does not count.
import init, { DurableWebSocket } from "./pkg/durable_ws.js";

const params = new URLSearchParams(location.search);
const role = params.get("role") ?? "writer";
const RECONNECT = { minDelayMs: 10, maxDelayMs: 250 };
// A page frozen in the back/forward cache does not make up for the time it missed in one burst.
const MAX_BURST = 5;
const TAIL_PREFIX = "lifecycle:tail:";
const FLUSH_MS = 20;

/** The page's own localStorage (its counter, its report tails), or null where storage is unusable. */
function ownStorage() {
  try {
    const storage = window.localStorage;
    storage.getItem("lifecycle:probe");
    return storage;
  } catch {
    return null;
  }
}

/** The page's own keys: where storage fails (disabled, full), the page goes on with what it holds in memory. */
const storage = ownStorage();
const load = (key) => {
  try {
    return storage?.getItem(key) ?? null;
  } catch {
    return null;
  }
};
const save = (key, value) => {
  try {
    storage?.setItem(key, value);
  } catch {}
};

function startWriter() {
  const name = params.get("name");
  const label = params.get("label") ?? name;
  const pace = Number(params.get("pace") ?? 2);
  const persist = params.get("persist") !== "0";
  const instance = `${label}/${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const counterKey = `lifecycle:${label}:next`;
  let next = Math.max(Number(params.get("from") ?? 1), Number(load(counterKey) ?? 1));
  const { report, take, leave, rejoin } = reporter(instance, label);

  window.lifecycle = { role, instance, ready: false, failed: null, take, stop, close, state };
  addEventListener("pageshow", (e) => {
    report("pageshow", { persisted: e.persisted });
    if (e.persisted) rejoin();
  });
  addEventListener("pagehide", (e) => {
    report("pagehide", { persisted: e.persisted });
    leave();
  });

  let socket;
  try {
    socket = new DurableWebSocket(params.get("url"), persist ? { persist: name, reconnect: RECONNECT } : { reconnect: RECONNECT });
  } catch (error) {
    window.lifecycle.failed = `${error.name}: ${error.message}`;
    report("failed", { error: window.lifecycle.failed });
    return;
  }
  report("hello", { persist, readyState: socket.readyState, first: next });

  const sent = [];
  let storedCount = 0;
  /**
   * A new stored milestone: the n up to which every send() of this page is durably stored. The live `unstored`, read
   * with `sent` as it is now: an event's copy may date from a commit before the latest sends.
   */
  const noteStored = () => {
    const count = persist ? sent.length - (socket.unstored ?? sent.length) : 0;
    if (count <= storedCount) return;
    storedCount = count;
    report("stored", { n: sent[count - 1] });
  };
  socket.addEventListener("open", (e) => report("open", { durable: e.durable }));
  socket.addEventListener("resumed", (e) => report("resumed", { replayed: e.replayed }));
  socket.addEventListener("message", (e) => report("received", { data: e.data }));
  socket.addEventListener("sessionlost", (e) => report("sessionlost", { reason: e.reason, unconfirmed: [...e.unconfirmed] }));
  socket.addEventListener("close", (e) => report("close", { code: e.code, willReconnect: e.willReconnect }));
  socket.addEventListener("stored", noteStored);
  socket.addEventListener("error", (e) => {
    const type = e.error?.name === "PersistError" ? "persisterror" : "error";
    report(type, { name: e.error?.name, message: e.error?.message ?? e.message });
  });

  /** The counter is saved before the send: a number handed to send() is never used again by a later page. */
  const sendNext = () => {
    const n = next++;
    save(counterKey, String(next));
    socket.send(`${label}:${n}`).then(
      () => report("acked", { n }),
      (error) => report("rejected", { n, name: error?.name }),
    );
    sent.push(n);
    report("sent", { n });
  };

  let due = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    due = Math.min(due + (now - last) / pace, MAX_BURST);
    last = now;
    for (; due >= 1; due--) sendNext();
    noteStored();
  }, pace);

  /** Stops sending; returns the last number sent. */
  function stop() {
    clearInterval(timer);
    return sent.at(-1) ?? null;
  }

  /** Ends the session for good (clears its storage). */
  function close() {
    stop();
    socket.close();
  }

  function state() {
    return {
      readyState: socket.readyState,
      pending: socket.pending,
      unstored: socket.unstored ?? null,
      sent: sent.length,
      last: sent.at(-1) ?? null,
      token: socket.sessionToken ?? null,
    };
  }

  window.lifecycle.ready = true;
}

/**
 * A writer's events, numbered, on their way to the test: pushed through the binding in batches, or taken by polls.
 * At pagehide, what the test is not known to have got is also left in localStorage for the next page's `take()`.
 */
function reporter(instance, label) {
  const events = [];
  const pushed = typeof window.lifecycleReport === "function";
  /** Events pushed or taken so far. */
  let handed = 0;
  /** Events known to have reached the test (a poll took them, or the binding's promise resolved). */
  let confirmed = 0;
  let timer = null;

  const flush = () => {
    clearTimeout(timer);
    timer = null;
    if (handed === events.length) return;
    const end = events.length;
    window.lifecycleReport(events.slice(handed)).then(() => (confirmed = Math.max(confirmed, end)), () => {});
    handed = end;
  };

  return {
    report(type, fields) {
      events.push({ instance, label, i: events.length, t: Date.now(), type, ...fields });
      if (pushed) timer ??= setTimeout(flush, FLUSH_MS);
    },

    /** Events not taken yet: those that earlier pages left at pagehide, then (when polled) this page's. */
    take() {
      const handedOver = [];
      for (const key of Object.keys(storage ?? {}).filter((k) => k.startsWith(TAIL_PREFIX))) {
        handedOver.push(...JSON.parse(load(key) ?? "[]"));
        storage.removeItem(key);
      }
      if (pushed) return handedOver;
      const fresh = events.slice(handed);
      handed = confirmed = events.length;
      return [...handedOver, ...fresh];
    },

    leave() {
      if (pushed) flush();
      if (confirmed < events.length) save(`${TAIL_PREFIX}${instance}`, JSON.stringify(events.slice(confirmed)));
    },

    /** Back from the back/forward cache: a batch pushed on the way in may never have arrived, push it again. */
    rejoin() {
      if (!pushed) return;
      handed = confirmed;
      flush();
    },
  };
}

function startObserver() {
  const received = [];
  const seen = new Set();
  const socket = new DurableWebSocket(params.get("url"), { reconnect: RECONNECT });
  window.lifecycle = {
    role,
    ready: false,
    has: (message) => seen.has(message),
    /** The messages `${label}:${n}` of `labels`, in the order received. */
    messagesOf: (labels) => received.filter((m) => typeof m === "string" && labels.includes(m.slice(0, m.lastIndexOf(":")))),
    /** What could make the observer miss messages: a lost session (the test fails on it), closes and errors. */
    troubles: [],
    state: () => ({ readyState: socket.readyState, received: received.length, troubles: window.lifecycle.troubles }),
  };
  socket.addEventListener("message", (e) => {
    received.push(e.data);
    seen.add(e.data);
  });
  for (const type of ["sessionlost", "close", "error"]) {
    socket.addEventListener(type, (e) => window.lifecycle.troubles.push(`${type} ${e.reason ?? e.code ?? e.error?.name ?? ""}`));
  }
  // Only a member of the room gets its messages: ready once joined.
  socket.addEventListener("open", () => (window.lifecycle.ready = true));
}

try {
  await init();
  if (role === "writer") startWriter();
  else if (role === "observer") startObserver();
  else window.lifecycle = { role, ready: true };
} catch (error) {
  // The test waits for `ready` or `failed`: a page that cannot start says why at once.
  window.lifecycle = { role, ready: false, failed: `${error.name}: ${error.message}` };
}
