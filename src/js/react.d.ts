// Declarations of `durable-ws/react` (src/js/react.js).
import type {
  DurableSessionLostReason,
  DurableWebSocket,
  DurableWebSocketData,
  DurableWebSocketError,
  DurableWebSocketMessage,
  DurableWebSocketOptions,
  DurableWebSocketStats,
  DurableWebSocketUnconfirmed,
  DurableWebSocketUrl,
} from "./durable_ws.js";

/** `readyState` values: the socket's, and `UNINSTANTIATED` before it exists (server rendering, before `init()`). */
export declare const ReadyState: {
  readonly UNINSTANTIATED: -1;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
};
export type ReadyStateValue = (typeof ReadyState)[keyof typeof ReadyState];

/** The socket's options (read when it is made), and the hook's own. */
export interface UseDurableWebSocketOptions<In = DurableWebSocketMessage> extends DurableWebSocketOptions {
  /** Components with the same key share one socket (made with the first one's options). Default: the `persist` name, else none. */
  key?: string;
  /** How many of the latest messages `messages` keeps (0: none). Default 100. */
  history?: number;
  /** Called with every message, in order (renders may batch several messages; this sees each once). */
  onMessage?: (data: In) => void;
}

/** What the hook returns; a new object whenever the socket's state changed. */
export interface UseDurableWebSocketResult<In = DurableWebSocketMessage, Out extends DurableWebSocketData = DurableWebSocketData> {
  /** Sends (queued until the socket exists); resolves once the server acknowledged the message. */
  send(data: Out): Promise<void>;
  /** The latest message, or null. */
  lastMessage: In | null;
  /** The latest `history` messages, oldest first. */
  messages: readonly In[];
  readyState: ReadyStateValue;
  /** Messages sent and not yet acknowledged. */
  pending: number;
  stats: DurableWebSocketStats | null;
  /** The latest error event's error. */
  error: DurableWebSocketError | null;
  /** The latest lost session: why, and every message it never confirmed. */
  sessionLost: { reason: DurableSessionLostReason; unconfirmed: DurableWebSocketUnconfirmed<Out>[] } | null;
  /** The socket (null before it exists). */
  socket: DurableWebSocket<In, Out> | null;
}

/**
 * A `DurableWebSocket` for a React component. `url` null: no socket. The socket is made after the component mounted
 * (never during render: server rendering gives the initial state) and closed when the last component using it
 * unmounted; React StrictMode's extra unmount and mount keep the one socket and its session.
 */
export declare function useDurableWebSocket<In = DurableWebSocketMessage, Out extends DurableWebSocketData = DurableWebSocketData>(
  url: DurableWebSocketUrl | null,
  options?: UseDurableWebSocketOptions<In>,
): UseDurableWebSocketResult<In, Out>;
