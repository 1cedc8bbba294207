import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { WebSocket } from "ws";
import { CLOSE_TIMEOUT_MS, METRIC_LABELS, closeReason, now } from "./core";
import type { CoreClosing, CoreHello, CoreInputError } from "./core";
import type { OpenConnection } from "./metrics";
import { ReadRate } from "./rate";
import type { DurableServer } from "./server";
import { decoded, Session } from "./session";

/**
 * One durable connection, driven like crates/server/src/connection.rs: the HELLO, then every received message
 * into the core, every frame the core produces out (while the socket's write queue has room), the core's
 * deadlines as one timer, and the session's messages and acknowledgements to the application.
 */
export class Connection {
  session: Session | undefined;
  /** Set once the connection is ending: nothing more is read or written by the driver. */
  private closing = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = -1;
  private pumpQueued = false;
  private blocked = false;
  private blockedTimer: NodeJS.Timeout | undefined;
  private stalled: { until: number; timer: NodeJS.Timeout; queue: Array<[Buffer, boolean]> } | undefined;
  private readonly rate: ReadRate;
  /** Counted in the metrics while open, then its lifetime by close code. */
  private readonly open: OpenConnection;
  /** Something arrived since the session's replay and duplicate counters were last added up. */
  private heard = false;

  constructor(
    private readonly server: DurableServer,
    readonly id: number,
    readonly ws: WebSocket,
    private readonly identity: string | null,
    private readonly request: IncomingMessage,
    private readonly path: string,
  ) {
    this.rate = new ReadRate(ws, server.limits, () => !this.closing && !this.stalled);
    this.open = server.recorder.open(ws, METRIC_LABELS.mode.DURABLE);
    ws.on("message", (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on("close", () => this.onClose());
    ws.on("error", (error) => {
      // ws closes the connection itself (1002 / 1007 / 1009 for what the peer did wrong) and emits "close".
      this.server.counters.protocol_errors++;
      this.server.recorder.wsError(error);
    });
    this.handshakeTimer = setTimeout(() => {
      server.recorder.refused(METRIC_LABELS.handshake.MALFORMED);
      this.close(1002, "no hello in time");
    }, server.limits.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  private onMessage(data: Buffer, isBinary: boolean) {
    if (this.closing) return;
    if (this.stalled) {
      this.stalled.queue.push([data, isBinary]);
      return;
    }
    this.rate.took();
    this.heard = true;
    if (!this.session) return this.hello(data, isBinary);
    const server = this.server;
    const error = server.core.handle_message(now(), this.session.id, this.id, data, !isBinary) as CoreInputError | undefined;
    if (error) {
      if (error.notAttached) return this.cut();
      server.settle();
      return this.close(error.code, closeReason(error.reason));
    }
    this.schedulePump();
  }

  private hello(data: Buffer, isBinary: boolean) {
    clearTimeout(this.handshakeTimer);
    const server = this.server;
    const recorder = server.recorder;
    if (!isBinary) {
      recorder.refused(METRIC_LABELS.handshake.MALFORMED);
      return this.close(1002, "first frame must be binary hello");
    }
    let answer: CoreHello;
    for (;;) {
      answer = server.core.hello(now(), this.id, this.identity ?? undefined, data, randomBytes(16)) as CoreHello;
      if (answer.ok || !answer.retry) break;
    }
    if (!answer.ok) {
      if (answer.code === 1002) recorder.refused(METRIC_LABELS.handshake.MALFORMED);
      else recorder.refusedSession(answer.reason);
      server.settle();
      return this.close(answer.code, answer.reason);
    }
    recorder.welcome(answer.status, answer.foreign);
    if (answer.superseded >= 0) {
      const old = server.connection(answer.superseded);
      // Resumed here: the old connection no longer drives the session (its close is no `disconnected`).
      if (old?.session && old.session.conn === old) old.session.conn = undefined;
      old?.close(4409, "superseded: session resumed on another connection");
    }
    let session: Session;
    if (answer.created) {
      if (answer.status !== "new") server.counters.sessions_lost++;
      session = server.created(answer.session, this.identity, answer.status, this.path, this.request);
      session.conn = this;
      this.session = session;
      server.settle();
      this.pump();
      server.emit("session", session, this.request);
    } else {
      server.counters.resumes++;
      session = server.session(answer.session)!;
      session.conn = this;
      this.session = session;
      server.settle();
      this.pump();
      session.emit("resumed");
    }
  }

  /** Something was queued for the session: write it soon (once per tick, however many were queued). */
  schedulePump() {
    if (this.pumpQueued || this.closing) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /** Writes what the core produces while the write queue has room, then hands over events, then re-arms the timer. */
  pump() {
    const session = this.session;
    if (!session || this.closing || this.stalled) return;
    const server = this.server;
    const core = server.core;
    const ws = this.ws;
    const max = server.limits.maxOutgoingBytes;
    const t = now();
    let room = max - ws.bufferedAmount;
    // Every frame of this pass in one write (writev) instead of one syscall each.
    const socket = (ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    let corked = false;
    let wrote = false;
    while (room > 0) {
      const batch = core.transmit(t, session.id, this.id, room);
      if (!batch) break;
      wrote = true;
      if (!corked && socket) {
        socket.cork();
        corked = true;
      }
      const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
      for (let offset = 0; offset < batch.length; ) {
        const length = view.getUint32(offset, true);
        offset += 4;
        ws.send(batch.subarray(offset, offset + length), { binary: true, compress: false });
        offset += length;
      }
      room = max - ws.bufferedAmount;
    }
    if (corked) socket!.uncork();
    const recorder = server.recorder;
    if (wrote) session.ackClock.sent(core.highest_sent(session.id), performance.now());
    this.setBlocked(room <= 0);
    let dead = false;
    const delivered: Array<string | Uint8Array> = [];
    for (;;) {
      const event = core.poll_event(session.id) as string | Uint8Array | number | undefined;
      if (event === undefined) break;
      if (typeof event === "number") {
        if (event >= 0) {
          session.confirm(event);
          session.ackClock.acked(event, performance.now(), recorder.ackDelay);
        } else dead = true;
      } else {
        delivered.push(event);
      }
    }
    if (this.heard) {
      // Replays and dropped duplicates follow what arrived (a resume, a client sending again).
      this.heard = false;
      server.noteStats(session);
    }
    server.settle();
    // Delivered by the core (and soon acknowledged): the application gets them whatever happens next.
    if (delivered.length > 0) {
      server.counters.messages_in += delivered.length;
      recorder.received(delivered);
      for (const data of delivered) server.deliver(session, decoded(data));
    }
    if (this.closing) return;
    if (dead) {
      server.counters.heartbeat_timeouts++;
      recorder.heartbeatTimeouts.inc();
      return this.close(4000, "heartbeat timeout");
    }
    const at = core.timeout(session.id);
    if (at !== this.timerAt) {
      clearTimeout(this.timer);
      this.timerAt = at;
      this.timer = at < 0 ? undefined : setTimeout(() => this.onDeadline(), Math.max(0, at - now()));
    }
  }

  private onDeadline() {
    this.timer = undefined;
    this.timerAt = -1;
    if (!this.session || this.closing || this.stalled) return;
    this.server.core.handle_session_timeout(now(), this.session.id, this.id);
    this.pump();
  }

  /** While the write queue is full: stop producing, wake on drain, give up after `sendTimeoutMs`. */
  private setBlocked(blocked: boolean) {
    if (blocked === this.blocked) return;
    this.blocked = blocked;
    clearTimeout(this.blockedTimer);
    this.blockedTimer = undefined;
    if (!blocked) return;
    const socket = (this.ws as unknown as { _socket?: NodeJS.EventEmitter })._socket;
    socket?.once("drain", () => {
      this.blocked = false;
      clearTimeout(this.blockedTimer);
      this.pump();
    });
    this.blockedTimer = setTimeout(() => {
      if (!this.blocked) return;
      this.server.recorder.limit(METRIC_LABELS.limit.SLOW_CLIENT);
      this.close(1013, "client too slow: outgoing queue full");
    }, this.server.limits.sendTimeoutMs);
    this.blockedTimer.unref();
  }

  /** Detaches the session (it waits for a resume) and closes with `code` after what was written. */
  close(code: number, reason: string) {
    if (this.closing) return;
    // 1002, 1007 and 1009 count as protocol errors (as in the Rust server), whoever decided on them.
    if (this.server.recorder.closing(this.open, code)) this.server.counters.protocol_errors++;
    this.detach();
    this.closing = true;
    this.clearTimers();
    this.ws.close(code, closeReason(reason));
    setTimeout(() => this.ws.terminate(), CLOSE_TIMEOUT_MS).unref();
  }

  /**
   * The session ended: closes as the core's policy says — now, or (after a goodbye either way) once the client has
   * had `waitMs` to close with its application's code (PROTOCOL §5.7).
   */
  end(closing: CoreClosing) {
    if (closing.how === "close") return this.close(closing.code, closing.reason);
    if (closing.how !== "await" || this.closing) return;
    this.open.code ??= closing.code;
    this.detach();
    this.closing = true;
    this.clearTimers();
    setTimeout(() => {
      this.ws.close(closing.code, closeReason(closing.reason));
      setTimeout(() => this.ws.terminate(), CLOSE_TIMEOUT_MS).unref();
    }, closing.waitMs).unref();
  }

  /** Drops the connection abruptly, without a close frame (a cut). */
  cut() {
    this.detach();
    this.closing = true;
    this.clearTimers();
    this.ws.terminate();
  }

  /** Fault injection: neither read nor write nor time out for `ms` (a half-open link). */
  stall(ms: number) {
    if (this.closing) return;
    if (this.stalled) clearTimeout(this.stalled.timer);
    const queue = this.stalled?.queue ?? [];
    this.clearTimers();
    this.ws.pause();
    const timer = setTimeout(() => {
      const held = this.stalled?.queue ?? [];
      this.stalled = undefined;
      if (this.closing) return;
      if (!this.rate.paused) this.ws.resume();
      for (const [data, isBinary] of held) this.onMessage(data, isBinary);
      this.pump();
    }, ms);
    this.stalled = { until: now() + ms, timer, queue };
  }

  private clearTimers() {
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.timer);
    clearTimeout(this.blockedTimer);
    this.timer = undefined;
    this.timerAt = -1;
  }

  /** The session (if this connection still drives it) waits for a resume from now on. */
  private detach() {
    const session = this.session;
    if (!session || session.conn !== this) return;
    const server = this.server;
    server.core.detach(now(), session.id, this.id);
    session.conn = undefined;
    server.noteStats(session);
    server.settle();
    server.armSweep();
    if (session.live) session.emit("disconnected");
  }

  private onClose() {
    this.detach();
    this.closing = true;
    this.clearTimers();
    if (this.stalled) clearTimeout(this.stalled.timer);
    this.server.forget(this.id);
  }
}
