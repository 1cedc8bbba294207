// `durable-ws/react`: the React hook over `DurableWebSocket` (README.md, "React"). Shipped as written (it is small), next
// to the package's durable_ws.js, which it imports relatively.
//
// A socket lives in a registry entry, created by the first effect that asks for it and closed when the last component
// using it let go — a macrotask later, so that React StrictMode's unmount-and-mount of every effect (and a keyed
// component remounting at once) finds the entry still there: one connection, one session. Nothing runs during render
// (no socket, no wasm, no browser global): on the server the hook renders its initial state, and connects after
// hydration.
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from "react";
import init, { DurableWebSocket } from "./durable_ws.js";

/** `readyState` values: the socket's, and UNINSTANTIATED before it exists (server rendering, before `init()`). */
export const ReadyState = Object.freeze({ UNINSTANTIATED: -1, CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });

const DEFAULT_HISTORY = 100;

/** What a component sees before its socket exists: during server rendering and hydration too. */
const INITIAL = Object.freeze({
  readyState: ReadyState.UNINSTANTIATED,
  lastMessage: null,
  messages: Object.freeze([]),
  pending: 0,
  stats: null,
  error: null,
  sessionLost: null,
});

/** Sockets by key (the `key` option, else `persist:` and the session's name, else one per component). */
const registry = new Map();
let loading;
let instances = 0;

/** One shared socket, its state as React reads it, and the components that use it. */
class Entry {
  constructor(key, url, options) {
    this.key = key;
    this.url = url;
    this.users = 0;
    this.closing = null;
    this.socket = null;
    this.closed = false;
    this.queue = [];
    this.listeners = new Set();
    this.onMessage = new Set();
    this.snapshot = INITIAL;
    const { key: _key, history, onMessage: _onMessage, ...socketOptions } = options;
    this.history = history ?? DEFAULT_HISTORY;
    this.subscribe = (listener) => {
      this.listeners.add(listener);
      return () => this.listeners.delete(listener);
    };
    this.getSnapshot = () => this.snapshot;
    (loading ??= init()).then(
      () => this.open(socketOptions),
      (error) => this.update({ error }),
    );
  }

  open(options) {
    if (this.closed) return;
    let socket;
    try {
      socket = this.socket = new DurableWebSocket(this.url, options);
    } catch (error) {
      for (const [, , reject] of this.queue.splice(0)) reject(error);
      return this.update({ error, readyState: ReadyState.CLOSED });
    }
    const state = () => ({ readyState: socket.readyState, pending: socket.pending });
    for (const type of ["open", "reconnecting", "resumed", "close"]) socket.addEventListener(type, () => this.update(state()));
    socket.addEventListener("pending", (e) => this.update({ pending: e.pending }));
    socket.addEventListener("error", (e) => this.update({ error: e.error }));
    socket.addEventListener("sessionlost", (e) => this.update({ sessionLost: { reason: e.reason, unconfirmed: e.unconfirmed }, ...state() }));
    socket.addEventListener("message", (e) => {
      const messages = this.history > 0 ? [...this.snapshot.messages.slice(1 - this.history), e.data] : INITIAL.messages;
      this.update({ lastMessage: e.data, messages });
      for (const handler of this.onMessage) handler.current?.(e.data);
    });
    for (const [data, resolve, reject] of this.queue.splice(0)) socket.send(data).then(resolve, reject);
    this.update(state());
  }

  /** Sends now, or once the socket exists (the wasm is still loading). */
  send(data) {
    if (this.socket) return this.socket.send(data);
    if (this.closed) return Promise.reject(notOpen("the socket was closed"));
    return new Promise((resolve, reject) => this.queue.push([data, resolve, reject]));
  }

  update(change) {
    this.snapshot = Object.freeze({ ...this.snapshot, ...change, stats: this.socket?.stats() ?? null });
    for (const listener of this.listeners) listener();
  }

  acquire() {
    this.users++;
    clearTimeout(this.closing);
    this.closing = null;
  }

  /** The last user gone, the socket closes — unless a user comes back before the next macrotask (StrictMode). */
  release() {
    if (--this.users > 0) return;
    this.closing = setTimeout(() => this.close(), 0);
  }

  close() {
    clearTimeout(this.closing);
    if (registry.get(this.key) === this) registry.delete(this.key);
    this.closed = true;
    for (const [, , reject] of this.queue.splice(0)) reject(notOpen("the socket was closed"));
    this.socket?.close();
  }
}

function notOpen(message) {
  const error = new Error(message);
  error.name = "InvalidStateError";
  return error;
}

/** The entry for `key`, made for `url`; an unused entry of another URL (its close pending) is replaced. */
function acquire(key, url, options) {
  let entry = registry.get(key);
  if (entry && entry.url !== url && entry.users === 0) {
    entry.close();
    entry = undefined;
  }
  if (!entry) registry.set(key, (entry = new Entry(key, url, options)));
  entry.acquire();
  return entry;
}

const noSubscription = () => () => {};
const initial = () => INITIAL;

/**
 * A `DurableWebSocket` for a React component: `{ send, lastMessage, messages, readyState, pending, stats, error,
 * sessionLost, socket }`. `url` null: no socket. Components with the same `key` (or the same `persist` name) share
 * one socket, made with the first one's options.
 */
export function useDurableWebSocket(url, options = {}) {
  const instance = useRef(null);
  const onMessage = useRef(options.onMessage);
  onMessage.current = options.onMessage;
  // A URL function is asked before each connection attempt: one stable function that calls the latest one rendered.
  const latestUrl = useRef(url);
  latestUrl.current = url;
  const urlFunction = useRef(null);
  urlFunction.current ??= () => latestUrl.current();
  const socketUrl = typeof url == "function" ? urlFunction.current : url;
  const key = options.key ?? (options.persist !== undefined ? `persist:${options.persist}` : null);
  const [entry, setEntry] = useState(null);

  useEffect(() => {
    if (socketUrl === null || socketUrl === undefined) return undefined;
    instance.current ??= `component:${++instances}`;
    const used = acquire(key ?? instance.current, socketUrl, options);
    used.onMessage.add(onMessage);
    setEntry(used);
    return () => {
      used.onMessage.delete(onMessage);
      used.release();
      setEntry((current) => (current === used ? null : current));
    };
    // The options are read when the socket is made; a new URL or key makes another.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [socketUrl, key]);

  const snapshot = useSyncExternalStore(entry?.subscribe ?? noSubscription, entry?.getSnapshot ?? initial, initial);
  const send = useCallback(
    (data) => (entry ? entry.send(data) : Promise.reject(notOpen("no socket yet: the hook makes it once the component mounted"))),
    [entry],
  );
  return { ...snapshot, send, socket: entry?.socket ?? null };
}
