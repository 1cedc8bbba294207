// README.md's snippet for Node 22+, Deno 2 and Bun (between the #region markers): unchanged from the browser's,
// the runtime's own WebSocket. runtimes.test.mjs runs it in each against /echo, from this project's directory:
//   node snippets/runtime.mjs URL · deno run -A snippets/runtime.mjs URL · bun run snippets/runtime.mjs URL
// print `received hello`.
const serverUrl = process.argv[2] ?? "ws://127.0.0.1:8080/echo";

// #region readme
import init, { DurableWebSocket } from "durable-ws";

await init(); // reads durable_ws_bg.wasm from the package's directory, once

const socket = new DurableWebSocket(serverUrl);
socket.addEventListener("message", (event) => {
  console.log("received", event.data);
  socket.close(); // done: nothing keeps the process alive after a close
});
await socket.send("hello"); // resolves once the server acknowledged it
// #endregion readme
