// durable-ws-server: durable.v1 sessions for Node.js servers, on ws, with the protocol core of the Rust server
// compiled to wasm.
export { DurableServer, Room, SUBPROTOCOL } from "./server";
export type { Authenticate, DurableServerEvents, DurableServerOptions, HeartbeatOptions, Identity, Stats } from "./server";
export { Delivery, Session } from "./session";
export type { EndInfo, Message, Sendable, SessionEvents, UnconfirmedMessage } from "./session";
export { Refusal, SendError, UnconfirmedError } from "./errors";
export { METRICS_CONTENT_TYPE } from "./metrics";
export type { SendErrorCode } from "./errors";
export type { EndReason, WelcomeStatusName } from "./core";
export { requestToken, tokenAuth, TOKEN_COOKIE, TOKEN_QUERY_PARAMETER } from "./auth";
export { isLoopback, type OriginPolicy } from "./origin";
