// The client of the runtimes test (runtimes.test.mjs) in a browser's module Worker or SharedWorker: what client.mjs
// does in Node, Deno and Bun, with the installed package imported by its path (a worker has no import map; a bundler
// would resolve "durable-ws" to this file). Its URL's query gives the server's address and the count:
// worker.mjs?url=ws://HOST:PORT/echo&count=200. A dedicated worker posts the figures (or { error }) to the page;
// a shared worker to each port that connects.
import init, { DurableWebSocket } from "./node_modules/durable-ws/durable_ws.js";
import { beforeInit, exchange } from "./exchange.mjs";

const query = new URL(import.meta.url).searchParams;
const url = query.get("url");

async function run() {
  const checks = { beforeInit: beforeInit(DurableWebSocket, url) };
  await init(); // fetches durable_ws_bg.wasm next to durable_ws.js
  const result = await exchange(DurableWebSocket, url, { count: Number(query.get("count") ?? 200) });
  return { ...result, webSocket: "global", checks };
}

const result = run().catch((error) => ({ error: `${error.name}: ${error.message}\n${error.stack}` }));
if (typeof SharedWorkerGlobalScope == "function" && globalThis instanceof SharedWorkerGlobalScope) {
  globalThis.onconnect = (event) => result.then((figures) => event.ports[0].postMessage(figures));
} else {
  result.then((figures) => globalThis.postMessage(figures));
}
