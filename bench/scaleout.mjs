// Part "scale" of bench/run.mjs (issue 11): the Redis store next to the memory store, in the same run.
//
// 1. load: `loadgen` against one node with sessions in memory, then against two nodes sharing one Redis (the
//    sessions spread over them in turn): echo messages/s at saturation (100 sessions sending as fast as their echoes allow), sessions held
//    (10,000 across the two nodes), echo p50/p99, Redis commands per echo (counted by the nodes, each command one
//    round trip on a pipelined connection), Redis memory per session (INFO memory), node RSS per session.
// 2. faults, side by side with the anchor: the npm build in Chromium sends 2,000 numbered messages to /echo
//    through the round-robin proxy that cuts every 50–400 ms (5 ms latency) in front of two nodes on one Redis;
//    node A is restarted with SIGTERM at 35 % and node B killed with SIGKILL at 70 %; then the same with
//    socket.io 4.8 + @socket.io/redis-streams-adapter + connection state recovery (bench/anchor-socketio).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, freePort, openPage, serverStats, siteDir, sleep, startProxy, startServer } from "../tests/chaos/harness.mjs";
import { analyze } from "../tests/chaos/analysis.mjs";
import { startRedis } from "../tests/support/redis.mjs";

const log = (...parts) => console.error("[bench scale]", ...parts);

function rssKib(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(status.match(/VmRSS:\s+(\d+)/)[1]);
}

function loadgen(bin, args) {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', join(bin, "loadgen"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`loadgen exited with ${code}: ${err.slice(-2000)}`))));
  });
}

const usedMemory = (redis) => Number(redis.cli("INFO", "memory").match(/used_memory:(\d+)/)[1]);

/** One load scenario against `store` ("memory": one node; "redis": two nodes on one Redis). */
async function loadScenario({ bin, www, store, sessions, rate, seconds }) {
  const redis = store === "redis" ? await startRedis() : null;
  const args = ["--max-sessions", "20000", "--max-connections-per-ip", "30000", ...(redis ? ["--redis", redis.url] : [])];
  const nodes = [];
  for (let i = 0; i < (redis ? 2 : 1); i++) nodes.push(await startServer({ www, bin, args }));
  try {
    await sleep(300);
    const before = await Promise.all(nodes.map((n) => serverStats(n.http)));
    const rssBefore = nodes.reduce((sum, n) => sum + rssKib(n.child.pid), 0);
    const redisBefore = redis ? usedMemory(redis) : 0;
    // Sessions spread over the nodes in turn (no balancer process: it would need two descriptors per session).
    const urls = nodes.flatMap((n) => ["--url", `${n.ws}/echo`]);
    // Peaks while the sessions are held (loadgen closes them before it exits).
    let redisPeak = redisBefore;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      try {
        if (redis) redisPeak = Math.max(redisPeak, usedMemory(redis));
        rssPeak = Math.max(rssPeak, nodes.reduce((sum, n) => sum + rssKib(n.child.pid), 0));
      } catch {}
    }, 250);
    const report = await loadgen(bin, [...urls, "--sessions", String(sessions), "--rate", String(rate), "--duration-secs", String(seconds)]).finally(() => clearInterval(sampler));
    const after = await Promise.all(nodes.map((n) => serverStats(n.http)));
    const commands = after.reduce((sum, s, i) => sum + s.store_commands - before[i].store_commands, 0);
    return {
      store,
      nodes: nodes.length,
      sessions: report.sessions_open,
      echoesPerSecond: report.echo_rate_per_second,
      p50: report.rtt_ms_p50,
      p99: report.rtt_ms_p99,
      sessionsLost: report.sessions_lost,
      commandsPerEcho: redis ? commands / Math.max(1, report.echoes_received) : 0,
      redisBytesPerSession: redis ? (redisPeak - redisBefore) / Math.max(1, report.sessions_open) : 0,
      rssBytesPerSession: ((rssPeak - rssBefore) * 1024) / Math.max(1, report.sessions_open),
    };
  } finally {
    for (const n of nodes) await n.stop();
    await redis?.stop();
  }
}

export async function loadBench({ bin, www, quick }) {
  const results = [];
  const scenarios = [
    { name: "saturation: 100 sessions × 1,000 msg/s offered", sessions: 100, rate: 1000, seconds: quick ? 4 : 8 },
    { name: `${quick ? "2,000" : "10,000"} sessions × 1 msg/s`, sessions: quick ? 2000 : 10_000, rate: 1, seconds: quick ? 5 : 10 },
  ];
  for (const scenario of scenarios) {
    // Interleaved, twice each: the medians' neighbours are in the same minute of the machine's load.
    for (const store of ["memory", "redis"]) {
      log(`${scenario.name}, ${store}`);
      results.push({ scenario: scenario.name, ...(await loadScenario({ bin, www, store, ...scenario })) });
    }
  }
  return results;
}

/** The anchor scenario with durable-ws: 2,000 echoes through restart (SIGTERM) of A and crash (SIGKILL) of B. */
export async function faultBench({ bin, browser }) {
  const site = siteDir({ "index.html": "tests/chaos/page.html", "page.js": "tests/chaos/page.js", pkg: "www/pkg", "rws.mjs": "node_modules/reconnecting-websocket/dist/reconnecting-websocket-mjs.js" });
  const redis = await startRedis();
  const start = (port) => startServer({ www: site.dir, bin, port, args: ["--redis", redis.url] });
  const nodes = [await start(await freePort()), await start(await freePort())];
  const proxy = await startProxy({ targets: nodes.map((n) => `127.0.0.1:${n.port}`), lifetimeMs: [50, 400], latencyMs: 5, bin });
  const context = await browser.newContext();
  const total = 2000;
  try {
    const { page } = await openPage(context, `${nodes[0].http}/index.html`, () => window.chaos?.ready === true);
    const startedAt = Date.now();
    await page.evaluate(
      ({ url, total }) => {
        window.chaos.durable("fault", url, { reconnect: { minDelayMs: 10, maxDelayMs: 250 } });
        window.chaos.sendNumbered("fault", "e", total, { batch: 2, intervalMs: 20 });
      },
      { url: `${proxy.ws}/echo`, total },
    );
    const faults = [];
    const summary = () => page.evaluate(() => window.chaos.summary("fault"));
    const sentAtLeast = async (n) => {
      while ((await summary()).sent < n) await sleep(50);
    };
    const tally = { redelivered: 0 };
    for (const [index, signal, at] of [[0, "SIGTERM", 0.35], [1, "SIGKILL", 0.7]]) {
      await sentAtLeast(total * at);
      tally.redelivered += (await serverStats(nodes[index].http)).redelivered;
      await nodes[index].stop(signal);
      faults.push(`${index ? "B" : "A"} ${signal} at ${Date.now() - startedAt} ms`);
      await sleep(300);
      nodes[index] = await start(nodes[index].port);
    }
    const deadline = Date.now() + 60_000;
    let state = await summary();
    while ((state.sending || state.pending > 0 || state.received < total) && Date.now() < deadline) {
      await sleep(200);
      state = await summary();
    }
    await sleep(300);
    for (const n of nodes) tally.redelivered += (await serverStats(n.http)).redelivered;
    const result = await page.evaluate(() => window.chaos.details("fault"));
    return {
      sent: result.sent,
      echoes: analyze(result.receivedMessages, "e", total),
      acknowledged: result.resolved,
      sessionLost: result.sessionLost,
      reconnects: result.events.reconnecting,
      resumed: result.events.resumed,
      redelivered: tally.redelivered,
      faults,
      seconds: (Date.now() - startedAt) / 1000,
    };
  } finally {
    await context.close();
    await proxy.stop();
    for (const n of nodes) await n.stop();
    await redis.stop();
    site.remove();
  }
}

/** bench/anchor-socketio, one plain run and one with socket.io's retries; its `ANCHOR` lines. */
export function anchorBench() {
  const dir = join(REPO_ROOT, "bench/anchor-socketio");
  if (!existsSync(join(dir, "node_modules"))) execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: dir, stdio: "inherit" });
  const out = execFileSync("node", [join(dir, "run.mjs"), "--runs", "1", "--mode", "both"], { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, DURABLE_WS_BIN_DIR: join(REPO_ROOT, "target/release") } });
  return out
    .split("\n")
    .filter((line) => line.startsWith("ANCHOR {"))
    .map((line) => JSON.parse(line.slice("ANCHOR ".length)));
}
