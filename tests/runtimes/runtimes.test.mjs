// The npm package in every runtime with a WebSocket (issue 22, item 3): the packed tarball of pkg/, installed in this
// project (scripts/test.sh runtimes: npm ci, npm pack ../../pkg, npm install --no-save ./durable-ws-0.1.0.tgz), is
// used as README.md shows — `await init()`, then `new DurableWebSocket(url)` — in
//   Node 20 (the system's node, with ws's WebSocket: it has none), Node 22 (the npm package `node`), Deno 2 (the npm
//   package `deno`, `deno run -A`), Bun (the npm package `bun`, `bun run`): client.mjs;
//   Chromium (Debian's, through playwright-core): a module Worker and a module SharedWorker: worker.mjs;
// against a reference server of its own (serving this directory's pages and the installed package) behind a chaos
// proxy that cuts every connection after 200–700 ms. Each sends COUNT numbered messages 10 ms apart and must get
// every one echoed exactly once, in order, every send() acknowledged, at least one `resumed` and no `sessionlost`;
// using the class before `init()` must throw the InvalidStateError that says so, and where no WebSocket exists
// (Node 20) leaving out the `WebSocket` option the TypeError that names it. Then README.md's snippets for these
// runtimes (snippets/) run verbatim in them. Each runtime's figures are printed.
//
// Binaries: DURABLE_WS_BIN_DIR (scripts/test.sh sets it), else target/release, else target/debug.
//   node --test tests/runtimes/runtimes.test.mjs          (DURABLE_WS_RUNTIMES_COUNT=N: another count)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser, siteDir, startProxy, startServer } from "../chaos/harness.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = join(HERE, "node_modules", ".bin");
const COUNT = Number(process.env.DURABLE_WS_RUNTIMES_COUNT ?? 200);
const CLIENT_TIMEOUT_MS = 90_000;
// Keeps the runtimes quiet and off the network (update checks, telemetry) and colourless.
const QUIET_ENV = { DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1", DO_NOT_TRACK: "1", NO_COLOR: "1" };

const systemNode = `Node ${process.versions.node.split(".")[0]}`;
/** The runtimes that run client.mjs: a label, the command and its arguments before the script. */
const PROCESS_RUNTIMES = [
  { label: `${systemNode} (system, ws)`, command: process.execPath, args: [] },
  { label: "Node 22 (npm `node`)", command: join(BIN, "node"), args: [] },
  { label: "Deno 2 (npm `deno`)", command: join(BIN, "deno"), args: ["run", "-A", "--no-lock"] },
  { label: "Bun (npm `bun`)", command: join(BIN, "bun"), args: ["run"] },
];

let server, proxy, site, browser;
const figures = [];

before(async () => {
  for (const file of ["durable-ws/durable_ws.js", "durable-ws/durable_ws_bg.wasm", "ws/package.json"]) {
    assert.ok(existsSync(join(HERE, "node_modules", file)), `tests/runtimes/node_modules/${file} is missing: run scripts/test.sh runtimes (npm ci, then the packed package)`);
  }
  // What the server serves: this directory's pages, the installed packages, and the worker snippet with its one
  // bare specifier resolved as a bundler would.
  site = siteDir({
    "index.html": join(HERE, "index.html"),
    "worker.mjs": join(HERE, "worker.mjs"),
    "exchange.mjs": join(HERE, "exchange.mjs"),
    node_modules: join(HERE, "node_modules"),
  });
  mkdirSync(join(site.dir, "snippets"));
  for (const file of ["index.html", "page.js"]) symlinkSync(join(HERE, "snippets", file), join(site.dir, "snippets", file));
  const workerSnippet = readFileSync(join(HERE, "snippets", "worker.js"), "utf8");
  const bundled = workerSnippet.replace(' from "durable-ws";', ' from "../node_modules/durable-ws/durable_ws.js";');
  assert.notEqual(bundled, workerSnippet, 'snippets/worker.js no longer imports from "durable-ws"');
  writeFileSync(join(site.dir, "snippets", "worker.js"), bundled);

  server = await startServer({ www: site.dir });
  proxy = await startProxy({ target: `127.0.0.1:${server.port}`, lifetimeMs: [200, 700] });
});

after(async () => {
  await browser?.close();
  await proxy?.stop();
  await server?.stop();
  site?.remove();
  if (figures.length) {
    console.log(`\n${COUNT} messages through a proxy cutting every connection after 200–700 ms:`);
    console.log(["runtime".padEnd(34), "delivered", "lost", "dup", "reord", "acked", "resumed", "replayed", "lost-sess", "ms"].join("  "));
    for (const f of figures) {
      console.log([f.label.padEnd(34), String(f.delivered).padStart(9), String(f.lost).padStart(4), String(f.duplicated).padStart(3),
        String(f.reordered).padStart(5), String(f.acked).padStart(5), String(f.resumed).padStart(7), String(f.replayed).padStart(8),
        String(f.sessionlost).padStart(9), String(f.elapsedMs).padStart(5)].join("  "));
    }
  }
});

/** Runs `command args...` in this directory; resolves with `{ code, signal, stdout, stderr }` (killed after `timeoutMs`). */
function run(command, args, timeoutMs = CLIENT_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: HERE, env: { ...process.env, ...QUIET_ENV }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-8000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`${command}: ${error.message}`));
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The assertions every runtime's figures must pass; prints and records them. */
function check(t, label, result) {
  const f = result;
  figures.push({ label, ...f });
  t.diagnostic(`${label} — ${f.runtime?.name} ${f.runtime?.version}, ${f.webSocket} WebSocket: delivered ${f.delivered}/${f.count}, lost ${f.lost}, ` +
    `duplicated ${f.duplicated}, reordered ${f.reordered}, acknowledged ${f.acked}, resumed ${f.resumed} (replayed ${f.replayed}), ` +
    `reconnecting ${f.reconnecting}, sessionlost ${f.sessionlost}, ${f.elapsedMs} ms`);
  const summary = JSON.stringify(f);
  assert.equal(f.checks.beforeInit.ok, true, `before init(): ${JSON.stringify(f.checks.beforeInit)}`);
  assert.equal(f.outcome, "done", `not every message was acknowledged and echoed in time: ${summary}`);
  assert.equal(f.count, COUNT);
  assert.equal(f.delivered, COUNT, summary);
  assert.equal(f.lost, 0, summary);
  assert.equal(f.duplicated, 0, summary);
  assert.equal(f.reordered, 0, summary);
  assert.deepEqual(f.unexpected, [], summary);
  assert.equal(f.acked, COUNT, summary);
  assert.deepEqual(f.rejected, [], summary);
  assert.equal(f.sessionlost, 0, summary);
  assert.ok(f.reconnecting >= 1 && f.resumed >= 1, `no connection was cut and resumed: ${summary}`);
  assert.equal(typeof f.closeCode, "number", `close() ended with no final close event: ${summary}`);
}

for (const runtime of PROCESS_RUNTIMES) {
  test(`${runtime.label}: client.mjs, ${COUNT} messages through cuts`, async (t) => {
    assert.ok(existsSync(runtime.command), `${runtime.command} is missing (npm ci in tests/runtimes installs it)`);
    const { code, signal, stdout, stderr } = await run(runtime.command, [...runtime.args, "client.mjs", `${proxy.ws}/echo`, String(COUNT)]);
    const output = `exit ${code ?? signal}\n--- stdout:\n${stdout.slice(-4000)}\n--- stderr:\n${stderr}`;
    assert.equal(code, 0, `the client failed (or outlived ${CLIENT_TIMEOUT_MS} ms: close() must leave nothing running): ${output}`);
    const result = JSON.parse(stdout.trim().split("\n").at(-1));
    if (result.webSocket === "ws") {
      assert.equal(result.checks.withoutWebSocket?.ok, true, `no WebSocket option: ${JSON.stringify(result.checks.withoutWebSocket)}`);
    }
    if (runtime.command === process.execPath && Number(process.versions.node.split(".")[0]) < 22) {
      assert.equal(result.webSocket, "ws", "Node < 22 has no global WebSocket: the client should have passed ws's");
    } else {
      assert.equal(result.webSocket, "global", "this runtime has a WebSocket of its own");
    }
    check(t, runtime.label, result);
  });
}

for (const kind of ["Worker", "SharedWorker"]) {
  test(`Chromium, a module ${kind}: worker.mjs, ${COUNT} messages through cuts`, async (t) => {
    browser ??= await launchBrowser();
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (error) => problems.push(error.message));
    try {
      await page.goto(`${server.http}/index.html`);
      const src = `/worker.mjs?url=${encodeURIComponent(`${proxy.ws}/echo`)}&count=${COUNT}`;
      const result = await page.evaluate(
        ({ kind, src, timeoutMs }) =>
          new Promise((resolve, reject) => {
            setTimeout(() => reject(new Error(`no figures from the ${kind} within ${timeoutMs} ms`)), timeoutMs);
            const fail = (event) => reject(new Error(`${kind} error: ${event.message ?? "failed to load or run"}`));
            if (kind === "SharedWorker") {
              const worker = new SharedWorker(src, { type: "module" });
              worker.addEventListener("error", fail);
              worker.port.onmessage = (event) => resolve(event.data);
            } else {
              const worker = new Worker(src, { type: "module" });
              worker.addEventListener("error", fail);
              worker.onmessage = (event) => resolve(event.data);
            }
          }),
        { kind, src, timeoutMs: CLIENT_TIMEOUT_MS },
      );
      assert.equal(result.error, undefined, `the ${kind} failed: ${result.error}`);
      assert.match(result.runtime.name, kind === "SharedWorker" ? /shared worker$/ : / worker$/);
      check(t, `Chromium ${result.runtime.version.split(".")[0]} ${kind}`, result);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });
}

test("README.md's snippets run verbatim", async (t) => {
  const echo = `${server.ws}/echo`;
  const snippets = [
    [`${systemNode} (system), snippets/node20.mjs`, process.execPath, ["snippets/node20.mjs", echo]],
    ["Node 22, snippets/runtime.mjs", join(BIN, "node"), ["snippets/runtime.mjs", echo]],
    ["Deno 2, snippets/runtime.mjs", join(BIN, "deno"), ["run", "-A", "--no-lock", "snippets/runtime.mjs", echo]],
    ["Bun, snippets/runtime.mjs", join(BIN, "bun"), ["run", "snippets/runtime.mjs", echo]],
  ];
  for (const [label, command, args] of snippets) {
    await t.test(label, async () => {
      const { code, signal, stdout, stderr } = await run(command, args, 30_000);
      assert.equal(code, 0, `exit ${code ?? signal} (a hang means close() left something running)\n${stdout}\n${stderr}`);
      assert.equal(stdout, "received hello\n", stderr);
    });
  }
  await t.test("Chromium, a module Worker: snippets/page.js + snippets/worker.js", async () => {
    browser ??= await launchBrowser();
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (error) => problems.push(error.message));
    try {
      await page.goto(`${server.http}/snippets/index.html`);
      await page.waitForFunction(() => document.body.dataset.received || document.body.dataset.error, null, { timeout: 30_000 });
      assert.deepEqual(await page.evaluate(() => ({ ...document.body.dataset })), { received: "hello" });
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });
});
