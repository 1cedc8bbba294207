import { EventEmitter } from "node:events";
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { CLOSE_TIMEOUT_MS, CoreEndpoint, DEFAULTS, METRIC_LABELS, closeReason, now, refusalCode } from "./core";
import type { CoreEnded, Defaults, WelcomeStatusName } from "./core";
import { Connection } from "./connection";
import { Refusal, SendError } from "./errors";
import { byteLength, ServerMetrics, type OpenConnection } from "./metrics";
import { ReadRate } from "./rate";
import { isLoopback, originAllowed, type OriginPolicy } from "./origin";
import { decoded, encode, Session, type Message, type Sendable } from "./session";

/** The subprotocol of durable-ws. */
export const SUBPROTOCOL = "durable.v1";

/** Room for a DATA frame's header on top of the largest payload (type byte + 10-byte varint). */
const FRAME_OVERHEAD = 11;

/** Who a client is: a name, or `null`/`undefined` for anonymous; or a [`Refusal`] (returned or thrown). */
export type Identity = string | null | undefined;

/**
 * The application's check at the upgrade (its own cookie or token): return the identity the session belongs to
 * (`null` for anonymous), or return/throw a [`Refusal`] (`Refusal.unauthorized()` → close 4401,
 * `Refusal.forbidden()` → 4403). May be async. Any other error refuses with 1011.
 */
export type Authenticate = (request: IncomingMessage) => Identity | Refusal | Promise<Identity | Refusal>;

/** Heartbeat of durable connections (durable.v1 PING frames) and plain ones (WebSocket pings). */
export interface HeartbeatOptions {
  /** Time between pings. Default 15 000 ms. */
  intervalMs?: number;
  /** How long after a ping a silent connection is declared half-open and closed with 4000. Default 10 000 ms. */
  timeoutMs?: number;
}

/** Options of a [`DurableServer`]. Every limit defaults to the Rust server's. */
export interface DurableServerOptions {
  /** An HTTP(S) server to attach to: its `upgrade` requests for `path` are handled. */
  server?: HttpServer;
  /** Attach to nothing: call `handleUpgrade` yourself (Express, Fastify, several WebSocket servers on one port). */
  noServer?: boolean;
  /** The path(s) served when attached to `server` (default: every path). `session.path` tells them apart. */
  path?: string | readonly string[];
  /** The application's check at the upgrade (see [`Authenticate`]). Default: everyone, anonymous. */
  authenticate?: Authenticate;
  /** Pages allowed to open WebSockets (HTTP 403 before the upgrade otherwise). Default: same host. */
  allowedOrigins?: OriginPolicy;
  /**
   * Clients that do not offer durable.v1 (plain WebSockets, reconnecting-websocket): handed to this function
   * with the WebSocket heartbeat and size limit applied. Default: closed with 1008 "durable.v1 required".
   */
  plain?: (ws: WebSocket, request: IncomingMessage) => void;
  /** How long a session without a connection is kept for a resume. Default 120 000 ms. */
  sessionTtlMs?: number;
  /** Most sessions held at once; a new one beyond it is refused with close 1013 "too many sessions". Default 10 000. */
  maxSessions?: number;
  /** Most sessions one named identity may hold (anonymous is bounded by `maxSessions` only). Default 100. */
  maxSessionsPerIdentity?: number;
  /** Largest message payload, in bytes; a larger one closes the connection with 1009. Default 1 MiB. */
  maxMessageBytes?: number;
  /**
   * Bounds of each session's replay buffer for its client (sent and unacknowledged, plus queued). Default 10 000
   * messages, 8 MiB. `send` beyond them throws `SendError` `full`; rooms evict such a member (it learns it).
   */
  maxBufferMessages?: number;
  /** See `maxBufferMessages`. Default 8 MiB (at least `maxMessageBytes`). */
  maxBufferBytes?: number;
  /** Payload bytes all replay buffers may hold together (a broadcast counts once per member). Default 4 GiB. */
  maxBufferedBytes?: number;
  /** Server heartbeat; `false` turns it off. Default a ping every 15 s, dead after 10 s of silence. */
  heartbeat?: HeartbeatOptions | false;
  /** How long a new durable connection may take to send its HELLO (then 1002). Default 10 000 ms. */
  handshakeTimeoutMs?: number;
  /** How long `close()` waits for connections to finish closing. Default 3000 ms. */
  shutdownGraceMs?: number;
  /** Connections in a row of one session that may end in a protocol error before it is dropped. Default 3. */
  maxProtocolErrors?: number;
  /** Bytes waiting in one connection's write queue beyond which the server stops producing for it. Default 1 MiB. */
  maxOutgoingBytes?: number;
  /** A connection whose write queue stays full this long is closed with 1013 (its session stays). Default 30 000 ms. */
  sendTimeoutMs?: number;
  /** Messages per second one client may send on average (beyond it the server reads more slowly). Default 10 000. */
  maxMessagesPerSecond?: number;
  /** Messages one client may send at once above the average rate. Default 10 000. */
  burst?: number;
}

/** @internal The limits in force. */
export interface Limits
  extends Pick<Defaults, "maxMessageBytes" | "handshakeTimeoutMs" | "shutdownGraceMs" | "maxOutgoingBytes" | "sendTimeoutMs" | "maxMessagesPerSecond" | "burst"> {
  heartbeat: { intervalMs: number; timeoutMs: number } | undefined;
}

/** Counters since the start (`sessions` and `connections`: now), as the Rust server's `/stats`. */
export interface Stats {
  sessions: number;
  connections: number;
  messages_in: number;
  messages_out: number;
  replayed: number;
  duplicates_dropped: number;
  resumes: number;
  sessions_lost: number;
  sessions_expired: number;
  sessions_overflowed: number;
  cuts: number;
  origin_rejections: number;
  auth_failures: number;
  heartbeat_timeouts: number;
  protocol_errors: number;
}

type Counters = Omit<Stats, "sessions" | "connections">;

/** The events of a [`DurableServer`]. */
export interface DurableServerEvents {
  /** A new session (not a new connection: a session outlives reconnects). */
  session: [session: Session, request: IncomingMessage];
  /** A handshake was refused: by the origin check (HTTP 403) or by `authenticate` (its close code). */
  refused: [request: IncomingMessage, code: number, reason: string];
  /** An application callback threw (a "message" or "ended" listener). Without a listener it is rethrown. */
  error: [error: unknown];
}

/** A room: a named set of sessions with one order of messages for all members. */
export class Room {
  /** @internal */
  readonly members = new Set<Session>();

  /** @internal */
  constructor(
    private readonly server: DurableServer,
    /** The room's name. */
    readonly name: string,
  ) {}

  /** @internal */
  add(session: Session) {
    if (!session.live) return;
    session.rooms.add(this.name);
    this.members.add(session);
  }

  /** @internal */
  remove(session: Session) {
    session.rooms.delete(this.name);
    this.members.delete(session);
    this.server.dropRoomIfEmpty(this);
  }

  /** The members, in the room's order (joining order). */
  get sessions(): Session[] {
    return [...this.members];
  }

  /** How many members. */
  get size(): number {
    return this.members.size;
  }

  /**
   * Sends `value` to every member, in one order shared by all (whatever calls it: a handler, an HTTP route, a
   * timer), each through its own replayable session; returns how many took it. A member whose client cannot keep
   * up is evicted (it learns it as `sessionlost`), never silently skipped. Throws `SendError` (`too-large`, or
   * `full` when the server's byte budget is spent: then nobody got it).
   */
  send(value: Sendable): number {
    return this.server.broadcast([...this.members], encode(value));
  }
}

/**
 * Durable WebSocket sessions (durable.v1) for a Node.js server: the same protocol core as the Rust server,
 * compiled to wasm, over `ws`.
 */
export class DurableServer extends EventEmitter<DurableServerEvents> {
  /** @internal The protocol core. */
  readonly core: CoreEndpoint;
  /** @internal */
  readonly limits: Limits;
  /** @internal */
  readonly counters: Counters = {
    messages_in: 0,
    messages_out: 0,
    replayed: 0,
    duplicates_dropped: 0,
    resumes: 0,
    sessions_lost: 0,
    sessions_expired: 0,
    sessions_overflowed: 0,
    cuts: 0,
    origin_rejections: 0,
    auth_failures: 0,
    heartbeat_timeouts: 0,
    protocol_errors: 0,
  };
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<number, Session>();
  private readonly rooms = new Map<string, Room>();
  private readonly identities = new Map<string | null, Set<Session>>();
  private readonly connections = new Map<number, Connection>();
  /** @internal What the server records for `metrics()`. */
  readonly recorder = new ServerMetrics();
  private readonly plainSockets = new Map<WebSocket, OpenConnection>();
  private nextConn = 1;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepAt = Infinity;
  private shuttingDown = false;
  private readonly paths: readonly string[] | undefined;
  private readonly server: HttpServer | undefined;
  private readonly onUpgrade: ((request: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;

  constructor(private readonly options: DurableServerOptions = {}) {
    super();
    const heartbeat =
      options.heartbeat === false
        ? undefined
        : { intervalMs: options.heartbeat?.intervalMs ?? DEFAULTS.heartbeatIntervalMs, timeoutMs: options.heartbeat?.timeoutMs ?? DEFAULTS.heartbeatTimeoutMs };
    if (heartbeat && heartbeat.intervalMs <= 0) throw new RangeError("heartbeat.intervalMs must be positive (or heartbeat: false)");
    if (heartbeat && heartbeat.timeoutMs <= 0) throw new RangeError("heartbeat.timeoutMs must be positive");
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULTS.maxMessageBytes;
    const maxBufferBytes = Math.max(options.maxBufferBytes ?? DEFAULTS.maxBufferBytes, maxMessageBytes);
    if ((options.maxBufferMessages ?? 1) < 1) throw new RangeError("maxBufferMessages must be at least 1");
    this.limits = {
      maxMessageBytes,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs,
      shutdownGraceMs: options.shutdownGraceMs ?? DEFAULTS.shutdownGraceMs,
      maxOutgoingBytes: Math.max(1, options.maxOutgoingBytes ?? DEFAULTS.maxOutgoingBytes),
      sendTimeoutMs: options.sendTimeoutMs ?? DEFAULTS.sendTimeoutMs,
      maxMessagesPerSecond: Math.max(1, options.maxMessagesPerSecond ?? DEFAULTS.maxMessagesPerSecond),
      burst: Math.max(1, options.burst ?? DEFAULTS.burst),
      heartbeat,
    };
    this.core = new CoreEndpoint(
      options.sessionTtlMs ?? DEFAULTS.sessionTtlMs,
      options.maxSessions ?? DEFAULTS.maxSessions,
      options.maxSessionsPerIdentity ?? DEFAULTS.maxSessionsPerIdentity,
      options.maxProtocolErrors ?? DEFAULTS.maxProtocolErrors,
      options.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes,
      maxMessageBytes,
      options.maxBufferMessages ?? DEFAULTS.maxBufferMessages,
      maxBufferBytes,
      heartbeat?.intervalMs ?? 0,
      heartbeat?.timeoutMs ?? 0,
    );
    this.recorder.gauges(() => {
      // The replay and duplicate counters of the live sessions, as of now.
      for (const session of this.sessions.values()) this.noteStats(session);
      return { sessions: this.core.len(), bufferedMessages: this.core.buffered_messages(), bufferedBytes: this.core.buffered_bytes() };
    });
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: maxMessageBytes + FRAME_OVERHEAD,
      handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    this.paths = options.path === undefined ? undefined : typeof options.path === "string" ? [options.path] : options.path;
    if (options.server && !options.noServer) {
      this.server = options.server;
      this.onUpgrade = (request, socket, head) => {
        if (this.shouldHandle(request)) this.handleUpgrade(request, socket, head);
      };
      this.server.on("upgrade", this.onUpgrade);
    } else if (!options.noServer) {
      throw new TypeError("DurableServer: pass { server } or { noServer: true }");
    }
  }

  /** Whether `request`'s path is one this server serves (always true without `path`). */
  shouldHandle(request: IncomingMessage): boolean {
    if (!this.paths) return true;
    const path = (request.url ?? "/").split("?")[0];
    return this.paths.includes(path!);
  }

  /**
   * Handles one WebSocket upgrade request (for `noServer`: call it from your server's `upgrade` event). Checks the
   * Origin (HTTP 403), runs `authenticate`, accepts the upgrade (selecting durable.v1 when offered) and drives the
   * connection; a refusal is a close code after the upgrade, which the browser client can act on.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const loopback = this.listensOnLoopback();
    if (!originAllowed(this.options.allowedOrigins, request, loopback)) {
      this.counters.origin_rejections++;
      this.recorder.refused(METRIC_LABELS.handshake.ORIGIN);
      this.emit("refused", request, 403, "origin not allowed");
      socket.end("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 19\r\nConnection: close\r\n\r\norigin not allowed\n");
      return;
    }
    const decide = async (): Promise<Identity | Refusal> => (this.options.authenticate ? this.options.authenticate(request) : null);
    decide()
      .catch((error: unknown) => (error instanceof Refusal ? error : new Refusal(1011, "authentication failed")))
      .then((identity) => {
        if (socket.destroyed) return;
        this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, request, identity));
      });
  }

  private accept(ws: WebSocket, request: IncomingMessage, identity: Identity | Refusal) {
    ws.binaryType = "nodebuffer";
    if (this.shuttingDown) {
      ws.close(1012, "server restart");
      return;
    }
    if (identity instanceof Refusal) {
      this.counters.auth_failures++;
      this.recorder.refused(METRIC_LABELS.handshake.AUTH);
      const code = refusalCode(identity.code);
      const open = this.recorder.open(ws, ws.protocol === SUBPROTOCOL ? METRIC_LABELS.mode.DURABLE : METRIC_LABELS.mode.PLAIN);
      if (this.recorder.closing(open, code)) this.counters.protocol_errors++;
      this.emit("refused", request, identity.code, identity.reason);
      ws.close(code, closeReason(identity.reason));
      setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS).unref();
      return;
    }
    const path = (request.url ?? "/").split("?")[0]!;
    if (ws.protocol !== SUBPROTOCOL) return this.acceptPlain(ws, request);
    const id = this.nextConn++;
    this.connections.set(id, new Connection(this, id, ws, identity ?? null, request, path));
  }

  private acceptPlain(ws: WebSocket, request: IncomingMessage) {
    const plain = this.options.plain;
    const recorder = this.recorder;
    const open = recorder.open(ws, METRIC_LABELS.mode.PLAIN);
    if (!plain) {
      recorder.refused(METRIC_LABELS.handshake.NOT_DURABLE);
      recorder.closing(open, 1008);
      ws.close(1008, "durable.v1 required");
      return;
    }
    this.plainSockets.set(ws, open);
    const rate = new ReadRate(ws, this.limits, () => ws.readyState === ws.OPEN);
    // A client that does not read: once its outgoing queue stays over maxOutgoingBytes for sendTimeoutMs, closed
    // with 1013 (as the Rust server's PlainSocket and durable connections).
    const { maxOutgoingBytes, sendTimeoutMs } = this.limits;
    let fullSince: NodeJS.Timeout | undefined;
    const watchBacklog = () => {
      if (fullSince || ws.bufferedAmount < maxOutgoingBytes) return;
      fullSince = setTimeout(() => {
        fullSince = undefined;
        if (ws.readyState !== ws.OPEN || ws.bufferedAmount < maxOutgoingBytes) return;
        recorder.limit(METRIC_LABELS.limit.SLOW_CLIENT);
        recorder.closing(open, 1013);
        ws.close(1013, "client too slow: outgoing queue full");
        setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS).unref();
      }, sendTimeoutMs);
      fullSince.unref();
    };
    // What the application sends counts as messages out (as the Rust server's PlainSocket::send).
    const send = ws.send;
    const counters = this.counters;
    ws.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
      if (ws.readyState === ws.OPEN) {
        counters.messages_out++;
        recorder.sent(byteLength(data));
      }
      const sent = (send as (...args: unknown[]) => void).call(this, data, ...rest);
      watchBacklog();
      return sent;
    } as typeof ws.send;
    const max = this.limits.maxMessageBytes;
    let heard = true;
    let timer: NodeJS.Timeout | undefined;
    const heartbeat = this.limits.heartbeat;
    if (heartbeat) {
      const ping = () => {
        heard = false;
        ws.ping();
        timer = setTimeout(() => {
          // Answered: the next ping an interval after this one (as the Rust server's keepalive).
          if (heard) return void (timer = setTimeout(ping, Math.max(0, heartbeat.intervalMs - heartbeat.timeoutMs))).unref();
          this.counters.heartbeat_timeouts++;
          recorder.heartbeatTimeouts.inc();
          recorder.closing(open, 4000);
          ws.close(4000, "heartbeat timeout");
          setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS).unref();
        }, heartbeat.timeoutMs);
        timer.unref();
      };
      timer = setTimeout(ping, heartbeat.intervalMs);
      timer.unref();
    }
    const alive = () => {
      heard = true;
    };
    ws.on("pong", alive);
    ws.on("ping", alive);
    // Listeners of the application come after this one: a too-large message never reaches them.
    ws.on("message", (data: unknown) => {
      alive();
      rate.took();
      const bytes = byteLength(data);
      if (bytes > max) {
        if (recorder.closing(open, 1009)) this.counters.protocol_errors++;
        ws.close(1009, "message too big");
        return;
      }
      this.counters.messages_in++;
      recorder.messagesIn.inc();
      recorder.bytesIn.inc(bytes);
    });
    ws.on("error", (error) => {
      this.counters.protocol_errors++;
      recorder.wsError(error);
    });
    ws.on("close", () => {
      clearTimeout(timer);
      clearTimeout(fullSince);
      this.plainSockets.delete(ws);
    });
    plain(ws, request);
  }

  private listensOnLoopback(): boolean {
    const address = this.server?.address() as AddressInfo | string | null | undefined;
    return typeof address === "object" && address !== null && isLoopback(address.address);
  }

  /** The live session `id`. */
  session(id: number): Session | undefined {
    return this.sessions.get(id);
  }

  /** Every live session. */
  get liveSessions(): Session[] {
    return [...this.sessions.values()];
  }

  /** The live sessions of `identity` (`null`: the anonymous ones). */
  sessionsOf(identity: string | null): Session[] {
    return [...(this.identities.get(identity) ?? [])];
  }

  /** Sends `value` to every live session of `identity` (all their tabs and devices); returns how many took it. */
  sendToUser(identity: string, value: Sendable): number {
    const payload = encode(value);
    let reached = 0;
    for (const session of this.sessionsOf(identity)) {
      try {
        this.sendTo(session, payload);
        reached++;
      } catch {
        // full or ended: that session does not count
      }
    }
    return reached;
  }

  /** Room `name` (created by the first `join`; reachable from anywhere). */
  room(name: string): Room {
    let room = this.rooms.get(name);
    if (!room) {
      room = new Room(this, name);
      this.rooms.set(name, room);
    }
    return room;
  }

  /**
   * Every metric in the Prometheus text format 0.0.4 (serve it with `METRICS_CONTENT_TYPE`): the Rust server's
   * names, labels and buckets (`durable_ws_…`, from the same table in the core), so one dashboard reads either.
   */
  metrics(): string {
    return this.recorder.render();
  }

  /** Counters and sizes right now (the Rust server's `/stats`). */
  stats(): Stats {
    for (const session of this.sessions.values()) this.noteStats(session);
    return { sessions: this.core.len(), connections: this.connections.size + this.plainSockets.size, ...this.counters };
  }

  /** Ends session `id` now, as a TTL expiry would (an attached connection closes with 4004). False if not live. */
  expire(session: Session): boolean {
    const ended = this.core.end(now(), session.id, "expired");
    this.settle();
    return ended;
  }

  /** The session holding `token` (32 hex digits; the client's credential), for fault endpoints. */
  findToken(hex: string): Session | undefined {
    const id = this.core.find(hex.toLowerCase());
    return id < 0 ? undefined : this.sessions.get(id);
  }

  /** Fault injection for tests: drops the session's connection (or every connection) without a close frame. */
  cut(session?: Session): number {
    const targets = session ? (session.conn ? [session.conn] : []) : [...this.connections.values()];
    for (const conn of targets) conn.cut();
    let n = targets.length;
    if (!session) {
      for (const ws of this.plainSockets.keys()) ws.terminate();
      n += this.plainSockets.size;
    }
    this.counters.cuts += n;
    return n;
  }

  /** Fault injection for tests: the connection(s) stop reading and writing for `ms` (a half-open link). */
  stall(ms: number, session?: Session): number {
    const targets = session ? (session.conn ? [session.conn] : []) : [...this.connections.values()];
    for (const conn of targets) conn.stall(ms);
    return targets.length;
  }

  /**
   * Graceful shutdown: refuses new connections, closes every open one with 1012 "server restart" (clients
   * reconnect; sessions are not persisted) and waits up to `shutdownGraceMs` for them to finish closing.
   */
  async close(): Promise<void> {
    this.shuttingDown = true;
    if (this.server && this.onUpgrade) this.server.off("upgrade", this.onUpgrade);
    for (const conn of this.connections.values()) conn.close(1012, "server restart");
    for (const [ws, open] of this.plainSockets) {
      this.recorder.closing(open, 1012);
      ws.close(1012, "server restart");
    }
    const deadline = Date.now() + this.limits.shutdownGraceMs;
    while ((this.connections.size > 0 || this.plainSockets.size > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const conn of this.connections.values()) conn.cut();
    for (const ws of this.plainSockets.keys()) ws.terminate();
    clearTimeout(this.sweepTimer);
  }

  // ---------------------------------------------------------------------------------------------------------
  // For the connections and sessions.

  /** @internal */
  connection(id: number): Connection | undefined {
    return this.connections.get(id);
  }

  /** @internal */
  forget(conn: number) {
    this.connections.delete(conn);
  }

  /** @internal A session was created on a connection. */
  created(id: number, identity: string | null, status: WelcomeStatusName, path: string, request: IncomingMessage): Session {
    const session = new Session(this, id, identity, status, path, request);
    this.sessions.set(id, session);
    let owned = this.identities.get(identity);
    if (!owned) this.identities.set(identity, (owned = new Set()));
    owned.add(session);
    return session;
  }

  /** @internal Hands a message to the application; a throwing listener is reported, not fatal to the driver. */
  deliver(session: Session, data: Message) {
    try {
      session.emitMessage(data);
    } catch (error) {
      this.report(error);
    }
  }

  private report(error: unknown) {
    if (this.listenerCount("error") > 0) this.emit("error", error);
    else
      process.nextTick(() => {
        throw error;
      });
  }

  /** @internal Queues a payload into one session; returns its seq or throws `SendError`. */
  sendTo(session: Session, payload: string | Uint8Array): number {
    if (!session.live) throw new SendError("ended", "the session ended");
    const t = now();
    const seq = typeof payload === "string" ? this.core.send_text(t, session.id, payload) : this.core.send_binary(t, session.id, payload);
    Session.check(seq);
    this.counters.messages_out++;
    this.recorder.sent(byteLength(payload));
    session.conn?.schedulePump();
    return seq;
  }

  /** @internal One payload for many sessions, in one order (see `Room.send`). */
  broadcast(members: Session[], payload: string | Uint8Array): number {
    const live = members.filter((session) => session.live);
    if (live.length === 0) return 0;
    const ids = Float64Array.from(live, (session) => session.id);
    const t = now();
    const results =
      typeof payload === "string" ? this.core.broadcast_text(t, ids, payload, true) : this.core.broadcast_binary(t, ids, payload, true);
    if (!results) throw new SendError("full", "the server's buffer budget is spent");
    let reached = 0;
    results.forEach((result, i) => {
      if (result === -1) throw SendError.of(-1);
      if (result > 0) {
        reached++;
        live[i]!.conn?.schedulePump();
      }
    });
    this.counters.messages_out += reached;
    if (reached > 0) this.recorder.sent(byteLength(payload), reached);
    this.settle();
    return reached;
  }

  /** @internal */
  goodbye(session: Session) {
    this.core.goodbye(now(), session.id);
    session.conn?.schedulePump();
    this.settle();
  }

  /** @internal */
  evict(session: Session) {
    this.core.end(now(), session.id, "overflow");
    this.settle();
  }

  /** @internal */
  dropRoomIfEmpty(room: Room) {
    if (room.size === 0 && this.rooms.get(room.name) === room) this.rooms.delete(room.name);
  }

  /** @internal Adds a session's replay and duplicate counters to the server's. */
  noteStats(session: Session) {
    const stats = this.core.stats(session.id);
    if (!stats) return;
    const replayed = stats[3]! - session.seen.replayed;
    const duplicates = stats[5]! - session.seen.duplicatesDropped;
    this.counters.replayed += replayed;
    this.counters.duplicates_dropped += duplicates;
    if (replayed > 0) this.recorder.replayed.inc(replayed);
    if (duplicates > 0) this.recorder.duplicates.inc(duplicates);
    session.seen = { replayed: stats[3]!, duplicatesDropped: stats[5]! };
  }

  /**
   * @internal Forwards every ended session: its connection is told how to close, its rooms and identity forget
   * it, its application gets the messages delivered but not yet handed over, then `ended` with every message
   * the client never confirmed.
   */
  settle() {
    for (;;) {
      const ended = this.core.poll_ended() as CoreEnded | undefined;
      if (!ended) return;
      this.ended(ended);
    }
  }

  private ended(ended: CoreEnded) {
    const session = this.sessions.get(ended.session);
    if (ended.reason === "expired") this.counters.sessions_expired++;
    if (ended.reason === "overflow") {
      this.counters.sessions_overflowed++;
      this.recorder.limit(METRIC_LABELS.limit.REPLAY_BUFFER);
    }
    this.recorder.sessionEnded(ended.reason, ended.unconfirmed.length);
    if (ended.attached >= 0) {
      // The session is over, not waiting for a resume: closing its connection is no `disconnected`.
      if (session) session.conn = undefined;
      this.connections.get(ended.attached)?.end(ended.closing);
    }
    if (!session) return;
    this.sessions.delete(ended.session);
    for (const name of session.rooms) {
      const room = this.rooms.get(name);
      if (room) {
        room.members.delete(session);
        this.dropRoomIfEmpty(room);
      }
    }
    const owned = this.identities.get(session.identity);
    owned?.delete(session);
    if (owned?.size === 0) this.identities.delete(session.identity);
    for (const data of ended.delivered) this.deliver(session, decoded(data));
    this.counters.messages_in += ended.delivered.length;
    this.recorder.received(ended.delivered);
    const info = { reason: ended.reason, unconfirmed: ended.unconfirmed.map(([seq, data]) => ({ seq, data: decoded(data) })) };
    session.finish(info);
    try {
      session.emit("ended", info);
    } catch (error) {
      this.report(error);
    }
  }

  /** @internal A session was detached: its expiry may now be the earliest. */
  armSweep() {
    const at = this.core.poll_timeout();
    if (at < 0) return;
    // Wake at the next expiry, but at least every second (as the Rust sweeper).
    const due = Math.min(at, now() + 1000);
    if (this.sweepTimer && due >= this.sweepAt) return;
    clearTimeout(this.sweepTimer);
    this.sweepAt = due;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      this.sweepAt = Infinity;
      this.core.handle_timeout(now());
      this.settle();
      this.armSweep();
    }, Math.max(0, due - now()));
    this.sweepTimer.unref();
  }
}

export { WebSocket };
