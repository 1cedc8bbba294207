// README.md's snippet for a Web Worker (between the #region markers): the page's side; the worker is worker.js.
// runtimes.test.mjs opens index.html and waits for the echo in body[data-received].

// #region readme
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
worker.addEventListener("message", (event) => console.log("received", event.data));
worker.postMessage("hello");
// #endregion readme

worker.addEventListener("message", (event) => (document.body.dataset.received = event.data));
worker.addEventListener("error", (event) => (document.body.dataset.error = event.message || "error in the worker"));
