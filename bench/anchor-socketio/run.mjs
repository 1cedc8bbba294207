#!/usr/bin/env node
// Anchor benchmark: what socket.io 4.8 + @socket.io/redis-streams-adapter (connection state recovery on)
// loses behind a round-robin balancer that cuts connections, while one node is restarted (SIGTERM) and
// the other crashes (SIGKILL). Real parts only: a real redis-server, two real socket.io node processes
// (server.mjs), the durable-ws chaos proxy, socket.io-client in this process.
//
//   npm ci --prefix bench/anchor-socketio
//   node bench/anchor-socketio/run.mjs                      # one run of each mode (plain, retries)
//   node bench/anchor-socketio/run.mjs --runs 3 --mode plain
//
// Options: --runs N (default 1), --mode plain|retries|both (default both), --messages N (default 2000),
// --duration-ms D (default 20000), --seed S (proxy seed of the first run; random if absent).
// Modes: plain   = socket.emit("msg", n), socket.io's default (at most once client→server);
//        retries = client options { retries: 3, ackTimeout: 1000 }, socket.io's documented at-least-once
//                  client→server delivery (each emit is queued and re-sent until acknowledged, up to 3 retries).
// Prints a table per run and one line `ANCHOR {json}` per run (plus `ANCHOR_SUMMARY {json}` with medians).
//
// Workload (per run, one client, ids fresh per run):
//   msg   client→server: numbers 1..N emitted at a steady pace over D ms; the server app stores each one
//         (RPUSH recv:<clientId>) — what the server received is read from Redis at the end;
//   echo  server→client: the server app answers each "msg" n with socket.emit("echo", n);
//   push  server→client: while the socket is connected, the node holding it emits the client's next number
//         every 10 ms (counter INCR push:<clientId> in Redis, so the numbering continues on any node) until D;
//   bcast server→client: a producer (a socket.io server without clients, in this process, same adapter)
//         emits io.to("user:<clientId>").emit("bcast", n) at the same pace as msg, whether the client is
//         connected or not: the case connection state recovery is made for (missed packets replayed).
// Faults: node A gets SIGTERM at 35 % of D (graceful shutdown; started again on the same port as soon as it
// exits), node B gets SIGKILL at 70 % of D (started again at once); the proxy cuts every connection after
// 50..400 ms and adds 5 ms each way.

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createRequire } from "node:module";
import { createClient } from "redis";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { io as ioClient } from "socket.io-client";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");
const require = createRequire(import.meta.url);

const { values: opt } = parseArgs({
  options: {
    runs: { type: "string", default: "1" },
    mode: { type: "string", default: "both" },
    messages: { type: "string", default: "2000" },
    "duration-ms": { type: "string", default: "20000" },
    seed: { type: "string" },
    "fault-min-age-ms": { type: "string", default: "50" },
    verbose: { type: "boolean", default: false },
  },
});
const RUNS = Number(opt.runs);
const MODES = opt.mode === "both" ? ["plain", "retries"] : [opt.mode];
const N = Number(opt.messages);
const DURATION = Number(opt["duration-ms"]);
const FAULT_MIN_AGE_MS = Number(opt["fault-min-age-ms"]);
const QUIET_MS = 3000; // the run ends once nothing arrived for this long after the send phase...
const MAX_DRAIN_MS = 60_000; // ...or after this long at the latest (keeps one run ≤ 2 minutes)

const children = new Set();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[anchor ${new Date().toISOString().slice(11, 23)}]`, ...a);

function killAllSync() {
  for (const child of children) {
    try {
      child.kill("SIGKILL");
    } catch {}
  }
}
process.on("exit", killAllSync);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAllSync();
    process.exit(130);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function findProxy() {
  const dirs = [process.env.DURABLE_WS_BIN_DIR, path.join(repoRoot, "target", "release"), path.join(repoRoot, "target", "debug")];
  for (const dir of dirs) {
    if (dir && existsSync(path.join(dir, "chaos-proxy"))) return path.join(dir, "chaos-proxy");
  }
  throw new Error(
    "chaos-proxy not found (set DURABLE_WS_BIN_DIR, or: cd " + repoRoot + " && nice cargo build -p durable-ws-testkit --bin chaos-proxy)",
  );
}

function findRedisServer() {
  const r = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" });
  const bin = r.stdout.trim();
  if (!bin) throw new Error("redis-server not found (apt-get install -y redis-server)");
  return bin;
}

function spawnTracked(cmd, args, name) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.exited = new Promise((resolve) => child.on("exit", (code, signal) => {
    children.delete(child);
    resolve({ code, signal });
  }));
  child.name = name;
  return child;
}

// Calls onLine for each line of the child's stdout and stderr.
function onLines(child, onLine) {
  for (const stream of [child.stdout, child.stderr]) {
    let buf = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
}

function waitForLine(child, re, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no "${re}" within ${timeoutMs} ms`)), timeoutMs);
    onLines(child, (line) => {
      const m = line.match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.exited.then(({ code, signal }) => reject(new Error(`${what} exited (${code ?? signal}) before "${re}"`)));
  });
}

async function startRedis(bin) {
  const port = await freePort();
  const child = spawnTracked("nice", ["-n", "10", bin, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], "redis");
  await waitForLine(child, /Ready to accept connections/, 10_000, "redis-server");
  return { child, port, url: `redis://127.0.0.1:${port}` };
}

// A socket.io node (server.mjs); its EVT lines go to `events`.
async function startNode(name, port, redisUrl, events) {
  const child = spawnTracked("nice", ["-n", "10", process.execPath, path.join(here, "server.mjs"), "--port", String(port), "--redis", redisUrl, "--name", name], name);
  onLines(child, (line) => {
    if (line.startsWith("EVT ")) {
      try {
        events.push(JSON.parse(line.slice(4)));
      } catch {}
    } else if (line.trim() && opt.verbose) {
      log(`${name}: ${line}`);
    }
  });
  await waitForLine(child, /^EVT .*"ev":"listening"/, 15_000, `node ${name}`);
  return child;
}

async function startProxy(bin, targets, seed) {
  const args = ["--listen", "127.0.0.1:0"];
  for (const t of targets) args.push("--target", `127.0.0.1:${t}`);
  args.push("--min-lifetime-ms", "50", "--max-lifetime-ms", "400", "--latency-ms", "5", "--seed", String(seed));
  const child = spawnTracked(bin, args, "proxy");
  let stats = null;
  onLines(child, (line) => {
    const m = line.match(/connections=(\d+) cuts=(\d+)/);
    if (m) stats = { connections: Number(m[1]), cuts: Number(m[2]) };
  });
  const m = await waitForLine(child, /listen=127\.0\.0\.1:(\d+)/, 10_000, "chaos-proxy");
  return { child, port: Number(m[1]), stats: () => stats };
}

async function stop(child, signal = "SIGTERM", timeoutMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await child.exited;
  clearTimeout(t);
}

// sent: the numbers sent (array, possibly with repeats); arrivals: numbers in arrival order.
function analyze(sent, arrivals, pending = new Set()) {
  const sentSet = new Set(sent);
  const seen = new Set();
  let max = -Infinity;
  let duplicated = 0;
  let reordered = 0;
  for (const n of arrivals) {
    if (seen.has(n)) {
      duplicated++;
      continue;
    }
    seen.add(n);
    if (n < max) reordered++;
    else max = n;
  }
  let lost = 0;
  let stillPending = 0;
  const lostList = [];
  for (const n of sentSet) {
    if (!seen.has(n) && pending.has(n)) {
      stillPending++;
    } else if (!seen.has(n)) {
      lost++;
      lostList.push(n);
    }
  }
  // lost numbers as ranges "a-b" (compact)
  const ranges = [];
  for (const n of lostList.sort((a, b) => a - b)) {
    const last = ranges[ranges.length - 1];
    if (last && n === last[1] + 1) last[1] = n;
    else ranges.push([n, n]);
  }
  const lostRanges = ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`));
  return { sent: sentSet.size, received: seen.size, arrivals: arrivals.length, lost, pending: stillPending, duplicated, reordered, lostRanges };
}

// The producer has no engine (never attached), so io.close() does not apply: close its adapter.
function closeProducer(producer) {
  try {
    producer?.of("/").adapter.close();
  } catch {}
}

// Stream ids are "<ms>-<seq>": compare them as such.
function cmpId(a, b) {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am === bm ? (as < bs ? -1 : as > bs ? 1 : 0) : am < bm ? -1 : 1;
}

// Why each server→client message was lost or duplicated, from the Redis stream (every emit of a socket with
// connection state recovery goes through it), the offsets the client saw and what it sent when reconnecting.
function explainLosses({ stream, arrivalsLog, connectLog, recv, expected, events }) {
  const idOf = new Map(); // "ev:n" -> stream id of its BROADCAST entry
  for (const { id, message } of stream) {
    if (message.type !== "3" || !message.data?.startsWith("{")) continue;
    try {
      const d = JSON.parse(message.data).packet?.data;
      if (Array.isArray(d) && ["echo", "push", "bcast"].includes(d[0])) idOf.set(`${d[0]}:${d[1]}`, id);
    } catch {}
  }
  // Offsets arriving out of stream order: the client's "last offset" is the offset of the last packet
  // delivered, not the highest one, and delivery order is not stream order.
  let offsetRegressions = 0;
  let maxOffset = null;
  for (const [, , offset] of arrivalsLog) {
    if (typeof offset !== "string") continue;
    if (maxOffset && cmpId(offset, maxOffset) < 0) offsetRegressions++;
    else maxOffset = offset;
  }
  const reasons = {};
  const add = (dir, reason) => {
    reasons[dir] ??= {};
    reasons[dir][reason] = (reasons[dir][reason] ?? 0) + 1;
  };
  const reconnects = connectLog.filter((c) => !c.first);
  const notReplayed = [];
  for (const [ev, dirName] of [["echo", "echo s→c"], ["push", "push s→c"], ["bcast", "bcast s→c"]]) {
    const got = new Set(recv[ev]);
    for (const n of expected[ev]) {
      if (got.has(n)) continue;
      const id = idOf.get(`${ev}:${n}`);
      if (!id) {
        add(dirName, "never in the stream (the node stopped between taking the number and XADD)");
        continue;
      }
      const ms = Number(id.split("-")[0]);
      // the reconnect that should have brought it back: the first one after a disconnect that came after
      // the packet entered the stream, or whose disconnected period the packet entered the stream in
      // (a packet published within 15 ms before the client saw "connect" counts for the connection itself)
      const next = reconnects.find((c) => c.prevDisconnectT >= ms || (c.prevDisconnectT < ms && ms <= c.t - 15));
      if (!next) add(dirName, "in the stream, no reconnect after it");
      else if (!next.recovered) add(dirName, "in the stream, the next reconnect was not recovered");
      else if (next.offsetSent && cmpId(next.offsetSent, id) >= 0) add(dirName, "in the stream, skipped by the replay: the offset sent at reconnect was newer");
      else {
        add(dirName, "in the stream, after the offset sent, yet not replayed");
        // timing against the server's restore of that reconnect (the restore's EVT is logged once its XRANGE
        // scan is done, the connection's EVT once the socket has joined its rooms)
        const restore = events.filter((e) => e.ev === "restore" && e.t <= next.t + 50).at(-1);
        const conn = events.filter((e) => e.ev === "connection" && e.t <= next.t + 50).at(-1);
        if (notReplayed.length < 10)
          notReplayed.push({ key: `${ev}:${n}`, id, msAfterRestoreScan: restore ? ms - restore.t : null, msBeforeSocketJoined: conn ? conn.t - ms : null, node: conn?.node });
      }
    }
  }
  // Duplicates: was the second copy part of a replay after a recovered reconnect?
  const dupes = {};
  const seen = new Set();
  for (const [ev, n, offset, t] of arrivalsLog) {
    const k = `${ev}:${n}`;
    if (!seen.has(k)) {
      seen.add(k);
      continue;
    }
    const prev = [...connectLog].reverse().find((c) => c.t <= t);
    const why = prev && prev.recovered && prev.offsetSent && typeof offset === "string" && cmpId(offset, prev.offsetSent) > 0
      ? "replayed after a recovered reconnect although already delivered (offset sent was older)"
      : "other";
    dupes[ev] ??= {};
    dupes[ev][why] = (dupes[ev][why] ?? 0) + 1;
  }
  return { offsetRegressions, lostReasons: reasons, notReplayed, duplicateReasons: dupes };
}

const range = (a, b) => Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => a + i);

async function runOnce({ mode, seed, redisBin, proxyBin, index }) {
  const events = [];
  const nodes = {};
  let redis, proxy, producerIo, producerRedis, checkRedis, socket;
  const clientId = `client-${process.pid}-${index}`;
  try {
    redis = await startRedis(redisBin);
    const ports = { A: await freePort(), B: await freePort() };
    for (const name of ["A", "B"]) nodes[name] = await startNode(name, ports[name], redis.url, events);
    proxy = await startProxy(proxyBin, [ports.A, ports.B], seed);
    log(`run ${index} (${mode}): redis :${redis.port}, nodes A :${ports.A} B :${ports.B}, proxy :${proxy.port} (seed ${seed})`);

    // The producer: a socket.io server with the same adapter and no clients of its own.
    producerRedis = createClient({ url: redis.url });
    producerRedis.on("error", () => {});
    await producerRedis.connect();
    producerIo = new Server({ adapter: createAdapter(producerRedis) });

    // The client, as an app would write it.
    const t0 = Date.now() + 1500; // sending starts once connected (or at t0 at the latest)
    const pushUntil = t0 + DURATION;
    const clientOpts = { transports: ["websocket"], auth: { clientId, pushUntil } };
    if (mode === "retries") Object.assign(clientOpts, { retries: 3, ackTimeout: 1000 });
    socket = ioClient(`http://127.0.0.1:${proxy.port}`, clientOpts);
    const recv = { echo: [], push: [], bcast: [] };
    const arrivalsLog = []; // [ev, n, offset, t]
    let lastArrival = Date.now();
    const client = { connects: 0, recovered: 0, connectErrors: 0, disconnects: {}, ackErrors: 0, acked: 0, connectedMs: 0 };
    let connectedSince = null;
    let lastDisconnectAt = 0;
    const connectLog = []; // {t, recovered, offsetSent}
    let offsetAtDisconnect = undefined;
    socket.on("connect", () => {
      client.connects++;
      if (opt.verbose) log(`client: connect ${client.connects} recovered=${!!socket.recovered} at ${Date.now() - t0} ms`);
      connectLog.push({ t: Date.now(), prevDisconnectT: lastDisconnectAt, recovered: !!socket.recovered, offsetSent: offsetAtDisconnect, first: client.connects === 1 });
      if (client.connects > 1 && socket.recovered) client.recovered++;
      connectedSince = Date.now();
    });
    socket.on("disconnect", (reason) => {
      if (opt.verbose) log(`client: disconnect (${reason}) at ${Date.now() - t0} ms`);
      lastDisconnectAt = Date.now();
      offsetAtDisconnect = socket._lastOffset;
      client.disconnects[reason] = (client.disconnects[reason] ?? 0) + 1;
      if (connectedSince !== null) client.connectedMs += Date.now() - connectedSince;
      connectedSince = null;
    });
    socket.on("connect_error", () => client.connectErrors++);
    for (const ev of Object.keys(recv)) {
      socket.on(ev, (n, offset) => {
        recv[ev].push(n);
        arrivalsLog.push([ev, n, offset, Date.now()]);
        lastArrival = Date.now();
      });
    }
    await Promise.race([new Promise((r) => socket.once("connect", r)), sleep(t0 - Date.now())]);
    await sleep(Math.max(0, t0 - Date.now()));

    // Faults.
    const faults = [];
    // Each fault hits the node that holds the client's connection at that moment (with one client and
    // socket.io's reconnection delay the client is connected a small part of the time; a crash of a node the
    // client is not on shows nothing). Wait up to 8 s for the client to be connected to that node, for at
    // least FAULT_MIN_AGE_MS (default 50: past the flush of what socket.io-client buffered while disconnected;
    // with 0 the fault tends to land right on that flush, which loses the whole buffer).
    const holder = () => {
      if (!socket.connected || Date.now() - connectedSince < FAULT_MIN_AGE_MS) return null;
      const e = events.findLast((e) => e.ev === "connection" && e.sid === socket.id && e.t >= lastDisconnectAt - 20);
      return e?.node ?? null;
    };
    const restart = async (name, signal) => {
      const waitStart = Date.now();
      while (holder() !== name && Date.now() - waitStart < 8000) await sleep(5);
      const onIt = holder() === name;
      const age = onIt ? Date.now() - connectedSince : null;
      const tKill = Date.now() - t0;
      const old = nodes[name];
      old.kill(signal);
      await old.exited;
      const tDown = Date.now() - t0;
      nodes[name] = await startNode(name, ports[name], redis.url, events);
      faults.push({ node: name, signal, clientConnectedToIt: onIt, connectionAgeMs: age, atMs: tKill, downMs: tDown - tKill, upAgainAtMs: Date.now() - t0 });
      log(`node ${name}: ${signal} at ${tKill} ms, exited after ${tDown - tKill} ms, listening again at ${Date.now() - t0} ms`);
    };
    const faultsDone = Promise.all([
      sleep(DURATION * 0.35).then(() => restart("A", "SIGTERM")),
      sleep(DURATION * 0.7).then(() => restart("B", "SIGKILL")),
    ]);
    faultsDone.catch(() => {}); // awaited after the send phase

    // Steady pace: message i (1-based) at t0 + (i-1) * DURATION / N, for both msg and bcast.
    const interval = DURATION / N;
    const room = `user:${clientId}`;
    let bcastSent = 0;
    const msgEmit = [];
    for (let i = 1; i <= N; i++) {
      const due = t0 + (i - 1) * interval;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      msgEmit[i] = { t: Date.now() - t0, connected: socket.connected, conn: client.connects };
      if (mode === "retries") {
        socket.emit("msg", i, (err) => (err ? client.ackErrors++ : client.acked++));
      } else {
        socket.emit("msg", i);
      }
      producerIo.to(room).emit("bcast", i);
      bcastSent = i;
    }
    const sendEnd = Date.now() - t0;
    await faultsDone;

    // Drain: until nothing arrived for QUIET_MS (and, in retries mode, the client's queue is empty).
    const drainStart = Date.now();
    while (Date.now() - drainStart < MAX_DRAIN_MS) {
      await sleep(200);
      const queued = socket._queue?.length ?? 0;
      // done: quiet for QUIET_MS, nothing queued, and a connection opened after the last push was due (so
      // that whatever recovery would replay has been replayed)
      const reconnectedAfter = connectLog.some((c) => c.t > pushUntil + 200);
      if (Date.now() - lastArrival > QUIET_MS && queued === 0 && reconnectedAfter) break;
    }
    const stillQueued = socket._queue?.length ?? 0;
    // numbers the client still holds at the end (retries mode: its queue; any mode: its send buffer)
    const pendingMsgs = new Set([
      ...(socket._queue ?? []).map((p) => p.args?.[1]),
      ...(socket.sendBuffer ?? []).map((p) => p.data?.[1]),
    ]);
    const stillBuffered = socket.sendBuffer?.length ?? 0;
    const drainMs = Date.now() - drainStart;
    if (connectedSince !== null) client.connectedMs += Date.now() - connectedSince;
    socket.disconnect();
    const proxyStats = proxy.stats();
    await stop(proxy.child, "SIGINT");
    closeProducer(producerIo);
    for (const name of ["A", "B"]) await stop(nodes[name], "SIGTERM");

    checkRedis = createClient({ url: redis.url });
    checkRedis.on("error", () => {});
    await checkRedis.connect();
    const serverRecv = (await checkRedis.lRange(`recv:${clientId}`, 0, -1)).map(Number);
    const pushCounter = Number((await checkRedis.get(`push:${clientId}`)) ?? 0);
    const streamLen = await checkRedis.xLen("socket.io");
    const stream = await checkRedis.xRange("socket.io", "-", "+");
    await checkRedis.quit();

    const directions = {
      "msg c→s": analyze(range(1, N), serverRecv, pendingMsgs),
      "echo s→c": analyze(serverRecv, recv.echo),
      "push s→c": analyze(range(1, pushCounter), recv.push),
      "bcast s→c": analyze(range(1, bcastSent), recv.bcast),
      "msg→echo round trip": analyze(range(1, N), recv.echo, pendingMsgs),
    };
    const explain = explainLosses({
      stream,
      arrivalsLog,
      connectLog,
      recv,
      events,
      expected: { echo: [...new Set(serverRecv)], push: range(1, pushCounter), bcast: range(1, bcastSent) },
    });
    // Lost client→server messages: emitted on an open connection, or buffered by socket.io-client while
    // disconnected (sent when the next connection opens)? On which connection (1 = the first)?
    const lostMsgs = {};
    const serverGot = new Set(serverRecv);
    for (let i = 1; i <= N; i++) {
      if (serverGot.has(i) || !msgEmit[i]) continue;
      const e = msgEmit[i];
      const k = e.connected ? `emitted while connected (connection ${e.conn})` : `buffered while disconnected (flushed on connection ${e.conn + 1})`;
      lostMsgs[k] = (lostMsgs[k] ?? 0) + 1;
    }
    explain.lostMsgs = lostMsgs;
    const restores = events.filter((e) => e.ev === "restore");
    const restoreFailures = {};
    for (const r of restores.filter((r) => !r.ok)) restoreFailures[r.reason] = (restoreFailures[r.reason] ?? 0) + 1;
    const serverConnections = events.filter((e) => e.ev === "connection");
    const serverDisconnects = {};
    for (const e of events.filter((e) => e.ev === "disconnect")) serverDisconnects[e.reason] = (serverDisconnects[e.reason] ?? 0) + 1;
    return {
      mode,
      seed,
      versions: {
        "socket.io": require("socket.io/package.json").version,
        "socket.io-client": require("socket.io-client/package.json").version,
        "@socket.io/redis-streams-adapter": require("@socket.io/redis-streams-adapter/package.json").version,
        redis: require("redis/package.json").version,
      },
      messages: N,
      durationMs: DURATION,
      sendEndMs: sendEnd,
      drainMs,
      faults,
      directions,
      reconnects: client.connects - 1,
      recovered: client.recovered,
      connectErrors: client.connectErrors,
      clientDisconnects: client.disconnects,
      connectedFraction: +(client.connectedMs / (sendEnd + drainMs)).toFixed(3),
      retries: mode === "retries" ? { acked: client.acked, ackErrors: client.ackErrors, stillQueued } : undefined,
      stillBuffered,
      server: {
        connections: serverConnections.length,
        recoveredConnections: serverConnections.filter((e) => e.recovered).length,
        restoreAttempts: restores.length,
        restoreOk: restores.filter((r) => r.ok).length,
        restoreFailures,
        replayedPackets: restores.reduce((s, r) => s + (r.missed ?? 0), 0),
        disconnects: serverDisconnects,
      },
      proxy: proxyStats,
      streamLen,
      explain,
      reconnectLog: connectLog.filter((c) => !c.first).map((c) => ({ t: c.t - t0, recovered: c.recovered, offsetSent: c.offsetSent ?? null })),
    };
  } finally {
    try {
      socket?.disconnect();
    } catch {}
    closeProducer(producerIo);
    try {
      if (producerRedis?.isOpen) await producerRedis.quit();
    } catch {}
    await stop(proxy?.child, "SIGINT");
    for (const name of ["A", "B"]) await stop(nodes[name], "SIGTERM");
    await stop(redis?.child, "SIGTERM");
  }
}

function printRun(r, index) {
  const rows = Object.entries(r.directions).map(([dir, d]) => [dir, d.sent, d.received, d.lost, d.pending, d.duplicated, d.reordered]);
  const head = ["direction", "sent", "received", "lost", "still queued", "duplicated", "reordered"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const fmt = (row) => "| " + row.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(" | ") + " |";
  console.log(`\nRun ${index}: mode=${r.mode}${r.mode === "retries" ? " (retries: 3, ackTimeout: 1000)" : ""}, ${r.messages} msgs over ${r.durationMs} ms, proxy seed ${r.seed}`);
  console.log(fmt(head));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const row of rows) console.log(fmt(row));
  console.log(
    `reconnects ${r.reconnects}, recovered ${r.recovered} (${r.reconnects ? Math.round((100 * r.recovered) / r.reconnects) : 0} %), ` +
      `connect errors ${r.connectErrors}; connected ${Math.round(r.connectedFraction * 100)} % of the time; ` +
      `server: ${r.server.restoreAttempts} restore attempts, ${r.server.restoreOk} ok, failures ${JSON.stringify(r.server.restoreFailures)}, ` +
      `${r.server.replayedPackets} packets replayed`,
  );
  if (r.retries) console.log(`retries mode: acked ${r.retries.acked}, given up (ack error after 3 retries) ${r.retries.ackErrors}, still queued at the end ${r.retries.stillQueued}`);
  console.log(`faults: ${r.faults.map((f) => `${f.node} ${f.signal} at ${f.atMs} ms (back at ${f.upAgainAtMs} ms)`).join("; ")}; drain ${r.drainMs} ms; proxy ${JSON.stringify(r.proxy)}`);
  console.log("ANCHOR " + JSON.stringify(r));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const redisBin = findRedisServer();
  const proxyBin = findProxy();
  const baseSeed = opt.seed !== undefined ? Number(opt.seed) : Math.floor(Math.random() * 1e9);
  const results = [];
  let index = 0;
  for (let run = 0; run < RUNS; run++) {
    for (const mode of MODES) {
      index++;
      const r = await runOnce({ mode, seed: baseSeed + index - 1, redisBin, proxyBin, index });
      results.push(r);
      printRun(r, index);
    }
  }
  if (results.length > 1) {
    const summary = {};
    for (const mode of MODES) {
      const rs = results.filter((r) => r.mode === mode);
      if (!rs.length) continue;
      const s = { runs: rs.length, reconnects: median(rs.map((r) => r.reconnects)), recovered: median(rs.map((r) => r.recovered)), directions: {} };
      for (const dir of Object.keys(rs[0].directions)) {
        s.directions[dir] = {};
        for (const k of ["sent", "received", "lost", "pending", "duplicated", "reordered"]) s.directions[dir][k] = median(rs.map((r) => r.directions[dir][k]));
      }
      summary[mode] = s;
    }
    console.log("\nMedians per mode:");
    for (const [mode, s] of Object.entries(summary)) {
      console.log(`  ${mode} (${s.runs} runs): reconnects ${s.reconnects}, recovered ${s.recovered}`);
      for (const [dir, d] of Object.entries(s.directions)) console.log(`    ${dir.padEnd(20)} sent ${d.sent}, received ${d.received}, lost ${d.lost}, still queued ${d.pending}, duplicated ${d.duplicated}, reordered ${d.reordered}`);
    }
    console.log("ANCHOR_SUMMARY " + JSON.stringify(summary));
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    killAllSync();
    process.exit(1);
  },
);
