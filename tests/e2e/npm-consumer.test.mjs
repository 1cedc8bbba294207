// End-to-end test of the npm package as an application gets it: tests/npm-consumer is a Vite + TypeScript app
// that installed the packed tarball of pkg/ and was built with `vite build` (scripts/test.sh npm-consumer does
// all that first). Its built dist/ is served by `vite preview`, and the app itself by the dev server (`vite`, where
// Vite pre-bundles the package into node_modules/.vite/deps/, without configuration); in headless Chromium, the
// README's snippet loads the wasm, exchanges messages with the reference server's /echo (address in ?server=) and
// the page logs no error or warning (a wrong wasm MIME type, for one, would be a warning).
//
//   DURABLE_WS_SERVER=ws://127.0.0.1:8080 node --test tests/e2e/npm-consumer.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser } from "../support/browser.mjs";
import { freePort } from "../support/net.mjs";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const APP = join(REPO_ROOT, "tests", "npm-consumer");
const SERVER = process.env.DURABLE_WS_SERVER;

let browser;

/** `vite preview` of the built app (`mode` "preview") or the dev server (`mode` "dev") on a free port; resolves once it answers. */
async function startVite(mode) {
  const port = await freePort();
  const vite = join(APP, "node_modules", ".bin", "vite");
  const args = [...(mode === "preview" ? ["preview"] : []), "--host", "127.0.0.1", "--port", String(port), "--strictPort"];
  const child = spawn(vite, args, { cwd: APP, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const keep = (chunk) => (log = (log + chunk).slice(-4000));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(url)).ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || i >= 300) {
      child.kill();
      assert.fail(`vite ${mode} did not start on ${url}; its output:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) child.kill();
      await exited;
    },
  };
}

before(async () => {
  assert.ok(SERVER, "DURABLE_WS_SERVER is not set: start the reference server (scripts/test.sh npm-consumer does)");
  assert.ok(existsSync(join(APP, "dist", "index.html")), "tests/npm-consumer/dist is missing: run scripts/test.sh npm-consumer");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

test("the README snippet, installed from the packed tarball and bundled by Vite, talks to /echo", async () => {
  const preview = await startVite("preview");
  try {
    await runSnippet(preview.url);
  } finally {
    await preview.stop();
  }
});

test("under the dev server (`vite`, the package pre-bundled into node_modules/.vite/deps), with no configuration", async () => {
  // A fresh pre-bundle, as on the first `vite` run after installing.
  rmSync(join(APP, "node_modules", ".vite"), { recursive: true, force: true });
  const dev = await startVite("dev");
  try {
    await runSnippet(dev.url);
  } finally {
    await dev.stop();
  }
});

/** Opens the app at `base` and checks what the snippets did. */
async function runSnippet(base) {
  const page = await browser.newPage();
  const problems = [];
  const logged = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") {
      problems.push(`console ${message.type()}: ${message.text()}`);
    } else {
      logged.push(message.text());
    }
  });
  page.on("response", (response) => {
    if (!response.ok()) problems.push(`${response.url()} → HTTP ${response.status()}`);
  });
  const wasmResponses = [];
  page.on("response", (response) => {
    if (response.url().endsWith(".wasm")) wasmResponses.push(response.headers()["content-type"]);
  });
  try {
    const url = new URL(base);
    url.searchParams.set("server", `${SERVER}/echo`);
    await page.goto(url.href);

    // `await socket.send("hello")` resolved: the server acknowledged it.
    await page.waitForSelector('body[data-acknowledged="hello"]', { state: "attached", timeout: 30_000 });
    // The echo came back through the snippet's listener.
    await page.waitForFunction(() => document.body.dataset.binary !== undefined, null, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.binary), "1,2,3", "binary round trip");
    assert.ok(logged.includes("received hello"), `the snippet logged the echo (console: ${JSON.stringify(logged)})`);

    // The snippet with every option: its JSON value was acknowledged, echoed (the server echoes before it
    // acknowledges) and logged by its listener, and close() left the socket closed.
    await page.waitForSelector("body[data-snippet]", { state: "attached", timeout: 30_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.snippet), "acknowledged, readyState 3");
    assert.ok(logged.includes('{"any":"JSON value"}'), `the snippet logged the echo (console: ${JSON.stringify(logged)})`);

    // The typed example: its bid was acknowledged and echoed, and the badge followed the pending count down to 0.
    await page.waitForSelector("body[data-typed]", { state: "attached", timeout: 30_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.typed), "not yet confirmed: 0");
    assert.ok(logged.includes("bid 120"), `the typed example logged the echoed bid (console: ${JSON.stringify(logged)})`);

    // Vite served the wasm as wasm (the fast, streaming path): emitted as an asset, or from the package's directory.
    assert.deepEqual(wasmResponses, ["application/wasm"]);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
}
