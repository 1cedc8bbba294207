// For the end-to-end tests of the Node.js server (tests/e2e/node-*.test.mjs): its reference program and the
// Express example as child processes on free ports of 127.0.0.1.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_ROOT = join(PACKAGE_DIR, "..");
export const BIN = join(PACKAGE_DIR, "dist", "bin.js");

/** Throws unless the package is built (`npm run build` in node/). */
export function assertBuilt() {
  for (const file of [BIN, join(PACKAGE_DIR, "wasm", "durable_ws_node_bg.wasm")]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: build the Node package first (cd node && npm ci && npm run build)`);
  }
}

/** Spawns `command`, resolves once `pattern` matches a line of its output, with `{ child, match, log }`. */
export function spawnUntil(command, args, pattern, { timeoutMs = 20_000, env, cwd } = {}) {
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

/** Ends a child process and waits for it to be gone. */
export function stop(child, signal = "SIGTERM") {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(hard);
      resolve();
    });
    child.kill(signal);
  });
}

/**
 * Starts the Node reference program (`--enable-faults`) serving `www` on `port` (a free one if absent): the same
 * routes and flags as the Rust `durable-ws-server`. Returns `{ child, port, http, ws, stop(signal) }`.
 */
export async function startNodeServer({ www, port, args = [] } = {}) {
  assertBuilt();
  const { freePort } = await import("../../tests/support/net.mjs");
  port ??= await freePort();
  const listen = `127.0.0.1:${port}`;
  const argv = [BIN, "--listen", listen, "--enable-faults", "--www", www ?? REPO_ROOT, ...args];
  const { child, log } = await spawnUntil(process.execPath, argv, /durable-ws-server listening on /, { env: { DURABLE_WS_LOG: process.env.DURABLE_WS_LOG ?? "warn" } });
  return { child, log, port, http: `http://${listen}`, ws: `ws://${listen}`, stop: (signal) => stop(child, signal) };
}
