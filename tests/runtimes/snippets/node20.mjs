// README.md's snippet for Node 20 (between the #region markers, which scripts/check-readme-examples.mjs can hold the
// README to): Node 20 has no WebSocket of its own, so the socket takes ws's. runtimes.test.mjs runs it with the
// system's Node 20 against /echo: node snippets/node20.mjs ws://127.0.0.1:PORT/echo prints `received hello`.
const serverUrl = process.argv[2] ?? "ws://127.0.0.1:8080/echo";

// #region readme
import init, { DurableWebSocket } from "durable-ws";
import { WebSocket } from "ws"; // Node 20 has no WebSocket of its own: npm install ws

await init(); // reads durable_ws_bg.wasm from the package's directory, once

const socket = new DurableWebSocket(serverUrl, { WebSocket });
socket.addEventListener("message", (event) => {
  console.log("received", event.data);
  socket.close(); // done: nothing keeps the process alive after a close
});
await socket.send("hello"); // resolves once the server acknowledged it
// #endregion readme
