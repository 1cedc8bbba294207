// README.md's snippet for a Web Worker (between the #region markers): the worker's side. A bundler resolves
// "durable-ws" (and emits durable_ws_bg.wasm); runtimes.test.mjs, which serves it unbundled, rewrites that one
// specifier to the installed package's durable_ws.js, as a bundler would. The page's side is page.js.
const serverUrl = new URL("/echo", location.href).href; // the server that served the page (http: URLs work too)

// #region readme
import init, { DurableWebSocket } from "durable-ws";

// `onmessage` is set before the first `await`: a message from the page that arrives while a module worker awaits
// finds no handler and is dropped.
const socket = init().then(() => new DurableWebSocket(serverUrl)); // init() fetches durable_ws_bg.wasm, once
onmessage = async (event) => (await socket).send(event.data); // from the page
(await socket).addEventListener("message", (event) => postMessage(event.data)); // to the page
// #endregion readme
