#!/usr/bin/env node
// Benchmarks of durable-ws, all in one run, written into BENCHMARKS.md (between its "results" markers):
//
//   node bench/run.mjs                 everything (builds what is missing first)
//   node bench/run.mjs --quick         fewer rounds and messages (a smoke run; figures are noisier)
//   node bench/run.mjs --only echo,size   some parts: echo, size, recovery, memory, server, scale, persist
//   node bench/run.mjs --no-write      print only
//   node bench/run.mjs --only persist --persist-baseline=DIR   DIR: a package built without persisted sessions
//   node bench/run.mjs --pkg=DIR       the npm package (web target) in DIR instead of www/pkg and pkg/
//
// 1. echo: throughput (pipelined, 100 unanswered) and round trip (one at a time) for 100 B and 4 KB messages:
//    DurableWebSocket (JS API), the Rust API (bench/rust-api, loop in wasm), raw WebSocket and
//    reconnecting-websocket; same page, same server, runs interleaved, medians of the rounds.
// 2. size: the npm build (wasm + JS glue minified by esbuild, gzip -9) next to other client libraries.
// 3. recovery: from the server reachable again to every missed message delivered, vs backoff delay + RTT.
// 4. memory: JS heap (CDP, after a forced GC) and wasm memory over 1,000 reconnect cycles and 100,000 messages.
// 5. server: `loadgen` opens 10,000 durable sessions: server RSS per session, echo round trip under load.
// 6. scale: the Redis store next to the memory store (bench/scaleout.mjs), and the fault scenario next to the
//    socket.io anchor (bench/anchor-socketio); written into BENCHMARKS.md between the "scale" markers.
// 7. persist: persisted sessions (the `persist` option) in Chromium, Firefox and WebKit (PERSIST_ENGINES or
//    DURABLE_WS_ENGINES choose): pipelined echo with and without persist (interleaved rounds, ratios), the time from
//    send() to the `stored` event, and the package size with the feature; written between the "persist" markers.
//
// Uses the release binaries (cargo build --release -p durable-ws-reference -p durable-ws-testkit --bins) and www/pkg (the npm build,
// web target); builds them when missing. Raw results also go to target/bench-results.json.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem, homedir } from "node:os";
import { join, resolve } from "node:path";
import { REPO_ROOT, launchBrowser, siteDir, sleep, startServer } from "../tests/chaos/harness.mjs";
import { table } from "../tests/chaos/analysis.mjs";
import { startBlockableProxy } from "./blockable-proxy.mjs";
import { bundleSizes, durableWsSize, storeJsSize } from "./size.mjs";
import { namedBuild, profile } from "./wasm-profile.mjs";
import { anchorBench, faultBench, loadBench } from "./scaleout.mjs";
import { launchEngine } from "../tests/support/browser.mjs";

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name) => {
  const match = argv.find((a) => a.startsWith(`${name}=`));
  return match ? match.slice(name.length + 1) : argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined;
};
const QUICK = flag("--quick");
const PARTS = new Set((option("--only") ?? "echo,size,recovery,memory,server,scale,persist").split(","));
// The parts written into the main "results" block (scale and persist have blocks of their own).
const MAIN_PARTS = ["echo", "size", "recovery", "memory", "server"];
const RELEASE = join(REPO_ROOT, "target/release");
/** `--pkg=DIR`: the package measured, instead of www/pkg (pages) and pkg/ (sizes), e.g. one built from a clean checkout. */
const PKG = option("--pkg") ? resolve(REPO_ROOT, option("--pkg")) : null;
const RUST_API_DIR = join(REPO_ROOT, "target/bench-rust-api");
const TOOLS_PATH = `${join(homedir(), ".cargo/bin")}:${join(REPO_ROOT, "node_modules/.bin")}:${process.env.PATH}`;

const log = (...parts) => console.error("[bench]", ...parts);
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : NaN;
};
const fixed = (value, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

// ---------------------------------------------------------------------------------------------------------------
// Building what is missing.

function run(command, args, options = {}) {
  log(`$ ${command} ${args.join(" ")}`);
  execFileSync(command, args, { cwd: REPO_ROOT, stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, PATH: TOOLS_PATH }, ...options });
}

function build() {
  run("cargo", ["build", "--release", "-p", "durable-ws-reference", "-p", "durable-ws-testkit", "--bins"]);
  if (!existsSync(join(REPO_ROOT, "www/pkg/durable_ws_bg.wasm")) || !existsSync(join(REPO_ROOT, "pkg/durable_ws_bg.wasm")) || flag("--build-wasm")) {
    run("bash", ["-c", "source scripts/common.sh && build_wasm_packages"]);
  }
  try {
    run("wasm-pack", ["build", "--mode", "no-install", "--release", "--target", "web", "--out-dir", RUST_API_DIR, "--out-name", "durable_ws_bench", "bench/rust-api"], {
      // A target directory of its own: building durable-ws with other features must not replace the npm build's.
      env: { ...process.env, PATH: TOOLS_PATH, CARGO_TARGET_DIR: join(REPO_ROOT, "target/bench-rust-api-build") },
    });
  } catch (error) {
    log(`the Rust API hook did not build (${error.message}); its rows are skipped`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Environment.

function machine(browserVersion) {
  const cpu = cpus();
  let commit = "unknown";
  let dirty = false;
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_ROOT }).toString().trim();
    dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "crates", "Cargo.toml"], { cwd: REPO_ROOT }).toString().trim() !== "";
  } catch {}
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    cpu: `${cpu[0]?.model ?? "unknown"} × ${cpu.length}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `Linux ${release()}`,
    node: process.version,
    browser: `Chromium ${browserVersion} (headless)`,
    commit: PKG ? `${commit} (package from ${PKG})` : `${commit}${dirty ? " + uncommitted changes in src/crates" : ""}`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Echo throughput and round trip.

async function echoBench(page, server, rustApi) {
  const kinds = ["durable", ...(rustApi ? ["rust"] : []), "raw", "rws"];
  const labels = { durable: "DurableWebSocket (JS API)", rust: "DurableSocket (Rust API)", raw: "WebSocket (raw)", rws: "reconnecting-websocket" };
  const sizes = [
    { size: 100, count: QUICK ? 2000 : 10_000 },
    { size: 4096, count: QUICK ? 1000 : 5_000 },
  ];
  const rounds = QUICK ? 1 : 3;
  const samples = QUICK ? 300 : 1000;
  const runs = [];
  for (let round = 0; round < rounds; round++) {
    for (const { size, count } of sizes) {
      const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]);
      for (const kind of order) {
        const result = await page.evaluate(
          ({ kind, url, params }) => window.bench.echo(kind, url, params),
          { kind, url: `${server.ws}/echo`, params: { size, count, window: 100, samples } },
        );
        runs.push({ kind, size, ...result });
        log(`echo round ${round + 1} ${kind} ${size} B: ${fixed(result.rate, 0)} msg/s, p50 ${fixed(result.rtt.p50, 3)} ms, p99 ${fixed(result.rtt.p99, 3)} ms`);
      }
    }
  }
  const rows = [];
  for (const { size } of sizes) {
    const of = (kind) => runs.filter((r) => r.kind === kind && r.size === size);
    const summary = (kind) => ({
      rate: median(of(kind).map((r) => r.rate)),
      p50: median(of(kind).map((r) => r.rtt.p50)),
      p99: median(of(kind).map((r) => r.rtt.p99)),
    });
    const raw = summary("raw");
    for (const kind of kinds) {
      const s = summary(kind);
      rows.push({ client: labels[kind], kind, size, ...s, rateVsRaw: s.rate / raw.rate, p50VsRaw: s.p50 / raw.p50, p99VsRaw: s.p99 / raw.p99 });
    }
  }
  return { rounds, samples, sizes, rows, runs, rustApi };
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Time to recover.

async function recoveryBench(page, server, rttMs) {
  const proxy = await startBlockableProxy(server.port);
  const configs = [
    {
      name: "fixed 250 ms delay (no jitter)",
      options: { reconnect: { minDelayMs: 250, maxDelayMs: 250, factor: 1, jitter: false } },
      outageMs: 1000,
      trials: QUICK ? 3 : 10,
      pauseMs: 300,
    },
    // The attempt count resets only after a connection stayed up stableAfterMs (5 s by default): pause longer than
    // that between trials, so each outage starts from the first backoff step.
    { name: "defaults (250 ms · 2ⁿ, full jitter)", options: {}, outageMs: 3000, trials: QUICK ? 2 : 5, pauseMs: 5500 },
  ];
  const missed = 100;
  const results = [];
  try {
    const rawConnectMs = await page.evaluate((url) => window.bench.rawConnectMs(url), `${proxy.ws}/echo`);
    for (const config of configs) {
      await page.evaluate(
        ({ receiver, sender, options }) => window.bench.recoveryOpen(receiver, sender, options),
        { receiver: `${proxy.ws}/chat`, sender: `${server.ws}/chat`, options: config.options },
      );
      const trials = [];
      for (let trial = 0; trial < config.trials; trial++) {
        const tag = `${config.name.slice(0, 5)}-${trial}`;
        await page.evaluate(() => window.bench.recoveryReset());
        proxy.block();
        // A random extra outage, so the moment the server is back falls anywhere between two attempts.
        const outageEnds = Date.now() + config.outageMs + Math.random() * 250;
        // The messages the receiver misses: the server holds them (acknowledged to the sender) for its session.
        await page.evaluate(({ tag, missed }) => window.bench.recoverySend(tag, missed), { tag, missed });
        await sleep(Math.max(0, outageEnds - Date.now()));
        const unblockedAt = proxy.unblock();
        let done = null;
        const deadline = Date.now() + 60_000;
        while (!done && Date.now() < deadline) {
          await sleep(20);
          done = await page.evaluate(({ tag, missed }) => window.bench.recoveryDone(tag, missed), { tag, missed });
        }
        if (!done) throw new Error(`recovery trial ${tag}: the missed messages never arrived`);
        const recoveryMs = done.lastAt - unblockedAt;
        // The attempt that succeeded: the last one announced before the session resumed (it may have been scheduled
        // a moment before the server was back and reached it just after).
        const attempt = done.reconnecting.filter((e) => e.at <= done.resumedAt).at(-1);
        const waitMs = attempt ? Math.max(0, attempt.at + attempt.delayMs - unblockedAt) : NaN;
        const delayMs = attempt?.delayMs ?? NaN;
        // The attempt started at max(scheduled, unblocked); then connect + resume handshake, then the replay.
        const connectMs = done.resumedAt - unblockedAt - waitMs;
        const replayMs = done.lastAt - done.resumedAt;
        trials.push({ recoveryMs, waitMs, delayMs, connectMs, replayMs, afterAttemptMs: recoveryMs - waitMs, boundMs: delayMs + rttMs });
        log(
          `recovery ${config.name} #${trial + 1}: ${fixed(recoveryMs, 1)} ms = wait ${fixed(waitMs, 1)} ms for the attempt ` +
            `(delay ${delayMs} ms) + connect/resume ${fixed(connectMs, 1)} ms + replay ${fixed(replayMs, 1)} ms`,
        );
        await sleep(config.pauseMs);
      }
      await page.evaluate(() => window.bench.recoveryClose());
      results.push({
        name: config.name,
        outageMs: config.outageMs,
        missed,
        trials,
        p50: median(trials.map((t) => t.recoveryMs)),
        max: Math.max(...trials.map((t) => t.recoveryMs)),
        afterAttemptP50: median(trials.map((t) => t.afterAttemptMs)),
        afterAttemptMax: Math.max(...trials.map((t) => t.afterAttemptMs)),
        connectP50: median(trials.map((t) => t.connectMs)),
        replayP50: median(trials.map((t) => t.replayMs)),
        withinBound: trials.filter((t) => t.recoveryMs <= t.boundMs).length,
        delayP50: median(trials.map((t) => t.delayMs)),
        maxDelay: Math.max(...trials.map((t) => t.delayMs)),
      });
    }
    return { rttMs, rawConnectMs, results };
  } finally {
    await proxy.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Memory.

async function memoryBench(page, server) {
  const cdp = await page.context().newCDPSession(page);
  const sample = async (label) => {
    await cdp.send("HeapProfiler.collectGarbage");
    await cdp.send("HeapProfiler.collectGarbage");
    const { usedSize } = await cdp.send("Runtime.getHeapUsage");
    const wasmBytes = await page.evaluate(() => window.bench.wasmMemoryBytes());
    log(`memory ${label}: JS heap ${kib(usedSize)}, wasm ${kib(wasmBytes)}`);
    return { label, jsHeap: usedSize, wasm: wasmBytes };
  };
  const scale = QUICK ? 0.2 : 1;
  await page.evaluate((url) => window.bench.soakOpen(url), `${server.ws}/echo`);
  const cycles = [await sample("open")];
  let done = 0;
  const cycleStart = Date.now();
  for (const step of [100, 150, 250, 250, 250].map((n) => Math.round(n * scale))) {
    const stats = await page.evaluate(({ step, http }) => window.bench.soakCycles(step, http), { step, http: server.http });
    done += step;
    cycles.push({ ...(await sample(`${done} reconnects`)), reconnects: stats.reconnects });
  }
  const cycleSeconds = (Date.now() - cycleStart) / 1000;
  const messages = [await sample("0 messages")];
  let sent = 0;
  let rate = [];
  for (const step of [10_000, 15_000, 25_000, 25_000, 25_000].map((n) => Math.round(n * scale))) {
    const result = await page.evaluate((step) => window.bench.soakMessages(step), step);
    rate.push(result.rate);
    sent += step;
    messages.push(await sample(`${sent} messages`));
  }
  await page.evaluate(() => window.bench.soakClose());
  await cdp.detach();
  // Flat: after the warm-up sample (index 1), the JS heap grows by less than 5 % + 64 KiB and wasm memory not at all.
  const verdict = (series) => {
    const warm = series[1];
    const last = series.at(-1);
    const jsGrowth = last.jsHeap - warm.jsHeap;
    const wasmGrowth = last.wasm - warm.wasm;
    return { jsGrowth, wasmGrowth, flat: jsGrowth < warm.jsHeap * 0.05 + 65536 && wasmGrowth <= 0 };
  };
  return { cycles, messages, cycleSeconds, messageRate: median(rate), cyclesVerdict: verdict(cycles), messagesVerdict: verdict(messages) };
}

// ---------------------------------------------------------------------------------------------------------------
// 5. Server under load.

function loadgen(args) {
  return new Promise((resolve, reject) => {
    // The fd limit: as high as the hard limit allows (each session is one socket on each side).
    const child = spawn("bash", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', join(RELEASE, "loadgen"), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => {
      err += chunk;
      process.stderr.write(chunk);
    });
    child.once("exit", (code) => {
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`loadgen exited with ${code}: ${err.slice(-2000)}`));
    });
  });
}

async function serverBench(www) {
  const scenarios = [
    { name: "100 sessions × 10 msg/s", sessions: 100, rate: 10 },
    { name: `${QUICK ? "2,000" : "10,000"} sessions × 1 msg/s`, sessions: QUICK ? 2000 : 10_000, rate: 1 },
  ];
  const results = [];
  for (const scenario of scenarios) {
    const server = await startServer({ www, bin: RELEASE, args: ["--max-sessions", "20000"] });
    try {
      await sleep(500);
      const report = await loadgen([
        "--url", `${server.ws}/echo`,
        "--sessions", String(scenario.sessions),
        "--rate", String(scenario.rate),
        "--duration-secs", QUICK ? "5" : "10",
        "--server-pid", String(server.child.pid),
      ]);
      results.push({ ...scenario, ...report });
    } finally {
      await server.stop();
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------------------------
// 7. Persisted sessions.

const ENGINE_NAMES = { chromium: "Chromium", firefox: "Firefox", webkit: "WebKit" };

function persistEngines() {
  const list = (process.env.PERSIST_ENGINES ?? process.env.DURABLE_WS_ENGINES ?? "chromium,firefox,webkit").split(",").map((e) => e.trim()).filter(Boolean);
  for (const engine of list) if (!ENGINE_NAMES[engine]) throw new Error(`PERSIST_ENGINES: unknown engine ${engine}`);
  return list;
}

/**
 * In each engine, one page of bench/page.html: (1) pipelined echo, `DurableWebSocket` without and with `persist`,
 * interleaved (the order alternates per round), each run on a new connection (and a new session name), medians of the
 * rounds; (2) send() → `stored`: one message at a time, and under the pipelined echo.
 */
async function persistBench(server, chromium) {
  const sizes = [
    { size: 100, count: QUICK ? 1000 : 5000 },
    { size: 4096, count: QUICK ? 500 : 2000 },
  ];
  const rounds = QUICK ? 1 : 3;
  const samples = QUICK ? 100 : 300;
  const latencyModes = [
    { mode: "one at a time", params: { count: QUICK ? 100 : 300, window: 0 } },
    { mode: "pipelined echo (100 unanswered)", params: { count: QUICK ? 1000 : 3000, window: 100 } },
  ];
  const engines = [];
  for (const engine of persistEngines()) {
    const result = { engine, name: ENGINE_NAMES[engine], runs: [], echo: [], latency: [] };
    engines.push(result);
    let browser = null;
    let context = null;
    try {
      if (engine === "chromium") {
        context = await chromium.newContext();
        result.version = `Chromium ${chromium.version()}`;
      } else {
        browser = await launchEngine(engine);
        context = await browser.newContext();
        result.version = browser.version().replace(/^(\S+)/, (name) => (name === "MiniBrowser" ? "WebKitGTK MiniBrowser" : name));
      }
      const page = await context.newPage();
      page.on("pageerror", (error) => log(`${engine} page error: ${error.message}`));
      await page.goto(`${server.http}/index.html`);
      await page.waitForFunction(() => window.bench?.ready === true, null, { timeout: 60_000 });
      if (engine === "webkit") result.version += ` (${await page.evaluate(() => window.bench.userAgent())})`;
      for (let round = 0; round < rounds; round++) {
        for (const { size, count } of sizes) {
          const order = round % 2 === 0 ? ["durable", "persist"] : ["persist", "durable"];
          for (const kind of order) {
            const run = await page.evaluate(
              ({ kind, url, params }) => window.bench.echo(kind, url, params),
              { kind, url: `${server.ws}/echo`, params: { size, count, window: 100, samples } },
            );
            result.runs.push({ kind, size, ...run });
            log(`persist ${engine} round ${round + 1} ${kind} ${size} B: ${fixed(run.rate, 0)} msg/s, RTT p50 ${fixed(run.rtt?.p50, 3)} ms`);
          }
        }
      }
      for (const { size } of sizes) {
        const of = (kind) => result.runs.filter((r) => r.kind === kind && r.size === size);
        const summary = (kind) => ({ rate: median(of(kind).map((r) => r.rate)), p50: median(of(kind).map((r) => r.rtt.p50)), p99: median(of(kind).map((r) => r.rtt.p99)) });
        const without = summary("durable");
        const withPersist = summary("persist");
        // The ratio of each round's pair (run back to back), then the median: less exposed to the machine's drift.
        const pairs = of("persist").map((p, i) => p.rate / of("durable")[i].rate);
        result.echo.push({ size, without, with: withPersist, ratio: withPersist.rate / without.rate, pairRatio: median(pairs), pairs });
      }
      for (const { mode, params } of latencyModes) {
        const latency = await page.evaluate(({ url, params }) => window.bench.storedLatency(url, params), { url: `${server.ws}/echo`, params: { ...params, size: 100 } });
        result.latency.push({ mode, ...latency });
        log(`persist ${engine} send → stored, ${mode}: p50 ${fixed(latency.p50, 2)} ms, p99 ${fixed(latency.p99, 2)} ms (${latency.messages} messages, ${fixed(latency.messagesPerCommit, 1)} per commit)`);
      }
    } catch (error) {
      log(`persist ${engine} failed: ${error.stack ?? error}`);
      result.error = String(error.message ?? error).split("\n")[0];
    } finally {
      await (browser ? browser.close() : context?.close());
    }
  }
  const dir = PKG ?? ["pkg", "www/pkg"].map((d) => join(REPO_ROOT, d)).find((d) => existsSync(join(d, "durable_ws_bg.wasm")));
  const size = { package: await durableWsSize(dir, REPO_ROOT), dir: dir.startsWith(REPO_ROOT) ? dir.slice(REPO_ROOT.length + 1) : dir, store: await storeJsSize(PKG ? resolve(PKG, "..") : REPO_ROOT) };
  const baseline = option("--persist-baseline");
  if (baseline) size.baseline = { dir: baseline, ...(await durableWsSize(baseline, REPO_ROOT)) };
  return { sizes, rounds, samples, latencyModes, engines, size };
}

function persistMarkdown(p, machineInfo) {
  const out = [];
  out.push(`Run of \`node bench/run.mjs${argv.length ? ` ${argv.join(" ")}` : ""}\` on ${machineInfo.date}: ${machineInfo.cpu} (2 cores, shared with other jobs), ${machineInfo.memory} RAM, ${machineInfo.kernel}; Node ${machineInfo.node}; commit ${machineInfo.commit}; the reference server (release build) on 127.0.0.1.`);
  out.push("");
  out.push("Browsers: " + p.engines.map((e) => `${e.name}: ${e.version ?? "n/a"}${e.error ? ` — **failed**: ${e.error}` : ""}`).join("; ") + ".");
  out.push("");
  out.push(`#### Echo throughput and round trip, with \`persist\` next to without`);
  out.push("");
  out.push(
    `Throughput: ${p.sizes.map((s) => `${s.count.toLocaleString("en")} × ${s.size} B`).join(", ")} to /echo, pipelined with at most 100 unanswered ` +
      `(as section 1); round trip: ${p.samples} messages one at a time. ${p.rounds} round${p.rounds === 1 ? "" : "s"}, the order of the two alternating, each run on a new ` +
      "connection (and, with persist, a new session name, closed and cleared after the run). Medians of the rounds; " +
      "\"× without\" is the ratio of the medians, \"pairs\" the ratio of each round's back-to-back pair.",
  );
  out.push("");
  const rows = [];
  for (const e of p.engines) {
    for (const r of e.echo) {
      rows.push({
        browser: e.name,
        message: `${r.size} B`,
        "msgs/s without": Math.round(r.without.rate).toLocaleString("en"),
        "msgs/s with persist": Math.round(r.with.rate).toLocaleString("en"),
        "× without": `**${fixed(r.ratio, 2)}×**`,
        pairs: r.pairs.map((x) => fixed(x, 2)).join(" / "),
        "RTT p50 without / with (ms)": `${fixed(r.without.p50, 2)} / ${fixed(r.with.p50, 2)}`,
        "RTT p99 without / with (ms)": `${fixed(r.without.p99, 2)} / ${fixed(r.with.p99, 2)}`,
      });
    }
  }
  out.push(table(["browser", "message", "msgs/s without", "msgs/s with persist", "× without", "pairs", "RTT p50 without / with (ms)", "RTT p99 without / with (ms)"], rows));
  out.push("");
  out.push("#### From `send()` to stored");
  out.push("");
  out.push(
    "Each message timed from its `send()` to the first `stored` event that covers it (the event says all but the last " +
      "`unstored` messages sent are stored: IndexedDB committed). One at a time: the next message is sent once the previous " +
      "one is stored (the bare commit latency). Pipelined echo: the throughput run's traffic (100 B, 100 unanswered), every " +
      "message timed. 20 warm-up messages are left out.",
  );
  out.push("");
  out.push(
    table(
      ["browser", "traffic", "messages", "p50", "p99", "mean", "max", "messages per stored event"],
      p.engines.flatMap((e) =>
        e.latency.map((l) => ({
          browser: e.name,
          traffic: l.mode,
          messages: l.messages.toLocaleString("en"),
          p50: `${fixed(l.p50, 2)} ms`,
          p99: `${fixed(l.p99, 2)} ms`,
          mean: `${fixed(l.mean, 2)} ms`,
          max: `${fixed(l.max, 1)} ms`,
          "messages per stored event": fixed(l.messagesPerCommit, 1),
        })),
      ),
    ),
  );
  out.push("");
  out.push("#### Package size");
  out.push("");
  const s = p.size;
  const sizeRows = [];
  const row = (name, pkg, note) => ({
    package: name,
    "JS glue (min / gzip)": `${pkg.glue.toLocaleString("en")} / ${pkg.glueGzip.toLocaleString("en")} B`,
    "wasm (raw / gzip)": `${pkg.wasm.toLocaleString("en")} / ${pkg.wasmGzip.toLocaleString("en")} B`,
    "total gzip": `**${(pkg.glueGzip + pkg.wasmGzip).toLocaleString("en")} B**`,
    note,
  });
  sizeRows.push(row("with persisted sessions", s.package, `${s.dir}/ (bench/size.mjs: glue bundled and minified by esbuild, gzip -9)`));
  if (s.baseline) {
    sizeRows.push(row("without (the commit before the feature)", s.baseline, s.baseline.dir));
    const delta = (key) => s.package[key] - s.baseline[key];
    sizeRows.push({
      package: "the feature's cost",
      "JS glue (min / gzip)": `+${delta("glue").toLocaleString("en")} / +${delta("glueGzip").toLocaleString("en")} B`,
      "wasm (raw / gzip)": `+${delta("wasm").toLocaleString("en")} / +${delta("wasmGzip").toLocaleString("en")} B`,
      "total gzip": `**+${(delta("glueGzip") + delta("wasmGzip")).toLocaleString("en")} B**`,
      note: "",
    });
  }
  sizeRows.push({
    package: "src/store.js alone",
    "JS glue (min / gzip)": `${s.store.minified.toLocaleString("en")} / ${s.store.gzip.toLocaleString("en")} B`,
    "wasm (raw / gzip)": "–",
    "total gzip": "–",
    note: "the storage driver, minified by esbuild on its own (inside the package it compresses with the rest)",
  });
  out.push(table(["package", "JS glue (min / gzip)", "wasm (raw / gzip)", "total gzip", "note"], sizeRows));
  out.push("");
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// Report.

function markdown(results) {
  const out = [];
  const m = results.machine;
  out.push(`Run of \`node bench/run.mjs${argv.length ? ` ${argv.join(" ")}` : ""}\` on ${m.date}.`);
  out.push("");
  out.push(`- Machine: ${m.cpu}, ${m.memory} RAM, ${m.kernel}; shared with other jobs, so figures are indicative.`);
  out.push(`- Browser: ${m.browser}; Node ${m.node}; commit ${m.commit}.`);
  out.push("- Server: the reference server, release build, on 127.0.0.1 (no proxy, no added latency).");
  out.push("");
  if (results.echo) {
    const e = results.echo;
    out.push("### 1. Echo throughput and round trip");
    out.push("");
    out.push(
      `Throughput: ${e.sizes.map((s) => `${s.count.toLocaleString("en")} × ${s.size} B`).join(", ")}, pipelined with at most 100 unanswered; ` +
        `round trip: ${e.samples} messages one at a time (after 50 warm-up). Median of ${e.rounds} interleaved rounds, each on a new connection. ` +
        "Ratios are against the raw browser WebSocket.",
    );
    if (!e.rustApi) out.push("", "The Rust API rows are missing: bench/rust-api did not build.");
    out.push("");
    out.push(
      table(
        ["client", "message", "msgs/s", "× raw", "RTT p50 (ms)", "× raw ", "RTT p99 (ms)", "× raw  "],
        e.rows.map((r) => ({
          client: r.client,
          message: r.size === 100 ? "100 B" : "4 KB",
          "msgs/s": Math.round(r.rate).toLocaleString("en"),
          "× raw": fixed(r.rateVsRaw),
          "RTT p50 (ms)": fixed(r.p50, 3),
          "× raw ": fixed(r.p50VsRaw),
          "RTT p99 (ms)": fixed(r.p99, 3),
          "× raw  ": fixed(r.p99VsRaw),
        })),
      ),
    );
    out.push("");
  }
  if (results.size) {
    out.push("### 2. Bundle size");
    out.push("");
    out.push("Each library bundled for the browser with `esbuild --bundle --minify` (durable-ws: its wasm-bindgen glue), then `gzip -9`.");
    out.push("");
    out.push(
      table(
        ["library", "minified", "gzip -9", "note"],
        results.size.rows.map((r) => ({ library: r.total ? `**${r.name}**` : r.name, minified: kib(r.minified), "gzip -9": r.total ? `**${kib(r.gzip)}**` : kib(r.gzip), note: r.note })),
      ),
    );
    out.push("");
    if (results.size.profile) {
      const p = results.size.profile;
      out.push(`Where the wasm bytes go (uncompressed; the shipped file rebuilt with names, wasm-opt ${p.flags.join(" ")} -g):`);
      if (!p.matchesShipped) {
        out.push("", `Caution: the profiled build (${p.profiledBytes} B of sections) is not the shipped one; cargo's last wasm32 release build had other features.`);
      }
      out.push("");
      out.push(table(["section", "bytes"], p.sections.map((s) => ({ section: s.name, bytes: s.size }))));
      out.push("");
      out.push(table(["crate (code section)", "functions", "bytes"], p.crates.slice(0, 12).map((c) => ({ "crate (code section)": c.crate, functions: c.functions, bytes: c.size }))));
      out.push("");
      out.push(table(["largest functions", "bytes"], p.topFunctions.slice(0, 15).map((f) => ({ "largest functions": `\`${f.name.replace(/::h[0-9a-f]{16}$/, "").slice(0, 110)}\``, bytes: f.size }))));
      out.push("");
    }
  }
  if (results.recovery) {
    const r = results.recovery;
    out.push("### 3. Time to recover");
    out.push("");
    out.push(
      "A receiver in the /chat room behind a proxy that Node blocks (connections refused, live ones cut) while a sender, " +
        `connected directly, sends ${r.results[0]?.missed ?? 100} messages the receiver misses. Measured: from the instant the proxy accepts ` +
        "connections again to the receiver holding the last missed message. Bound: the backoff delay of the attempt that " +
        `succeeded + one RTT (${fixed(r.rttMs, 3)} ms, the JS API's echo p50 above). Outage: as stated plus 0–250 ms at random. "After the attempt": the same minus the time ` +
        "still to wait for that scheduled attempt — connect, resume handshake and replay. For scale: a raw WebSocket " +
        `through the same proxy opens in ${fixed(r.rawConnectMs, 1)} ms (median of 20).`,
    );
    out.push("");
    out.push(
      table(
        ["reconnect policy", "outage", "trials", "recovery p50", "recovery max", "delay of the attempt p50 / max", "within delay + RTT", "after the attempt p50 / max", "of which connect + resume p50", "of which replay p50"],
        r.results.map((c) => ({
          "reconnect policy": c.name,
          outage: `${c.outageMs} ms`,
          trials: c.trials.length,
          "recovery p50": `${fixed(c.p50, 1)} ms`,
          "recovery max": `${fixed(c.max, 1)} ms`,
          "delay of the attempt p50 / max": `${fixed(c.delayP50, 0)} / ${fixed(c.maxDelay, 0)} ms`,
          "within delay + RTT": `${c.withinBound}/${c.trials.length}`,
          "after the attempt p50 / max": `${fixed(c.afterAttemptP50, 1)} / ${fixed(c.afterAttemptMax, 1)} ms`,
          "of which connect + resume p50": `${fixed(c.connectP50, 1)} ms`,
          "of which replay p50": `${fixed(c.replayP50, 1)} ms`,
        })),
      ),
    );
    out.push("");
  }
  if (results.memory) {
    const mem = results.memory;
    out.push("### 4. Memory");
    out.push("");
    out.push(
      "One DurableWebSocket on /echo. JS heap: V8's used heap (CDP `Runtime.getHeapUsage` after `HeapProfiler.collectGarbage`); " +
        "wasm: the module's memory (`memory.buffer.byteLength`, which never shrinks). Flat = after the first sample past warm-up, " +
        "the JS heap grows by less than 5 % + 64 KiB and wasm memory not at all.",
    );
    out.push("");
    const series = (list) => list.map((s) => ({ after: s.label, "JS heap": kib(s.jsHeap), "wasm memory": kib(s.wasm) }));
    out.push(`Reconnect cycles (echo one message, server cuts the connection, session resumes; ${fixed(mem.cycleSeconds, 1)} s in all):`);
    out.push("");
    out.push(table(["after", "JS heap", "wasm memory"], series(mem.cycles)));
    out.push("");
    out.push(`→ ${mem.cyclesVerdict.flat ? "**flat**" : "**NOT flat**"} (JS heap ${mem.cyclesVerdict.jsGrowth >= 0 ? "+" : ""}${kib(mem.cyclesVerdict.jsGrowth)}, wasm ${mem.cyclesVerdict.wasmGrowth >= 0 ? "+" : ""}${kib(mem.cyclesVerdict.wasmGrowth)} after warm-up).`);
    out.push("");
    out.push(`Messages (100 B echoes, pipelined, ${Math.round(mem.messageRate).toLocaleString("en")} msgs/s median):`);
    out.push("");
    out.push(table(["after", "JS heap", "wasm memory"], series(mem.messages)));
    out.push("");
    out.push(`→ ${mem.messagesVerdict.flat ? "**flat**" : "**NOT flat**"} (JS heap ${mem.messagesVerdict.jsGrowth >= 0 ? "+" : ""}${kib(mem.messagesVerdict.jsGrowth)}, wasm ${mem.messagesVerdict.wasmGrowth >= 0 ? "+" : ""}${kib(mem.messagesVerdict.wasmGrowth)} after warm-up).`);
    out.push("");
  }
  if (results.server) {
    out.push("### 5. Server under load");
    out.push("");
    out.push(
      "`loadgen` (crates/testkit/src/bin/loadgen.rs: the core `Client` over tokio-tungstenite, one task per session) opens durable " +
        "sessions on /echo in batches of 250, then every session sends 100-byte binary messages at a fixed rate for the stated time. " +
        "Server RSS from /proc/PID/status; per session = (RSS with all sessions open − RSS before) / sessions; CPU = user + system " +
        "time during the load phase (/proc/PID/stat) per echo. Load generator and server share the same cores.",
    );
    out.push("");
    out.push(
      table(
        ["scenario", "sessions open", "open time", "RSS before", "RSS open", "per session", "echoes/s", "RTT p50", "RTT p99", "RTT max", "server CPU / echo", "loadgen CPU / echo", "lost sessions"],
        results.server.map((s) => ({
          scenario: s.name,
          "sessions open": s.sessions_open.toLocaleString("en"),
          "open time": `${fixed(s.open_seconds, 1)} s`,
          "RSS before": kib(s.server_rss_before_kib * 1024),
          "RSS open": kib(s.server_rss_open_kib * 1024),
          "per session": kib(s.server_rss_per_session_bytes),
          "echoes/s": `${Math.round(s.echo_rate_per_second).toLocaleString("en")} (${s.echoes_received}/${s.messages_sent})`,
          "RTT p50": `${fixed(s.rtt_ms_p50, 2)} ms`,
          "RTT p99": `${fixed(s.rtt_ms_p99, 2)} ms`,
          "RTT max": `${fixed(s.rtt_ms_max, 1)} ms`,
          "server CPU / echo": `${fixed((s.server_cpu_seconds * 1e6) / s.echoes_received, 0)} µs`,
          "loadgen CPU / echo": `${fixed((s.loadgen_cpu_seconds * 1e6) / s.echoes_received, 0)} µs`,
          "lost sessions": s.sessions_lost,
        })),
      ),
    );
    out.push("");
  }
  if (results.errors.length) {
    out.push("### Parts that failed in this run");
    out.push("");
    for (const e of results.errors) out.push(`- ${e.part}: ${e.message.split("\n")[0]}`);
    out.push("");
  }
  return out.join("\n");
}

function scaleMarkdown(scale) {
  const out = [];
  out.push(`Run of \`node bench/run.mjs${argv.length ? ` ${argv.join(" ")}` : ""}\` on ${new Date().toISOString().slice(0, 10)} (release build, 127.0.0.1, one redis-server 7 without persistence; load generator, proxy, nodes and Redis share the 2 cores).`);
  out.push("");
  if (scale.load) {
    out.push("#### Load: memory store (one node) next to the Redis store (two nodes, sessions spread over them), same run");
    out.push("");
    const memory = Object.fromEntries(scale.load.filter((r) => r.store === "memory").map((r) => [r.scenario, r]));
    out.push(
      table(
        ["scenario", "store", "nodes", "sessions", "echoes/s", "ratio to memory", "RTT p50", "RTT p99", "Redis commands / echo", "Redis memory / session (peak)", "node RSS / session (peak)", "lost sessions"],
        scale.load.map((r) => ({
          scenario: r.scenario,
          store: r.store,
          nodes: r.nodes,
          sessions: r.sessions.toLocaleString("en"),
          "echoes/s": Math.round(r.echoesPerSecond).toLocaleString("en"),
          "ratio to memory": `${fixed(r.echoesPerSecond / memory[r.scenario].echoesPerSecond, 2)}×`,
          "RTT p50": `${fixed(r.p50, 2)} ms`,
          "RTT p99": `${fixed(r.p99, 2)} ms`,
          "Redis commands / echo": r.store === "redis" ? fixed(r.commandsPerEcho, 2) : "–",
          "Redis memory / session (peak)": r.store === "redis" ? kib(r.redisBytesPerSession) : "–",
          "node RSS / session (peak)": kib(r.rssBytesPerSession),
          "lost sessions": r.sessionsLost,
        })),
      ),
    );
    out.push("");
    out.push("An echo is two messages (the client's, and the server's answer): commands / echo ÷ 2 is Redis round trips per message.");
    out.push("");
  }
  if (scale.faults || scale.anchor) {
    out.push("#### Faults: restart (SIGTERM) of node A at 35 %, crash (SIGKILL) of node B at 70 %, round-robin proxy cutting every 50–400 ms");
    out.push("");
    const rows = [];
    if (scale.faults) {
      const f = scale.faults;
      rows.push({ system: "durable-ws (npm build in Chromium, two nodes, Redis store)", "c→s→c echoes": `${f.echoes.delivered}/${f.sent}`, lost: f.echoes.lost, duplicated: `${f.echoes.duplicated} (${f.redelivered} marked redeliveries)`, reordered: f.echoes.reordered, "reconnects / recovered": `${f.reconnects} / ${f.resumed}`, "session lost": f.sessionLost });
    }
    for (const a of scale.anchor ?? []) {
      const d = a.directions;
      const label = `socket.io 4.8 + redis-streams-adapter, CSR${a.mode === "retries" ? ", retries: 3 + ackTimeout" : ""}`;
      const cell = (dir, key) => d[dir]?.[key] ?? "n/a";
      rows.push({
        system: label,
        "c→s→c echoes": `${cell("msg→echo round trip", "received")}/${cell("msg→echo round trip", "sent")}`,
        lost: `${cell("msg→echo round trip", "lost")} (c→s ${cell("msg c→s", "lost")}, still queued ${cell("msg c→s", "pending")}; broadcasts s→c ${cell("bcast s→c", "lost")} of ${cell("bcast s→c", "sent")})`,
        duplicated: cell("msg→echo round trip", "duplicated"),
        reordered: cell("msg→echo round trip", "reordered"),
        "reconnects / recovered": `${a.reconnects} / ${a.recovered}`,
        "session lost": a.reconnects - a.recovered,
      });
    }
    out.push(table(["system", "c→s→c echoes", "lost", "duplicated", "reordered", "reconnects / recovered", "session lost"], rows));
    out.push("");
  }
  for (const e of scale.errors ?? []) out.push(`- failed: ${e}`);
  return out.join("\n");
}

function writeReport(text, { start = "<!-- results:start (written by bench/run.mjs) -->", end = "<!-- results:end -->" } = {}) {
  const file = join(REPO_ROOT, "BENCHMARKS.md");
  const current = existsSync(file) ? readFileSync(file, "utf8") : `# Benchmarks\n\n${start}\n${end}\n`;
  const from = current.indexOf(start);
  const to = current.indexOf(end);
  const next = from >= 0 && to > from ? `${current.slice(0, from + start.length)}\n${text}\n${current.slice(to)}` : `${current.trimEnd()}\n\n${start}\n${text}\n${end}\n`;
  writeFileSync(file, next);
  log(`results written into ${file}`);
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  if (!flag("--skip-build")) build();
  const site = siteDir({
    "index.html": "bench/page.html",
    "page.js": "bench/page.js",
    pkg: PKG ?? "www/pkg",
    "rws.mjs": "node_modules/reconnecting-websocket/dist/reconnecting-websocket-mjs.js",
    ...(existsSync(join(RUST_API_DIR, "durable_ws_bench.js")) ? { rust: RUST_API_DIR } : {}),
  });
  const browser = await launchBrowser();
  const results = { machine: machine(browser.version()), errors: [] };
  const attempt = async (part, body) => {
    if (!PARTS.has(part)) return;
    log(`--- ${part}`);
    try {
      results[part] = await body();
    } catch (error) {
      log(`${part} failed: ${error.stack ?? error}`);
      results.errors.push({ part, message: String(error.message ?? error) });
    }
  };
  const server = await startServer({ www: site.dir, bin: RELEASE });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => log(`page error: ${error.message}`));
    await page.goto(`${server.http}/index.html`);
    await page.waitForFunction(() => window.bench?.ready === true, null, { timeout: 30_000 });
    const rustApi = await page.evaluate(() => window.bench.rustApi);

    await attempt("echo", () => echoBench(page, server, rustApi));
    await attempt("size", async () => {
      const rows = await bundleSizes(REPO_ROOT, PKG);
      let wasmProfile = null;
      try {
        const named = namedBuild(REPO_ROOT);
        wasmProfile = { flags: named.flags, ...profile(named.bytes, 20) };
        // The profile rebuilds the wasm cargo built last: say so when that is not the shipped build.
        const shipped = rows.find((r) => r.name === "durable-ws: wasm").minified;
        const profiled = wasmProfile.sections.reduce((sum, section) => sum + section.size, 0);
        wasmProfile.matchesShipped = Math.abs(profiled - shipped) <= shipped * 0.03;
        wasmProfile.profiledBytes = profiled;
      } catch (error) {
        log(`wasm profile skipped: ${error.message}`);
      }
      return { rows, profile: wasmProfile };
    });
    const durableRtt = results.echo?.rows.find((r) => r.kind === "durable" && r.size === 100)?.p50 ?? 0.3;
    await attempt("recovery", () => recoveryBench(page, server, durableRtt));
    await attempt("memory", async () => {
      // A server of its own: the cycles cut every connection on it.
      const own = await startServer({ www: site.dir, bin: RELEASE });
      try {
        return await memoryBench(page, own);
      } finally {
        await own.stop();
      }
    });
    await context.close();
    await attempt("persist", () => persistBench(server, browser));
  } finally {
    await browser.close();
    await server.stop();
  }
  await attempt("server", () => serverBench(site.dir));
  await attempt("scale", async () => {
    const scale = { errors: [] };
    const part = async (name, body) => {
      try {
        scale[name] = await body();
      } catch (error) {
        log(`scale ${name} failed: ${error.stack ?? error}`);
        scale.errors.push(`${name}: ${String(error.message ?? error).split("\n")[0]}`);
      }
    };
    await part("load", () => loadBench({ bin: RELEASE, www: site.dir, quick: QUICK }));
    const faultBrowser = await launchBrowser();
    try {
      await part("faults", () => faultBench({ bin: RELEASE, browser: faultBrowser }));
    } finally {
      await faultBrowser.close();
    }
    await part("anchor", () => anchorBench());
    return scale;
  });
  site.remove();

  mkdirSync(join(REPO_ROOT, "target"), { recursive: true });
  writeFileSync(join(REPO_ROOT, "target/bench-results.json"), JSON.stringify(results, null, 2));
  const writesMain = [...PARTS].some((part) => MAIN_PARTS.includes(part));
  const text = markdown(results);
  if (writesMain) {
    console.log(text);
    if (!flag("--no-write")) writeReport(text);
  }
  if (results.persist) {
    const persistText = persistMarkdown(results.persist, results.machine);
    console.log(persistText);
    if (!flag("--no-write")) writeReport(persistText, { start: "<!-- persist:start (written by bench/run.mjs --only persist) -->", end: "<!-- persist:end -->" });
  }
  if (results.scale) {
    const scaleText = scaleMarkdown(results.scale);
    console.log(scaleText);
    if (!flag("--no-write")) writeReport(scaleText, { start: "<!-- scale:start (written by bench/run.mjs --only scale) -->", end: "<!-- scale:end -->" });
  }
  if (results.errors.length) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
