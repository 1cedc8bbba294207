// The README's JS / TypeScript snippet (between the #region markers, checked against README.md and
// pkg-readme.md by scripts/check-readme-examples.mjs), in a Vite app that installed the packed npm package.
// The test passes the server's address in the query: ?server=ws://127.0.0.1:PORT/echo
const serverUrl = new URLSearchParams(location.search).get("server") ?? "ws://127.0.0.1:8080/echo";

// #region readme
import init, { DurableWebSocket } from "durable-ws";

await init(); // fetches and compiles durable_ws_bg.wasm, once

const socket = new DurableWebSocket(serverUrl); // e.g. "wss://example.com/echo"
socket.addEventListener("message", (event) => console.log("received", event.data));
socket.addEventListener("sessionlost", (event) => console.warn("never confirmed:", event.unconfirmed));
await socket.send("hello"); // resolves once the server acknowledged it
// #endregion readme

// For the test: the acknowledged send, then a binary round trip.
document.body.dataset.acknowledged = "hello";
const echoed = new Promise<ArrayBuffer>((resolve) =>
  socket.addEventListener("message", (event) => {
    if (event.data instanceof ArrayBuffer) resolve(event.data);
  }),
);
await socket.send(new Uint8Array([1, 2, 3]));
document.body.dataset.binary = Array.from(new Uint8Array(await echoed)).join(",");
socket.close(1000, "done");

// The snippet of the issue that specified the JS API, verbatim but for the server's address: every option spelled
// out, a JSON value sent and acknowledged, then a normal close.
{
  const ws = new DurableWebSocket(serverUrl, {
    reconnect: { minDelayMs: 250, maxDelayMs: 30000, factor: 2, jitter: true, maxAttempts: Infinity, stableAfterMs: 5000 },
    connectTimeoutMs: 10000,
    heartbeat: { intervalMs: 15000, timeoutMs: 10000 },
    buffer: { maxMessages: 10000, maxBytes: 8 * 1024 * 1024 },
    protocols: [],            // extra subprotocols
  });
  ws.addEventListener("message", (e) => console.log(e.data));   // also onmessage-style properties
  await ws.send({ any: "JSON value" });   // strings, ArrayBuffer/Uint8Array, or JSON-able values; resolves on ack
  ws.close(1000, "bye");
  document.body.dataset.snippet = `acknowledged, readyState ${ws.readyState}`;
}

// The README's typed example: messages typed both ways, a badge of what is not yet confirmed, and a re-send with
// idempotency keys after a lost session. Against /echo, the server's updates are the bids coming back.
const badge = document.body.appendChild(document.createElement("output"));
// #region typed
type Bid = { key: string; amount: number }; // what this page sends
type Update = { key: string; amount: number }; // what the server sends
const auction = new DurableWebSocket<Update, Bid>(serverUrl, { json: true });
auction.addEventListener("pending", (event) => (badge.textContent = `not yet confirmed: ${event.pending}`));
auction.addEventListener("message", (event) => console.log("bid", event.data.amount));
// A message listed by `sessionlost` may still have reached the server (its acknowledgement was lost with the
// session): send it again with the same key, and let the server skip keys it has seen.
auction.addEventListener("sessionlost", (event) => {
  if (event.reason === "closed") return; // closed by this page
  for (const bid of event.unconfirmed) auction.send(bid).catch(console.error);
});
await auction.send({ key: crypto.randomUUID(), amount: 120 });
// #endregion typed
await new Promise((resolve) => setTimeout(resolve)); // the pending event of the acknowledgement's task
auction.close();
document.body.dataset.typed = badge.textContent ?? "";
