import type { EndReason } from "./core";

/** Why `send` queued nothing. */
export type SendErrorCode = "full" | "too-large" | "ended";

/**
 * A message was not queued (nothing was): the session's replay buffer for its client is full (`full`: it neither
 * reads nor acknowledges — wait for deliveries, or `evict()` it), the payload is over `maxMessageBytes`
 * (`too-large`), or the session ended (`ended`).
 */
export class SendError extends Error {
  override name = "SendError";
  constructor(readonly code: SendErrorCode, message: string) {
    super(message);
  }

  /** @internal */
  static of(result: number): SendError {
    if (result === -1) return new SendError("too-large", "the message exceeds maxMessageBytes");
    if (result === -2) return new SendError("full", "the client's replay buffer is full");
    return new SendError("ended", "the session ended");
  }
}

/** A queued message was never confirmed by the client: its session ended first (`reason`). */
export class UnconfirmedError extends Error {
  override name = "UnconfirmedError";
  constructor(readonly seq: number, readonly reason: EndReason) {
    super(`the session ended (${reason}) before the client confirmed message ${seq}`);
  }
}

/**
 * The answer of an `authenticate` hook that turns a client away. The upgrade is accepted (selecting durable.v1)
 * and closed at once with `code`: 4401 (missing or expired credentials: a client with a URL provider fetches
 * fresh ones once) or 4403 (invalid: terminal). A browser can read a close code, never an HTTP status.
 */
export class Refusal extends Error {
  override name = "Refusal";
  constructor(readonly code: 4401 | 4403 | number, readonly reason: string) {
    super(`${code} ${reason}`);
  }

  /** 4401: credentials missing (or expired: pass "credentials expired"). */
  static unauthorized(reason = "missing credentials"): Refusal {
    return new Refusal(4401, reason);
  }

  /** 4403: credentials invalid, or not allowed here. */
  static forbidden(reason = "invalid credentials"): Refusal {
    return new Refusal(4403, reason);
  }
}
