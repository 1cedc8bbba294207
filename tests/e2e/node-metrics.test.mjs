// The servers' metrics (issue 23): the Grafana dashboard (docs/grafana/durable-ws.json) against the contract
// (crates/core/src/server/metrics.rs: names, kinds, labels, buckets), and real scrapes of /metrics from the Rust
// reference binary (in memory, and on a Redis of the test's own with --redis) and from the Node.js one
// (node/dist/bin.js), each under the echo chaos test.
//
//   node --test tests/e2e/node-metrics.test.mjs     (scripts/test.sh runs it in the node-server stage)
//
// - The dashboard: every metric its PromQL queries (histograms' _bucket/_sum/_count folded) is in the contract,
//   and every metric of the contract is shown by some panel; docs/SERVER.md's "Metrics and health" table lists
//   the contract's names, kinds and labels; the Node package's wasm `metrics()`/`metric_labels()`, when built,
//   list what metrics.rs says. These checks need no server and run everywhere.
// - Each server, behind a chaos proxy that cuts every connection after 50–400 ms: a durable client (the npm build,
//   pkg/, in Node with `ws`) echoes numbered messages through the cuts (resumes; then it moves straight to the
//   server, so that its goodbye is not cut), and a second client, straight to
//   the server, loses its session (/admin/cut, then /admin/expire while it is away: its resume gets `lost`). /metrics
//   is scraped before and after and parsed as the Prometheus text format (a parser of the format below, strict:
//   one TYPE per family before its samples, a family's samples together, escapes, no duplicate series) and by the
//   Prometheus project's own parser (its Python client's, Debian's python3-prometheus-client), which must read the
//   same families and samples; then
//   every dashboard metric has samples (the store's only on --redis, and none elsewhere), the types, labels,
//   label values and buckets are the contract's, histograms are well formed (cumulative, +Inf = _count), and the
//   counters moved by what the clients did (messages and bytes in and out exactly, resumes = /stats resumes ≥ the
//   client's resumes, one lost, two goodbyes, one expiry, no heartbeat timeout, protocol error or refusal: a cut
//   is a connection dropped, 1006, not a protocol error).
//   /healthz and /readyz answer 200; /readyz is 503 while Redis is down (Rust with --redis) and while the
//   server drains after SIGTERM (a connection that never answers the close keeps it draining), when the server
//   still answers HTTP then. A table of each server's figures is printed.
//
// It needs the Node package built (cd node && npm ci && npm run build), the wasm package (pkg/), redis-server,
// and the durable-ws-server and chaos-proxy binaries (DURABLE_WS_BIN_DIR, else target/release, else
// target/debug). Inside scripts/test.sh's e2e-tests stage (DURABLE_WS_SERVER set) the server part skips itself:
// the node-server stage runs it (DURABLE_WS_NODE_TESTS=1).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { connect } from "node:net";
import { join } from "node:path";
import { once } from "node:events";
import WebSocket from "ws";
import { REPO_ROOT, admin, serverStats, siteDir, sleep, startProxy, startServer } from "../chaos/harness.mjs";
import { startRedis } from "../support/redis.mjs";
import { spawnSync } from "node:child_process";

const skip = process.env.DURABLE_WS_SERVER && process.env.DURABLE_WS_NODE_TESTS !== "1" ? "run by the node-server stage of scripts/test.sh" : false;

const CONTRACT_FILE = join(REPO_ROOT, "crates/core/src/server/metrics.rs");
const DASHBOARD_FILE = join(REPO_ROOT, "docs/grafana/durable-ws.json");
const SERVER_DOC = join(REPO_ROOT, "docs/SERVER.md");

const MESSAGES = 600;
const PACING = { batch: 3, intervalMs: 20 };
const LOST_PHASE_MESSAGES = 20;
const MIN_CUTS = 5;
const CUT_LIFETIME_MS = [50, 400];

// ---------------------------------------------------------------------------------------------------------------
// The contract, read from crates/core/src/server/metrics.rs.


/**
 * `{ metrics: Map name → { name, kind, help, labels, buckets, storeOnly }, values: { module → [value] } }`, from
 * the Rust source: each `pub const X: Metric = …;`, the bucket arrays, `ALL`, `STORE_ONLY` and the label-value
 * modules.
 */
function readContract() {
  const source = readFileSync(CONTRACT_FILE, "utf8");
  const buckets = new Map();
  for (const [, name, list] of source.matchAll(/pub const ([A-Z_]+): &\[f64\]\s*=\s*&\[([^\]]*)\];/g)) {
    buckets.set(name, list.split(",").map((s) => s.trim()).filter(Boolean).map(Number));
  }
  const consts = new Map();
  for (const [, ident, body] of source.matchAll(/pub const ([A-Z_]+): Metric\s*=([\s\S]*?);\n/g)) {
    const strings = [...body.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
    const name = strings.find((s) => /^durable_ws_[a-z_]+$/.test(s));
    const kind = body.match(/Kind::(Counter|Gauge|Histogram)/)?.[1].toLowerCase();
    const labelLists = [...body.matchAll(/&\[((?:\s*"[a-z_]+"\s*,?)*)\s*\]/g)];
    const labels = labelLists.length ? [...labelLists.at(-1)[1].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]) : null;
    const bucketName = body.match(/buckets:\s*([A-Z_]+)/)?.[1];
    assert.ok(name && kind && labels, `metrics.rs: cannot read ${ident} (${body.trim().slice(0, 80)}…)`);
    const help = strings[strings.indexOf(name) + 1];
    consts.set(ident, { name, kind, help, labels, buckets: bucketName ? buckets.get(bucketName) : [] });
  }
  const list = (what) => {
    const body = source.match(new RegExp(`pub const ${what}: &\\[Metric\\]\\s*=\\s*&\\[([\\s\\S]*?)\\];`))?.[1];
    assert.ok(body, `metrics.rs has no ${what}`);
    return body.split(",").map((s) => s.trim()).filter(Boolean).map((ident) => {
      assert.ok(consts.has(ident), `metrics.rs: ${what} names ${ident}, which is not a Metric`);
      return consts.get(ident);
    });
  };
  const storeOnly = new Set(list("STORE_ONLY").map((m) => m.name));
  const metrics = new Map(list("ALL").map((m) => [m.name, { ...m, storeOnly: storeOnly.has(m.name) }]));
  const values = {};
  for (const [, module, body] of source.matchAll(/pub mod ([a-z_]+) \{([\s\S]*?)\n\}/g)) {
    values[module] = Object.fromEntries([...body.matchAll(/pub const ([A-Z_]+): &str = "([a-z_]+)";/g)].map((m) => [m[1], m[2]]));
  }
  // The sessions' end reasons: the strings of `fn end_reason`.
  const endReason = source.match(/pub fn end_reason\([\s\S]*?\n\}/)?.[0];
  assert.ok(endReason, "metrics.rs has fn end_reason");
  values.end_reason = Object.fromEntries([...endReason.matchAll(/EndReason::(\w+) => "([a-z_]+)"/g)].map((m) => [m[1], m[2]]));
  return { metrics, values };
}

/** The list the Node package's wasm exports (`metrics()` of crates/node), if it has one: the same contract, compiled. */
function wasmContract() {
  const glue = join(REPO_ROOT, "node/wasm/durable_ws_node.js");
  if (!existsSync(glue)) return null;
  const exports = createRequire(import.meta.url)(glue);
  if (typeof exports.metrics !== "function") return null;
  let list = exports.metrics();
  if (typeof list === "string") list = JSON.parse(list);
  const metrics = list.map((m) => ({ name: m.name, kind: String(m.kind).toLowerCase(), labels: [...(m.labels ?? [])], buckets: [...(m.buckets ?? [])], storeOnly: Boolean(m.storeOnly) }));
  const values = typeof exports.metric_labels === "function" ? exports.metric_labels() : null;
  return { metrics, values };
}

/** Allowed values of each label of each metric, where the contract names them. */
function labelValues({ values }) {
  const handshake = values.handshake ?? {};
  const outcomes = ["NEW", "RESUMED", "LOST", "REFUSED"].map((k) => handshake[k]).filter(Boolean);
  const reasons = Object.entries(handshake).filter(([k]) => !["NEW", "RESUMED", "LOST", "REFUSED"].includes(k)).map(([, v]) => v);
  return {
    durable_ws_connections_active: { mode: Object.values(values.mode ?? {}) },
    durable_ws_sessions_ended_total: { reason: Object.values(values.end_reason) },
    durable_ws_handshakes_total: { outcome: outcomes, reason: reasons },
    durable_ws_messages_total: { direction: Object.values(values.direction ?? {}) },
    durable_ws_message_bytes_total: { direction: Object.values(values.direction ?? {}) },
    durable_ws_limit_refusals_total: { limit: Object.values(values.limit ?? {}) },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The dashboard.

/** Every panel, rows' nested ones included. */
function allPanels(dashboard) {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression of the dashboard: panels' targets and query variables, with where it is. */
function dashboardQueries(dashboard) {
  const queries = [];
  for (const panel of allPanels(dashboard)) {
    for (const target of panel.targets ?? []) queries.push({ where: `panel ${panel.id} "${panel.title}" ${target.refId}`, panel, expr: target.expr });
  }
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== "query") continue;
    const expr = typeof variable.query === "string" ? variable.query : variable.query?.query;
    queries.push({ where: `variable ${variable.name}`, expr });
  }
  return queries;
}

/** The metric names an expression selects (identifiers outside string literals); histograms' series folded to the histogram. */
function metricsOf(expr, contract) {
  const code = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const names = new Set();
  for (const [identifier] of code.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    if (!identifier.startsWith("durable_ws_")) continue;
    const base = identifier.replace(/_(bucket|sum|count)$/, "");
    names.add(base !== identifier && contract.metrics.get(base)?.kind === "histogram" ? base : identifier);
  }
  return names;
}

/** The table of docs/SERVER.md's "Metrics and health" section: `{ name, kind, labels }` per row. */
function documentedMetrics() {
  const doc = readFileSync(SERVER_DOC, "utf8");
  const section = doc.split(/^## /m).find((s) => s.startsWith("Metrics and health"));
  assert.ok(section, 'docs/SERVER.md has a "## Metrics and health" section');
  const rows = [];
  for (const line of section.split("\n")) {
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    const name = cells[0]?.match(/^`(durable_ws_[a-z_]+)`$/)?.[1];
    if (!name) continue;
    const labels = cells[2] === "" || cells[2] === "—" ? [] : [...cells[2].matchAll(/`([a-z_]+)`/g)].map((m) => m[1]);
    rows.push({ name, kind: cells[1].replace(/`/g, ""), labels, storeOnly: /only with `--redis`/.test(cells[3] ?? "") });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// The Prometheus text format (exposition format 0.0.4), parsed by its grammar.

/**
 * Parses a scrape. Returns `Map family → { name, type, help, samples: [{ name, labels, value, timestamp }] }`.
 * Throws on anything the format does not allow: a malformed line, an escape it does not have, a TYPE after the
 * family's samples or twice, a family's samples not together, a series twice, a value that is not a float.
 */
export function parsePrometheusText(text) {
  const families = new Map();
  const finished = new Set();
  let current = null;
  const family = (name) => {
    if (!families.has(name)) families.set(name, { name, type: "untyped", help: null, samples: [], typed: false });
    return families.get(name);
  };
  const familyOf = (sampleName) => {
    if (families.get(sampleName)?.typed) return sampleName;
    const m = sampleName.match(/^(.*)_(bucket|sum|count)$/);
    if (m && ["histogram", "summary"].includes(families.get(m[1])?.type)) {
      if (m[2] === "bucket" && families.get(m[1]).type === "summary") return sampleName;
      return m[1];
    }
    return sampleName;
  };
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((line, index) => {
    const fail = (why) => {
      throw new Error(`line ${index + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    let pos = 0;
    const peek = () => line[pos];
    const blanks = () => {
      while (line[pos] === " " || line[pos] === "\t") pos++;
    };
    const name = (re = /[a-zA-Z_:]/, rest = /[a-zA-Z0-9_:]/) => {
      const start = pos;
      if (!re.test(line[pos] ?? "")) fail(`a name expected at column ${pos + 1}`);
      pos++;
      while (pos < line.length && rest.test(line[pos])) pos++;
      return line.slice(start, pos);
    };
    const float = (token) => {
      if (/^[+-]?(Inf|inf|NaN|nan)$/.test(token)) return token.toLowerCase().includes("nan") ? NaN : token.startsWith("-") ? -Infinity : Infinity;
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(token)) fail(`not a float: ${token}`);
      return Number(token);
    };
    if (/^\s*$/.test(line)) return;
    if (line.startsWith("#")) {
      pos = 1;
      blanks();
      const keyword = line.slice(pos).match(/^(HELP|TYPE)[ \t]/)?.[1];
      if (!keyword) return; // a comment
      pos += keyword.length;
      blanks();
      const metric = name();
      if (pos < line.length && line[pos] !== " " && line[pos] !== "\t") fail("a metric name ends with a blank");
      blanks();
      const rest = line.slice(pos);
      const f = family(metric);
      if (keyword === "HELP") {
        if (f.help !== null) fail(`a second HELP for ${metric}`);
        if (/\\(?!n)/.test(rest.replace(/\\\\/g, ""))) fail("HELP allows only the escapes \\\\ and \\n");
        f.help = rest.replace(/\\(\\|n)/g, (_, c) => (c === "n" ? "\n" : "\\"));
      } else {
        if (f.typed) fail(`a second TYPE for ${metric}`);
        if (f.samples.length) fail(`TYPE of ${metric} after its samples`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest.trim())) fail(`unknown type ${rest}`);
        f.type = rest.trim();
        f.typed = true;
      }
      return;
    }
    blanks();
    const sampleName = name();
    const labels = {};
    const afterName = pos;
    blanks();
    if (peek() === "{") {
      pos++;
      blanks();
      while (peek() !== "}") {
        const label = name(/[a-zA-Z_]/, /[a-zA-Z0-9_]/);
        blanks();
        if (peek() !== "=") fail(`= expected after label ${label}`);
        pos++;
        blanks();
        if (peek() !== '"') fail(`a quoted value expected for label ${label}`);
        pos++;
        let value = "";
        for (;;) {
          const c = line[pos++];
          if (c === undefined) fail("unterminated label value");
          if (c === '"') break;
          if (c === "\\") {
            const e = line[pos++];
            if (e === "\\") value += "\\";
            else if (e === '"') value += '"';
            else if (e === "n") value += "\n";
            else fail(`unknown escape \\${e} in a label value`);
          } else value += c;
        }
        if (label in labels) fail(`label ${label} twice`);
        labels[label] = value;
        blanks();
        if (peek() === ",") {
          pos++;
          blanks();
        } else if (peek() !== "}") fail(", or } expected in the labels");
      }
      pos++;
      if (line[pos] !== " " && line[pos] !== "\t") fail("a blank before the value expected");
    } else if (pos === afterName) fail("a blank before the value expected");
    blanks();
    const tokens = line.slice(pos).trim().split(/[ \t]+/);
    if (tokens.length < 1 || tokens.length > 2 || tokens[0] === "") fail("a value and at most a timestamp expected");
    const value = float(tokens[0]);
    const timestamp = tokens[1] === undefined ? null : /^-?\d+$/.test(tokens[1]) ? Number(tokens[1]) : fail(`not a timestamp: ${tokens[1]}`);
    const familyName = familyOf(sampleName);
    if (current !== familyName) {
      if (finished.has(familyName)) fail(`the samples of ${familyName} are not together`);
      if (current !== null) finished.add(current);
      current = familyName;
    }
    const f = family(familyName);
    const key = `${sampleName}{${Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(",")}}`;
    if (f.samples.some((s) => s.key === key)) fail(`series ${key} twice`);
    f.samples.push({ name: sampleName, labels, value, timestamp, key });
  });
  return families;
}

/** Checks each histogram of a scrape: per series, `le` buckets cumulative and ascending, +Inf = _count, a _sum. */
function checkHistograms(families, where) {
  for (const f of families.values()) {
    if (f.type !== "histogram") continue;
    const series = new Map();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      if (!series.has(key)) series.set(key, { buckets: [], sum: null, count: null });
      const entry = series.get(key);
      if (s.name === `${f.name}_bucket`) {
        assert.ok(le !== undefined, `${where}: ${s.key} has no le`);
        entry.buckets.push({ le: le === "+Inf" ? Infinity : Number(le), value: s.value });
      } else if (s.name === `${f.name}_sum`) entry.sum = s.value;
      else if (s.name === `${f.name}_count`) entry.count = s.value;
      else assert.fail(`${where}: ${s.name} in histogram ${f.name}`);
    }
    for (const [key, { buckets, sum, count }] of series) {
      const what = `${where}: ${f.name}${key}`;
      assert.ok(buckets.length > 0 && sum !== null && count !== null, `${what}: buckets, _sum and _count`);
      for (let i = 1; i < buckets.length; i++) {
        assert.ok(buckets[i].le > buckets[i - 1].le, `${what}: buckets in ascending le`);
        assert.ok(buckets[i].value >= buckets[i - 1].value, `${what}: buckets cumulative (le=${buckets[i].le}: ${buckets[i].value} < ${buckets[i - 1].value})`);
      }
      assert.equal(buckets.at(-1).le, Infinity, `${what}: a +Inf bucket last`);
      assert.equal(buckets.at(-1).value, count, `${what}: the +Inf bucket equals _count`);
      assert.ok(count === 0 ? sum === 0 : sum >= 0, `${what}: _sum of non-negative observations`);
    }
  }
}

/** Checks a scrape against the contract: types, labels (and their values), buckets; and which metrics it has. */
function checkAgainstContract(families, contract, { store, dashboardMetrics, where }) {
  const allowed = labelValues(contract);
  const missing = [];
  for (const name of dashboardMetrics) {
    const m = contract.metrics.get(name);
    const f = families.get(name);
    const present = f && f.samples.length > 0;
    if (m.storeOnly && !store) assert.ok(!present, `${where}: ${name} is a store metric, only on a server with --redis`);
    else if (!present) missing.push(name);
  }
  assert.deepEqual(missing, [], `${where}: every metric the dashboard queries has samples`);
  for (const f of families.values()) {
    if (!f.name.startsWith("durable_ws_")) continue;
    const m = contract.metrics.get(f.name);
    assert.ok(m, `${where}: ${f.name} is not in the contract (crates/core/src/server/metrics.rs)`);
    assert.equal(f.type, m.kind, `${where}: ${f.name} is a ${m.kind}`);
    for (const s of f.samples) {
      const expected = [...m.labels, ...(s.name.endsWith("_bucket") && m.kind === "histogram" ? ["le"] : [])].sort();
      assert.deepEqual(Object.keys(s.labels).sort(), expected, `${where}: ${s.key}: labels ${expected.join(", ") || "none"}`);
      for (const [label, value] of Object.entries(s.labels)) {
        const values = allowed[f.name]?.[label];
        if (values) assert.ok(values.includes(value), `${where}: ${s.key}: ${label}="${value}" is not one of the contract's ${values.join(", ")}`);
      }
      if (s.name.endsWith("_bucket") && m.kind === "histogram") {
        const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
        assert.ok(le === Infinity || m.buckets.includes(le), `${where}: ${s.key}: le=${s.labels.le} is not a bucket of the contract (${m.buckets.join(", ")})`);
      }
    }
    if (m.kind === "histogram") {
      const bounds = new Set(f.samples.filter((s) => s.name.endsWith("_bucket")).map((s) => s.labels.le));
      if (bounds.size) assert.equal(bounds.size, m.buckets.length + 1, `${where}: ${f.name} has the contract's ${m.buckets.length} buckets and +Inf`);
    }
  }
  checkHistograms(families, where);
}

/** The sum of the samples named `name` whose labels include `match`. */
function value(families, name, match = {}) {
  const familyName = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "");
  const f = families.get(familyName);
  if (!f) return 0;
  return f.samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

// ---------------------------------------------------------------------------------------------------------------
// The servers' HTTP.

async function get(http, path) {
  const response = await fetch(new URL(path, http));
  return { status: response.status, type: response.headers.get("content-type"), body: await response.text() };
}

/** /metrics, parsed. */
async function scrape(http) {
  const { status, type, body } = await get(http, "/metrics");
  assert.equal(status, 200, `GET ${http}/metrics → ${status}: ${body.slice(0, 200)}`);
  assert.match(type ?? "", /^text\/plain/, "the Prometheus text format's content type");
  let parsed;
  try {
    parsed = parsePrometheusText(body);
  } catch (error) {
    throw new Error(`${http}/metrics does not parse as the Prometheus text format: ${error.message}\n${body.slice(0, 3000)}`);
  }
  // The Prometheus project's own parser (its Python client's) reads the same families and samples.
  assert.deepEqual(
    prometheusClientParse(body),
    [...parsed.values()].map((f) => [f.name, f.type, f.samples.length]),
    `${http}/metrics: the Prometheus client's parser reads the same families and samples`,
  );
  return parsed;
}

/** `[name, type, samples]` of each family, as prometheus_client.parser (Debian's python3-prometheus-client) reads them. */
function prometheusClientParse(text) {
  const script = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
print(json.dumps([[f.name + ("_total" if f.type == "counter" else ""), f.type, len(f.samples)] for f in text_string_to_metric_families(sys.stdin.read())]))`;
  const run = spawnSync("/usr/bin/python3", ["-c", script], { input: text, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`prometheus_client.parser rejected the scrape: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** A connection that upgrades to a (plain) WebSocket on /echo and then never reads: it keeps a draining server waiting. */
async function silentConnection(http) {
  const { hostname, port } = new URL(http);
  const socket = connect(Number(port), hostname);
  await once(socket, "connect");
  socket.write(
    `GET /echo HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${Buffer.from("durable-ws-drain").toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const [head] = await once(socket, "data");
  assert.match(head.toString(), /^HTTP\/1\.1 101/, "the silent connection was upgraded");
  socket.pause();
  socket.on("error", () => {});
  return socket;
}

/**
 * SIGTERMs `server` while a silent connection keeps it draining; polls /readyz and /healthz until it exits.
 * Returns `{ answers: ["503", "refused", …], healthz, exited, ms }`.
 */
async function drain(server) {
  const silent = await silentConnection(server.http);
  // The 101 goes out before the server registers the connection: SIGTERM once it counts it.
  await until(async () => (await (await fetch(new URL("/stats", server.http))).json()).connections >= 1, 5000, "the silent connection registered");
  const exited = once(server.child, "exit").then(() => true);
  const started = Date.now();
  server.child.kill("SIGTERM");
  const answers = [];
  const healthz = [];
  let done = false;
  exited.then(() => (done = true));
  while (!done && Date.now() - started < 8000) {
    const ask = (path) => get(server.http, path).then((r) => String(r.status), () => "refused");
    const [ready, health] = await Promise.all([ask("/readyz"), ask("/healthz")]);
    if (done) break;
    answers.push(ready);
    healthz.push(health);
    await sleep(50);
  }
  silent.destroy();
  await Promise.race([exited, sleep(6000)]);
  const ms = Date.now() - started;
  await server.stop();
  return { answers, healthz, ms };
}

/** Polls `check()` (sync or async) every 50 ms until it is truthy; throws with `state()` after `timeoutMs`. */
async function until(check, timeoutMs, what, state = () => "") {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms ${await state()}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A durable client: the npm build (pkg/) in Node, over ws.

let DurableWebSocket;
async function loadClient() {
  if (DurableWebSocket) return;
  const file = join(REPO_ROOT, "pkg/durable_ws.js");
  assert.ok(existsSync(file), `${file} is missing: build the wasm package (scripts/test.sh wasm-package)`);
  const module = await import(file);
  await module.default();
  DurableWebSocket = module.DurableWebSocket;
}

function durableClient(url, options) {
  const socket = new DurableWebSocket(url, { WebSocket, ...options });
  const c = { socket, sent: [], bytes: 0, received: [], acked: 0, rejected: [], resumed: 0, replayed: 0, reconnecting: 0, opened: 0, lost: [], errors: [] };
  socket.addEventListener("open", () => c.opened++);
  socket.addEventListener("resumed", (e) => {
    c.resumed++;
    c.replayed += e.replayed;
  });
  socket.addEventListener("reconnecting", () => c.reconnecting++);
  socket.addEventListener("sessionlost", (e) => c.lost.push({ reason: e.reason, unconfirmed: e.unconfirmed.length }));
  socket.addEventListener("error", (e) => c.errors.length < 20 && c.errors.push(`${e.error?.name}: ${e.message}`));
  socket.addEventListener("message", (e) => c.received.push(e.data));
  c.send = (text) => {
    c.sent.push(text);
    c.bytes += Buffer.byteLength(text);
    socket.send(text).then(
      () => c.acked++,
      (error) => c.rejected.push(`${text}: ${error.name}`),
    );
  };
  c.settled = () => c.acked + c.rejected.length === c.sent.length && c.received.length >= c.sent.length;
  c.state = () => JSON.stringify({ sent: c.sent.length, received: c.received.length, acked: c.acked, rejected: c.rejected.length, readyState: socket.readyState, lost: c.lost, errors: c.errors });
  c.close = () =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve("no close event within 5 s"), 5000);
      socket.addEventListener("close", (e) => {
        if (e.willReconnect) return;
        clearTimeout(timer);
        resolve(e.code);
      });
      socket.close(1000, "done");
    });
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// The checks that need no server.

const contract = readContract();
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, "utf8"));
const queries = dashboardQueries(dashboard);
const dashboardMetrics = new Set(queries.flatMap((q) => [...metricsOf(q.expr, contract)]));

test("the contract reads: unique durable_ws_ names, counters end in _total, histograms have buckets", () => {
  const names = [...contract.metrics.keys()];
  assert.ok(names.length >= 15, `the contract lists its metrics (read ${names.length})`);
  for (const m of contract.metrics.values()) {
    assert.match(m.name, /^durable_ws_[a-z_]+$/);
    assert.equal(m.kind === "counter", m.name.endsWith("_total"), `${m.name}: counters, and only they, end in _total`);
    assert.equal(m.kind === "histogram", m.buckets.length > 0, `${m.name}: histograms, and only they, have buckets`);
    assert.ok(m.help, `${m.name} has a help text`);
  }
  const wasm = skip ? null : wasmContract();
  if (wasm) {
    const fromSource = [...contract.metrics.values()].map(({ name, kind, labels, buckets, storeOnly }) => ({ name, kind, labels, buckets, storeOnly }));
    assert.deepEqual(wasm.metrics, fromSource, "the Node package's metrics() export lists the contract as metrics.rs has it");
    if (wasm.values) {
      for (const module of ["handshake", "limit", "direction", "mode"]) {
        assert.deepEqual(wasm.values[module], contract.values[module], `metric_labels().${module} is metrics.rs's`);
      }
      if (wasm.values.ended) assert.deepEqual(Object.values(wasm.values.ended).sort(), Object.values(contract.values.end_reason).sort(), "metric_labels().ended: metrics.rs's end reasons");
    }
  }
  for (const module of ["handshake", "limit", "direction", "mode", "end_reason"]) {
    assert.ok(Object.keys(contract.values[module] ?? {}).length >= 2, `the contract's label values of ${module}`);
  }
  console.log(`contract: ${names.length} metrics (${[...contract.metrics.values()].filter((m) => m.storeOnly).length} only with Redis)${wasm ? "; the wasm export agrees" : ""}`);
});

test("the Grafana dashboard queries only the contract's metrics, and shows every one of them", () => {
  assert.ok(dashboard.schemaVersion >= 36, "a current dashboard schema");
  assert.ok(queries.length > 0);
  for (const { where, expr } of queries) {
    assert.ok(typeof expr === "string" && expr.trim(), `${where} has a query`);
    const names = metricsOf(expr, contract);
    assert.ok(names.size > 0, `${where} queries a durable_ws_ metric: ${expr}`);
    for (const name of names) assert.ok(contract.metrics.has(name), `${where}: ${name} is not in the contract`);
    // Balanced brackets, and no Grafana variable the dashboard does not define.
    let depth = 0;
    for (const c of expr.replace(/"(?:[^"\\]|\\.)*"/g, "")) {
      depth += "([{".includes(c) ? 1 : ")]}".includes(c) ? -1 : 0;
      assert.ok(depth >= 0, `${where}: brackets balance: ${expr}`);
    }
    assert.equal(depth, 0, `${where}: brackets balance: ${expr}`);
    const defined = new Set((dashboard.templating?.list ?? []).map((v) => v.name));
    for (const [, variable] of expr.matchAll(/\$\{?([a-zA-Z_]+)/g)) {
      assert.ok(variable.startsWith("__") || defined.has(variable), `${where}: $${variable} is defined`);
    }
    assert.ok(!/_bucket\b/.test(expr) || /histogram_quantile\(/.test(expr), `${where}: buckets only through histogram_quantile`);
  }
  const unshown = [...contract.metrics.keys()].filter((name) => !dashboardMetrics.has(name));
  assert.deepEqual(unshown, [], "every metric of the contract is on some panel");
  // Panels: unique ids, on a 24-column grid, not overlapping, each reading the templated Prometheus data source.
  const panels = allPanels(dashboard);
  assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, "panel ids are unique");
  const cells = new Set();
  for (const p of panels) {
    const { x, y, w, h } = p.gridPos;
    assert.ok(x >= 0 && w > 0 && x + w <= 24 && h > 0, `panel ${p.id} fits the grid`);
    for (let i = x; i < x + w; i++) for (let j = y; j < y + h; j++) {
      assert.ok(!cells.has(`${i},${j}`), `panel ${p.id} "${p.title}" overlaps another`);
      cells.add(`${i},${j}`);
    }
    if (p.type === "row") continue;
    assert.deepEqual(p.datasource, { type: "prometheus", uid: "${DS_PROMETHEUS}" }, `panel ${p.id} reads the templated data source`);
    for (const t of p.targets) assert.deepEqual(t.datasource ?? p.datasource, p.datasource, `panel ${p.id} ${t.refId}: the panel's data source`);
  }
  const variables = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
  assert.equal(variables.DS_PROMETHEUS?.type, "datasource", "a data source variable DS_PROMETHEUS");
  assert.equal(variables.DS_PROMETHEUS?.query, "prometheus");
  assert.equal(variables.instance?.type, "query", "an instance variable");
  console.log(`dashboard: ${panels.filter((p) => p.type !== "row").length} panels, ${queries.length} queries, ${dashboardMetrics.size} metrics`);
});

test('docs/SERVER.md "Metrics and health" lists the contract: names, kinds and labels', () => {
  const rows = documentedMetrics();
  assert.deepEqual(rows.map((r) => r.name).sort(), [...contract.metrics.keys()].sort(), "the table and the contract name the same metrics");
  for (const row of rows) {
    const m = contract.metrics.get(row.name);
    assert.equal(row.kind, m.kind, `${row.name}: kind`);
    assert.deepEqual(row.labels, m.labels, `${row.name}: labels`);
    assert.equal(row.storeOnly, m.storeOnly, `${row.name}: "only with \`--redis\`" marks the store's metrics (STORE_ONLY), and only them`);
  }
});

test("the text-format parser refuses what the format does not allow", () => {
  const ok = parsePrometheusText('# HELP a_total A \\\\ help.\n# TYPE a_total counter\na_total{x="q\\"\\n\\\\"} 1 1700000000000\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3.5\nh_count 2\nu NaN\n');
  assert.equal(ok.get("a_total").samples[0].labels.x, 'q"\n\\');
  assert.equal(ok.get("a_total").help, "A \\ help.");
  assert.equal(ok.get("h").samples.length, 4);
  assert.ok(Number.isNaN(ok.get("u").samples[0].value));
  for (const bad of ["a 1\n# TYPE a counter\n", "# TYPE a counter\n# TYPE a gauge\n", 'a{x="1} 1\n', 'a{x="\\t"} 1\n', "a one\n", "a 1\nb 1\na 2\n", 'a{x="1"} 1\na{x="1"} 2\n', "a{x=1} 1\n", "1a 1\n"]) {
    assert.throws(() => parsePrometheusText(bad), Error, JSON.stringify(bad));
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The servers under the echo chaos test.

const figures = [];
let site;

after(async () => {
  site?.remove();
  if (figures.length) printTable(figures);
});

function printTable(rows) {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.figures)))];
  const width = Math.max(...names.map((n) => n.length));
  const cols = rows.map((r) => Math.max(r.name.length, ...Object.values(r.figures).map((v) => String(v).length), 1));
  const line = (label, cells) => `${label.padEnd(width)}  ${cells.map((c, i) => String(c).padStart(cols[i])).join("  ")}`;
  console.log(["metrics under the echo chaos test (deltas over the run):", line("", rows.map((r) => r.name)), ...names.map((n) => line(n, rows.map((r) => r.figures[n] ?? "")))].join("\n"));
}

/**
 * Starts one server (`kind`: rust, rust-redis, node) behind a cutting proxy, runs the echo chaos test and the lost
 * session, scrapes before and after, checks; then the health endpoints, Redis down (rust-redis), SIGTERM.
 */
async function run(kind) {
  await loadClient();
  site ??= siteDir({});
  const cleanup = [];
  try {
    let redis;
    let args = [];
    if (kind === "rust-redis") {
      redis = await startRedis();
      cleanup.push(() => redis.stop());
      args = ["--redis", redis.url];
    }
    let server;
    if (kind === "node") {
      const { startNodeServer } = await import("../../node/test/e2e-support.mjs");
      server = await startNodeServer({ www: site.dir, args });
    } else server = await startServer({ www: site.dir, args });
    cleanup.push(() => server.stop());
    const proxy = await startProxy({ target: `127.0.0.1:${server.port}`, lifetimeMs: CUT_LIFETIME_MS, latencyMs: 2 });
    cleanup.push(() => proxy.stop());
    const store = kind === "rust-redis";
    const where = kind;
    const soft = softAsserts();

    for (const path of ["/healthz", "/readyz"]) {
      const { status, body } = await get(server.http, path);
      assert.equal(status, 200, `${where}: GET ${path} → 200 (got ${status} ${body.slice(0, 100)})`);
    }
    const before = await scrape(server.http);
    const statsBefore = await serverStats(server.http);

    // The echo chaos test: numbered messages through the cutting proxy, resumed after every cut.
    // Its URL is asked before every attempt: through the proxy during the run, then straight to the server, so that
    // its goodbye at the end is not cut.
    let viaProxy = true;
    let resumesWhenDirect = null;
    const echoUrl = () => {
      if (viaProxy) return `${proxy.ws}/echo`;
      resumesWhenDirect ??= echo.resumed;
      return `${server.ws}/echo`;
    };
    const echo = durableClient(echoUrl, { reconnect: { minDelayMs: 10, maxDelayMs: 250 } });
    cleanup.push(async () => echo.socket.readyState !== 3 && echo.socket.close());
    for (let i = 0; i < MESSAGES; i += PACING.batch) {
      for (let j = i; j < Math.min(MESSAGES, i + PACING.batch); j++) echo.send(`e${j}`);
      await sleep(PACING.intervalMs);
    }
    await until(echo.settled, 45_000, `${where}: every echo back and every message acknowledged`, echo.state);
    viaProxy = false;
    await until(() => resumesWhenDirect !== null && echo.resumed > resumesWhenDirect && echo.socket.readyState === 1, 10_000, `${where}: the echo client resumed straight on the server after the next cut`, echo.state);

    // A lost session: cut, then forgotten while its client is away; its resume is answered `lost`.
    const lost = durableClient(`${server.ws}/echo`, { reconnect: { minDelayMs: 400, maxDelayMs: 500 } });
    cleanup.push(async () => lost.socket.readyState !== 3 && lost.socket.close());
    for (let i = 0; i < LOST_PHASE_MESSAGES; i++) lost.send(`l${i}`);
    await until(lost.settled, 10_000, `${where}: the second client's echoes`, lost.state);
    await sleep(300); // its acknowledgements of the echoes reach the server
    const token = lost.socket.sessionToken;
    assert.equal((await admin(server.http, `/admin/cut?session=${token}`)).affected, 1, "the second client's connection cut");
    assert.equal((await admin(server.http, `/admin/expire?session=${token}`)).affected, 1, "its session forgotten while it is away");
    await until(() => lost.lost.length === 1 && lost.socket.readyState === 1, 10_000, `${where}: the session lost and a new one open`, lost.state);
    for (let i = 0; i < LOST_PHASE_MESSAGES; i++) lost.send(`m${i}`);
    await until(lost.settled, 10_000, `${where}: the new session's echoes`, lost.state);

    const closeCodes = await Promise.all([echo.close(), lost.close()]);
    let after;
    await soft.wait(() => until(
      async () => {
        after = await scrape(server.http);
        return value(after, "durable_ws_connections_active", { mode: "durable" }) === 0 && value(after, "durable_ws_sessions_ended_total", { reason: "goodbye" }) - value(before, "durable_ws_sessions_ended_total", { reason: "goodbye" }) >= 2;
      },
      5000,
      `${where}: both connections closed and both sessions ended`,
      () => `(durable connections ${value(after, "durable_ws_connections_active", { mode: "durable" })}, goodbyes ${value(after, "durable_ws_sessions_ended_total", { reason: "goodbye" })})`,
    ));
    await sleep(200);
    after = await scrape(server.http);
    const statsAfter = await serverStats(server.http);
    const d = (name, match) => value(after, name, match) - value(before, name, match);
    const ds = (field) => (statsAfter[field] ?? 0) - (statsBefore[field] ?? 0);

    // What the clients saw.
    const expected = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
    assert.deepEqual(echo.received, expected("e", MESSAGES), `${where}: every echo once, in order, through the cuts`);
    assert.equal(echo.acked, MESSAGES, `${where}: every message acknowledged`);
    assert.deepEqual(echo.lost, [], `${where}: the echo session was never lost`);
    assert.ok(echo.reconnecting >= MIN_CUTS, `${where}: the proxy cut the echo client at least ${MIN_CUTS} times (saw ${echo.reconnecting})`);
    assert.ok(echo.resumed >= 1, `${where}: the echo client resumed`);
    assert.deepEqual(lost.lost.map((l) => l.reason), ["expired"], `${where}: the second client lost its session once (expired)`);
    assert.deepEqual(lost.received, [...expected("l", LOST_PHASE_MESSAGES), ...expected("m", LOST_PHASE_MESSAGES)], `${where}: the second client's echoes, both sessions`);
    assert.deepEqual(closeCodes, [1000, 1000], `${where}: both clients closed with 1000`);

    // The scrapes.
    soft.run(() => checkAgainstContract(before, contract, { store, dashboardMetrics: [], where: `${where} (before)` }));
    soft.run(() => checkAgainstContract(after, contract, { store, dashboardMetrics, where: `${where} (after)` }));

    const messages = MESSAGES + 2 * LOST_PHASE_MESSAGES;
    const bytes = echo.bytes + lost.bytes;
    const handshakes = (outcome, reason) => d("durable_ws_handshakes_total", reason ? { outcome, reason } : { outcome });
    const f = {
      "messages sent by the clients": messages,
      "messages in": d("durable_ws_messages_total", { direction: "in" }),
      "messages out": d("durable_ws_messages_total", { direction: "out" }),
      "bytes in": d("durable_ws_message_bytes_total", { direction: "in" }),
      "bytes out": d("durable_ws_message_bytes_total", { direction: "out" }),
      "cuts (client reconnects)": echo.reconnecting + lost.reconnecting,
      "resumes (client events)": echo.resumed + lost.resumed,
      "handshakes new": handshakes("new"),
      "handshakes resumed": handshakes("resumed"),
      "/stats resumes": ds("resumes"),
      "handshakes lost": handshakes("lost"),
      "handshakes refused": handshakes("refused"),
      "resume success ratio": (handshakes("resumed") / (handshakes("resumed") + handshakes("lost"))).toFixed(4),
      "replayed": d("durable_ws_replayed_messages_total"),
      "/stats replayed": ds("replayed"),
      "duplicates dropped": d("durable_ws_duplicate_messages_total"),
      "/stats duplicates_dropped": ds("duplicates_dropped"),
      "client: replayed on resume": echo.replayed + lost.replayed,
      "client: duplicates received": echo.socket.stats().duplicates + lost.socket.stats().duplicates,
      "sessions ended goodbye": d("durable_ws_sessions_ended_total", { reason: "goodbye" }),
      "sessions ended expired": d("durable_ws_sessions_ended_total", { reason: "expired" }),
      "sessions ended (all)": d("durable_ws_sessions_ended_total"),
      "sessions active (after)": value(after, "durable_ws_sessions_active"),
      "unconfirmed at end": d("durable_ws_unconfirmed_at_end_total"),
      "ack delays observed": d("durable_ws_ack_delay_seconds_count"),
      "ack delay mean (ms)": ((1000 * d("durable_ws_ack_delay_seconds_sum")) / d("durable_ws_ack_delay_seconds_count")).toFixed(1),
      "connections closed": d("durable_ws_connection_duration_seconds_count"),
      "closes by code": closesByCode(before, after),
      "closed 1006": d("durable_ws_connection_duration_seconds_count", { code: "1006" }),
      "closed 1000": d("durable_ws_connection_duration_seconds_count", { code: "1000" }),
      "replay buffer msgs (after)": value(after, "durable_ws_replay_buffer_messages"),
      "heartbeat timeouts": d("durable_ws_heartbeat_timeouts_total"),
      "protocol errors": d("durable_ws_protocol_errors_total"),
      "/stats protocol_errors": ds("protocol_errors"),
      "limit refusals": d("durable_ws_limit_refusals_total"),
      "store round trips": store ? d("durable_ws_store_commands_total") : "-",
      "store errors": store ? d("durable_ws_store_errors_total") : "-",
      "store fenced": store ? d("durable_ws_store_fenced_total") : "-",
      "store p99 bucket (ms)": store ? p99Bucket(after, "durable_ws_store_duration_seconds") : "-",
    };
    figures.push({ name: kind, figures: f });

    soft.equal(f["messages in"], messages, `${where}: messages in = messages the clients sent, each once`);
    soft.equal(f["messages out"], messages, `${where}: messages out = the echoes`);
    soft.equal(f["bytes in"], bytes, `${where}: payload bytes in`);
    soft.equal(f["bytes out"], bytes, `${where}: payload bytes out`);
    soft.equal(ds("messages_in"), messages, `${where}: /stats agrees on messages in`);
    soft.ok(f["handshakes new"] >= 2, `${where}: a new session per client (and one per handshake a cut interrupted)`);
    soft.equal(f["handshakes resumed"], f["/stats resumes"], `${where}: handshakes resumed = /stats resumes`);
    soft.ok(f["handshakes resumed"] >= f["resumes (client events)"], `${where}: handshakes resumed ≥ the resumes the clients saw`);
    soft.equal(f["handshakes lost"], 1, `${where}: one lost session`);
    soft.equal(handshakes("lost", "expired"), 1, `${where}: lost because it expired`);
    soft.equal(ds("sessions_lost"), 1, `${where}: /stats sessions_lost agrees`);
    soft.equal(f["handshakes refused"], 0, `${where}: nothing refused`);
    soft.equal(f["replayed"], ds("replayed"), `${where}: replayed = /stats replayed`);
    soft.equal(f["duplicates dropped"], ds("duplicates_dropped"), `${where}: duplicates = /stats duplicates_dropped`);
    soft.equal(f["sessions ended goodbye"], 2, `${where}: two goodbyes`);
    soft.equal(f["sessions ended expired"], 1, `${where}: one expiry (/admin/expire)`);
    soft.equal(ds("sessions_expired"), 1, `${where}: /stats sessions_expired agrees`);
    if (!store) {
      // Sessions made (new, and a new one per lost resume) minus those ended: those a cut orphaned before their WELCOME.
      soft.equal(f["sessions active (after)"], f["handshakes new"] + f["handshakes lost"] - f["sessions ended (all)"], `${where}: sessions active = made − ended`);
    }
    // One sample per write pass (its newest message), observed when an acknowledgement covers it: at most one per message.
    soft.ok(f["ack delays observed"] > 0 && f["ack delays observed"] <= messages, `${where}: acknowledgement delays observed, at most one per message out (${f["ack delays observed"]})`);
    soft.ok(f["connections closed"] >= f["handshakes new"] + f["handshakes resumed"] + f["handshakes lost"], `${where}: every handshaken connection closed is in connection_duration`);
    soft.ok(f["closed 1000"] >= 2, `${where}: the clients' closes (1000)`);
    soft.ok(f["closed 1006"] >= 1, `${where}: the cuts (1006)`);
    soft.equal(value(after, "durable_ws_connections_active"), 0, `${where}: no connection left`);
    soft.equal(f["replay buffer msgs (after)"], 0, `${where}: the replay buffers are empty`);
    soft.equal(value(after, "durable_ws_replay_buffer_bytes"), 0, `${where}: no byte in the replay buffers`);
    soft.equal(f["heartbeat timeouts"], 0, `${where}: no heartbeat timeout`);
    soft.equal(f["protocol errors"], 0, `${where}: no protocol error`);
    soft.equal(f["limit refusals"], 0, `${where}: no limit reached`);
    if (store) {
      soft.ok(f["store round trips"] > 0, `${where}: round trips to Redis`);
      soft.equal(f["store round trips"], ds("store_commands"), `${where}: store round trips = /stats store_commands`);
      soft.equal(d("durable_ws_store_duration_seconds_count"), f["store round trips"], `${where}: one duration per round trip`);
      soft.equal(f["store errors"], 0, `${where}: no store error`);
      soft.equal(f["store fenced"], 0, `${where}: nothing fenced (one node)`);
      soft.equal(d("durable_ws_redelivered_messages_total"), 0, `${where}: nothing redelivered`);
    }

    // Health: Redis down → not ready (alive), back → ready.
    if (store) {
      await redis.stop();
      let statuses = [];
      await soft.wait(() => until(async () => {
        statuses = [(await get(server.http, "/readyz")).status, (await get(server.http, "/healthz")).status];
        return statuses[0] === 503;
      }, 10_000, `${where}: /readyz 503 while Redis is down`, () => `(readyz, healthz: ${statuses})`));
      f["redis down: readyz, healthz"] = statuses.join(", ");
      soft.equal(statuses[1], 200, `${where}: /healthz stays 200 while Redis is down`);
      redis = await startRedis({ port: redis.port });
      cleanup.push(() => redis.stop());
      await soft.wait(() => until(async () => (await get(server.http, "/readyz")).status === 200, 10_000, `${where}: /readyz 200 once Redis is back`));
    }

    // Draining after SIGTERM: not ready.
    await proxy.stop();
    const { answers, healthz, ms } = await drain(server);
    const firstNot200 = answers.findIndex((a) => a !== "200");
    const answered = answers.filter((a) => a !== "refused");
    f["drain: readyz answers"] = summarize(answers);
    f["drain: healthz answers"] = summarize(healthz);
    f["drain: ms to exit"] = ms;
    soft.ok(firstNot200 >= 0, `${where}: /readyz stops answering 200 after SIGTERM (${summarize(answers)})`);
    soft.ok(answers.slice(firstNot200).every((a) => a !== "200"), `${where}: and does not answer 200 again while draining (${answers.join(" ")})`);
    if (answered.some((a) => a !== "200")) {
      soft.ok(answers.slice(firstNot200).filter((a) => a !== "refused").every((a) => a === "503"), `${where}: /readyz 503 while draining (${answers.join(" ")})`);
    } else {
      console.log(`${where}: the listener closed at SIGTERM: /readyz not reachable while draining (${summarize(answers)})`);
    }
    assert.deepEqual(soft.problems, [], `${where}: what the scrapes and the health endpoints did not show`);
  } finally {
    for (const stop of cleanup.reverse()) await stop().catch(() => {});
  }
}

/**
 * Assertions that collect their failures instead of throwing, so that one run reports everything a scrape lacks:
 * `problems` is asserted empty at the end.
 */
function softAsserts() {
  const problems = [];
  const note = (error) => {
    if (!(error instanceof assert.AssertionError) && !/not within/.test(error?.message)) throw error;
    problems.push(error.message.length > 1500 ? `${error.message.slice(0, 1500)}…` : error.message);
  };
  const run = (fn) => {
    try {
      fn();
    } catch (error) {
      note(error);
    }
  };
  return {
    problems,
    run,
    equal: (...args) => run(() => assert.equal(...args)),
    ok: (...args) => run(() => assert.ok(...args)),
    wait: (fn) => fn().catch(note),
  };
}

/** The upper bound (ms) of the bucket holding the 99th percentile of a histogram (all series together). */
function p99Bucket(families, name) {
  const buckets = new Map();
  for (const s of families.get(name)?.samples ?? []) {
    if (s.name !== `${name}_bucket`) continue;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + s.value);
  }
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  const hit = sorted.find(([, count]) => count >= 0.99 * total);
  return total === 0 ? "n/a" : `≤ ${hit[0] * 1000}`;
}

/** Connections closed over the run by close code: "1000×2 1006×20". */
function closesByCode(before, after) {
  const name = "durable_ws_connection_duration_seconds_count";
  const codes = new Set((after.get("durable_ws_connection_duration_seconds")?.samples ?? []).filter((s) => s.name === name).map((s) => s.labels.code));
  return [...codes].sort().map((code) => `${code}×${value(after, name, { code }) - value(before, name, { code })}`).filter((c) => !c.endsWith("×0")).join(" ");
}

/** "503×12 refused×3" */
function summarize(answers) {
  const counts = new Map();
  for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
  return [...counts].map(([a, n]) => `${a}×${n}`).join(" ") || "none";
}

test("rust server: /metrics under the echo chaos test (cuts, resumes, a lost session), /healthz, /readyz while draining", { skip, timeout: 90_000 }, () => run("rust"));

test("rust server on Redis: the same, with the store's metrics, and /readyz 503 while Redis is down", { skip, timeout: 90_000 }, () => run("rust-redis"));

test("node server: the same metrics under the same names, /healthz, /readyz while draining", { skip, timeout: 90_000 }, () => run("node"));
