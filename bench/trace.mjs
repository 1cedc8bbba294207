#!/usr/bin/env node
// Where the time goes in the pipelined echo (issue 24): DurableWebSocket next to the raw browser WebSocket, same page,
// same server, rounds interleaved, in headless Chromium. Figures only: printed, and kept as JSON (--json=FILE, default
// target/trace-results.json). BENCHMARKS.md, "Where the time goes (issue 24)", reads a run.
//
//   node bench/trace.mjs                         3 rounds × (100 B, 4 KB) × (raw, durable) × drivers, 30,000 messages
//                                                per run (≈ 8 min)
//   node bench/trace.mjs --kinds=raw,rawbin,durable --modes=untraced    the frame type's share (≈ 3 min)
//   node bench/trace.mjs --count=5000 --rounds=1 --sizes=100 --drivers=bare --top=30
//   node bench/trace.mjs --pkg=DIR               the npm package (web target) in DIR instead of www/pkg
//   node bench/trace.mjs --keep-traces=DIR       also writes each trace (Chrome JSON: DevTools, Perfetto) to DIR
//   node bench/trace.mjs --report=A.json,B.json  the tables again from the JSON of earlier runs (rounds merged)
//   (also --window=N, --modes=untraced,light,full, --light-drivers=…, --full-drivers=…, --categories=… for full
//   traces, --no-names)
//
// Clients (--kinds): raw (text frames), rawbin (the raw socket sending the same text as binary frames, TextEncoder /
// TextDecoder in the page, as DurableWebSocket's frames are binary), durable. Drivers (--drivers): see DRIVERS below.
// The server's per-client rate limit is lifted (see startServer below). Each round runs every (size, driver, kind) in
// each mode, in an order that rotates per round:
//
// 1. untraced: throughput, and the CPU time of every thread of the driver's browser processes and of the server, read
//    from /proc/<pid>/task/<tid>/schedstat before and after (ns of CPU, and ns runnable but waiting for a core), with
//    the machine's busy time from /proc/stat (other jobs included). Per message: which thread spends what; how long
//    the page's main thread runs, waits for a core, or idles.
// 2. light: the same run under a Chromium trace (CDP `Tracing` on the browser target) with V8's sampling profiler
//    only (ProfileChunk events): each sample of the page's main thread, between the page's marks around the
//    throughput phase, goes to a bucket by its leaf frame (the app's JS, the library's face, the wasm-bindgen glue,
//    wasm, browser APIs such as WebSocket.send or TextDecoder.decode, GC, native time outside JS); shares × the
//    untraced main-thread CPU give µs per message. Top functions by self and inclusive time.
// 3. full: the categories of a DevTools recording and more (below): tasks, WebSocket frames, JS calls from Blink,
//    timers, microtask runs and GC per message, self thread time per trace event, and native samples split by the
//    trace event around them. Tracing multiplies the main thread's CPU by 2–3 here, so these figures say what
//    happens, not what it costs.
//
// Names: durable_ws.js is minified and the wasm has no names. The package is rebuilt into target/trace-names/ from the
// npm build's wasm (target/npm-package) with scripts/minify-pkg.mjs patched to keep a source map and the wasm's name
// section; when the rebuilt JS and wasm code section are byte-identical to the measured package's, minified functions
// are shown by their place in src/js/face.js or the glue, and wasm-function[N] by its Rust name. Otherwise
// (`--no-names`, or the package was built from other sources) they keep their minified names.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, createWriteStream } from "node:fs";
import { homedir, tmpdir, cpus } from "node:os";
import { join, resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { pathToFileURL } from "node:url";
import { REPO_ROOT, launchBrowser, siteDir, startServer } from "../tests/chaos/harness.mjs";

const argv = process.argv.slice(2);
const option = (name, fallback) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const flag = (name) => argv.includes(`--${name}`);
const COUNT = +option("count", 30_000);
const ROUNDS = +option("rounds", 3);
const WINDOW = +option("window", 100);
const SIZES = option("sizes", "100,4096").split(",").map(Number);
const KINDS = option("kinds", "raw,durable").split(",");
// bare: Chromium driven over its own DevTools pipe, with nothing enabled on the page (as a user's browser);
// network: the same with the DevTools Network domain enabled on the page (every WebSocket frame then also becomes a
// Network.webSocketFrameSent/Received event, its payload as text or, for a binary frame, base64, sent to Node);
// playwright: the page as bench/run.mjs drives it (Playwright enables Network, among other domains). All three with
// Playwright's Chromium flags.
const DRIVERS = option("drivers", "bare,network,playwright").split(",");
// untraced: throughput and CPU per thread; light / full: traced (see the categories below).
const MODES = option("modes", "untraced,light,full").split(",");
const LIGHT_DRIVERS = option("light-drivers", "bare,playwright").split(",");
const FULL_DRIVERS = option("full-drivers", "bare").split(",");
const TOP = +option("top", 20);
const PKG = resolve(REPO_ROOT, option("pkg", "www/pkg"));
const KEEP = option("keep-traces", null);
const JSON_OUT = option("json", join(REPO_ROOT, "target/trace-results.json"));

const log = (...parts) => console.error("[trace]", ...parts);
const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const mid = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const sum = (values) => values.reduce((a, b) => a + b, 0);
const uptime = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

// The traces. Light: the sampling profiler only (and the page's marks): 10–20 % more main-thread CPU, so its shares are
// those of an untraced run. Full: the categories of a DevTools performance recording and more — tasks with their
// posting site and mojo messages (toplevel, mojom, ipc), JS calls from Blink, WebSocket frames, timers, GC
// (devtools.timeline, v8, v8.execute, disabled-by-default-v8.gc), net — which multiplies the main thread's CPU by 2–3
// per message (every task and call is recorded, and each JS call from Blink takes a forced sample): its figures say
// what happens per message and where native time sits, not what it costs untraced.
const LIGHT_CATEGORIES = ["__metadata", "blink.user_timing", "disabled-by-default-v8.cpu_profiler"];
const FULL_CATEGORIES = option("categories", null)?.split(",") ?? [
  "__metadata",
  "toplevel",
  "toplevel.flow",
  "mojom",
  "ipc",
  "blink",
  "blink.user_timing",
  "devtools.timeline",
  "disabled-by-default-devtools.timeline",
  "v8",
  "v8.execute",
  "disabled-by-default-v8.gc",
  "disabled-by-default-v8.cpu_profiler",
  "net",
];

// ---------------------------------------------------------------------------------------------------------------
// The page: the same client wrappers and throughput loop as bench/page.js (`connect`, `throughput`), with marks
// around the throughput phase for the trace.

const PAGE_JS = `
import init, { DurableWebSocket } from "./pkg/durable_ws.js";
await init();

function connect(kind, url) {
  return new Promise((resolve, reject) => {
    let handler = () => {};
    const onMessage = (fn) => (handler = fn);
    if (kind === "durable") {
      const socket = new DurableWebSocket(url);
      socket.addEventListener("message", (e) => handler(e.data));
      socket.addEventListener("open", () => resolve({ send: (text) => socket.send(text), onMessage, close: () => socket.close(), socket }), { once: true });
    } else if (kind === "raw") {
      const socket = new WebSocket(url);
      socket.onmessage = (e) => handler(e.data);
      socket.onopen = () => resolve({ send: (text) => socket.send(text), onMessage, close: () => socket.close(), socket });
      socket.onerror = () => reject(new Error("raw WebSocket to " + url + " failed"));
    } else if (kind === "rawbin") {
      // The raw socket sending the same text as binary frames (TextEncoder / TextDecoder in JS), as DurableWebSocket's
      // frames are binary: the frame type's share of the difference.
      const socket = new WebSocket(url);
      socket.binaryType = "arraybuffer";
      const encoder = new TextEncoder();
      const decoder = new TextDecoder();
      socket.onmessage = (e) => handler(decoder.decode(e.data));
      socket.onopen = () => resolve({ send: (text) => socket.send(encoder.encode(text)), onMessage, close: () => socket.close(), socket });
      socket.onerror = () => reject(new Error("raw WebSocket to " + url + " failed"));
    } else {
      reject(new Error("unknown client kind " + kind));
    }
  });
}

async function throughput(client, size, count, window, tag) {
  const text = "x".repeat(size);
  let sent = 0;
  let received = 0;
  console.timeStamp("trace-start:" + tag);
  performance.mark("trace-start:" + tag);
  const started = performance.now();
  // Stalls: gaps of more than 20 ms between two messages (the pipeline should never be empty that long).
  let last = started;
  const stalls = [];
  await new Promise((resolve) => {
    client.onMessage(() => {
      const now = performance.now();
      if (now - last > 20) stalls.push([received, Math.round(now - last)]);
      last = now;
      received++;
      if (received === count) resolve();
      else if (sent < count) {
        sent++;
        client.send(text);
      }
    });
    for (; sent < Math.min(window, count); sent++) client.send(text);
  });
  const seconds = (performance.now() - started) / 1000;
  performance.mark("trace-end:" + tag);
  console.timeStamp("trace-end:" + tag);
  return { rate: count / seconds, seconds, stalls };
}

window.trace = {
  ready: true,
  async echo(kind, url, { size, count, window, tag }) {
    const client = await connect(kind, url);
    try {
      return await throughput(client, size, count, window, tag);
    } finally {
      client.close();
    }
  },
};
`;

// ---------------------------------------------------------------------------------------------------------------
// CPU per thread from /proc.

/** Every process below `root` (by parent pid), with its command line. */
function descendants(root) {
  const all = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      all.push({ pid: +entry, ppid: +fields[1], cmdline: readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0") });
    } catch {}
  }
  const wanted = new Set([root]);
  const found = [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all)
      if (wanted.has(p.ppid) && !wanted.has(p.pid)) {
        wanted.add(p.pid);
        found.push(p);
        grew = true;
      }
  }
  return found;
}

/** Whether process `pid` descends from `root`. */
function isBelow(pid, root) {
  for (let at = pid, hops = 0; at > 1 && hops < 20; hops++) {
    try {
      const stat = readFileSync(`/proc/${at}/stat`, "utf8");
      at = +stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
    } catch {
      return false;
    }
    if (at === root) return true;
  }
  return false;
}

/** What a process of ours is: the server, or Chromium's browser, renderer, network service, GPU, … process. */
function processKind(p, serverPid) {
  if (p.pid === serverPid) return "server";
  // Zygote-forked processes rewrite their command line into one string: read it as a whole.
  const command = p.cmdline.join(" ");
  if (!/^\S*(chromium|chrome)\b/.test(command)) return null;
  const type = command.match(/--type=(\S+)/)?.[1];
  if (!type) return "browser";
  if (type === "renderer") return command.includes("--top-chrome-webui") ? "other chromium" : "renderer";
  if (type === "utility") return command.includes("--utility-sub-type=network.mojom.NetworkService") ? "network service" : "other chromium";
  return type === "gpu-process" ? "gpu" : "other chromium";
}

/** Per thread of our processes: `{ key, pid, tid, kind, comm, cpu, wait }` (ns), plus the machine's jiffies. */
function snapshot(browserPid, serverPid) {
  const threads = new Map();
  const processes = descendants(process.pid).filter((p) => p.pid === serverPid || p.pid === browserPid || isBelow(p.pid, browserPid));
  for (const p of processes) {
    const kind = processKind(p, serverPid);
    if (!kind) continue;
    let tids = [];
    try {
      tids = readdirSync(`/proc/${p.pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const [cpu, wait] = readFileSync(`/proc/${p.pid}/task/${tid}/schedstat`, "utf8").split(" ").map(Number);
        const comm = readFileSync(`/proc/${p.pid}/task/${tid}/comm`, "utf8").trim();
        threads.set(`${p.pid}/${tid}`, { pid: p.pid, tid: +tid, kind, comm, cpu, wait });
      } catch {}
    }
  }
  const [, ...jiffies] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
  const j = jiffies.map(Number);
  const idle = j[3] + j[4];
  return { threads, machineTotal: sum(j.slice(0, 8)), machineIdle: idle, nodeCpu: process.cpuUsage(), at: process.hrtime.bigint() };
}

/**
 * CPU per message (µs) between two snapshots, by group: the page's renderer (the renderer whose main thread worked
 * most) split into its main thread, its IO thread and the rest; the network service; the browser process; the GPU
 * process and other Chromium processes; the server. `wait`: time runnable but not running (ns → µs per message).
 */
function cpuPerMessage(before, after, count, runSeconds) {
  const deltas = [];
  for (const [key, t] of after.threads) {
    const b = before.threads.get(key);
    deltas.push({ ...t, cpu: t.cpu - (b?.cpu ?? 0), wait: t.wait - (b?.wait ?? 0) });
  }
  const mains = deltas.filter((t) => t.kind === "renderer" && t.tid === t.pid).sort((a, b) => b.cpu - a.cpu);
  const page = mains[0]?.pid;
  const group = (t) => {
    if (t.kind === "renderer" && t.pid === page) return t.tid === t.pid ? "renderer main" : t.comm.startsWith("Chrome_ChildIO") ? "renderer IO" : "renderer other";
    if (t.kind === "renderer") return "other chromium";
    return t.kind;
  };
  const groups = {};
  const waits = {};
  const threads = {};
  for (const t of deltas) {
    const g = group(t);
    groups[g] = (groups[g] ?? 0) + t.cpu / 1000 / count;
    waits[g] = (waits[g] ?? 0) + t.wait / 1000 / count;
    const name = `${g}: ${t.comm}`;
    threads[name] = (threads[name] ?? 0) + t.cpu / 1000 / count;
  }
  const seconds = runSeconds ?? Number(after.at - before.at) / 1e9;
  const total = after.machineTotal - before.machineTotal;
  const busyCores = total > 0 ? (cpus().length * (total - (after.machineIdle - before.machineIdle))) / total : NaN;
  const ours = sum(Object.values(groups));
  const node = (after.nodeCpu.user + after.nodeCpu.system - before.nodeCpu.user - before.nodeCpu.system) / count;
  return { groups, waits, threads, ours, node, seconds, busyCores, oursCores: (ours * count) / 1e6 / seconds };
}

// ---------------------------------------------------------------------------------------------------------------
// Names for the minified glue and the nameless wasm.

/** Decodes a source map's mappings: per generated line, `[column, source, line, column, name?]` segments. */
function decodeMappings(mappings) {
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const lines = [];
  let source = 0;
  let line = 0;
  let column = 0;
  let name = 0;
  for (const text of mappings.split(";")) {
    const segments = [];
    let generated = 0;
    for (const segment of text.split(",")) {
      if (!segment) continue;
      const values = [];
      let value = 0;
      let shift = 0;
      for (const ch of segment) {
        const digit = B64.indexOf(ch);
        value += (digit & 31) * 2 ** shift;
        if (digit & 32) shift += 5;
        else {
          values.push(value % 2 ? -Math.floor(value / 2) : value / 2);
          value = 0;
          shift = 0;
        }
      }
      generated += values[0];
      const s = [generated];
      if (values.length >= 4) {
        source += values[1];
        line += values[2];
        column += values[3];
        s.push(source, line, column);
        if (values.length >= 5) {
          name += values[4];
          s.push(name);
        }
      }
      segments.push(s);
    }
    lines.push(segments);
  }
  return lines;
}

/** The bytes of a wasm binary's code section (section 10). */
function codeSection(bytes) {
  let at = 8;
  const u32 = () => {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++];
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
    }
  };
  while (at < bytes.length) {
    const id = bytes[at++];
    const size = u32();
    if (id === 10) return bytes.subarray(at, at + size);
    at += size;
  }
  return null;
}

/**
 * Rebuilds the measured package with names (see the top of this file) and returns `{ js(line, column), wasm(index),
 * note }`: the original place of a minified function of durable_ws.js (`{ file, text }`), the Rust name of a wasm
 * function index, or nulls when the rebuild does not match the measured package.
 */
async function nameMaps() {
  const none = (note) => ({ js: () => null, wasm: () => null, note });
  if (flag("no-names")) return none("names not looked up (--no-names)");
  const npmWasm = join(REPO_ROOT, "target/npm-package/wasm32-unknown-unknown/release/durable_ws_npm.wasm");
  if (!existsSync(npmWasm)) return none(`no ${npmWasm}: minified names kept`);
  const dir = join(REPO_ROOT, "target/trace-names");
  const out = join(dir, "pkg");
  try {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    const env = { ...process.env, PATH: `${join(homedir(), ".cargo/bin")}:${join(REPO_ROOT, "node_modules/.bin")}:${process.env.PATH}` };
    execFileSync("wasm-bindgen", ["--target", "web", "--out-dir", out, "--out-name", "durable_ws", npmWasm], { env, stdio: "pipe" });
    // scripts/minify-pkg.mjs as it is, but keeping the wasm's names (-g) and writing a source map of the bundle.
    const patched = readFileSync(join(REPO_ROOT, "scripts/minify-pkg.mjs"), "utf8")
      .replaceAll("import.meta.url", JSON.stringify(pathToFileURL(join(REPO_ROOT, "scripts/minify-pkg.mjs")).href))
      .replace('"-Oz",', '"-Oz", "-g",')
      .replace("allowOverwrite: true,", 'allowOverwrite: true, sourcemap: "external", sourcesContent: true,');
    if (!patched.includes('"-g"') || !patched.includes("sourcemap:")) return none("scripts/minify-pkg.mjs changed shape: minified names kept");
    writeFileSync(join(dir, "minify-pkg-names.mjs"), patched);
    execFileSync("node", [join(dir, "minify-pkg-names.mjs"), out], { env, cwd: REPO_ROOT, stdio: "pipe" });
  } catch (error) {
    return none(`rebuild with names failed (${error.message.split("\n")[0]}): minified names kept`);
  }
  const notes = [];
  let js = () => null;
  const strip = (text) => text.replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
  if (strip(readFileSync(join(out, "durable_ws.js"), "utf8")) === readFileSync(join(PKG, "durable_ws.js"), "utf8")) {
    const map = JSON.parse(readFileSync(join(out, "durable_ws.js.map"), "utf8"));
    const lines = decodeMappings(map.mappings);
    const contents = (map.sourcesContent ?? []).map((text) => text?.split("\n") ?? []);
    js = (line, column) => {
      const segments = lines[line] ?? [];
      let found = null;
      for (const s of segments) {
        if (s[0] > column) break;
        if (s.length >= 4) found = s;
      }
      if (!found) return null;
      const file = map.sources[found[1]].split("/").pop().replace("durable_ws_glue.js", "glue");
      const text = (contents[found[1]][found[2]] ?? "").slice(found[3]).trim().slice(0, 60);
      return { file, line: found[2] + 1, text };
    };
    notes.push("durable_ws.js mapped through a source map of an identical rebuild");
  } else notes.push("durable_ws.js: the rebuild differs from the measured package, minified names kept");
  let wasm = () => null;
  const { parseWasm } = await import("./wasm-profile.mjs");
  const named = readFileSync(join(out, "durable_ws_bg.wasm"));
  const measuredCode = codeSection(readFileSync(join(PKG, "durable_ws_bg.wasm")));
  const namedCode = codeSection(named);
  if (measuredCode && namedCode && Buffer.compare(Buffer.from(measuredCode), Buffer.from(namedCode)) === 0) {
    const { names } = parseWasm(named);
    wasm = (index) => names.get(index)?.replace(/\[[0-9a-f]{16}\]/g, "") ?? null;
    notes.push("wasm functions named from an identical rebuild (code sections byte-equal)");
  } else notes.push("durable_ws_bg.wasm: the rebuild differs from the measured package, wasm-function[N] kept");
  return { js, wasm, note: notes.join("; ") };
}

// ---------------------------------------------------------------------------------------------------------------
// Tracing.

/** Starts a trace of every process (browser target); `stop()` ends it and returns the main-thread events. */
async function startTrace(cdp, categories) {
  await cdp.send("Tracing.start", {
    traceConfig: { includedCategories: categories, excludedCategories: ["*"], recordMode: "recordAsMuchAsPossible" },
    transferMode: "ReturnAsStream",
    streamFormat: "json",
    bufferUsageReportingInterval: 60_000,
    bufferSizeKb: 1 << 20,
  });
  return async function stop(keepFile) {
    const complete = new Promise((resolve) => cdp.once("Tracing.tracingComplete", resolve));
    await cdp.send("Tracing.end");
    const { stream, dataLossOccurred } = await complete;
    const file = keepFile ? createWriteStream(keepFile) : null;
    const collected = collector();
    let rest = "";
    for (;;) {
      const chunk = await cdp.send("IO.read", { handle: stream, size: 4 << 20 });
      const text = chunk.base64Encoded ? Buffer.from(chunk.data, "base64").toString("utf8") : chunk.data;
      file?.write(text);
      const lines = (rest + text).split("\n");
      rest = lines.pop();
      for (const line of lines) collected.line(line);
      if (chunk.eof) break;
    }
    collected.line(rest);
    await cdp.send("IO.close", { handle: stream });
    if (file) await new Promise((resolve) => file.end(resolve));
    return { ...collected.result(), dataLoss: !!dataLossOccurred };
  };
}

/**
 * Keeps what the analysis needs from the trace's lines (one event per line): the events of every process's main
 * thread (tid = pid; the page's renderer is found by its marks), the profiler's Profile/ProfileChunk events, and the
 * count of events.
 */
function collector() {
  const main = new Map(); // pid -> events
  const profiles = [];
  let events = 0;
  return {
    line(line) {
      const text = line.endsWith(",") ? line.slice(0, -1) : line;
      if (!text.startsWith('{"')) return;
      let e;
      try {
        e = JSON.parse(text);
      } catch {
        return; // the closing metadata
      }
      if (!e.ph) return;
      events++;
      if (e.name === "Profile" || e.name === "ProfileChunk") {
        profiles.push(e);
        return;
      }
      if (e.ph === "M" || e.tid !== e.pid || e.name === "UpdateCounters") return;
      let list = main.get(e.pid);
      if (!list) main.set(e.pid, (list = []));
      list.push(compact(e));
    },
    result: () => ({ main, profiles, events }),
  };
}

/** The fields of an event the analysis reads. */
function compact(e) {
  const c = { name: e.name, cat: e.cat, ph: e.ph, ts: e.ts, dur: e.dur, tdur: e.tdur, tts: e.tts };
  if (e.name === "Receive mojo message") c.mojo = e.args?.chrome_mojo_event_info?.mojo_interface_tag;
  else if (e.name === "TimeStamp") c.message = e.args?.data?.message;
  else if (e.name === "EventDispatch") c.type = e.args?.data?.type;
  else if (e.name === "FunctionCall") c.fn = `${e.args?.data?.functionName ?? ""} ${(e.args?.data?.url ?? "").split("/").pop()}`;
  else if (e.name === "ThreadControllerImpl::RunTask") c.from = `${e.args?.src_file ?? ""}:${e.args?.src_func ?? ""}`;
  return c;
}

/** B/E pairs as complete events, sorted by start (longer first on ties): the thread's nested slices. */
function slices(events) {
  const out = [];
  const open = [];
  for (const e of [...events].sort((a, b) => a.ts - b.ts)) {
    if (e.ph === "X") out.push(e);
    else if (e.ph === "B") open.push(e);
    else if (e.ph === "E") {
      const b = open.pop();
      if (b) out.push({ ...b, ph: "X", dur: e.ts - b.ts, tdur: e.tts != null && b.tts != null ? e.tts - b.tts : undefined });
    }
  }
  return out.filter((e) => e.dur >= 0).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
}

// The buckets of the main thread's CPU time, in the order of the tables. A sample's bucket is its leaf frame's;
// native time outside JS ("(program)") is one bucket in light traces and split by the trace event around it in full
// ones (the `native-…` keys).
const BUCKETS = [
  ["ws-send", "WebSocket.send (Blink, native)"],
  ["app", "JS: the benchmark page (app)"],
  ["face", "JS: library face (src/js/face.js)"],
  ["glue", "JS: wasm-bindgen glue"],
  ["boundary", "JS↔wasm transitions (js-to-wasm, wasm-to-js)"],
  ["wasm", "wasm (the engine)"],
  ["text", "TextEncoder / TextDecoder"],
  ["events", "new Event + EventTarget.dispatchEvent (native)"],
  ["microtasks", "queueMicrotask (native)"],
  ["timers", "setTimeout / clearTimeout (native)"],
  ["builtins", "other browser APIs called from JS"],
  ["gc", "GC (main thread)"],
  ["native", "native outside JS: Blink receive path, tasks, IPC, checkpoints"],
  ["native-ws-receive", "  … WebSocket client mojo message (frame → MessageEvent → dispatch)"],
  ["native-js", "  … inside a JS call from Blink (bindings, call setup)"],
  ["native-microtasks", "  … microtask checkpoints"],
  ["native-timers", "  … timer tasks"],
  ["native-tasks", "  … other tasks, IPC, scheduler"],
  ["native-outside", "  … outside any task"],
];
const NATIVE_SPLIT = BUCKETS.map(([key]) => key).filter((key) => key.startsWith("native-"));
const BUSY_BUCKETS = BUCKETS.map(([key]) => key).filter((key) => !key.startsWith("native-")); // native = Σ native-…

/** The bucket of a profiler sample from its leaf frame (`native` for native time outside JS). */
function bucketOf(frame, names) {
  const name = frame.functionName;
  const url = frame.url ?? "";
  if (name === "(idle)") return "idle";
  if (name === "(garbage collector)") return "gc";
  if (name === "(program)" || name === "(root)") return "native";
  if (frame.codeType === "wasm") return "wasm";
  if (name.startsWith("js-to-wasm") || name.startsWith("wasm-to-js")) return "boundary";
  if (url.endsWith("/durable_ws.js")) return names.js(frame.lineNumber, frame.columnNumber)?.file === "face.js" ? "face" : "glue";
  if (url) return "app";
  if (name === "send") return "ws-send";
  if (/^(decode|encode|encodeInto|TextDecoder|TextEncoder)$/.test(name)) return "text";
  if (/^(dispatchEvent|Event|MessageEvent)$/.test(name)) return "events";
  if (name === "queueMicrotask") return "microtasks";
  if (/^(setTimeout|clearTimeout)$/.test(name)) return "timers";
  return "builtins";
}

/** Where native time sits, from the trace events open around it (outermost first). */
function nativeContext(stack) {
  let context = stack.length ? "native-tasks" : "native-outside";
  for (const e of stack) {
    const n = e.name;
    if (n === "MinorGC" || n === "MajorGC" || (/gc/.test(e.cat) && /GC|Scavenge|Sweep|Mark/.test(n))) return "gc";
    if (n === "v8.callFunction" || n === "FunctionCall" || n === "V8.Execute" || n === "v8.run") context = "native-js";
    else if (n === "RunMicrotasks" || n === "BlinkScheduler_PerformMicrotaskCheckpoint") context = "native-microtasks";
    else if (n === "TimerFire" || n === "TimerBase::run") context = "native-timers";
    else if (n === "Receive mojo message" && e.mojo === "network.mojom.WebSocketClient" && context === "native-tasks") context = "native-ws-receive";
  }
  return context;
}

/** A function's name in the top-N lists: mapped back to face.js / the glue / Rust where possible. */
function functionKey(frame, names) {
  const name = frame.functionName || "(anonymous)";
  const url = frame.url ?? "";
  if (frame.codeType === "wasm") {
    const index = +(name.match(/wasm-function\[(\d+)\]/)?.[1] ?? NaN);
    return `wasm: ${names.wasm(index) ?? name}`;
  }
  if (url.endsWith("/durable_ws.js")) {
    const original = names.js(frame.lineNumber, frame.columnNumber);
    return original ? `${original.file}:${original.line} ${original.text}` : `durable_ws.js ${name} :${frame.lineNumber + 1}:${frame.columnNumber + 1}`;
  }
  if (url) return `${url.split("/").pop()}:${frame.lineNumber + 1} ${name}`;
  if (name.startsWith("(")) return name;
  return `${name} (native)`;
}

/**
 * The renderer main thread in the throughput phase of one traced run (between the page's marks).
 *
 * Samples: V8's sampler ticks on wall-clock time (≈ every 100–250 µs here). A full trace adds one forced sample at
 * the start of every JS call from Blink (FunctionCall's sampleTraceId): those are dropped (the "(program)" sample
 * closest to each FunctionCall start, within 20 µs), since they would give every call's time to "(program)". In a
 * light trace each sample counts 1 (shares); in a full trace a sample is weighted by the thread time (CPU) up to the
 * next sample, interpolated between the slices' thread timestamps.
 *
 * Returns per message (µs) the trace-event totals (full traces), bucket shares of the busy samples, and per function
 * self and inclusive shares.
 */
function analyse(trace, tag, count, names, mode) {
  let pid = null;
  let start = null;
  let end = null;
  for (const [p, events] of trace.main)
    for (const e of events) {
      const mark = e.name === "TimeStamp" ? e.message : e.name;
      if (mark === `trace-start:${tag}` && start === null) [pid, start] = [p, e.ts];
      if (mark === `trace-end:${tag}`) end = Math.max(end ?? -Infinity, e.ts);
    }
  if (pid === null || end === null) throw new Error(`trace ${tag}: no marks of the throughput phase found`);
  const perMessage = (us) => us / count;
  const all = slices(trace.main.get(pid));
  const inside = all.filter((e) => e.ts >= start && e.ts + e.dur <= end);
  const out = { mode, pid, wallPerMessage: perMessage(end - start) };

  if (mode === "full") {
    // Top-level slices (not inside another): busy wall and thread time; self thread time per event name.
    let busyWall = 0;
    let busyCpu = 0;
    let tasks = 0;
    let reach = -Infinity;
    const selfCpu = new Map();
    const stack = [];
    const add = (name, v) => selfCpu.set(name, (selfCpu.get(name) ?? 0) + v);
    const nameOf = (e) => (e.name === "Receive mojo message" ? `Receive mojo message (${e.mojo ?? "?"})` : e.name);
    for (const e of inside) {
      while (stack.length && stack.at(-1).ts + stack.at(-1).dur <= e.ts) stack.pop();
      const cpu = e.tdur ?? e.dur;
      if (e.ts >= reach) {
        busyWall += e.dur;
        busyCpu += cpu;
        reach = e.ts + e.dur;
      }
      if (e.name === "ThreadControllerImpl::RunTask") tasks++;
      add(nameOf(e), cpu);
      if (stack.length) add(nameOf(stack.at(-1)), -cpu);
      stack.push(e);
    }
    const within = (name) => trace.main.get(pid).filter((e) => e.name === name && e.ts >= start && e.ts <= end).length;
    Object.assign(out, {
      busyWall: perMessage(busyWall),
      busyCpu: perMessage(busyCpu),
      idle: perMessage(end - start - busyWall),
      tasksPerMessage: tasks / count,
      framesReceived: within("WebSocketReceive") / count,
      framesSent: within("WebSocketSend") / count,
      functionCalls: within("FunctionCall") / count,
      timerTasks: (within("TimerFire") + within("TimerBase::run")) / count,
      runMicrotasks: within("RunMicrotasks") / count,
      gcEvents: (within("MinorGC") + within("MajorGC") + within("V8.GC_SCAVENGER") + within("V8.GC_MC_BACKGROUND_MARKING")) / count,
      selfCpu: Object.fromEntries([...selfCpu].map(([k, v]) => [k, perMessage(v)])),
    });
  }

  // The profiler's samples of this renderer.
  const profile = trace.profiles.find((e) => e.name === "Profile" && e.pid === pid);
  const nodes = new Map();
  const ids = [];
  const deltas = [];
  const forcedNodes = new Set();
  for (const e of trace.profiles) {
    if (e.name !== "ProfileChunk" || e.pid !== pid || e.id !== profile?.id) continue;
    const data = e.args?.data ?? {};
    for (const node of data.cpuProfile?.nodes ?? []) nodes.set(node.id, node);
    for (const id of data.cpuProfile?.samples ?? []) ids.push(id);
    for (const delta of data.timeDeltas ?? []) deltas.push(delta);
    for (const node of Object.values(data.cpuProfile?.trace_ids ?? {})) forcedNodes.add(node);
  }
  let t = profile?.args?.data?.startTime ?? 0;
  const samples = deltas.map((delta, i) => ({ at: (t += delta), id: ids[i], forced: false })).sort((a, b) => a.at - b.at);
  // Forced samples: the one closest to each FunctionCall's start (FunctionCall events are in full traces only).
  const calls = inside.filter((e) => e.name === "FunctionCall").map((e) => e.ts);
  let forced = 0;
  for (let i = 0, j = 0; i < calls.length; i++) {
    while (j < samples.length && samples[j].at < calls[i] - 2) j++;
    let best = -1;
    for (let k = j; k < samples.length && samples[k].at <= calls[i] + 20; k++)
      if (!samples[k].forced && forcedNodes.has(samples[k].id) && (best < 0 || Math.abs(samples[k].at - calls[i]) < Math.abs(samples[best].at - calls[i]))) best = k;
    if (best >= 0) {
      samples[best].forced = true;
      forced++;
    }
  }
  const kept = samples.filter((x) => !x.forced);
  // Weights: 1 per sample (light), or thread time up to the next sample (full).
  let weights = kept.map(() => 1);
  if (mode === "full") {
    const points = [];
    for (const e of trace.main.get(pid)) {
      if (e.tts == null) continue;
      points.push([e.ts, e.tts]);
      if (e.ph === "X" && e.tdur != null) points.push([e.ts + e.dur, e.tts + e.tdur]);
    }
    points.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < points.length; i++) points[i][1] = Math.max(points[i][1], points[i - 1][1]);
    let cursor = 0;
    const cpuAt = (at) => {
      while (cursor + 1 < points.length && points[cursor + 1][0] <= at) cursor++;
      const [t0, c0] = points[cursor] ?? [at, 0];
      const [t1, c1] = points[cursor + 1] ?? [t0, c0];
      return t1 > t0 && at > t0 ? c0 + ((c1 - c0) * Math.min(at - t0, t1 - t0)) / (t1 - t0) : c0;
    };
    const cpu = kept.map((x) => cpuAt(x.at));
    weights = kept.map((_, i) => (i + 1 < kept.length ? cpu[i + 1] - cpu[i] : 0));
  }
  const buckets = Object.fromEntries([...BUCKETS.map(([key]) => key), "idle"].map((key) => [key, 0]));
  const self = new Map();
  const inclusive = new Map();
  const open = [];
  let next = 0;
  let samplesIn = 0;
  for (let i = 0; i < kept.length; i++) {
    const { at, id } = kept[i];
    // The slices open at `at` (full traces), for native samples.
    while (next < all.length && all[next].ts <= at) {
      while (open.length && open.at(-1).ts + open.at(-1).dur < all[next].ts) open.pop();
      open.push(all[next++]);
    }
    if (at < start || at >= end) continue;
    samplesIn++;
    const w = weights[i];
    const node = nodes.get(id);
    const frame = node?.callFrame ?? { functionName: "(unknown)" };
    const bucket = bucketOf(frame, names);
    buckets[bucket] += w;
    if (bucket === "native" && mode === "full") {
      const context = nativeContext(open.filter((e) => e.ts + e.dur >= at));
      if (context === "gc") {
        buckets.native -= w;
        buckets.gc += w;
      } else buckets[context] += w;
    }
    if (bucket === "idle") continue;
    const key = functionKey(frame, names);
    const f = self.get(key) ?? { key, bucket, w: 0 };
    f.w += w;
    self.set(key, f);
    // Inclusive: every function on the stack, once.
    const seen = new Set();
    for (let n = node; n; n = nodes.get(n.parent)) {
      if (!n.callFrame || n.callFrame.functionName.startsWith("(")) continue;
      const k = functionKey(n.callFrame, names);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + w);
    }
  }
  const busy = sum(BUSY_BUCKETS.map((k) => buckets[k]));
  out.samples = samplesIn;
  out.forcedDropped = forced;
  out.busyWeight = busy;
  // Shares of the busy time (0–1); full traces also give µs per message of thread time.
  out.shares = Object.fromEntries(Object.entries(buckets).map(([k, v]) => [k, busy ? v / busy : NaN]));
  out.idleShare = buckets.idle / (busy + buckets.idle);
  if (mode === "full") out.sampledCpu = perMessage(busy);
  out.self = [...self.values()].map((f) => ({ key: f.key, bucket: f.bucket, share: f.w / busy }));
  out.inclusive = [...inclusive].map(([key, w]) => ({ key, share: w / busy }));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Drivers: `{ name, pid, cdp: { send, once }, echo(kind, size, count, tag), close() }`.

const ECHO = (kind, size, count, tag, url) =>
  `window.trace.echo(${JSON.stringify(kind)}, ${JSON.stringify(url)}, ${JSON.stringify({ size, count, window: WINDOW, tag })})`;

/** The Chromium flags Playwright launches with (read from the process it started), for the bare driver too. */
let playwrightArgs = null;

/** Launches Chromium through Playwright (tests/support/browser.mjs); also returns its browser process. */
async function launchPlaywright() {
  const before = new Set(descendants(process.pid).map((p) => p.pid));
  const browser = await launchBrowser();
  const started = descendants(process.pid).find((p) => !before.has(p.pid) && processKind(p, -1) === "browser");
  if (!started) throw new Error("playwright: its Chromium process was not found");
  playwrightArgs ??= started.cmdline.filter((a) => a !== "");
  return { browser, pid: started.pid };
}

/** The page as bench/run.mjs and bench/profile.mjs drive it: Playwright, its CDP domains enabled. */
async function playwrightDriver(url) {
  const { browser, pid } = await launchPlaywright();
  const page = await (await browser.newContext()).newPage();
  await page.goto(url);
  await page.waitForFunction(() => window.trace?.ready === true, null, { timeout: 60_000 });
  const session = await browser.newBrowserCDPSession();
  const ws = url.replace(/^http/, "ws").replace(/\/index\.html$/, "/echo");
  return {
    name: "playwright",
    pid,
    cdp: { send: (method, params) => session.send(method, params), once: (event, fn) => session.once(event, fn) },
    echo: (kind, size, count, tag) => page.evaluate(ECHO(kind, size, count, tag, ws)),
    close: () => browser.close(),
  };
}

/**
 * Chromium with Playwright's flags, driven over --remote-debugging-pipe by this script: the page gets a target
 * session for Runtime.evaluate and nothing else (no Network, Page or Runtime domain enabled), as in a user's browser.
 */
async function bareDriver(url, { network = false } = {}) {
  // Playwright's flags: launch it once to read them.
  if (!playwrightArgs) await (await launchPlaywright()).browser.close();
  if (!playwrightArgs) throw new Error("bare: Playwright's Chromium flags could not be read");
  const [exe, ...args] = playwrightArgs;
  const profile = mkdtempSync(join(tmpdir(), "durable-ws-trace-profile-"));
  const flags = args.filter((a) => a.startsWith("--") && !a.startsWith("--user-data-dir=") && !a.startsWith("--remote-debugging"));
  const child = spawn(exe, [...flags, `--user-data-dir=${profile}`, "--remote-debugging-pipe"], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
  child.stderr.on("data", () => {});
  const toChrome = child.stdio[3];
  const fromChrome = child.stdio[4];
  let id = 0;
  const waiting = new Map();
  const listeners = [];
  let buffered = "";
  const utf8 = new StringDecoder("utf8"); // a character may straddle two chunks
  fromChrome.on("data", (chunk) => {
    buffered += utf8.write(chunk);
    let end;
    while ((end = buffered.indexOf("\0")) >= 0) {
      const message = JSON.parse(buffered.slice(0, end));
      buffered = buffered.slice(end + 1);
      if (message.id !== undefined) {
        const w = waiting.get(message.id);
        waiting.delete(message.id);
        if (message.error) w?.reject(new Error(`${w.method}: ${message.error.message}`));
        else w?.resolve(message.result);
      } else {
        for (const l of [...listeners]) if (l.method === message.method && l.sessionId === message.sessionId) l.fn(message.params);
      }
    }
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const send = (method, params = {}, sessionId) =>
    new Promise((resolve, reject) => {
      waiting.set(++id, { resolve, reject, method });
      toChrome.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
    });
  const once = (method, fn, sessionId) => {
    const l = { method, sessionId, fn: (params) => (listeners.splice(listeners.indexOf(l), 1), fn(params)) };
    listeners.push(l);
  };
  await send("Browser.getVersion");
  const { targetId } = await send("Target.createTarget", { url });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  // The "network" driver: the same, plus the one DevTools domain Playwright enables that sees every frame.
  if (network) await send("Network.enable", {}, sessionId);
  const evaluate = async (expression) => {
    const { result, exceptionDetails } = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }, sessionId);
    if (exceptionDetails) throw new Error(`bare: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
    return result.value;
  };
  for (const deadline = Date.now() + 60_000; !(await evaluate("window.trace?.ready === true")); ) {
    if (Date.now() > deadline) throw new Error("bare: the page never became ready");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const ws = url.replace(/^http/, "ws").replace(/\/index\.html$/, "/echo");
  return {
    name: network ? "network" : "bare",
    pid: child.pid,
    cdp: { send: (method, params) => send(method, params), once: (event, fn) => once(event, fn) },
    echo: (kind, size, count, tag) => evaluate(ECHO(kind, size, count, tag, ws)),
    close: async () => {
      await send("Browser.close").catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The runs.

// `--report=FILE`: the tables of an earlier run's JSON (`--json`), without running anything.
// Several files (comma-separated) are merged: their rounds follow one another.
if (option("report", null)) {
  const parts = option("report").split(",").map((file) => JSON.parse(readFileSync(file, "utf8")));
  const merged = { ...parts[0], rounds: 0, minutes: 0, runs: [] };
  for (const part of parts) {
    merged.runs.push(...part.runs.map((r) => ({ ...r, round: r.round + merged.rounds })));
    merged.rounds += part.rounds;
    merged.minutes += part.minutes;
    merged.sizes = [...new Set([...merged.sizes, ...part.sizes])];
  }
  report(merged);
  process.exit(0);
}

const pageDir = mkdtempSync(join(tmpdir(), "durable-ws-trace-page-"));
writeFileSync(join(pageDir, "trace-page.js"), PAGE_JS);
writeFileSync(join(pageDir, "index.html"), '<!doctype html>\n<meta charset="utf-8">\n<title>durable-ws trace</title>\n<script type="module" src="./trace-page.js"></script>\n');
const site = siteDir({ "index.html": join(pageDir, "index.html"), "trace-page.js": join(pageDir, "trace-page.js"), pkg: PKG });
if (!existsSync(join(REPO_ROOT, "target/release/durable-ws-server"))) throw new Error("no target/release/durable-ws-server: cargo build --release -p durable-ws-reference");
if (KEEP) mkdirSync(KEEP, { recursive: true });

log(`names: building target/trace-names/ …`);
const names = await nameMaps();
log(`names: ${names.note}`);

// The server's per-client token bucket (10,000 messages/s, burst 10,000 by default) would cap a run of more than
// 10,000 messages at 10,000/s once the burst is spent: lifted here (bench/run.mjs's runs stay within the burst).
const server = await startServer({
  www: site.dir,
  bin: join(REPO_ROOT, "target/release"),
  args: ["--max-messages-per-second", "1000000000", "--burst", "1000000000"],
});
const drivers = [];
const results = { date: new Date().toISOString(), count: COUNT, window: WINDOW, rounds: ROUNDS, sizes: SIZES, kinds: KINDS, names: names.note, runs: [] };
const startedAt = Date.now();
try {
  const page = `${server.http}/index.html`;
  for (const name of DRIVERS) drivers.push(await (name === "playwright" ? playwrightDriver(page) : bareDriver(page, { network: name === "network" })));
  const clients = DRIVERS.flatMap((driver) => KINDS.map((kind) => ({ driver: drivers[DRIVERS.indexOf(driver)], kind })));
  const label = (c) => (DRIVERS.length > 1 ? `${c.kind}@${c.driver.name}` : c.kind);
  // Warm-up: every path compiled and optimised before the first measurement.
  for (const size of SIZES) for (const c of clients) await c.driver.echo(c.kind, size, 3000, `warmup-${label(c)}-${size}`);
  let serial = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const size of SIZES) {
      const order = clients.map((_, i) => clients[(i + round) % clients.length]);
      for (const mode of MODES) {
        for (const client of order) {
          const { driver, kind } = client;
          if ((mode === "light" && !LIGHT_DRIVERS.includes(driver.name)) || (mode === "full" && !FULL_DRIVERS.includes(driver.name))) continue;
          const tag = `${label(client).replace("@", "-")}-${size}-${round}-${mode}-${++serial}`;
          const load = uptime();
          const before = snapshot(driver.pid, server.child.pid);
          const stop = mode === "untraced" ? null : await startTrace(driver.cdp, mode === "light" ? LIGHT_CATEGORIES : FULL_CATEGORIES);
          const t0 = process.hrtime.bigint();
          const run = await driver.echo(kind, size, COUNT, tag);
          const nodeSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
          const after = snapshot(driver.pid, server.child.pid);
          const trace = stop ? await stop(KEEP ? join(KEEP, `${tag}.json`) : null) : null;
          // Let the close go out before the next run (the durable socket waits for its acknowledgements).
          await new Promise((resolve) => setTimeout(resolve, 300));
          const cpu = cpuPerMessage(before, after, COUNT, run.seconds);
          const entry = { round, size, kind: label(client), driver: driver.name, mode, tag, load, rate: run.rate, seconds: run.seconds, nodeSeconds, stalls: run.stalls, cpu };
          if (trace) {
            entry.trace = analyse(trace, tag, COUNT, names, mode);
            entry.trace.events = trace.events;
            entry.trace.dataLoss = trace.dataLoss;
          }
          results.runs.push(entry);
          log(
            `round ${round + 1} ${label(client).padEnd(18)} ${String(size).padStart(4)} B ${mode.padEnd(8)}: ${Math.round(run.rate)} msg/s (${run.seconds.toFixed(3)} s; ${nodeSeconds.toFixed(3)} s in Node)` +
              ` | main ${cpu.groups["renderer main"]?.toFixed(1)} µs/msg CPU, browser+server ${cpu.ours.toFixed(1)}, driver ${cpu.node.toFixed(1)}` +
              (entry.trace ? ` | ${entry.trace.samples} samples (${entry.trace.forcedDropped} forced dropped)${trace.dataLoss ? ", DATA LOST" : ""}` : "") +
              (run.stalls.length ? ` | STALLS ${run.stalls.map(([at, ms]) => `${ms} ms after ${at}`).join(", ")}` : "") +
              ` | load ${load}`,
          );
        }
      }
    }
  }
} finally {
  for (const driver of drivers) await driver.close().catch(() => {});
  await server.stop();
  site.remove();
  rmSync(pageDir, { recursive: true, force: true });
}
results.minutes = (Date.now() - startedAt) / 60_000;
if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(results, null, 1));
report(results);

// ---------------------------------------------------------------------------------------------------------------
// The tables.

function report(results) {
  const fmt = (v, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : "–");
  const runsOf = (kind, size, mode) => results.runs.filter((r) => r.kind === kind && r.size === size && r.mode === mode);
  /** Median and range of `pick` over the runs of (kind, size, mode). */
  const stat = (kind, size, mode, pick) => {
    const values = runsOf(kind, size, mode).map(pick).filter(Number.isFinite);
    return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length };
  };
  const cell = (s, digits = 1) => (s.n > 1 ? `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})` : fmt(s.median, digits));
  const table = (header, rows) => {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
    const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
    return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
  };
  const kinds = [...new Set(results.runs.map((r) => r.kind))];
  // The kinds of one driver side by side ("raw@bare", "rawbin@bare", "durable@bare"; or without "@…"), Δ = durable − raw.
  const KIND_ORDER = ["raw", "rawbin", "durable"];
  const groups = [...new Set(kinds.map((k) => k.split("@")[1] ?? ""))].map((d) =>
    KIND_ORDER.map((k) => (d ? `${k}@${d}` : k)).filter((k) => kinds.includes(k)),
  );
  const pairs = groups.filter((g) => g.length >= 2).map((g) => [g[0], g.at(-1)]);
  const untracedMain = (kind, size) => stat(kind, size, "untraced", (x) => x.cpu.groups["renderer main"]).median;
  const out = [];
  out.push(
    `\n${results.count.toLocaleString("en")} messages per run, ${results.window} in flight, ${results.rounds} rounds; ` +
      `median (min–max) over the rounds; Δ = durable − raw (medians). ${results.names}. ${fmt(results.minutes)} min.`,
  );
  const sideBySide = (size, mode, rowsOf) => {
    const used = groups.map((g) => g.filter((k) => runsOf(k, size, mode).length)).filter((g) => g.length);
    const header = [""];
    for (const g of used) header.push(...g, ...(g.length > 1 ? ["Δ"] : []));
    const rows = rowsOf.map(([label, pick, digits = 1]) => {
      const row = [label];
      for (const g of used) {
        const stats = g.map((k) => stat(k, size, mode, (x) => pick(x, k)));
        row.push(...stats.map((st) => cell(st, digits)));
        if (g.length > 1) row.push(fmt(stats.at(-1).median - stats[0].median, digits));
      }
      return row;
    });
    return used.length ? table(header, rows) : "";
  };
  const wall = (x) => 1e6 / x.rate;
  const group = (name) => (x) => x.cpu.groups[name] ?? 0;
  for (const size of results.sizes) {
    if (!results.runs.some((r) => r.size === size && r.mode === "untraced")) continue;
    out.push(`\n### ${size} B: throughput and CPU per message (µs), untraced\n`);
    out.push(
      sideBySide(size, "untraced", [
        ["throughput (msg/s)", (x) => x.rate, 0],
        ["wall time per message", wall],
        ["renderer main thread: CPU", group("renderer main")],
        ["renderer main thread: runnable, waiting for a CPU", (x) => x.cpu.waits["renderer main"]],
        ["renderer main thread: idle (wall − CPU − waiting)", (x) => wall(x) - x.cpu.groups["renderer main"] - x.cpu.waits["renderer main"]],
        ["renderer IO thread: CPU", group("renderer IO")],
        ["renderer, other threads: CPU", group("renderer other")],
        ["network service: CPU", group("network service")],
        ["browser process: CPU", group("browser")],
        ["GPU + other Chromium processes: CPU", (x) => group("gpu")(x) + group("other chromium")(x)],
        ["server: CPU", group("server")],
        ["= browser + server: CPU", (x) => x.cpu.ours],
        ["Node (driver): CPU", (x) => x.cpu.node],
        ["= all of ours: CPU", (x) => x.cpu.ours + x.cpu.node],
        ["  … in cores (CPU / wall)", (x) => ((x.cpu.ours + x.cpu.node) * x.rate) / 1e6, 2],
        ["machine busy, cores (all processes, other jobs too)", (x) => x.cpu.busyCores, 2],
      ]),
    );
    // Throughput ratios of the same round (the rounds differ more than the kinds of one round do).
    for (const g of groups) {
      if (g.length < 2) continue;
      const [raw, durable] = [g[0], g.at(-1)];
      const ratios = [];
      for (let round = 0; round < results.rounds; round++) {
        const a = results.runs.find((x) => x.kind === raw && x.size === size && x.mode === "untraced" && x.round === round);
        const b = results.runs.find((x) => x.kind === durable && x.size === size && x.mode === "untraced" && x.round === round);
        if (a && b) ratios.push(b.rate / a.rate);
      }
      if (ratios.length)
        out.push(`\n${durable} / ${raw} throughput: ${fmt(median(ratios), 2)} (rounds: ${ratios.map((r) => fmt(r, 2)).join(", ")})`);
    }
  }
  const busyBuckets = BUCKETS.filter(([key]) => !key.startsWith("native-"));
  for (const size of results.sizes) {
    if (!results.runs.some((r) => r.size === size && r.mode === "light")) continue;
    out.push(
      `\n### ${size} B: renderer main thread, CPU per message (µs) by bucket — light traces (sample shares × the untraced main-thread CPU)\n`,
    );
    out.push(
      sideBySide(size, "light", [
        ...busyBuckets.map(([key, label]) => [label, (x, kind) => x.trace.shares[key] * untracedMain(kind, size)]),
        ["= main-thread CPU, untraced (schedstat)", (x, kind) => untracedMain(kind, size)],
        ["main-thread CPU in the traced run (schedstat)", group("renderer main")],
        ["throughput in the traced run (msg/s)", (x) => x.rate, 0],
        ["samples in the throughput phase", (x) => x.trace.samples, 0],
        ["  idle share of the samples (%)", (x) => 100 * x.trace.idleShare, 0],
      ]),
    );
  }
  for (const size of results.sizes) {
    if (!results.runs.some((r) => r.size === size && r.mode === "full")) continue;
    out.push(
      `\n### ${size} B: renderer main thread per message — full traces (thread time; tracing adds ≈ 7 µs to every JS call from Blink, ` +
        `dispatchEvent's listener call included, so read these for what happens, the light traces for what it costs)\n`,
    );
    out.push(
      sideBySide(size, "full", [
        ...BUCKETS.map(([key, label]) => [label, (x) => x.trace.shares[key] * x.trace.sampledCpu]),
        ["= busy CPU (samples weighted by thread time)", (x) => x.trace.sampledCpu],
        ["busy CPU (trace: thread time of top-level slices)", (x) => x.trace.busyCpu],
        ["preempted inside tasks (wall − thread time)", (x) => x.trace.busyWall - x.trace.busyCpu],
        ["idle (no task running)", (x) => x.trace.idle],
        ["= wall time per message", (x) => x.trace.wallPerMessage],
        ["throughput (msg/s)", (x) => x.rate, 0],
        ["tasks per message", (x) => x.trace.tasksPerMessage, 2],
        ["WebSocket frames received per message", (x) => x.trace.framesReceived, 3],
        ["WebSocket frames sent per message", (x) => x.trace.framesSent, 3],
        ["JS calls from Blink (FunctionCall) per message", (x) => x.trace.functionCalls, 3],
        ["timer tasks per message", (x) => x.trace.timerTasks, 3],
        ["microtask runs (RunMicrotasks) per message", (x) => x.trace.runMicrotasks, 3],
        ["GC events per message", (x) => x.trace.gcEvents, 4],
      ]),
    );
    // Self thread time by trace event, the largest of any kind.
    const used = pairs.filter(([r, d]) => runsOf(r, size, "full").length && runsOf(d, size, "full").length);
    for (const [r, d] of used) {
      const names = new Set([...runsOf(r, size, "full"), ...runsOf(d, size, "full")].flatMap((x) => Object.keys(x.trace.selfCpu)));
      const rows = [...names]
        .map((name) => {
          const a = stat(r, size, "full", (x) => x.trace.selfCpu[name] ?? 0);
          const b = stat(d, size, "full", (x) => x.trace.selfCpu[name] ?? 0);
          return { name, a, b, max: Math.max(a.median, b.median) };
        })
        .filter((x) => x.max >= 0.2)
        .sort((x, y) => y.max - x.max)
        .map(({ name, a, b }) => [name, cell(a), cell(b), fmt(b.median - a.median)]);
      out.push(`\n${size} B, full traces: self thread time per message (µs) by trace event\n`);
      out.push(table(["trace event (self)", r, d, "Δ"], rows));
    }
  }
  // Functions: self and inclusive, from the light traces (shares × untraced main-thread CPU).
  for (const size of results.sizes)
    for (const kind of kinds) {
      const runs = runsOf(kind, size, "light");
      if (!runs.length) continue;
      const cpu = untracedMain(kind, size);
      const merge = (list) => {
        const merged = new Map();
        for (const run of runs)
          for (const f of run.trace[list]) {
            const m = merged.get(f.key) ?? { key: f.key, bucket: f.bucket, values: [] };
            m.values.push(f.share);
            merged.set(f.key, m);
          }
        return [...merged.values()].map((m) => ({ ...m, share: median([...m.values, ...Array(runs.length - m.values.length).fill(0)]) }));
      };
      const top = kind.startsWith("raw") ? Math.min(TOP, 10) : TOP;
      const selfTop = merge("self").sort((a, b) => b.share - a.share).slice(0, top);
      out.push(`\n### ${size} B: top ${top} functions by self time, ${kind} (light traces, median of ${runs.length}; µs = share × ${fmt(cpu)} µs untraced)\n`);
      out.push(table(["µs/msg", "% busy", "bucket", "function"], selfTop.map((m) => [fmt(m.share * cpu, 2), fmt(100 * m.share), m.bucket, m.key.replace(/\|/g, "\\|")])));
      if (!kind.startsWith("raw")) {
        const inclusiveTop = merge("inclusive").sort((a, b) => b.share - a.share).slice(0, 15);
        out.push(`\n${size} B, ${kind}: top 15 by inclusive time (the function and what it calls)\n`);
        out.push(table(["µs/msg", "% busy", "function"], inclusiveTop.map((m) => [fmt(m.share * cpu, 2), fmt(100 * m.share), m.key.replace(/\|/g, "\\|")])));
      }
    }
  console.log(out.join("\n"));
}
