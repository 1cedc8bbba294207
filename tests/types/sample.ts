// The README snippet, type-checked against the generated declarations (pkg/durable_ws.d.ts).
import init, {
  DurableWebSocket,
  type DurableCloseEvent,
  type DurableWebSocketOptions,
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
