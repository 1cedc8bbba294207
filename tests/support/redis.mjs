// A redis-server of the caller's own on a free loopback port, without persistence (never a system service).
import { spawn, execFileSync } from "node:child_process";
import { freePort } from "./net.mjs";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts `redis-server` (on `port`, else a free one); resolves once it answers PING. Returns `{ port, url, cli, stop }`. */
export async function startRedis({ port } = {}) {
  port ??= await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const failed = new Promise((_, reject) => child.once("error", (error) => reject(new Error(`redis-server: ${error.message} (scripts/setup.sh installs it)`))));
  const cli = (...args) => execFileSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  const ready = (async () => {
    for (let i = 0; i < 200; i++) {
      try {
        if (cli("PING") === "PONG") return;
      } catch {}
      await sleep(25);
    }
    throw new Error("redis-server did not answer PING");
  })();
  await Promise.race([ready, failed]);
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  return { port, url: `redis://127.0.0.1:${port}/`, cli, stop };
}
