// Real parts for the chaos suite and the benchmarks: the reference server and the chaos proxy as child processes
// on free ports of 127.0.0.1, a directory of pages they serve, and headless Chromium.
//
// Binaries come from DURABLE_WS_BIN_DIR (scripts/test.sh sets it), else target/release, else target/debug.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
export { launchBrowser } from "../support/browser.mjs";
import { freePort } from "../support/net.mjs";
export { freePort };

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The directory holding `durable-ws-server` and `chaos-proxy`. */
export function binDir() {
  const candidates = [process.env.DURABLE_WS_BIN_DIR, join(REPO_ROOT, "target/release"), join(REPO_ROOT, "target/debug")];
  const found = candidates.find((dir) => dir && existsSync(join(dir, "durable-ws-server")) && existsSync(join(dir, "chaos-proxy")));
  if (!found) {
    throw new Error("no durable-ws-server + chaos-proxy binaries: run `cargo build --release -p durable-ws-reference -p durable-ws-testkit` or set DURABLE_WS_BIN_DIR");
  }
  return found;
}

/**
 * Spawns `command`, resolves once `pattern` matches a line of its output (stdout or stderr), with the match.
 * Rejects if the process exits first or nothing matches within `timeoutMs`.
 */
export function spawnUntil(command, args, pattern, { timeoutMs = 30_000, env, cwd } = {}) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env }, cwd });
  const log = [];
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`${command} printed no ${pattern} within ${timeoutMs} ms`)), timeoutMs);
    const fail = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${error.message}\n--- output of ${command} ${args.join(" ")}:\n${log.join("").slice(-4000)}`));
    };
    const onData = (chunk) => {
      const text = chunk.toString();
      if (log.length < 2000) log.push(text);
      const match = !settled && text.match(pattern);
      if (match) {
        settled = true;
        clearTimeout(timer);
        resolve({ child, match, log });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("error", fail);
    child.once("exit", (code, signal) => fail(new Error(`${command} exited (code ${code}, signal ${signal})`)));
  });
}

/** Ends a child process and waits for it to be gone; `{ forced }`: it outlived `signal` by 5 s and was killed. */
export function stopProcess(child, signal = "SIGTERM") {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ forced: false });
  return new Promise((resolve) => {
    let forced = false;
    const hard = setTimeout(() => {
      forced = true;
      child.kill("SIGKILL");
    }, 5000);
    child.once("exit", () => {
      clearTimeout(hard);
      resolve({ forced });
    });
    child.kill(signal);
  });
}

/**
 * Starts the reference server (`--enable-faults`) serving `www` on `port` (a free one if absent).
 * Returns `{ child, port, http, ws, stop(signal) }`.
 */
export async function startServer({ www, port, args = [], bin = binDir() } = {}) {
  port ??= await freePort();
  const listen = `127.0.0.1:${port}`;
  const argv = ["--listen", listen, "--enable-faults", "--www", www ?? REPO_ROOT, ...args];
  const { child, log } = await spawnUntil(join(bin, "durable-ws-server"), argv, /durable-ws-server listening on /, {
    env: { RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  return {
    child,
    log,
    port,
    http: `http://${listen}`,
    ws: `ws://${listen}`,
    stop: (signal) => stopProcess(child, signal),
  };
}

/**
 * Starts a chaos proxy in front of `target` (`host:port`), or balancing over `targets` in turn (round robin, no
 * stickiness). `lifetimeMs: [min, max]` cuts each connection after a random lifetime in that range (`null`:
 * never); `latencyMs` is added one way, in each direction; `port`: a given one (else a free one). Returns
 * `{ child, port, ws, stop() }`.
 */
export async function startProxy({ target, targets = [target], lifetimeMs = [50, 400], latencyMs = 0, seed, port = 0, bin = binDir() }) {
  const argv = ["--listen", `127.0.0.1:${port}`, ...targets.flatMap((t) => ["--target", t]), "--latency-ms", String(latencyMs)];
  if (lifetimeMs) argv.push("--min-lifetime-ms", String(lifetimeMs[0]), "--max-lifetime-ms", String(lifetimeMs[1]));
  else argv.push("--no-cuts");
  if (seed !== undefined) argv.push("--seed", String(seed));
  const { child, match } = await spawnUntil(join(bin, "chaos-proxy"), argv, /listen=(127\.0\.0\.1:\d+)/, {
    env: { RUST_LOG: "info" },
  });
  const address = match[1];
  return { child, port: Number(address.split(":")[1]), ws: `ws://${address}`, stop: () => stopProcess(child) };
}

/**
 * A temporary directory to serve: `entries` maps a name in it to a path (absolute or relative to the repository)
 * it links to. Returns `{ dir, remove() }`.
 */
export function siteDir(entries) {
  const dir = mkdtempSync(join(tmpdir(), "durable-ws-site-"));
  for (const [name, target] of Object.entries(entries)) {
    const absolute = target.startsWith("/") ? target : join(REPO_ROOT, target);
    if (!existsSync(absolute)) throw new Error(`${absolute} does not exist (is the wasm package built? scripts/test.sh wasm-package)`);
    symlinkSync(absolute, join(dir, name));
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}


/** POSTs to an admin endpoint of the server; returns the JSON answer. */
export async function admin(http, path) {
  const response = await fetch(new URL(path, http), { method: "POST" });
  const body = await response.json();
  if (!response.ok) throw new Error(`POST ${path} → ${response.status} ${JSON.stringify(body)}`);
  return body;
}

/** The server's /stats counters. */
export async function serverStats(http) {
  const response = await fetch(new URL("/stats", http));
  return response.json();
}

/**
 * Opens a page that records uncaught page errors (console errors are expected: Chromium logs every WebSocket that
 * a cut or a dead server made fail); `url` is loaded and `readyCheck` (a page function) awaited.
 * Returns `{ page, problems }`.
 */
export async function openPage(context, url, readyCheck) {
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  await page.goto(url);
  await page.waitForFunction(readyCheck, null, { timeout: 30_000 });
  return { page, problems };
}

/**
 * Polls `summary(name)` of each of `names` every 100 ms until `done(...summaries)` holds; returns them. Fails with
 * their last state after `timeoutMs`.
 */
export async function waitForSummaries(summary, names, done, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await Promise.all(names.map(summary));
    if (done(...last)) return last;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms; state:\n${last.map((s) => JSON.stringify(s)).join("\n")}`);
    await sleep(100);
  }
}

/** Sleeps. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
