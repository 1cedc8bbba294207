// Recovery on a flaky link: a page "types" (a message every 20 ms for 8 s) through the chaos proxy, which cuts every
// connection after a random lifetime, with 25 ms latency each way, and the time from the last send until every message
// is acknowledged is measured — for this build and, side by side in the same run, a package built before the backoff
// counted a server's answer as progress (issue 20). Written into BENCHMARKS.md between the "flaky" markers.
//
//   node bench/flaky.mjs --baseline=DIR [--trials=3] [--no-write]
//
// DIR: a package built from an earlier commit (see BENCHMARKS.md, "Recovery on a flaky link"). Without --baseline,
// this build alone. Figures only, no assertions.
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { REPO_ROOT, launchBrowser, siteDir, startProxy, startServer } from "../tests/chaos/harness.mjs";
import { table } from "../tests/chaos/analysis.mjs";

const option = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const baseline = option("baseline") && resolve(option("baseline"));
const trials = Number(option("trials") ?? 3);
const TYPING = { count: 400, everyMs: 20, timeoutMs: 120_000 };
const SCENARIOS = [
  { name: "cuts every 50–400 ms", lifetimeMs: [50, 400] },
  { name: "cuts every 1–4 s", lifetimeMs: [1000, 4000] },
];
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
try {
  for (const scenario of SCENARIOS) {
    const proxy = await startProxy({ target: `127.0.0.1:${server.port}`, lifetimeMs: scenario.lifetimeMs, latencyMs: 25 });
    try {
      const runs = new Map(variants.map((v) => [v.name, []]));
      for (let trial = 0; trial < trials; trial++) {
        // The order alternates per trial, each run in a fresh page.
        for (const variant of trial % 2 ? [...variants].reverse() : variants) {
          const page = await (await browser.newContext()).newPage();
          await page.goto(`${server.http}/index.html`);
          await page.waitForFunction(() => window.flakyReady === true);
          const run = await page.evaluate(({ module, url, typing }) => window.flaky(module, url, typing), {
            module: variant.module,
            url: `${proxy.ws}/echo`,
            typing: TYPING,
          });
          await page.context().close();
          runs.get(variant.name).push(run);
          log(`${scenario.name}, ${variant.name}: all acknowledged ${run.afterMs === null ? "never" : `${Math.round(run.afterMs)} ms`} after the last send; ${run.reconnects} reconnects, delay p50 ${run.delayP50} ms, max ${run.delayMax} ms`);
        }
      }
      for (const [name, list] of runs) {
        const after = list.map((r) => r.afterMs);
        rows.push({
          scenario: scenario.name,
          build: name,
          "all acknowledged after the last send (median)": median(after) === null ? "never" : `${(median(after) / 1000).toFixed(1)} s`,
          runs: after.map((ms) => (ms === null ? "never" : `${(ms / 1000).toFixed(1)}`)).join(" / "),
          "reconnects (median)": median(list.map((r) => r.reconnects)),
          "delay p50 / max (ms)": `${median(list.map((r) => r.delayP50))} / ${Math.max(...list.map((r) => r.delayMax))}`,
          failed: list.reduce((sum, r) => sum + r.failed, 0),
        });
      }
    } finally {
      await proxy.stop();
    }
  }
} finally {
  await browser.close();
  await server.stop();
  site.remove();
}

const text = [
  `Run of \`node bench/flaky.mjs${process.argv.length > 2 ? ` ${process.argv.slice(2).join(" ")}` : ""}\` on ${new Date().toISOString().slice(0, 10)}: ` +
    `${TYPING.count} messages ${TYPING.everyMs} ms apart to /echo of the release reference server through the chaos proxy (25 ms each way), ` +
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
