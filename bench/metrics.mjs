// Issue 23's benchmark: the Rust reference server's saturation echo throughput with its metrics recorded
// (the default: a Prometheus recorder installed) next to `--no-metrics` (no recorder: the facade's calls do
// nothing), in one run, rounds interleaved, the same load generator (target/release/loadgen: 100 durable
// sessions on /echo, each offered 3,000 messages/s of 100 bytes — more than the server echoes: saturated — for
// 5 s per round). Prints each round and the ratio of the medians (target: ≥ 0.97).
//
//   cargo build --release -p durable-ws-reference -p durable-ws-testkit && node bench/metrics.mjs [ROUNDS]
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT, freePort, spawnUntil, stopProcess } from "../tests/chaos/harness.mjs";

const ROUNDS = Number(process.argv[2] ?? 5);
const BIN = join(REPO_ROOT, "target", "release");

/** One round: a fresh server (with `args`), the load, its figures. */
async function round(args) {
  const port = await freePort();
  const { child } = await spawnUntil(join(BIN, "durable-ws-server"), ["--listen", `127.0.0.1:${port}`, ...args], /listening on/, {
    env: { RUST_LOG: "warn" },
  });
  try {
    const out = execFileSync(
      join(BIN, "loadgen"),
      ["--url", `ws://127.0.0.1:${port}/echo`, "--sessions", "100", "--batch", "100", "--rate", "3000", "--duration-secs", "5", "--server-pid", String(child.pid)],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
    );
    const report = JSON.parse(out);
    return { echoes: report.echo_rate_per_second, p99: report.rtt_ms_p99, cpuUs: (1e6 * report.server_cpu_seconds) / Math.max(1, report.echoes_received) };
  } finally {
    await stopProcess(child);
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = { on: [], off: [] };
console.log(`load: ${execFileSync("uptime", { encoding: "utf8" }).trim()}`);
for (let i = 0; i < ROUNDS; i++) {
  for (const [label, args] of i % 2 ? [["off", ["--no-metrics"]], ["on", []]] : [["on", []], ["off", ["--no-metrics"]]]) {
    const r = await round(args);
    results[label].push(r);
    console.log(`round ${i + 1} metrics ${label.padEnd(3)}: ${r.echoes.toFixed(0)} echoes/s, RTT p99 ${r.p99.toFixed(1)} ms, server CPU ${r.cpuUs.toFixed(1)} µs/echo`);
  }
}
const on = median(results.on.map((r) => r.echoes));
const off = median(results.off.map((r) => r.echoes));
const cpuOn = median(results.on.map((r) => r.cpuUs));
const cpuOff = median(results.off.map((r) => r.cpuUs));
console.log(`\nmedian echoes/s: metrics on ${on.toFixed(0)}, off ${off.toFixed(0)}: ratio ${(on / off).toFixed(3)} (target ≥ 0.97)`);
console.log(`median server CPU per echo: on ${cpuOn.toFixed(1)} µs, off ${cpuOff.toFixed(1)} µs: ratio ${(cpuOn / cpuOff).toFixed(3)}`);
