// Benchmarks of the Node.js server: its durable echo against a plain `ws` echo server and against the Rust
// reference server, all driven by the same load generator (load.mjs, a separate process) on the same machine.
//
//   node node/bench/run.mjs [--quick]     (~6 min; --quick ~2 min) → prints markdown, writes node/BENCHMARKS-node.md
//
// 1. Pipelined echo: 50 connections × 32 messages in flight × 100 bytes, 10 s: echoes/s and round-trip p50/p99;
//    the Node durable server as a ratio of plain ws (the target: ≥ 0.7×). Three rounds, servers interleaved; median.
// 2. Light load: 100 connections × 10 msg/s: round trip.
// 3. 10,000 sessions held (1 msg/s each for 10 s): server RSS per session and round trip.
// The Rust server is target/release/durable-ws-server (skipped when absent: cargo build --release -p durable-ws-reference).
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem, release } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGE = join(HERE, "..");
const ROOT = join(PACKAGE, "..");
const QUICK = process.argv.includes("--quick");
const RUST = join(ROOT, "target/release/durable-ws-server");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let nextPort = 18300;

function withFds(command, args) {
  return spawn("bash", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', command, ...args], { stdio: ["ignore", "pipe", "pipe"] });
}

/** Starts a server; resolves `{ child, url }` once it prints its listening line. */
function start(kind) {
  const port = nextPort++;
  const listen = `127.0.0.1:${port}`;
  const [command, args, url] = {
    plain: [process.execPath, [join(HERE, "plain-echo-server.mjs"), String(port)], `ws://${listen}/`],
    node: [process.execPath, [join(PACKAGE, "dist/bin.js"), "--listen", listen, "--www", "/nonexistent", "--max-sessions", "20000"], `ws://${listen}/echo`],
    rust: [RUST, ["--listen", listen, "--www", "/nonexistent", "--max-sessions", "20000"], `ws://${listen}/echo`],
  }[kind];
  const child = withFds(command, args);
  return new Promise((resolve, reject) => {
    const onData = (chunk) => {
      if (/listening on/.test(chunk.toString())) resolve({ child, url, kind });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", () => {});
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

async function stop(server) {
  server.child.removeAllListeners("exit");
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGKILL");
  await exited;
}

function load(server, args) {
  const child = withFds(process.execPath, [join(HERE, "load.mjs"), "--url", server.url, "--mode", server.kind === "plain" ? "plain" : "durable", "--server-pid", String(server.child.pid), ...args]);
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk) => (out += chunk));
  child.stderr.on("data", (chunk) => (err += chunk));
  return new Promise((resolve, reject) =>
    child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load.mjs exited with ${code}: ${err.slice(-1500)}`)))),
  );
}

async function run(kind, args) {
  const server = await start(kind);
  try {
    await sleep(300);
    // Server CPU per echo: /proc/PID/stat utime + stime (ticks of 10 ms) around the run.
    const cpu = () => {
      const fields = readFileSync(`/proc/${server.child.pid}/stat`, "utf8").split(") ")[1].split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100;
    };
    const before = cpu();
    const result = await load(server, args);
    result.serverCpuSeconds = cpu() - before;
    return result;
  } finally {
    await stop(server);
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const kinds = ["plain", "node", ...(existsSync(RUST) ? ["rust"] : [])];
const NAMES = { plain: "plain `ws` 8 echo (no protocol)", node: "durable-ws-server (Node, wasm core)", rust: "durable-ws-server (Rust, release)" };
const duration = QUICK ? "5" : "10";

const results = { pipelined: {}, light: {}, held: {} };
const rounds = QUICK ? 1 : 3;
for (let round = 0; round < rounds; round++) {
  for (const kind of kinds) {
    const r = await run(kind, ["--connections", "50", "--window", "32", "--payload", "100", "--duration", duration]);
    (results.pipelined[kind] ??= []).push(r);
    process.stderr.write(`pipelined ${kind} round ${round + 1}: ${r.echoesPerSecond}/s p99 ${r.rttP99} ms\n`);
  }
}
for (const kind of kinds) {
  results.light[kind] = await run(kind, ["--connections", "100", "--rate", "10", "--duration", duration]);
  process.stderr.write(`light ${kind}: p99 ${results.light[kind].rttP99} ms\n`);
}
const HELD = QUICK ? 2000 : 10_000;
for (const kind of kinds) {
  results.held[kind] = await run(kind, ["--connections", String(HELD), "--rate", "1", "--duration", duration, "--batch", "250"]);
  process.stderr.write(`held ${kind}: ${results.held[kind].perSession} B/session\n`);
}

// ---------------------------------------------------------------------------------------------------------------
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const summary = Object.fromEntries(
  kinds.map((kind) => {
    const runs = results.pipelined[kind];
    const rate = median(runs.map((r) => r.echoesPerSecond));
    const chosen = runs.find((r) => r.echoesPerSecond === rate);
    return [kind, { rate, p50: chosen.rttP50, p99: median(runs.map((r) => r.rttP99)), cpu: (chosen.serverCpuSeconds * 1e6) / (rate * Number(duration)) }];
  }),
);
const ratio = (kind, key) => (summary[kind][key] / summary.plain[key]).toFixed(2);
const lines = [];
lines.push(`# Benchmarks of the Node.js server (durable-ws-server)`);
lines.push("");
lines.push(`Run of \`node node/bench/run.mjs${QUICK ? " --quick" : ""}\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpus()[0].model}, ` +
  `${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}; the machine is shared with other jobs, ` +
  `so figures are indicative. Server and load generator (node/bench/load.mjs, one process, the same for every server) share its ${cpus().length} cores.`);
lines.push("");
lines.push(`## 1. Pipelined echo: 50 connections × 32 messages in flight × 100 bytes (median of ${rounds})`);
lines.push("");
lines.push("| server | echoes/s | × plain ws | RTT p50 | RTT p99 | p99 × plain ws | server CPU / echo |");
lines.push("|--------|---------:|-----------:|--------:|--------:|---------------:|------------------:|");
for (const kind of kinds) {
  const s = summary[kind];
  lines.push(`| ${NAMES[kind]} | ${s.rate.toLocaleString("en")} | ${ratio(kind, "rate")} | ${s.p50} ms | ${s.p99} ms | ${ratio(kind, "p99")} | ${s.cpu.toFixed(1)} µs |`);
}
lines.push("");
lines.push(`Every round: ${kinds.map((kind) => `${kind} ${results.pipelined[kind].map((r) => r.echoesPerSecond.toLocaleString("en")).join(" / ")}`).join("; ")} echoes/s.`);
lines.push("");
lines.push("## 2. Light load: 100 connections × 10 messages/s × 100 bytes");
lines.push("");
lines.push("| server | echoes/s | RTT p50 | RTT p99 | RTT max |");
lines.push("|--------|---------:|--------:|--------:|--------:|");
for (const kind of kinds) {
  const r = results.light[kind];
  lines.push(`| ${NAMES[kind]} | ${r.echoesPerSecond.toLocaleString("en")} | ${r.rttP50} ms | ${r.rttP99} ms | ${r.rttMax} ms |`);
}
lines.push("");
lines.push(`## 3. ${HELD.toLocaleString("en")} sessions held, 1 message/s each`);
lines.push("");
lines.push("| server | open time | RSS before | RSS with all open | per session | echoes/s | RTT p50 | RTT p99 |");
lines.push("|--------|----------:|-----------:|------------------:|------------:|---------:|--------:|--------:|");
for (const kind of kinds) {
  const r = results.held[kind];
  lines.push(`| ${NAMES[kind]} | ${(r.openMs / 1000).toFixed(1)} s | ${mb(r.rssBefore)} | ${mb(r.rssOpen)} | ${kb(r.perSession)} | ${r.echoesPerSecond.toLocaleString("en")} | ${r.rttP50} ms | ${r.rttP99} ms |`);
}
lines.push("");
lines.push("A plain connection holds no session: its row is the cost of a bare `ws` connection. The durable rows hold, per session, " +
  "the core's session state (replay buffer, receive state, heartbeat) and the driver's objects; a durable connection also answers the " +
  "heartbeat and acknowledges (ACK frames both ways), which a plain echo does not.");
const markdown = `${lines.join("\n")}\n`;
writeFileSync(join(PACKAGE, "bench", "results.json"), JSON.stringify(results, null, 2));
// The hand-written reading (## Reading …) of the committed file is kept below the new figures.
const previous = existsSync(join(PACKAGE, "BENCHMARKS-node.md")) ? readFileSync(join(PACKAGE, "BENCHMARKS-node.md"), "utf8") : "";
const reading = previous.includes("\n## Reading") ? previous.slice(previous.indexOf("\n## Reading")) : "";
if (!QUICK) writeFileSync(join(PACKAGE, "BENCHMARKS-node.md"), markdown + reading);
console.log(markdown);
