// The client of the runtimes test (runtimes.test.mjs), for Node, Deno and Bun: the package as installed from its
// packed tarball, used as README.md shows — `await init()`, then `new DurableWebSocket(url)`, passing a `WebSocket`
// constructor (ws's) only where the runtime has none (Node 20). First the errors a user meets (the class used
// before `init()`; in Node 20, no `WebSocket` option), then COUNT numbered messages through a cutting chaos proxy
// to /echo (exchange.mjs). Prints one line of JSON: the figures and the checks.
//
//   node client.mjs ws://127.0.0.1:PORT/echo [COUNT]
//   deno run -A client.mjs ws://127.0.0.1:PORT/echo [COUNT]        (in this directory: node_modules resolution)
//   bun run client.mjs ws://127.0.0.1:PORT/echo [COUNT]
import init, { DurableWebSocket } from "durable-ws";
import { beforeInit, exchange, withoutWebSocket } from "./exchange.mjs";

const [url, count = "200"] = process.argv.slice(2);
if (!url) throw new Error("usage: client.mjs ws://HOST:PORT/echo [COUNT]");

const checks = { beforeInit: beforeInit(DurableWebSocket, url) };
await init();
const options = {};
if (typeof globalThis.WebSocket != "function") {
  checks.withoutWebSocket = withoutWebSocket(DurableWebSocket, url);
  options.WebSocket = (await import("ws")).WebSocket;
}
const result = await exchange(DurableWebSocket, url, { options, count: Number(count) });
console.log(JSON.stringify({ ...result, webSocket: options.WebSocket ? "ws" : "global", checks }));
