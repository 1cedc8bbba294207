// For the end-to-end tests of the Node.js server (tests/e2e/node-*.test.mjs): its reference program and the
// Express example as child processes on free ports of 127.0.0.1.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnUntil, stopProcess as stop } from "../../tests/chaos/harness.mjs";

export const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_ROOT = join(PACKAGE_DIR, "..");
export const BIN = join(PACKAGE_DIR, "dist", "bin.js");

// The chaos suite's process helpers serve these tests too.
export { spawnUntil, stop };

/** Throws unless the package is built (`npm run build` in node/). */
export function assertBuilt() {
  for (const file of [BIN, join(PACKAGE_DIR, "wasm", "durable_ws_node_bg.wasm")]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: build the Node package first (cd node && npm ci && npm run build)`);
  }
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
  const { child, log } = await spawnUntil(process.execPath, argv, /durable-ws-server listening on /, {
    timeoutMs: 20_000,
    env: { DURABLE_WS_LOG: process.env.DURABLE_WS_LOG ?? "warn" },
  });
  return { child, log, port, http: `http://${listen}`, ws: `ws://${listen}`, stop: (signal) => stop(child, signal) };
}
