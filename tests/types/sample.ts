// The README snippet, type-checked against the generated declarations (pkg/durable_ws.d.ts).
import init, {
  DurableWebSocket,
  type DurableCloseEvent,
  type DurableWebSocketOptions,
  type DurableWebSocketError,
  type DurableWebSocketErrorName,
  type DurableWebSocketStats,
  type JsonValue,
} from "durable-ws";

await init();
const ws = new DurableWebSocket("ws://127.0.0.1:8080/echo", {
  reconnect: { minDelayMs: 250, maxDelayMs: 30000, factor: 2, jitter: true, maxAttempts: Infinity, stableAfterMs: 5000 },
  connectTimeoutMs: 10000, heartbeat: { intervalMs: 15000, timeoutMs: 10000 },
  buffer: { maxMessages: 10000, maxBytes: 8 * 1024 * 1024 }, protocols: [],
});
ws.addEventListener("message", (e) => console.log(e.data));   // also onmessage-style properties
await ws.send({ any: "JSON value" });   // strings, ArrayBuffer/Uint8Array, or JSON-able values; resolves on ack
ws.close(1000, "bye");

// Every event is typed by its name.
ws.addEventListener("open", (e) => { const durable: boolean = e.durable; void durable; });
ws.addEventListener("reconnecting", (e) => { const n: number = e.attempt + e.delayMs; void n; });
ws.addEventListener("resumed", (e) => { const n: number = e.replayed; void n; });
ws.addEventListener("sessionlost", (e) => {
  const reason: "expired" | "overflow" | "refused" | "notDurable" | "closed" | "storage" = e.reason;
  const unconfirmed: Array<JsonValue | ArrayBuffer> = e.unconfirmed;
  void reason; void unconfirmed;
});
ws.addEventListener("close", (e: DurableCloseEvent) => { const again: boolean = e.willReconnect && e.wasClean; void again; });
ws.addEventListener("error", (e) => { const error: Error = e.error; void error; });
ws.addEventListener("stored", (e) => { const n: number = e.unstored + ws.unstored + ws.stats().unstored; void n; });
new DurableWebSocket("wss://example.com/chat", { persist: "chat" }).free();
ws.onmessage = (e) => { const data: JsonValue | ArrayBuffer = e.data; void data; };
ws.onclose = null;
ws.addEventListener("message", { handleEvent(e: Event) { void e; } }, { once: true });

// The URL may come from a function, sync or async; options are optional.
const fromFunction = new DurableWebSocket(() => "ws://127.0.0.1:8080/echo");
const fromPromise = new DurableWebSocket(async () => "ws://127.0.0.1:8080/echo", { json: true, heartbeat: false });
await fromPromise.send(new Uint8Array([1, 2, 3]));
await fromPromise.send(new ArrayBuffer(8));
await fromPromise.send("text");
const stats: DurableWebSocketStats = fromFunction.stats();
const counts: number = stats.sent + stats.acked + stats.pending + fromFunction.pending + fromFunction.readyState;
const rtt: number | null = stats.lastRttMs;
void counts; void rtt;
fromFunction.reconnect();
fromFunction.free();

const options: DurableWebSocketOptions = { terminalCloseCodes: [4403, [4400, 4499]], closeTimeoutMs: 2000 };
void options;

// Mistakes the declarations catch.
// @ts-expect-error: unknown option
new DurableWebSocket("ws://x/", { reconnct: {} });
// @ts-expect-error: wrong option type
new DurableWebSocket("ws://x/", { connectTimeoutMs: "10s" });
// @ts-expect-error: a URL is a string or a function
new DurableWebSocket(42);
// @ts-expect-error: `send` promises carry no value
const nothing: string = await ws.send("x");
void nothing;
// @ts-expect-error: no such event property
ws.addEventListener("close", (e) => e.data);

// Typed messages: `In` is what arrives (with `json: true`, the parsed value), `Out` what `send` takes.
type ServerMsg = { type: "bid"; amount: number } | { type: "closed" };
type ClientMsg = { type: "bid"; amount: number; key: string };
const typed = new DurableWebSocket<ServerMsg, ClientMsg>("ws://127.0.0.1:8080/auction", { json: true });
typed.addEventListener("message", (e) => {
  if (e.data.type === "bid") { const amount: number = e.data.amount; void amount; }
});
typed.onmessage = (e) => { const kind: "bid" | "closed" = e.data.type; void kind; };
typed.addEventListener("sessionlost", (e) => {
  const resend: ClientMsg[] = e.unconfirmed; // re-send with the same idempotency keys
  void resend;
});
await typed.send({ type: "bid", amount: 3, key: "k1" });
// @ts-expect-error: not a ClientMsg
await typed.send({ type: "bid", amount: "3" });
// @ts-expect-error: `data` is a ServerMsg
typed.addEventListener("message", (e) => e.data.key);
const binary = new DurableWebSocket<ArrayBuffer, Uint8Array>("ws://127.0.0.1:8080/echo");
binary.addEventListener("sessionlost", (e) => { const bytes: ArrayBuffer[] = e.unconfirmed; void bytes; });
binary.free();

// The pending count, as an event (at most one per task, when it changed).
typed.addEventListener("pending", (e) => { const n: number = e.pending; void n; });
typed.onpending = (e) => { const n: number = e.pending + typed.pending; void n; };

// Every error name, and the fields some carry.
ws.addEventListener("error", (e) => {
  switch (e.error.name) {
    case "RefusedError": { const code: number | undefined = e.error.code; void code; break; }
    case "PersistError": case "ConnectTimeoutError": case "HeartbeatTimeoutError": case "ProtocolError":
    case "UrlError": case "SyntaxError": break;
    // @ts-expect-error: no such error
    case "NoSuchError": break;
  }
});
ws.send("x").catch((error: DurableWebSocketError) => {
  const names: DurableWebSocketErrorName[] = ["TooLargeError", "BufferFullError", "InvalidStateError", "SessionLostError"];
  if (names.includes(error.name) && error.name === "SessionLostError") { const why = error.reason; void why; }
});
typed.free();
