// Where the main thread's time goes during the pipelined echo (Chromium's sampling profiler over CDP): self time per
// function for each client kind of bench/page.js, run one after the other on the same page. Figures only.
//
//   node bench/profile.mjs                    durable, persist, durable, persist (100 B, 5,000 messages)
//   node bench/profile.mjs raw,durable --pkg=DIR --size=4096 --count=2000 --top=30
//
// The package is minified: glue functions show by their short names and a column of durable_ws.js, wasm functions
// by their index; localStorage, WebSocket and other browser calls by their own names.
import { join } from "node:path";
import { REPO_ROOT, launchBrowser, siteDir, startServer } from "../tests/chaos/harness.mjs";

const option = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback;
const kinds = (process.argv.slice(2).find((a) => !a.startsWith("--")) ?? "durable,persist,durable,persist").split(",");
const [size, count, top] = [+option("size", 100), +option("count", 5000), +option("top", 20)];

const site = siteDir({
  "index.html": "bench/page.html",
  "page.js": "bench/page.js",
  pkg: option("pkg", "www/pkg"),
  "rws.mjs": "node_modules/reconnecting-websocket/dist/reconnecting-websocket-mjs.js",
});
const browser = await launchBrowser();
const server = await startServer({ www: site.dir, bin: join(REPO_ROOT, "target/release") });
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.http}/index.html`);
  await page.waitForFunction(() => window.bench?.ready === true, null, { timeout: 60_000 });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  for (const kind of kinds) {
    await cdp.send("Profiler.start");
    const run = await page.evaluate(
      ({ kind, url, params }) => window.bench.echo(kind, url, params),
      { kind, url: `${server.ws}/echo`, params: { size, count, window: 100, samples: 10 } },
    );
    const { profile } = await cdp.send("Profiler.stop");
    const nodes = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
    const self = new Map();
    let total = 0;
    profile.samples.forEach((id, i) => {
      const frame = nodes.get(id);
      const name = `${frame.functionName || "(anonymous)"}${frame.url ? ` ${frame.url.split("/").pop()}:${frame.lineNumber + 1}:${frame.columnNumber + 1}` : ""}`;
      const micros = profile.timeDeltas[i] ?? 0;
      total += micros;
      self.set(name, (self.get(name) ?? 0) + micros);
    });
    console.log(`\n${kind}: ${Math.round(run.rate)} msg/s; ${count} × ${size} B; profile ${(total / 1000).toFixed(0)} ms`);
    for (const [name, micros] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${(micros / 1000).toFixed(1).padStart(9)} ms ${((100 * micros) / total).toFixed(1).padStart(5)} %  ${(micros / count).toFixed(1).padStart(6)} µs/msg  ${name}`);
    }
  }
} finally {
  await browser.close();
  await server.stop();
}
