// Recovery on a flaky link: a page "types" (a message every 20 ms for 8 s) through the chaos proxy, which cuts every
// connection after a random lifetime, with 25 ms latency each way, and the time until every message is acknowledged is
// measured — from the last send, or from the server's return after an outage — for this build and, side by side in
// the same run, a package built before a handshake counted as progress (issue 20). Written into BENCHMARKS.md between
// the "flaky" markers.
//
//   node bench/flaky.mjs --baseline=DIR [--trials=3] [--no-write]
//
// DIR: a package built from an earlier commit (see BENCHMARKS.md, "Recovery on a flaky link"). Without --baseline,
// this build alone. Figures only, no assertions.
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { REPO_ROOT, freePort, launchBrowser, siteDir, sleep, startProxy, startServer } from "../tests/chaos/harness.mjs";
import { table } from "../tests/chaos/analysis.mjs";

const option = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const baseline = option("baseline") && resolve(option("baseline"));
const trials = Number(option("trials") ?? 3);
const TYPING = { count: 400, everyMs: 20, timeoutMs: 120_000 };
const SCENARIOS = [
  { name: "cuts every 50–400 ms", lifetimeMs: [50, 400] },
  { name: "cuts every 1–4 s", lifetimeMs: [1000, 4000] },
  // The server unreachable (connections refused), as during a restart, after a flaky spell; then a good link.
  { name: "cuts every 50–400 ms for 3 s, then the server away 3 s", lifetimeMs: [50, 400], outage: { afterMs: 3000, forMs: 3000 } },
];
const LATENCY_MS = 25;
const log = (...args) => console.error("[flaky]", ...args);
const median = (values) => {
  const sorted = values.filter((v) => v !== null).sort((a, b) => a - b);
  if (!sorted.length) return null;
  const mid = sorted.length / 2;
  return Number.isInteger(mid) ? (sorted[mid - 1] + sorted[mid]) / 2 : sorted[Math.floor(mid)];
};

const variants = [{ name: "this build", module: "./pkg/durable_ws.js" }];
if (baseline) variants.push({ name: `before (${baseline})`, module: "./base/durable_ws.js" });
const site = siteDir({ "index.html": "bench/flaky.html", pkg: "www/pkg", ...(baseline ? { base: baseline } : {}) });
const browser = await launchBrowser();
const server = await startServer({ www: site.dir, bin: join(REPO_ROOT, "target/release") });
const rows = [];

/** One run of `variant` in a fresh page through a proxy on `port`; with an outage, the proxy goes away and comes back without cuts. */
async function run(variant, scenario, port) {
  let proxy = await startProxy({ target: `127.0.0.1:${server.port}`, port, lifetimeMs: scenario.lifetimeMs, latencyMs: LATENCY_MS });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${server.http}/index.html`);
    await page.waitForFunction(() => window.flakyReady === true);
    const result = page.evaluate(({ module, url, typing }) => window.flaky(module, url, typing), {
      module: variant.module,
      url: `${proxy.ws}/echo`,
      typing: TYPING,
    });
    let backAt = null;
    if (scenario.outage) {
      await sleep(scenario.outage.afterMs);
      await proxy.stop();
      await sleep(scenario.outage.forMs);
      proxy = await startProxy({ target: `127.0.0.1:${server.port}`, port, lifetimeMs: null, latencyMs: LATENCY_MS });
      backAt = Date.now();
    }
    const r = await result;
    return { ...r, measuredMs: backAt === null ? r.afterMs : r.doneAt === null ? null : r.doneAt - backAt };
  } finally {
    await context.close();
    await proxy.stop();
  }
}

try {
  for (const scenario of SCENARIOS) {
    const port = await freePort();
    const runs = new Map(variants.map((v) => [v.name, []]));
    for (let trial = 0; trial < trials; trial++) {
      // The order alternates per trial.
      for (const variant of trial % 2 ? [...variants].reverse() : variants) {
        const r = await run(variant, scenario, port);
        runs.get(variant.name).push(r);
        const measured = r.measuredMs === null ? "never" : `${Math.round(r.measuredMs)} ms`;
        log(`${scenario.name}, ${variant.name}: all acknowledged ${measured} after ${scenario.outage ? "the server's return" : "the last send"}; ${r.reconnects} reconnects, delay p50 ${r.delayP50} ms, max ${r.delayMax} ms`);
      }
    }
    for (const [name, list] of runs) {
      const measured = list.map((r) => r.measuredMs);
      const seconds = (ms) => (ms === null ? "never" : (ms / 1000).toFixed(1));
      rows.push({
        scenario: scenario.name,
        build: name,
        "all acknowledged (median)": `${seconds(median(measured))} s after ${scenario.outage ? "the return" : "the last send"}`,
        runs: measured.map(seconds).join(" / "),
        "reconnects (median)": median(list.map((r) => r.reconnects)),
        "delay p50 / max (ms)": `${median(list.map((r) => r.delayP50))} / ${Math.max(...list.map((r) => r.delayMax))}`,
        failed: list.reduce((sum, r) => sum + r.failed, 0),
      });
    }
  }
} finally {
  await browser.close();
  await server.stop();
  site.remove();
}

const text = [
  `Run of \`node bench/flaky.mjs${process.argv.length > 2 ? ` ${process.argv.slice(2).join(" ")}` : ""}\` on ${new Date().toISOString().slice(0, 10)}: ` +
    `${TYPING.count} messages ${TYPING.everyMs} ms apart to /echo of the release reference server through the chaos proxy (${LATENCY_MS} ms each way), ` +
    `${trials} runs per build and scenario, alternating, each in a fresh page; default reconnect options.`,
  "",
  table(Object.keys(rows[0]), rows),
].join("\n");
console.log(text);
if (!process.argv.includes("--no-write")) {
  const path = join(REPO_ROOT, "BENCHMARKS.md");
  const [start, end] = ["<!-- flaky:start (written by bench/flaky.mjs) -->", "<!-- flaky:end -->"];
  const doc = readFileSync(path, "utf8");
  const [at, until] = [doc.indexOf(start), doc.indexOf(end)];
  if (at < 0 || until < 0) throw new Error(`BENCHMARKS.md has no ${start} … ${end} block`);
  writeFileSync(path, doc.slice(0, at + start.length) + "\n" + text + "\n" + doc.slice(until));
}
