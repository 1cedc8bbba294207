// JS API suite: the npm build of durable-ws (www/pkg, web target), loaded in a page as an application loads it
// (`import init, { DurableWebSocket } from "./pkg/durable_ws.js"; await init();`), in real browsers — headless
// Chromium, Firefox ESR and WebKitGTK, one after the other, the same cases and assertions in each — against the
// reference server (--enable-faults), which serves the page (tests/js-api/) and the package.
//
//   node --test tests/e2e/js-api.test.mjs                               (scripts/test.sh runs it in the e2e-tests stage)
//   DURABLE_WS_ENGINES=webkit node --test tests/e2e/js-api.test.mjs     (some engines only; tests/support/browser.mjs)
//
// It starts its own server on a free port, with the binary of DURABLE_WS_BIN_DIR (else target/release, else
// target/debug). It is the contract of `DurableWebSocket` as JavaScript sees it, whatever implements it:
// - the cases of the former tests/browser_js.rs: option and URL validation (TypeError naming the field), JSON and
//   text mode round trips, a URL function returning a promise, undeliverable values, close() then no reconnect,
//   session loss listing the unconfirmed messages, free() silencing every event, events of a call (the
//   constructor) reaching listeners added right after it;
// - the DOM-like surface: on… handler properties, addEventListener options (once, handleEvent objects),
//   removeEventListener, listener exceptions reported to the window without stopping anything, events being
//   `Event`s of the right type with their fields;
// - send() of a Blob, DataView and typed-array views; stats(); readyState; sessionToken; URL function failures;
//   close(code, reason) validation (codes, 123 UTF-8 bytes of reason).
// Every case is one page function, sent with `page.evaluate` (the subset of Playwright's API the WebDriver engines
// offer) and compiled by the page itself (`api.run`), so that it runs in the page's realm as application code does.
// Each wait in the page gives up after 15 s and fails the case (a safety net, not a speed check); each case has a
// 40 s time bound. A run takes about 3 s in Chromium and WebKit, 7–9 s in Firefox.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { openPage, siteDir, startServer } from "../chaos/harness.mjs";
import { launchEngine, selectedEngines } from "../support/browser.mjs";

/** In the message of every exception a case throws on purpose from a listener: not an unexpected page error. */
const EXPECTED = "js-api: expected listener failure";

const STATS_FIELDS = ["sent", "acked", "pending", "replayed", "received", "duplicates", "reconnects", "sessionsLost", "unstored", "lastRttMs"];

for (const engine of selectedEngines()) describe(engine, () => jsApiSuite(engine));

/** Every case in one engine: its own server, browser and page. */
function jsApiSuite(engine) {
  let site;
  let server;
  let browser;
  let page;
  let problems = [];
  let started;

  before(async () => {
    started = Date.now();
    site = siteDir({ "index.html": "tests/js-api/index.html", "page.js": "tests/js-api/page.js", pkg: "www/pkg" });
    server = await startServer({ www: site.dir });
    browser = await launchEngine(engine);
    const context = await browser.newContext();
    ({ page, problems } = await openPage(context, `${server.http}/index.html`, () => window.api?.ready === true));
  }, { timeout: 60_000 });

  after(async () => {
    await browser?.close();
    await server?.stop();
    site?.remove();
    console.log(`js-api suite in ${engine}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  /** Runs `fn(arg)` in the page's realm (see `api.run` in tests/js-api/page.js); returns its JSON result. */
  const inPage = (fn, arg) => page.evaluate(({ source, arg }) => window.api.run(source, arg), { source: fn.toString(), arg });

  /** A case: `body()` runs, then every socket it made is freed; no page error it did not expect may occur. */
  const jsCase = (name, body) =>
    test(name, { timeout: 40_000 }, async () => {
      const since = problems.length;
      try {
        await body();
      } finally {
        await page?.evaluate(() => window.api.cleanup());
      }
      const unexpected = problems.slice(since).filter((problem) => !problem.includes(EXPECTED));
      assert.deepEqual(unexpected, [], "no uncaught page errors");
    });

  // ---- The cases of tests/browser_js.rs ----

  jsCase("bad options and URLs throw a TypeError naming the field", async () => {
    const cases = [
      [{ reconnect: { minDelayMs: -1 } }, "options.reconnect.minDelayMs"],
      [{ reconnct: {} }, "options.reconnct"],
      [{ reconnect: { maxDelay: 5 } }, "options.reconnect.maxDelay"],
      [{ json: "yes" }, "options.json"],
      [{ heartbeat: { intervalMs: "15s" } }, "options.heartbeat.intervalMs"],
      [{ buffer: { maxMessages: 0.5 } }, "options.buffer.maxMessages"],
      [{ connectTimeoutMs: 0 }, "options.connectTimeoutMs"],
      [{ reconnect: { factor: 0.5 } }, "options.reconnect.factor"],
      [{ reconnect: { minDelayMs: 10, maxDelayMs: 5 } }, "minDelayMs"],
      [{ protocols: ["durable.v1"] }, "options.protocols"],
      [{ protocols: "chat" }, "options.protocols"],
      [{ terminalCloseCodes: [[4999, 4000]] }, "options.terminalCloseCodes"],
      [[], "options"],
    ].map(([options, field]) => ({ url: "echo", options, field }));
    cases.push({ url: 42, options: {}, field: "url" }, { url: "ftp://example.com/", options: {}, field: "url" });
    const results = await inPage((cases) => {
      const { DurableWebSocket, echoUrl, describeError } = window.api;
      return cases.map(({ url, options }) => {
        try {
          new DurableWebSocket(url === "echo" ? echoUrl : url, options).free();
          return { accepted: true };
        } catch (error) {
          return describeError(error);
        }
      });
    }, cases);
    cases.forEach(({ url, options, field }, i) => {
      const what = `new DurableWebSocket(${JSON.stringify(url)}, ${JSON.stringify(options)})`;
      assert.ok(!results[i].accepted, `${what} was accepted`);
      assert.ok(results[i].isTypeError, `${what} threw a TypeError: ${JSON.stringify(results[i])}`);
      assert.ok(results[i].message.includes(field), `${what}: the message names ${field}: ${results[i].message}`);
    });
  });

  jsCase("JSON mode round-trips values, text and bytes", async () => {
    const value = { any: "JSON value", n: [1, 2.5, null] };
    const r = await inPage(async (value) => {
      const { socket, echoUrl, record, outcome } = window.api;
      const ws = socket(echoUrl, { json: true, protocols: ["chat"] });
      const rec = record(ws, ["open", "message", "error"]);
      const acks = [];
      acks.push(await outcome(() => ws.send(value)));
      acks.push(await outcome(() => ws.send("plain text")));
      acks.push(await outcome(() => ws.send(new Uint8Array([1, 2, 3]))));
      await rec.waitFor("message", 3);
      const data = rec.of("message").map((e) => e.data);
      return {
        acks,
        opens: rec.count("open"),
        durable: rec.of("open")[0].durable,
        messages: rec.count("message"),
        first: data[0],
        firstJson: JSON.stringify(data[0]),
        second: data[1],
        thirdIsArrayBuffer: data[2] instanceof ArrayBuffer,
        thirdBytes: data[2] instanceof ArrayBuffer ? [...new Uint8Array(data[2])] : String(data[2]),
        errors: rec.count("error"),
        readyState: ws.readyState,
        pending: ws.pending,
        acked: ws.stats().acked,
        wrong: rec.wrong(),
      };
    }, value);
    for (const ack of r.acks) assert.ok(ack.ok && ack.isPromise, `send() acknowledged: ${JSON.stringify(ack)}`);
    assert.equal(r.opens, 1);
    assert.equal(r.durable, true);
    assert.equal(r.messages, 3);
    assert.equal(r.firstJson, JSON.stringify(value));
    assert.deepEqual(r.first, value);
    assert.equal(r.second, "plain text");
    assert.ok(r.thirdIsArrayBuffer, "binary arrives as an ArrayBuffer");
    assert.deepEqual(r.thirdBytes, [1, 2, 3]);
    assert.equal(r.errors, 0);
    assert.equal(r.readyState, 1);
    assert.equal(r.pending, 0);
    assert.equal(r.acked, 3);
    assert.deepEqual(r.wrong, []);
  });

  jsCase("text mode sends objects as JSON text and delivers strings (onmessage)", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, outcome, waitUntil } = window.api;
      const ws = socket(echoUrl);
      const received = [];
      ws.onmessage = (e) => received.push(e.data);
      const isFunction = typeof ws.onmessage === "function";
      const acks = [await outcome(() => ws.send({ a: 1 })), await outcome(() => ws.send('"quoted"'))];
      await waitUntil("2 messages", () => received.length >= 2, () => JSON.stringify(received));
      return { isFunction, acks, received: [...received] };
    });
    assert.ok(r.isFunction, "onmessage reads back as a function");
    for (const ack of r.acks) assert.ok(ack.ok, `send() acknowledged: ${JSON.stringify(ack)}`);
    assert.deepEqual(r.received, ['{"a":1}', '"quoted"']);
  });

  jsCase("a URL function returning a promise is used", async () => {
    const opens = await inPage(async () => {
      const { socket, echoUrl, record } = window.api;
      const url = echoUrl;
      const ws = socket(() => Promise.resolve(url));
      const rec = record(ws, ["open"]);
      await rec.waitFor("open", 1);
      return rec.count("open");
    });
    assert.equal(opens, 1);
  });

  jsCase("undeliverable values reject; bad close arguments throw", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, outcome } = window.api;
      const ws = socket(echoUrl);
      const cyclic = {};
      cyclic.self = cyclic;
      return {
        undefined: await outcome(() => ws.send(undefined)),
        cyclic: await outcome(() => ws.send(cyclic)),
        close1001: await outcome(() => ws.close(1001)),
        close3000_5: await outcome(() => ws.close(3000.5)),
        longReason: await outcome(() => ws.close(undefined, "x".repeat(124))),
      };
    });
    assert.ok(!r.undefined.ok && !r.undefined.threw && r.undefined.isPromise, `send(undefined) rejects: ${JSON.stringify(r.undefined)}`);
    assert.ok(r.undefined.isTypeError, "with a TypeError");
    assert.ok(!r.cyclic.ok && !r.cyclic.threw && r.cyclic.isPromise, `a cycle cannot be stringified: ${JSON.stringify(r.cyclic)}`);
    assert.ok(!r.close1001.ok && r.close1001.threw, "browsers refuse 1001");
    assert.ok(!r.close3000_5.ok && r.close3000_5.threw, "3000.5 is not a code");
    assert.ok(!r.longReason.ok && r.longReason.threw, "a reason of 124 bytes is too long");
  });

  jsCase("close(): a close event, then no reconnect; send() afterwards rejects with InvalidStateError", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, outcome, sleep } = window.api;
      const ws = socket(echoUrl);
      const rec = record(ws, ["open", "close", "reconnecting"]);
      await rec.waitFor("open", 1);
      const closeCall = await outcome(() => ws.close(1000, "bye"));
      await rec.waitFor("close", 1);
      const close = rec.of("close")[0];
      await sleep(300);
      return {
        closeCall,
        code: close.code,
        willReconnect: close.willReconnect,
        closes: rec.count("close"),
        reconnecting: rec.count("reconnecting"),
        readyState: ws.readyState,
        late: await outcome(() => ws.send("late")),
        wrong: rec.wrong(),
      };
    });
    assert.ok(r.closeCall.ok, JSON.stringify(r.closeCall));
    assert.equal(r.code, 1000);
    assert.equal(r.willReconnect, false);
    assert.equal(r.reconnecting, 0);
    assert.equal(r.readyState, 3);
    assert.ok(!r.late.ok && !r.late.threw && r.late.isPromise, `send() after close rejects: ${JSON.stringify(r.late)}`);
    assert.equal(r.late.name, "InvalidStateError");
    assert.deepEqual(r.wrong, []);
  });

  jsCase("session loss lists the unconfirmed payloads and rejects their promises with SessionLostError", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, outcome, admin } = window.api;
      const ws = socket(echoUrl, { json: true, heartbeat: false });
      const rec = record(ws, ["open", "sessionlost"]);
      await rec.waitFor("open", 1);
      // Stall every connection (nothing is acknowledged), then make the server forget every session.
      const stall = await admin("/admin/stall?ms=20000&session=all");
      const pending = [ws.send({ n: 1 }), ws.send("two")].map((p) => outcome(() => p)); // handled at once
      const expire = await admin("/admin/expire?session=all");
      await rec.waitFor("sessionlost", 1);
      const lost = rec.of("sessionlost")[0];
      const settled = await Promise.all(pending);
      await rec.waitFor("open", 2);
      return {
        stall,
        expire,
        reason: lost.reason,
        unconfirmedIsArray: Array.isArray(lost.unconfirmed),
        unconfirmed: JSON.stringify(lost.unconfirmed),
        settled,
        wrong: rec.wrong(),
      };
    });
    assert.equal(r.stall[0], 200, r.stall[1]);
    assert.equal(r.expire[0], 200, r.expire[1]);
    assert.equal(r.reason, "expired");
    assert.ok(r.unconfirmedIsArray, "unconfirmed is an array");
    assert.equal(r.unconfirmed, '[{"n":1},"two"]');
    for (const s of r.settled) assert.ok(!s.ok && s.name === "SessionLostError", `never confirmed: ${JSON.stringify(s)}`);
    assert.deepEqual(r.wrong, []);
  });

  jsCase("pending events: one per task when the count changed, down to 0 as acknowledgements arrive (and on session loss)", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, admin, waitUntil } = window.api;
      const ws = socket(echoUrl, { heartbeat: false });
      const rec = record(ws, ["open", "pending", "sessionlost"]);
      const viaProperty = [];
      ws.onpending = (e) => viaProperty.push(e.pending);
      await rec.waitFor("open", 1);
      // Nothing is acknowledged while stalled: three sends of one task make one event.
      await admin("/admin/stall?ms=20000&session=all");
      const sends = [ws.send("a"), ws.send("b"), ws.send("c")].map((p) => p.catch((e) => e.name)); // handled at once
      await waitUntil("a pending event", () => rec.count("pending") >= 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const afterSends = rec.of("pending").map((e) => e.pending);
      // The server forgets the session: the three are reported, the count drops to 0.
      await admin("/admin/expire?session=all");
      await rec.waitFor("sessionlost", 1);
      const rejected = await Promise.all(sends);
      await waitUntil("pending back to 0", () => rec.of("pending").at(-1)?.pending === 0);
      // In the new session, a send and its acknowledgement.
      await rec.waitFor("open", 2);
      const acked = ws.send("d");
      await acked;
      await waitUntil("pending 0 after the ack", () => rec.of("pending").at(-1)?.pending === 0 && rec.count("pending") >= 4);
      return { afterSends, rejected, all: rec.of("pending").map((e) => e.pending), viaProperty, isEvent: rec.wrong(), pending: ws.pending };
    });
    assert.deepEqual(r.afterSends, [3], "one event for the task's three sends");
    assert.deepEqual(r.rejected, ["SessionLostError", "SessionLostError", "SessionLostError"]);
    assert.deepEqual(r.all, [3, 0, 1, 0], "3 queued, 0 when lost, 1 sent, 0 acknowledged");
    assert.deepEqual(r.viaProperty, r.all, "onpending sees the same");
    assert.deepEqual(r.isEvent, []);
    assert.equal(r.pending, 0);
  });

  test("the declarations name every error the package makes (DurableWebSocketErrorName)", async () => {
    const { readFileSync } = await import("node:fs");
    const face = readFileSync(new URL("../../src/js/face.js", import.meta.url), "utf8");
    const made = new Set([...face.slice(face.indexOf("const ERRORS")).split("];")[0].matchAll(/\["(\w+)",/g)].map((m) => m[1]));
    const dts = readFileSync(new URL("../../www/pkg/durable_ws.d.ts", import.meta.url), "utf8");
    const union = dts.slice(dts.indexOf("export type DurableWebSocketErrorName")).split(";")[0];
    const declared = new Set([...union.matchAll(/"(\w+)"/g)].map((m) => m[1]));
    assert.ok(made.size >= 12, `ERRORS read from face.js: ${[...made]}`);
    assert.deepEqual([...declared].sort(), [...made].sort());
  });

  jsCase("free() stops every event", async () => {
    const seen = await inPage(async () => {
      const { socket, free, echoUrl, record, sleep } = window.api;
      const ws = socket(echoUrl, { reconnect: { minDelayMs: 10, maxDelayMs: 10 } });
      const rec = record(ws, ["open", "message", "close", "reconnecting", "error", "sessionlost"]);
      await rec.waitFor("open", 1);
      ws.send("unanswered").catch(() => {}); // its fate after free() is not part of the contract
      free(ws);
      await sleep(500);
      return rec.kinds();
    });
    assert.deepEqual(seen, ["open"]);
  });

  jsCase("events of a call (the constructor) reach listeners added right after it", async () => {
    const r = await inPage(async () => {
      const { socket, record } = window.api;
      // `new WebSocket` refuses this URL (port out of range), so the socket fails inside the constructor; as
      // with a WebSocket, the events still reach listeners registered afterwards.
      const ws = socket("ws://127.0.0.1:99999/");
      const rec = record(ws, ["error", "close", "reconnecting"]);
      await rec.waitFor("close", 1);
      const error = rec.of("error")[0]?.error;
      return {
        errorName: error?.name,
        willReconnect: rec.of("close")[0].willReconnect,
        reconnecting: rec.count("reconnecting"),
        readyState: ws.readyState,
        wrong: rec.wrong(),
      };
    });
    assert.equal(r.errorName, "UrlError");
    assert.equal(r.willReconnect, false, "a fixed URL that fails never works");
    assert.equal(r.reconnecting, 0);
    assert.equal(r.readyState, 3);
    assert.deepEqual(r.wrong, []);
  });

  // ---- What the JS API documents beyond those ----

  jsCase("on… handler properties: null at first, read back, cleared by a non-function, replaced (called once)", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, waitUntil } = window.api;
      const ws = socket(echoUrl);
      const names = ["onopen", "onmessage", "onreconnecting", "onresumed", "onsessionlost", "onclose", "onerror"];
      const initial = names.map((name) => ws[name]);
      const calls = { open: 0, f: [], g: [], h: [], close: 0 };
      const witness = [];
      ws.addEventListener("message", (e) => witness.push(e.data));
      const arrived = (data) => waitUntil(`the echo of ${data}`, () => witness.includes(data), () => JSON.stringify(witness));
      ws.onopen = () => calls.open++;
      const f = (e) => calls.f.push(e.data);
      ws.onmessage = f;
      const readBack = ws.onmessage === f;
      await ws.send("one");
      await arrived("one");
      ws.onmessage = "not a function";
      const afterString = ws.onmessage;
      await ws.send("two");
      await arrived("two");
      const g = (e) => calls.g.push(e.data);
      const h = (e) => calls.h.push(e.data);
      ws.onmessage = g;
      ws.onmessage = h; // replaces g
      ws.onmessage = h; // the same handler again: still once
      const readBackH = ws.onmessage === h;
      await ws.send("three");
      await arrived("three");
      ws.onmessage = null;
      const afterNull = ws.onmessage;
      ws.onclose = () => calls.close++;
      ws.close();
      await waitUntil("onclose", () => calls.close >= 1);
      return { initial, readBack, afterString, readBackH, afterNull, calls, witness };
    });
    assert.deepEqual(r.initial, [null, null, null, null, null, null, null], "every on… property starts as null");
    assert.ok(r.readBack, "onmessage reads back as the function set");
    assert.equal(r.afterString, null, "a non-function clears the handler");
    assert.ok(r.readBackH, "the last handler set reads back");
    assert.equal(r.afterNull, null);
    assert.equal(r.calls.open, 1, "onopen was called");
    assert.deepEqual(r.calls.f, ["one"], "a cleared handler is no longer called");
    assert.deepEqual(r.calls.g, [], "a replaced handler is not called");
    assert.deepEqual(r.calls.h, ["three"], "the new handler is called once");
    assert.equal(r.calls.close, 1, "onclose was called");
    assert.deepEqual(r.witness, ["one", "two", "three"]);
  });

  jsCase("addEventListener with { once: true } and with a handleEvent object; removeEventListener", async () => {
    const log = await inPage(async () => {
      const { socket, echoUrl, waitUntil } = window.api;
      const ws = socket(echoUrl);
      const log = [];
      const witness = [];
      ws.addEventListener("message", (e) => log.push(`once ${e.data}`), { once: true });
      const object = {
        handleEvent(e) {
          log.push(`object ${e.data} ${this === object}`);
        },
      };
      ws.addEventListener("message", object);
      ws.addEventListener("message", object); // the same listener twice: registered once
      const removed = (e) => log.push(`removed ${e.data}`);
      ws.addEventListener("message", removed);
      ws.removeEventListener("message", removed);
      const removedLater = (e) => log.push(`removedLater ${e.data}`);
      ws.addEventListener("message", removedLater);
      ws.addEventListener("message", (e) => witness.push(e.data));
      const arrived = (data) => waitUntil(`the echo of ${data}`, () => witness.includes(data), () => JSON.stringify(witness));
      await ws.send("a");
      await arrived("a");
      ws.removeEventListener("message", removedLater);
      await ws.send("b");
      await arrived("b");
      ws.removeEventListener("message", object);
      await ws.send("c");
      await arrived("c");
      return log;
    });
    assert.deepEqual(log, ["once a", "object a true", "removedLater a", "object b true"]);
  });

  jsCase("an exception thrown by a listener is reported; other listeners and the socket go on", async () => {
    const r = await inPage(async (marker) => {
      const { socket, echoUrl, waitUntil, reported, outcome } = window.api;
      const ws = socket(echoUrl);
      const before = reported.length;
      const seen = [];
      ws.addEventListener("message", (e) => {
        seen.push(`first ${e.data}`);
        if (e.data === "boom") throw new Error(`${marker} (boom)`);
      });
      ws.addEventListener("message", (e) => seen.push(`second ${e.data}`));
      ws.onmessage = (e) => seen.push(`handler ${e.data}`);
      const acks = [await outcome(() => ws.send("boom")), await outcome(() => ws.send("after"))];
      await waitUntil("both messages at every listener", () => seen.length >= 6, () => JSON.stringify(seen));
      return { seen, acks, reported: reported.slice(before), readyState: ws.readyState };
    }, EXPECTED);
    assert.deepEqual(r.seen, ["first boom", "second boom", "handler boom", "first after", "second after", "handler after"]);
    for (const ack of r.acks) assert.ok(ack.ok, JSON.stringify(ack));
    assert.deepEqual(r.reported.filter((m) => m.includes(EXPECTED)), [`${EXPECTED} (boom)`], "the exception was reported to the window once");
    assert.equal(r.readyState, 1, "the socket is still open");
  });

  jsCase("events are Events of the right type, with their fields", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, admin } = window.api;
      const kinds = ["open", "message", "reconnecting", "resumed", "sessionlost", "close", "error"];
      const ws = socket(echoUrl, { reconnect: { minDelayMs: 10, maxDelayMs: 10 } });
      const rec = record(ws, kinds);
      await rec.waitFor("open", 1);
      await ws.send("x");
      await rec.waitFor("message", 1);
      const cut = await admin(`/admin/cut?session=${ws.sessionToken}`);
      await rec.waitFor("resumed", 1);
      ws.close();
      const final = () => rec.of("close").some((e) => e.willReconnect === false);
      await window.api.waitUntil("the final close event", final);
      const failing = socket(() => {
        throw new Error("no URL today");
      });
      const failed = record(failing, kinds);
      await failed.waitFor("error", 1);
      const types = (event, fields) => Object.fromEntries(fields.map((f) => [f, typeof event[f]]));
      const open = rec.of("open")[0];
      const message = rec.of("message")[0];
      const reconnecting = rec.of("reconnecting")[0];
      const resumed = rec.of("resumed")[0];
      const close = rec.of("close")[0];
      const error = failed.of("error")[0];
      return {
        cut,
        seen: [...new Set([...rec.kinds(), ...failed.kinds()])].sort(),
        wrong: [...rec.wrong(), ...failed.wrong()],
        open: types(open, ["durable"]),
        message: types(message, ["data"]),
        reconnecting: types(reconnecting, ["attempt", "delayMs"]),
        resumed: types(resumed, ["replayed"]),
        close: types(close, ["code", "reason", "wasClean", "willReconnect"]),
        error: { ...types(error, ["message", "error"]), isError: error.error instanceof Error },
      };
    });
    assert.equal(r.cut[0], 200, r.cut[1]);
    assert.deepEqual(r.seen, ["close", "error", "message", "open", "reconnecting", "resumed"]);
    assert.deepEqual(r.wrong, [], "every event is an Event whose type is the one listened for");
    assert.deepEqual(r.open, { durable: "boolean" });
    assert.deepEqual(r.message, { data: "string" });
    assert.deepEqual(r.reconnecting, { attempt: "number", delayMs: "number" });
    assert.deepEqual(r.resumed, { replayed: "number" });
    assert.deepEqual(r.close, { code: "number", reason: "string", wasClean: "boolean", willReconnect: "boolean" });
    assert.deepEqual(r.error, { message: "string", error: "object", isError: true });
  });

  jsCase("send() of a Blob fails with a TypeError that mentions Blob", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, outcome } = window.api;
      const ws = socket(echoUrl);
      const result = await outcome(() => ws.send(new Blob(["bytes"])));
      return { result, pending: ws.pending, sent: ws.stats().sent };
    });
    assert.ok(!r.result.ok, "a Blob is not sent");
    assert.ok(r.result.isTypeError, `a TypeError: ${JSON.stringify(r.result)}`);
    assert.match(r.result.message, /Blob/);
    assert.equal(r.pending, 0, "nothing was queued");
    assert.equal(r.sent, 0);
  });

  jsCase("DataView and typed-array views (subarrays) send exactly their bytes", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, outcome } = window.api;
      const ws = socket(echoUrl);
      const rec = record(ws, ["message"]);
      const buffer = new Uint8Array(16).map((_, i) => i).buffer;
      const views = [new Uint8Array(buffer).subarray(3, 7), new DataView(buffer, 5, 6), new Uint16Array(buffer, 2, 3), buffer];
      const acks = [];
      for (const view of views) acks.push(await outcome(() => ws.send(view)));
      await rec.waitFor("message", views.length);
      return {
        acks,
        received: rec.of("message").map((e) => (e.data instanceof ArrayBuffer ? [...new Uint8Array(e.data)] : `not an ArrayBuffer: ${e.data}`)),
      };
    });
    for (const ack of r.acks) assert.ok(ack.ok, JSON.stringify(ack));
    assert.deepEqual(r.received, [
      [3, 4, 5, 6],
      [5, 6, 7, 8, 9, 10],
      [2, 3, 4, 5, 6, 7],
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    ]);
  });

  jsCase("an ArrayBuffer of another realm (an iframe's) is sent as binary, as a WebSocket sends it", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, outcome } = window.api;
      const frame = document.body.appendChild(document.createElement("iframe"));
      const foreign = new frame.contentWindow.ArrayBuffer(3);
      new Uint8Array(foreign).set([7, 8, 9]);
      const ws = socket(echoUrl);
      const rec = record(ws, ["message"]);
      const ack = await outcome(() => ws.send(foreign));
      await rec.waitFor("message", 1);
      frame.remove();
      const data = rec.of("message")[0].data;
      return { ack, received: data instanceof ArrayBuffer ? [...new Uint8Array(data)] : `not an ArrayBuffer: ${data}` };
    });
    assert.ok(r.ack.ok, JSON.stringify(r.ack));
    assert.deepEqual(r.received, [7, 8, 9]);
  });

  jsCase("stats(): exactly the fields of DurableWebSocketStats; lastRttMs null before any RTT, then a number", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, waitUntil } = window.api;
      const ws = socket(echoUrl, { heartbeat: { intervalMs: 100, timeoutMs: 10_000 } });
      const before = ws.stats();
      const rec = record(ws, ["open", "message"]);
      await rec.waitFor("open", 1);
      await ws.send("counted");
      await rec.waitFor("message", 1);
      await waitUntil("an RTT measurement", () => typeof ws.stats().lastRttMs === "number", () => JSON.stringify(ws.stats()));
      const after = ws.stats();
      return { before, after, beforeKeys: Object.keys(before), afterKeys: Object.keys(after), fresh: ws.stats() !== ws.stats() };
    });
    assert.deepEqual([...r.beforeKeys].sort(), [...STATS_FIELDS].sort());
    assert.deepEqual([...r.afterKeys].sort(), [...STATS_FIELDS].sort());
    assert.deepEqual(r.before, { sent: 0, acked: 0, pending: 0, replayed: 0, received: 0, duplicates: 0, reconnects: 0, sessionsLost: 0, unstored: 0, lastRttMs: null });
    const { lastRttMs, ...counts } = r.after;
    assert.deepEqual(counts, { sent: 1, acked: 1, pending: 0, replayed: 0, received: 1, duplicates: 0, reconnects: 0, sessionsLost: 0, unstored: 0 });
    assert.ok(typeof lastRttMs === "number" && Number.isFinite(lastRttMs) && lastRttMs >= 0, `lastRttMs: ${lastRttMs}`);
  });

  jsCase("readyState: 0 before open, 1 when open, 3 after close", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, waitUntil } = window.api;
      const ws = socket(echoUrl);
      const initial = ws.readyState;
      const inListeners = {};
      ws.addEventListener("open", () => (inListeners.open = ws.readyState));
      ws.addEventListener("close", () => (inListeners.close = ws.readyState));
      const rec = record(ws, ["open", "close"]);
      await rec.waitFor("open", 1);
      const open = ws.readyState;
      ws.close();
      const afterCloseCall = ws.readyState;
      await waitUntil("the close event", () => rec.count("close") >= 1);
      return { initial, open, afterCloseCall, closed: ws.readyState, inListeners };
    });
    assert.equal(r.initial, 0);
    assert.equal(r.open, 1);
    assert.ok([2, 3].includes(r.afterCloseCall), `closing or closed right after close(): ${r.afterCloseCall}`);
    assert.equal(r.closed, 3);
    assert.deepEqual(r.inListeners, { open: 1, close: 3 });
  });

  jsCase("sessionToken: undefined before the first handshake, then 32 hex digits, kept across a resume", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, admin } = window.api;
      const ws = socket(echoUrl, { reconnect: { minDelayMs: 10, maxDelayMs: 10 } });
      const before = typeof ws.sessionToken;
      const rec = record(ws, ["open", "resumed"]);
      await rec.waitFor("open", 1);
      const token = ws.sessionToken;
      const cut = await admin(`/admin/cut?session=${token}`);
      await rec.waitFor("resumed", 1);
      return { before, token, cut, afterResume: ws.sessionToken };
    });
    assert.equal(r.before, "undefined");
    assert.match(String(r.token), /^[0-9a-f]{32}$/i);
    assert.equal(r.cut[0], 200, `the server knows the token: ${r.cut[1]}`);
    assert.equal(JSON.parse(r.cut[1]).affected, 1, r.cut[1]);
    assert.equal(r.afterResume, r.token, "the resumed session is the same session");
  });

  jsCase("a failing URL function gives an error event whose error is a UrlError", async () => {
    const r = await inPage(async () => {
      const { socket, record } = window.api;
      const providers = {
        throws: () => {
          throw new Error("no URL today");
        },
        rejects: () => Promise.reject(new Error("no URL today")),
        notAString: () => 42,
        promiseOfNotAString: () => Promise.resolve({ url: "ws://example.com/" }),
      };
      const results = {};
      for (const [name, provider] of Object.entries(providers)) {
        const ws = socket(provider);
        const rec = record(ws, ["error"]);
        await rec.waitFor("error", 1);
        const event = rec.of("error")[0];
        results[name] = { name: event.error?.name, isError: event.error instanceof Error, message: typeof event.message };
      }
      return results;
    });
    for (const name of ["throws", "rejects", "notAString", "promiseOfNotAString"]) {
      assert.deepEqual(r[name], { name: "UrlError", isError: true, message: "string" }, name);
    }
  });

  jsCase("close(code, reason) validation: TypeError for bad codes and reasons over 123 UTF-8 bytes", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, outcome, waitUntil } = window.api;
      const ws = socket(echoUrl);
      const rec = record(ws, ["open", "close"]);
      await rec.waitFor("open", 1);
      const bad = {};
      for (const code of [999, 1001, 2999, 5000, 3000.5]) bad[code] = await outcome(() => ws.close(code));
      bad["124 ASCII bytes"] = await outcome(() => ws.close(1000, "x".repeat(124)));
      bad["62 é (124 bytes)"] = await outcome(() => ws.close(4000, "é".repeat(62)));
      const stillOpen = ws.readyState;
      const good = await outcome(() => ws.close(4999, "é".repeat(42)));
      const final = () => rec.of("close").some((e) => e.willReconnect === false);
      await waitUntil("the final close event", final);
      const close = rec.of("close").find((e) => e.willReconnect === false);
      return { bad, stillOpen, good, code: close.code, reason: close.reason };
    });
    for (const [what, result] of Object.entries(r.bad)) {
      assert.ok(!result.ok && result.threw && result.isTypeError, `close with ${what} throws a TypeError: ${JSON.stringify(result)}`);
    }
    assert.equal(r.stillOpen, 1, "a refused close() leaves the socket open");
    assert.ok(r.good.ok, `close(4999, 42 × "é" = 84 bytes) is fine: ${JSON.stringify(r.good)}`);
    assert.equal(r.code, 4999);
    assert.equal(r.reason, "é".repeat(42));
  });

  jsCase("free() from a listener of an event the URL function's answer caused: no exception, nothing after it", async () => {
    const r = await inPage(async () => {
      const { socket, record, sleep, reported } = window.api;
      const results = {};
      const providers = { rejects: () => Promise.reject(new Error("no token")), badUrl: () => "ws://127.0.0.1:99999/" };
      for (const [name, provider] of Object.entries(providers)) {
        const ws = socket(provider);
        const rec = record(ws, ["error", "close", "reconnecting"]);
        let freed = null;
        ws.addEventListener("error", () => {
          try {
            ws.free();
            freed = "ok";
          } catch (e) {
            freed = `${e.name}: ${e.message}`;
          }
        }, { once: true });
        await rec.waitFor("error", 1);
        await sleep(300);
        results[name] = { freed, kinds: rec.kinds() };
      }
      return { results, reported: reported.length };
    });
    for (const [name, result] of Object.entries(r.results)) {
      assert.equal(result.freed, "ok", `${name}: free() inside the listener`);
      assert.deepEqual(result.kinds, ["error"], `${name}: no event after free()`);
    }
  });

  jsCase("send() promises settle before the events the same input brings (sessionlost, close)", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, admin, waitUntil } = window.api;
      const ws = socket(echoUrl, { closeTimeoutMs: 300, heartbeat: false });
      const rec = record(ws, ["open"]);
      await rec.waitFor("open", 1);
      const [status] = await admin(`/admin/stall?ms=3000&session=${ws.sessionToken}`);
      const order = [];
      ws.addEventListener("sessionlost", () => order.push("sessionlost"));
      ws.addEventListener("close", () => order.push("close"));
      ws.send("a").then(() => order.push("ack a"), () => order.push("rejected a"));
      ws.send("b").then(() => order.push("ack b"), () => order.push("rejected b"));
      ws.close();
      await waitUntil("close", () => order.includes("close"), () => order.join());
      return { status, order };
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.order, ["rejected a", "rejected b", "sessionlost", "close"]);
  });

  jsCase("the URL function is called as a plain function; send() of a detached buffer rejects; close() takes numeric strings", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, outcome } = window.api;
      let self = "not called";
      const ws = socket(function () {
        self = this;
        return echoUrl;
      });
      const rec = record(ws, ["open", "close"]);
      await rec.waitFor("open", 1);
      const buffer = new ArrayBuffer(8);
      structuredClone(buffer, { transfer: [buffer] });
      const detached = await outcome(() => ws.send(buffer));
      const spoofed = { [Symbol.toStringTag]: "ArrayBuffer", length: 1, 0: 65 };
      const spoof = await outcome(() => ws.send(spoofed));
      const closed = await outcome(() => ws.close("3000"));
      await rec.waitFor("close", 1);
      return { self: self === undefined || self === globalThis, detached, spoof, closed, code: rec.of("close")[0].code };
    });
    assert.ok(r.self, "the URL function's `this` is undefined (or the global object in sloppy mode), nothing of the socket's");
    assert.ok(!r.detached.ok && !r.detached.threw && r.detached.isPromise, JSON.stringify(r.detached));
    assert.ok(r.spoof.ok, `an object only claiming to be an ArrayBuffer is sent as its JSON: ${JSON.stringify(r.spoof)}`);
    assert.ok(r.closed.ok, JSON.stringify(r.closed));
    assert.equal(r.code, 3000);
  });

  jsCase("after free(): the class keeps its name; every method throws an InvalidStateError; a second free() is harmless", async () => {
    const r = await inPage(async () => {
      const { socket, DurableWebSocket, outcome } = window.api;
      const ws = socket("ws://127.0.0.1:9/");
      ws.free();
      const calls = {
        send: () => ws.send("x"),
        close: () => ws.close(),
        reconnect: () => ws.reconnect(),
        readyState: () => ws.readyState,
        pending: () => ws.pending,
        stats: () => ws.stats(),
        sessionToken: () => ws.sessionToken,
      };
      const after = {};
      for (const [name, call] of Object.entries(calls)) after[name] = await outcome(call);
      const again = await outcome(() => ws.free());
      let notNew;
      try {
        DurableWebSocket("ws://127.0.0.1:9/");
      } catch (e) {
        notNew = e.message;
      }
      return { name: DurableWebSocket.name, after, again, notNew };
    });
    assert.equal(r.name, "DurableWebSocket");
    for (const [name, result] of Object.entries(r.after)) {
      assert.ok(result.threw && result.name === "InvalidStateError", `${name} after free(): ${JSON.stringify(result)}`);
    }
    assert.ok(r.again.ok, JSON.stringify(r.again));
    assert.ok(typeof r.notNew === "string", "calling the class without new throws");
  });

  jsCase("offline/online events of the page: no attempt while offline, an attempt at once when online", async () => {
    const r = await inPage(async () => {
      const { socket, echoUrl, record, admin, sleep, waitUntil } = window.api;
      // A 60 s backoff: only the `online` event can make the session resume within the page's 15 s patience.
      const ws = socket(echoUrl, { reconnect: { minDelayMs: 60_000, maxDelayMs: 60_000, jitter: false } });
      const rec = record(ws, ["open", "close", "resumed"]);
      await rec.waitFor("open", 1);
      window.dispatchEvent(new Event("offline"));
      const [status] = await admin(`/admin/cut?session=${ws.sessionToken}`);
      await rec.waitFor("close", 1);
      await sleep(300);
      const whileOffline = { readyState: ws.readyState, resumed: rec.count("resumed") };
      window.dispatchEvent(new Event("online"));
      await waitUntil("resumed after online", () => rec.count("resumed") >= 1, () => rec.kinds().join());
      return { status, whileOffline, readyState: ws.readyState };
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.whileOffline, { readyState: 0, resumed: 0 });
    assert.equal(r.readyState, 1);
  });
}
