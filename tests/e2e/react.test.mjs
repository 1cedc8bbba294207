// End-to-end test of `durable-ws/react` as a React app gets it: tests/react-app is a React 19 app in StrictMode that
// installed the packed tarball of pkg/ and was built by Vite twice, for the browser (dist/client) and for the server
// (dist/server/entry-server.js; scripts/test.sh npm-consumer does all that first). Here:
// - the server render imports the package and the hook in Node with every browser global trapped: none is touched,
//   nothing is fetched, and the HTML shows the hook's initial state;
// - that HTML, served by a reference server of its own (--www dist/client, --enable-faults), hydrates in Chromium
//   without a mismatch; StrictMode's extra unmount and mount open no second socket: 2 WebSockets in the page (the
//   echo component's, and one shared by the two chat components) and 2 sessions at the server;
// - the echo component sends 200 messages, its connection is cut (POST /admin/cut) meanwhile: each message comes
//   back once, in order, every send() resolves, `pending` returns to 0, and the session resumed;
// - a click on one chat component's button reaches both (one shared socket), once;
// - unmounting the echo component closes its socket: the server's sessions go down to 1; mounting it again (StrictMode
//   unmounts and mounts it twice) makes one socket.
//
//   DURABLE_WS_BIN_DIR=target/debug node --test tests/e2e/react.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT, admin, launchBrowser, serverStats, sleep, startServer } from "../chaos/harness.mjs";

const APP = join(REPO_ROOT, "tests", "react-app");
const CLIENT = join(APP, "dist", "client");
const SERVER_BUNDLE = join(APP, "dist", "server", "entry-server.js");
const MESSAGES = 200;

/** What a browser has and Node has not (or has, but the server side must not use): each read is recorded. */
const BROWSER_GLOBALS = ["window", "document", "navigator", "location", "localStorage", "sessionStorage", "indexedDB", "WebSocket", "fetch", "XMLHttpRequest", "self"];

let server;
let browser;

before(async () => {
  for (const file of [join(CLIENT, "index.html"), SERVER_BUNDLE]) {
    assert.ok(existsSync(file), `${file} is missing: run scripts/test.sh wasm-package npm-consumer`);
  }
  server = await startServer({ www: CLIENT });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Polls `condition` every 100 ms until it holds (true) or 10 s passed (false). */
async function until(condition) {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(100)) if (await condition()) return true;
  return false;
}

/** Renders the app with Node's browser-like globals trapped; returns the HTML and the globals read meanwhile. */
async function renderOnServer(serverUrl) {
  const touched = new Set();
  const saved = BROWSER_GLOBALS.map((name) => [name, Object.getOwnPropertyDescriptor(globalThis, name)]);
  for (const [name, descriptor] of saved) {
    Object.defineProperty(globalThis, name, {
      configurable: true,
      get() {
        touched.add(name);
        return descriptor && ("value" in descriptor ? descriptor.value : descriptor.get?.call(globalThis));
      },
    });
  }
  try {
    const { render } = await import(pathToFileURL(SERVER_BUNDLE).href);
    return { html: render(serverUrl), touched: [...touched] };
  } finally {
    for (const [name, descriptor] of saved) {
      if (descriptor) Object.defineProperty(globalThis, name, descriptor);
      else delete globalThis[name];
    }
  }
}

test("React 19 in StrictMode, rendered on the server and hydrated: one socket per key, nothing lost through a cut, closed on unmount", { timeout: 90_000 }, async () => {
  // 1. The server render: no browser global, the hook's initial state (no socket yet).
  const { html, touched } = await renderOnServer(server.ws);
  assert.deepEqual(touched, [], "importing and rendering on the server touched no browser global");
  assert.match(html, /data-ready-state="-1"/, "the server renders the hook's initial state (UNINSTANTIATED)");
  assert.match(html, /connecting…/);
  const template = readFileSync(join(CLIENT, "index.html"), "utf8");
  writeFileSync(
    join(CLIENT, "ssr.html"),
    template.replace("<!--app-->", html).replace("<!--config-->", `<script>window.SERVER = ${JSON.stringify(server.ws)};</script>`),
  );

  // 2. Hydration in Chromium, counting the WebSockets the page makes.
  const page = await (await browser.newContext()).newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    // Chromium logs a WebSocket that the cut made fail; anything else logged as an error is a problem.
    if (message.type() === "error" && !/WebSocket connection to .* failed/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  await page.addInitScript(() => {
    window.sockets = 0;
    const Native = window.WebSocket;
    window.WebSocket = new Proxy(Native, {
      construct(target, args) {
        window.sockets++;
        return Reflect.construct(target, args);
      },
    });
  });
  await page.goto(`${server.http}/ssr.html`);
  await page.waitForFunction(() => document.querySelector("#echo")?.dataset.readyState === "1" && document.body.textContent.includes("online"), null, { timeout: 20_000 });
  await sleep(300); // a second socket, if StrictMode made one, would be open by now
  assert.equal(await page.evaluate(() => window.sockets), 2, "two WebSockets: the echo component's and the chat components' shared one");
  assert.equal((await serverStats(server.http)).sessions, 2, "two sessions at the server");

  // 3. The echo component sends; its connection is cut meanwhile.
  const sending = page.evaluate(async (count) => {
    const sends = [];
    for (let i = 1; i <= count; i++) {
      sends.push(window.echo.send(`m${i}`));
      if (i % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return (await Promise.allSettled(sends)).filter((s) => s.status === "rejected").map((s) => String(s.reason));
  }, MESSAGES);
  await page.waitForFunction(() => window.echo.messages.length >= 30, null, { timeout: 10_000 });
  await admin(server.http, "/admin/cut?session=all");
  assert.deepEqual(await sending, [], "every send() resolved");
  await page.waitForFunction((count) => window.echo.messages.length >= count && window.echo.pending === 0, MESSAGES, { timeout: 20_000 });
  const echo = await page.evaluate(() => ({ messages: window.echo.messages, stats: window.echo.stats, sessionLost: window.echo.sessionLost }));
  assert.deepEqual(echo.messages, Array.from({ length: MESSAGES }, (_, i) => `m${i + 1}`), "each message came back once, in order");
  assert.equal(echo.sessionLost, null, "no lost session");
  assert.ok(echo.stats.reconnects >= 1, `the cut connection reconnected (reconnects: ${echo.stats.reconnects})`);
  assert.ok(await until(async () => (await serverStats(server.http)).resumes >= 1), "and resumed its session at the server");

  // 4. One chat component's click reaches both: one shared socket.
  await page.getByRole("button", { name: "Say hello" }).first().click();
  await page.waitForFunction(() => document.querySelectorAll("li").length >= 2, null, { timeout: 10_000 });
  await sleep(200);
  assert.deepEqual(await page.locator("li").allTextContents(), ["ann: hello", "ann: hello"], "both chat components show the note once");

  // 5. Unmounting the echo component closes its socket and ends its session.
  const socketsBefore = await page.evaluate(() => window.sockets);
  await page.evaluate(() => window.hideEcho());
  await until(async () => (await serverStats(server.http)).sessions === 1);
  assert.equal((await serverStats(server.http)).sessions, 1, "the unmounted component's session ended");
  assert.equal(await page.evaluate(() => window.sockets), socketsBefore, "no socket made since");

  // 6. Mounted again (the wasm long loaded, StrictMode's extra unmount and mount again): one new socket.
  await page.evaluate(() => window.showEcho());
  await page.waitForFunction(() => document.querySelector("#echo")?.dataset.readyState === "1", null, { timeout: 10_000 });
  await sleep(300);
  assert.equal(await page.evaluate(() => window.sockets), socketsBefore + 1, "one socket for the component mounted again");
  assert.equal((await serverStats(server.http)).sessions, 2, "and one session");
  assert.deepEqual(problems, [], "no hydration mismatch, page error or console error");
});
