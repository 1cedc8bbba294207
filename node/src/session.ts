import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import type { EndReason, WelcomeStatusName } from "./core";
import { SendError, UnconfirmedError } from "./errors";
import type { DurableServer } from "./server";
import type { Connection } from "./connection";
import { AckClock } from "./metrics";

/** A message from a client: a string (text) or a Buffer (binary), exactly as the client sent it. */
export type Message = string | Buffer;

/** What `send` takes: a string (text), bytes (binary), or any other value, sent as its JSON text. */
export type Sendable = string | Uint8Array | ArrayBuffer | unknown;

/** A message the client never confirmed, as `ended` lists them. */
export interface UnconfirmedMessage {
  /** Its sequence number in the session. */
  seq: number;
  /** The payload as it was sent (a string, or a Buffer for binary). */
  data: Message;
}

/** How a session ended. */
export interface EndInfo {
  /** Why. */
  reason: EndReason;
  /** Every message its client never confirmed, in order (what `send` promises reject for). */
  unconfirmed: UnconfirmedMessage[];
}

/** The events of a [`Session`]. */
export interface SessionEvents {
  /** A message from the client: each exactly once, in order, across reconnects. */
  message: [data: Message];
  /** The client came back on a new connection and the session resumed. */
  resumed: [];
  /** The connection dropped; the session waits for a resume until its TTL. */
  disconnected: [];
  /** The session is over (goodbye, expiry, overflow, …), with what its client never confirmed. */
  ended: [info: EndInfo];
}

/** @internal A payload for the core. */
export function encode(value: Sendable): string | Uint8Array {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError("send: the value has no JSON text");
  return json;
}

/** @internal A payload from the core, as the application sees it. */
export function decoded(data: string | Uint8Array): Message {
  return typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Most messages held for a session whose application does not listen (yet). */
const HELD_MAX = 10_000;

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (error: UnconfirmedError) => void;
}

/**
 * The client's acknowledgement of one message: `await` it (or `.then`) to learn that the client has the message;
 * it rejects with [`UnconfirmedError`] if the session ends first. Not awaiting it is fine (nothing is left
 * unhandled).
 */
export class Delivery implements PromiseLike<void> {
  /** @internal */
  constructor(
    /** The message's sequence number in its session. */
    readonly seq: number,
    private readonly session: Session,
  ) {}

  then<A = void, B = never>(onfulfilled?: ((value: void) => A | PromiseLike<A>) | null, onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.session.waitFor(this.seq).then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<void | B> {
    return this.then(undefined, onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<void> {
    return this.session.waitFor(this.seq).finally(onfinally);
  }
}

/**
 * One durable session: created when a client starts one (or its old one could not be resumed), it lives across
 * the client's reconnects until the client says goodbye, the server ends it, or it waits longer than the TTL.
 */
export class Session extends EventEmitter<SessionEvents> {
  /** @internal The connection driving it now. */
  conn: Connection | undefined;
  /** @internal */
  readonly rooms = new Set<string>();
  /** @internal Highest sequence number the client confirmed. */
  acked = 0;
  /** @internal */
  endInfo: EndInfo | undefined;
  /** @internal Messages that arrived before any "message" listener. */
  private held: Message[] | undefined = [];
  private waiters: Waiter[] = [];
  /** @internal The core's counters last added to the server's. */
  seen = { replayed: 0, duplicatesDropped: 0 };
  /** @internal When its messages went out, for the acknowledgement delay. */
  readonly ackClock = new AckClock();

  /** @internal */
  constructor(
    private readonly server: DurableServer,
    /** The session's id on this server (not a credential: safe to log and store). */
    readonly id: number,
    /** Who it belongs to (from `authenticate`); `null`: anonymous. Only this identity can resume it. */
    readonly identity: string | null,
    /** How it started: `new`, or the `lost-*` status of the session its client asked to resume. */
    readonly startedAs: WelcomeStatusName,
    /** The URL path of the connection that created it. */
    readonly path: string,
    /** The HTTP request of the connection that created it (cookies, headers). */
    readonly request: IncomingMessage,
  ) {
    super();
    // Messages that arrive before the application listens are held, then handed to the first listener.
    (this as EventEmitter).on("newListener", (event: string | symbol) => {
      if (event === "message" && this.held) setImmediate(() => this.release());
    });
  }

  private release() {
    const held = this.held;
    if (!held || this.listenerCount("message") === 0) return;
    this.held = undefined;
    for (const data of held) this.server.deliver(this, data);
  }

  /** @internal Hands a message to the application (held until it listens). */
  emitMessage(data: Message) {
    if (this.held) {
      if (this.listenerCount("message") === 0) {
        // Bounded: an application that never listens does not hold every message forever.
        if (this.held.length < HELD_MAX) this.held.push(data);
        return;
      }
      this.release();
    }
    this.emit("message", data);
  }

  /** Whether the session is still live (not ended). */
  get live(): boolean {
    return this.endInfo === undefined;
  }

  /** Whether a connection drives it now. */
  get connected(): boolean {
    return this.conn !== undefined;
  }

  /** How it ended (once it did). */
  get ended(): EndInfo | undefined {
    return this.endInfo;
  }

  /** The rooms it is in. */
  get roomNames(): string[] {
    return [...this.rooms];
  }

  /**
   * Queues `value` for the client: delivered exactly once and in order, across reconnects. Returns the
   * acknowledgement (await it to learn the client has it). Throws [`SendError`] when nothing was queued.
   */
  send(value: Sendable): Delivery {
    return new Delivery(this.server.sendTo(this, encode(value)), this);
  }

  /** Joins room `name` (created on first use). */
  join(name: string): this {
    this.server.room(name).add(this);
    return this;
  }

  /** Leaves room `name`. */
  leave(name: string): this {
    this.server.room(name).remove(this);
    return this;
  }

  /** Ends the session: a goodbye goes out after everything queued, then the client stops for good. */
  end(): void {
    this.server.goodbye(this);
  }

  /**
   * Drops the session because its client cannot keep up (e.g. after `SendError` `full`): its connection closes with
   * 1013 and the client's resume gets `lost (overflow)`, with every message it never confirmed. Never a silent gap.
   */
  evict(): void {
    this.server.evict(this);
  }

  /** @internal Resolves once the client acknowledged `seq` (rejects if the session ends first). */
  waitFor(seq: number): Promise<void> {
    if (this.acked >= seq) return Promise.resolve();
    if (this.endInfo) return Promise.reject(new UnconfirmedError(seq, this.endInfo.reason));
    return new Promise((resolve, reject) => {
      const waiter = { seq, resolve, reject };
      const waiters = this.waiters;
      // Kept sorted by seq (awaited in order in the common case: appended).
      let i = waiters.length;
      while (i > 0 && waiters[i - 1]!.seq > seq) i--;
      waiters.splice(i, 0, waiter);
    });
  }

  /** @internal The client confirmed up to `seq`. */
  confirm(seq: number) {
    if (seq <= this.acked) return;
    this.acked = seq;
    const waiters = this.waiters;
    let n = 0;
    while (n < waiters.length && waiters[n]!.seq <= seq) waiters[n++]!.resolve();
    if (n > 0) this.waiters = waiters.slice(n);
  }

  /** @internal The session ended. */
  finish(info: EndInfo) {
    this.endInfo = info;
    this.conn = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) {
      if (waiter.seq <= this.acked) waiter.resolve();
      else waiter.reject(new UnconfirmedError(waiter.seq, info.reason));
    }
  }

  /** @internal */
  static check(result: number): number {
    if (result < 0) throw SendError.of(result);
    return result;
  }
}
