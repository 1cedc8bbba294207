// Lifecycle suite: a persisted session (`new DurableWebSocket(url, { persist: name })`, npm build in www/pkg) across
// what ends a page, in real browsers, against the real reference server behind the real chaos proxy (each
// connection cut after 50–400 ms, 25 ms one-way latency).
//
//   node --test tests/e2e/lifecycle.test.mjs                               (by hand: not in scripts/test.sh's stages yet)
//   DURABLE_WS_ENGINES=chromium node --test tests/e2e/lifecycle.test.mjs   (some engines only)
//
// A writer page (tests/lifecycle/page.js) sends `${label}:${n}` every 2 ms on /chat, n counting on across page
// loads, and reports each n whose send() returned, each `stored` milestone, each `sessionlost` (with its payloads),
// each PersistError and each message it receives. An observer (a plain durable client in a Chromium of its own,
// straight to the server, so that no fault of the browser under test reaches it) records the room. For every fault:
// each n the test learned was sent (after a killed browser: each n reported stored before the kill) reaches the
// observer exactly once and in order, or is listed by a `sessionlost` of some page. A table of the figures per fault
// and engine is printed and written to test-output/lifecycle.md.
//
// Faults — Chromium (Playwright, persistent profile, back/forward cache on): 10 reloads; tab closed and opened
// again; renderer crash (CDP Page.crash); browser SIGKILLed and restarted on its profile; two tabs on one name (the
// second waits, then adopts); away and back through the back/forward cache; the server forgetting the session
// between two pages (the next one reports it); close() ending it for good; storage disabled, quota exceeded,
// corrupt stored data (a PersistError each, the socket goes on in memory). Firefox and WebKit (WebDriver): 5
// reloads; tab closed and opened again; Firefox also the kill (WebKit's MiniBrowser cannot keep a profile).
// A control runs the Chromium reloads without `persist` and requires losses: the check can fail.
// A run takes about 30–55 s in Chromium, 20 s in Firefox, 6 s in WebKit (2 cores, busy with other work: 1–1.5 min in
// all); a failing scenario can take up to its 60 s bound.
import { describe, test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { table } from "../chaos/analysis.mjs";
import { REPO_ROOT, admin, openPage, siteDir, sleep, startProxy, startServer } from "../chaos/harness.mjs";
import { launchBrowser, launchPersistentChromium, selectedEngines } from "../support/browser.mjs";
import { launchWebDriverBrowser } from "../support/webdriver.mjs";

const CUT_LIFETIME_MS = [50, 400];
const LATENCY_MS = 25;
const RELOADS = { chromium: 10, firefox: 5, webkit: 5 };
const PAUSE_MS = [100, 400];
// How much a page sends before the next fault hits it (≈ 0.3 s at one message every 2 ms).
const BEFORE_FAULT = 150;
// After a killed browser the page's own counter (localStorage, flushed to disk lazily) may have gone back: the next
// page continues this far above the highest number the test learned, beyond anything the dead page can have sent.
const KILL_GAP = 100_000;
const SETTLE_MS = 10_000;
const OUTPUT = join(REPO_ROOT, "test-output", "lifecycle.md");
// Scenarios run in several engines.
const RELOAD_TEST = (engine) => `${RELOADS[engine]} reloads mid-stream: nothing lost, duplicated or reordered; the pages receive each message once`;
const CLOSE_TEST = "tab closed mid-stream, a new one opened on the page: the new page sends what the closed one left";
const KILL_TEST = "browser killed (SIGKILL), restarted on its profile, page opened again: every message reported stored arrives";

/** What the test learned from the writer pages, event by event, per page instance (tests/lifecycle/page.js). */
class Ledger {
  pages = new Map();

  /** Takes a reported event; one already taken (the same instance and index) is ignored. */
  add(event) {
    let page = this.pages.get(event.instance);
    if (!page) {
      page = { instance: event.instance, label: event.label, seen: new Set(), hid: false, sent: [], stored: 0, acked: 0, rejected: 0, received: [], sessionLost: [], persistErrors: [], errors: [], connects: [], shows: [], fate: "ended" };
      this.pages.set(event.instance, page);
    }
    if (page.seen.has(event.i)) return;
    page.seen.add(event.i);
    switch (event.type) {
      case "sent": page.sent.push(event.n); break;
      case "acked": page.acked++; break;
      case "rejected": page.rejected++; break;
      case "stored": page.stored = Math.max(page.stored, event.n); break;
      case "received": page.received.push(event.data); break;
      case "sessionlost": page.sessionLost.push({ reason: event.reason, unconfirmed: event.unconfirmed }); break;
      case "persisterror": page.persistErrors.push(event.message); break;
      case "error": case "failed": page.errors.push(`${event.type} ${event.name ?? ""} ${event.error ?? event.message ?? event.n}`); break;
      // A page connects with `open` (a new session) or `resumed` (one it restored or adopted).
      case "open": case "resumed": page.connects.push(event.type); break;
      case "pageshow": page.shows.push(event.persisted); break;
      case "pagehide": page.hid = true; break;
    }
  }

  page(instance) {
    return this.pages.get(instance);
  }

  /**
   * Whether the test holds all of a page's reports: none missing up to its `pagehide` (which hands over the tail).
   * A page that went without one (a window closed by WebDriver may fire none, or its tail may not reach storage)
   * took its last moments' reports with it.
   */
  static complete(page) {
    return page.hid && page.seen.size === Math.max(...page.seen) + 1;
  }

  /** The pages that wrote under any of `labels`, in the order they first reported. */
  of(labels) {
    return [...this.pages.values()].filter((p) => labels.includes(p.label));
  }

  /** The pages of `label` still open when the browser was killed: only what they reported stored must survive. */
  markKilled(label) {
    for (const page of this.of([label])) page.fate = "killed";
  }
}

const ledger = new Ledger();
const rows = [];
/** Labels of the scenario running, until it records its figures: a test that fails before says what its pages did. */
const unrecorded = new Set();

/** After a test that ended before recording its figures: what its pages reported. */
function describeUnrecorded() {
  if (unrecorded.size) describePages(ledger.of([...unrecorded]));
  unrecorded.clear();
}
let site;
let server;
let proxy;
let observerBrowser;
let observer;

before(async () => {
  site = siteDir({ "page.html": "tests/lifecycle/page.html", "page.js": "tests/lifecycle/page.js", pkg: "www/pkg" });
  server = await startServer({ www: site.dir });
  proxy = await startProxy({ target: `127.0.0.1:${server.port}`, lifetimeMs: CUT_LIFETIME_MS, latencyMs: LATENCY_MS });
  observerBrowser = await launchBrowser();
  ({ page: observer } = await openPage(await observerBrowser.newContext(), pageUrl(server.http, { role: "observer", url: `${server.ws}/chat` }), () => window.lifecycle?.ready === true));
}, { timeout: 30_000 });

after(async () => {
  writeTable();
  await observerBrowser?.close();
  await proxy?.stop();
  await server?.stop();
  site?.remove();
});

for (const engine of selectedEngines()) {
  describe(engine, () => (engine === "chromium" ? chromiumSuite() : webDriverSuite(engine)));
}

function pageUrl(origin, params) {
  return `${origin}/page.html?${new URLSearchParams(params)}`;
}

/** The writer page of `name` (label: the message prefix, `name` unless given) through the cutting proxy. */
function writerUrl({ name, label = name, persist = true, from, origin = server.http }) {
  unrecorded.add(label);
  const params = { name, label, url: `${proxy.ws}/chat`, pace: "2" };
  if (!persist) params.persist = "0";
  if (from) params.from = String(from);
  return pageUrl(origin, params);
}

const randomPause = () => PAUSE_MS[0] + Math.random() * (PAUSE_MS[1] - PAUSE_MS[0]);

/**
 * Polls `condition` (after `tab.sync()`, which makes a polled page report) until it holds; false after `timeoutMs`.
 */
async function waitUntil(condition, { tab, timeoutMs = 10_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await tab?.sync();
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await sleep(tab?.pollMs ?? 20);
  }
}

/** As waitUntil, but failing with `what`. */
async function mustReach(what, condition, options) {
  if (!(await waitUntil(condition, options))) throw new Error(`${what}: not within ${options?.timeoutMs ?? 10_000} ms`);
}

/** Lets the current page of `tab` send `count` more messages, then runs for `pauseMs` (the tab keeps reporting). */
async function letItSend(tab, count = BEFORE_FAULT, pauseMs = 0) {
  const page = () => ledger.page(tab.instance);
  const target = (page()?.sent.length ?? 0) + count;
  await mustReach(`${tab.instance} sending`, () => (page()?.sent.length ?? 0) >= target, { tab });
  const until = Date.now() + pauseMs;
  await waitUntil(() => Date.now() >= until, { tab, timeoutMs: pauseMs + 1000 });
}

/**
 * A tab of writer pages, over a Playwright page (Chromium) or its WebDriver stand-in. In Chromium the pages push
 * their events through the binding and `sync` takes what earlier pages left at pagehide.
 */
class Tab {
  pollMs = 20;
  /** Tabs not closed yet: a test that fails midway leaves none sending behind it (closeAll). */
  static unclosed = new Set();

  constructor(page, problems) {
    this.page = page;
    this.problems = problems;
    page.on("pageerror", (error) => this.problems.push(`page error: ${error.message}`));
  }

  static async open(context, url, problems, initScript) {
    const tab = new Tab(await context.newPage(), problems);
    Tab.unclosed.add(tab);
    if (initScript) await tab.page.addInitScript(initScript);
    await tab.goto(url);
    return tab;
  }

  static async closeAll() {
    for (const tab of Tab.unclosed) await tab.close().catch(() => {});
  }

  async goto(url) {
    await this.page.goto(url);
    await this.ready();
  }

  async reload() {
    await this.page.reload();
    await this.ready();
  }

  /** Waits for the page to run (or to fail to construct its socket, which fails the test). */
  async ready() {
    await this.page.waitForFunction(() => window.lifecycle?.ready || window.lifecycle?.failed, null, { timeout: 15_000 });
    const { instance, failed } = await this.page.evaluate(() => ({ instance: window.lifecycle.instance, failed: window.lifecycle.failed }));
    if (failed) throw new Error(`the writer page could not open its socket: ${failed}`);
    this.instance = instance;
  }

  async sync() {
    for (const event of await this.page.evaluate(() => window.lifecycle?.take?.() ?? [])) ledger.add(event);
  }

  evaluate(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  close() {
    Tab.unclosed.delete(this);
    return this.page.close();
  }
}

/** A tab over WebDriver (one window per session): `sync` polls the page for its events. */
class WebDriverTab extends Tab {
  pollMs = 100;

  static async open(browser, url, problems) {
    const tab = new WebDriverTab(await (await browser.newContext()).newPage(), problems);
    await tab.goto(url);
    return tab;
  }

  /** The session's only window stays: the next scenario navigates it. */
  async close() {}

  /** Closes the tab and opens the writer page again in a new one. */
  async reopen(url) {
    await this.sync();
    await this.page.replaceTab();
    await this.goto(url);
  }
}

/**
 * Ends a scenario: the last page stops sending and waits until every send() settled (as the test learned it); once
 * the observer and the page itself got its last message, the session is closed for good (which clears its storage).
 * Returns whether it settled.
 */
async function settle(tab, label) {
  const last = await tab.evaluate(() => window.lifecycle.stop());
  const page = ledger.page(tab.instance);
  let settled = await waitUntil(async () => {
    const { sent } = await tab.evaluate(() => window.lifecycle.state());
    return page.sent.length === sent && page.acked + page.rejected === sent;
  }, { tab, timeoutMs: SETTLE_MS });
  if (last !== null) {
    const message = `${label}:${last}`;
    settled &&= await waitUntil(() => observer.evaluate((m) => window.lifecycle.has(m), message), { timeoutMs: 5000 });
    await waitUntil(() => ledger.page(tab.instance)?.received.includes(message), { tab, timeoutMs: 5000 });
  }
  await tab.evaluate(() => window.lifecycle.close());
  await tab.sync();
  return settled;
}

/** The page instances that reported sending `${label}:${n}`. */
function senders(pages, label, n) {
  return pages.filter((p) => p.label === label && p.sent.includes(n)).map((p) => p.instance).join(", ") || "no page the test knows";
}

/** The room as the observer saw it: the messages of `labels`, in order, as [label, n]. */
async function observed(labels) {
  const messages = await observer.evaluate((labels) => window.lifecycle.messagesOf(labels), labels);
  return messages.map((m) => [m.slice(0, m.lastIndexOf(":")), Number(m.slice(m.lastIndexOf(":") + 1))]);
}

/**
 * The figures of one scenario over `labels`: `sent` (send() returned, as far as the test learned), `mustArrive` (the
 * same, less what a killed browser had not reported stored), `delivered` (of those, received by the observer),
 * `listed` (not received but listed by a sessionlost), `lost` (neither: silently lost), `duplicated` and `reordered`
 * (observer receptions beyond the first, or after a higher number of the same label); of the pages' own receptions
 * of these labels, `receivedDuplicates` (delivered to more than one page, or twice) and `receivedMissing` (in the room,
 * delivered to no page as far as the test learned).
 */
async function outcome(labels) {
  const pages = ledger.of(labels);
  const room = await observed(labels);
  const unconfirmed = new Set(pages.flatMap((p) => p.sessionLost.flatMap((s) => s.unconfirmed)));
  const figures = { sent: 0, mustArrive: 0, delivered: 0, listed: 0, lost: 0, duplicated: 0, reordered: 0, missing: [], twice: [], late: [] };
  for (const label of labels) {
    const got = new Set();
    let highest = -Infinity;
    for (const [, n] of room.filter(([l]) => l === label)) {
      if (got.has(n)) figures.twice.push(`${label}:${n} (sent by ${senders(pages, label, n)})`);
      else if (n < highest) figures.late.push(`${label}:${n} after ${highest}`);
      got.add(n);
      highest = Math.max(highest, n);
    }
    for (const page of pages.filter((p) => p.label === label)) {
      figures.sent += page.sent.length;
      const must = page.fate === "killed" ? page.sent.filter((n) => n <= page.stored) : page.sent;
      figures.mustArrive += must.length;
      for (const n of must) {
        if (got.has(n)) figures.delivered++;
        else if (unconfirmed.has(`${label}:${n}`)) figures.listed++;
        else figures.missing.push(`${label}:${n}`);
      }
    }
  }
  figures.lost = figures.missing.length;
  figures.duplicated = figures.twice.length;
  figures.reordered = figures.late.length;
  const received = pages.flatMap((p) => p.received).filter((m) => labels.includes(m.slice(0, m.lastIndexOf(":"))));
  const receivedSet = new Set(received);
  figures.receivedDuplicates = received.length - receivedSet.size;
  figures.receivedMissing = room.filter(([label, n]) => !receivedSet.has(`${label}:${n}`)).length;
  // The last page's reports are all taken when it settles; an earlier one's only if it handed over its tail.
  figures.untold = pages.slice(0, -1).filter((p) => !Ledger.complete(p)).map((p) => p.instance);
  figures.sessionLost = pages.flatMap((p) => p.sessionLost.map((s) => `${s.reason}(${s.unconfirmed.length})`));
  figures.persistErrors = pages.reduce((sum, p) => sum + p.persistErrors.length, 0);
  figures.errors = pages.flatMap((p) => p.errors);
  figures.pages = pages;
  figures.observer = await observer.evaluate(() => window.lifecycle.state());
  return figures;
}

function record(engine, fault, figures, note = "") {
  unrecorded.clear();
  rows.push({
    engine,
    fault,
    pages: figures.pages.length,
    sent: figures.sent,
    "must arrive": figures.mustArrive,
    delivered: figures.delivered,
    lost: figures.lost,
    duplicated: figures.duplicated,
    reordered: figures.reordered,
    "listed by sessionlost": figures.listed,
    "PersistError events": figures.persistErrors,
    "pages got twice": figures.receivedDuplicates,
    "pages missed": figures.receivedMissing,
    note,
  });
  const { missing, twice, late, pages, untold, ...rest } = figures;
  console.log(`${engine} ${fault}: ${JSON.stringify(rest)}${missing.length ? `, first lost: ${missing.slice(0, 5).join(" ")}` : ""}`);
  if (twice.length) console.log(`  twice in the room: ${twice.slice(0, 5).join("; ")}`);
  if (late.length) console.log(`  out of order in the room: ${late.slice(0, 5).join("; ")}`);
  if (untold.length) console.log(`  reports missing after the last poll (no pagehide handed them over): ${untold.join(" ")}`);
  describePages(pages);
}

/** Logs each page instance in a line: what it sent, what was acknowledged and stored, what it went through. */
function describePages(pages) {
  for (const page of pages) console.log(`  ${describePage(page)}`);
}

function describePage(p) {
  const range = p.sent.length ? `${p.sent[0]}…${p.sent.at(-1)}` : "nothing";
  const lost = p.sessionLost.map((s) => `${s.reason}(${s.unconfirmed.length})`).join(" ");
  return (
    `${p.instance}: sent ${range} (${p.sent.length}), acked ${p.acked}${p.rejected ? `, rejected ${p.rejected}` : ""}, stored ≤ ${p.stored}, connects ${p.connects.join(" ") || "none"}, ` +
    `received ${p.received.length}${lost ? `, sessionlost ${lost}` : ""}${p.persistErrors.length ? `, PersistError: ${p.persistErrors.join("; ")}` : ""}` +
    `${p.errors.length ? `, ${p.errors.slice(0, 3).join("; ")}` : ""}${p.fate === "killed" ? ", killed" : ""}`
  );
}

function writeTable() {
  if (rows.length === 0) return;
  const columns = ["engine", "fault", "pages", "sent", "must arrive", "delivered", "lost", "duplicated", "reordered", "listed by sessionlost", "PersistError events", "pages got twice", "pages missed", "note"];
  const text = table(columns, rows);
  mkdirSync(join(REPO_ROOT, "test-output"), { recursive: true });
  writeFileSync(
    OUTPUT,
    `# Lifecycle suite: persisted sessions across page faults, through the cutting proxy\n\n` +
      `"must arrive": each message whose send() returned, as the test learned it before the fault (after a killed ` +
      `browser: those reported stored); "lost": neither delivered nor listed by a sessionlost; "pages got twice" / ` +
      `"pages missed": the room's messages of the scenario that the writer pages received more than once / not at ` +
      `all (the received direction).\n\n${text}\n`,
  );
  console.log(`\n${text}\n`);
}

/** The invariant of every fault: each message that must arrive arrived exactly once, in order, or was listed. */
function assertNothingSilentlyLost(figures, problems) {
  assert.ok(figures.sent > 0, "the pages sent messages");
  assert.deepEqual(figures.observer.troubles.filter((t) => t.startsWith("sessionlost")), [], "the observer never lost its session");
  assert.deepEqual(figures.missing.slice(0, 20), [], `silently lost: ${figures.lost} of ${figures.mustArrive}`);
  assert.deepEqual(figures.twice.slice(0, 5), [], `${figures.duplicated} messages reached the room twice`);
  assert.deepEqual(figures.late.slice(0, 5), [], `${figures.reordered} messages reached the room after a higher number`);
  assert.deepEqual(problems, [], "no uncaught page errors");
}

/**
 * The received direction: each page resumed from the position the previous one stored, so the pages together got
 * each of the room's messages once (`complete`: and none missing — only where no page died and every page's reports
 * reached the test, or what a page received in its last moments is unknown).
 */
function assertReceivedOnce(figures, { complete = true } = {}) {
  assert.equal(figures.receivedDuplicates, 0, "no page received a message that an earlier page (or itself) had received");
  if (complete && figures.untold.length === 0) assert.equal(figures.receivedMissing, 0, "every message of the room reached one of the pages");
}

/** Storage stayed usable through the fault: the pages never fell back to an in-memory session. */
function assertStorageHeld(figures) {
  const errors = figures.pages.flatMap((p) => p.persistErrors);
  assert.deepEqual(errors, [], "no PersistError");
}

/**
 * Kills the browser (`killAndRestart` also starts it again on the same profile) while the writer streams, then opens
 * the page again: what the killed page reported stored must arrive.
 */
async function killScenario(engine, openTab, killAndRestart) {
  const name = `${engine}-kill`;
  const problems = [];
  const first = await openTab(writerUrl({ name }), problems);
  await letItSend(first, 2 * BEFORE_FAULT);
  const page = ledger.page(first.instance);
  await mustReach("a stored milestone", () => page.stored > 0, { tab: first });
  // What the test learned before the kill: nothing reported later counts.
  ledger.markKilled(name);
  const storedAtKill = page.stored;
  const sentAtKill = page.sent.at(-1);
  await killAndRestart();
  const second = await openTab(writerUrl({ name, from: sentAtKill + KILL_GAP }), problems);
  await letItSend(second);
  const settled = await settle(second, name);
  await second.close();
  const figures = await outcome([name]);
  record(engine, "browser killed", figures, `killed at n=${sentAtKill} sent, n=${storedAtKill} stored`);
  assert.ok(settled, "the page after the restart got every acknowledgement");
  assertNothingSilentlyLost(figures, problems);
  assertStorageHeld(figures);
}

/** Reloads the writer `reloads` times mid-stream (a random 100–400 ms apart), then settles. */
async function reload(openTab, { name, reloads, persist = true }) {
  const problems = [];
  const tab = await openTab(writerUrl({ name, persist }), problems);
  for (let i = 0; i < reloads; i++) {
    await letItSend(tab, 1, randomPause());
    await tab.reload();
  }
  await letItSend(tab);
  const settled = await settle(tab, name);
  await tab.close();
  return { figures: await outcome([name]), problems, settled };
}

async function reloadScenario(engine, openTab) {
  const { figures, problems, settled } = await reload(openTab, { name: `${engine}-reload`, reloads: RELOADS[engine] });
  record(engine, `${RELOADS[engine]} reloads`, figures);
  assert.ok(settled, "the last page got every acknowledgement");
  assertNothingSilentlyLost(figures, problems);
  assertStorageHeld(figures);
  assertReceivedOnce(figures);
}

/** Closes the writer's tab mid-stream and opens the page again in a new tab (`reopen(tab, url, problems)` does both). */
async function closeTabScenario(engine, openTab, reopen) {
  const name = `${engine}-close`;
  const problems = [];
  let tab = await openTab(writerUrl({ name }), problems);
  await letItSend(tab);
  tab = await reopen(tab, writerUrl({ name }), problems);
  await letItSend(tab);
  const settled = await settle(tab, name);
  await tab.close();
  const figures = await outcome([name]);
  record(engine, "tab closed, reopened", figures);
  assert.ok(settled, "the last page got every acknowledgement");
  assertNothingSilentlyLost(figures, problems);
  assertStorageHeld(figures);
  assertReceivedOnce(figures);
}

function chromiumSuite() {
  const engine = "chromium";
  let profileDir;
  let context;
  let started;

  /** Chromium on its profile directory, with the back/forward cache on (Playwright turns it off by default). */
  async function launch() {
    context = await launchPersistentChromium(profileDir, { ignoreDefaultArgs: ["--disable-back-forward-cache"] });
    await context.exposeBinding("lifecycleReport", (_source, events) => events.forEach((event) => ledger.add(event)));
  }

  const openTab = (url, problems, initScript) => Tab.open(context, url, problems, initScript);

  before(async () => {
    started = Date.now();
    profileDir = mkdtempSync(join(tmpdir(), "durable-ws-lifecycle-chromium-"));
    await launch();
  }, { timeout: 30_000 });

  afterEach(async () => {
    describeUnrecorded();
    await Tab.closeAll();
  });

  after(async () => {
    await context?.close();
    rmSync(profileDir, { recursive: true, force: true });
    console.log(`lifecycle suite in ${engine}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  test("control: without persist, the same reloads lose messages (the check can fail)", { timeout: 60_000 }, async () => {
    const { figures } = await reload(openTab, { name: "chromium-reload-nopersist", reloads: RELOADS.chromium, persist: false });
    record(engine, `${RELOADS.chromium} reloads, no persist (control)`, figures);
    assert.ok(figures.lost > 0, "messages whose send() returned were lost at the reloads");
  });

  test(RELOAD_TEST(engine), { timeout: 60_000 }, () => reloadScenario(engine, openTab));

  test(CLOSE_TEST, { timeout: 60_000 }, async () => {
    const reopen = async (tab, url, problems) => {
      await tab.close();
      return openTab(url, problems);
    };
    await closeTabScenario(engine, openTab, reopen);
  });

  test("renderer crash (CDP Page.crash), page opened again: nothing the crashed page sent is lost", { timeout: 60_000 }, async () => {
    const name = "chromium-crash";
    const problems = [];
    const first = await openTab(writerUrl({ name }), problems);
    await letItSend(first);
    const cdp = await context.newCDPSession(first.page);
    const crashed = first.page.waitForEvent("crash");
    cdp.send("Page.crash").catch(() => {});
    await crashed;
    await first.close().catch(() => {});
    const second = await openTab(writerUrl({ name }), problems);
    await letItSend(second);
    const settled = await settle(second, name);
    await second.close();
    const figures = await outcome([name]);
    record(engine, "renderer crash", figures);
    assert.ok(settled, "the last page got every acknowledgement");
    assertNothingSilentlyLost(figures, problems);
    assertStorageHeld(figures);
    assertReceivedOnce(figures, { complete: false });
  });

  test("two tabs on one name: the second waits, then adopts the first's session when it closes", { timeout: 60_000 }, async () => {
    const name = "chromium-twotabs";
    const [a, b] = [`${name}.a`, `${name}.b`];
    const problems = [];
    const first = await openTab(writerUrl({ name, label: a }), problems);
    await letItSend(first);
    const second = await openTab(writerUrl({ name, label: b }), problems);
    await letItSend(second, 100);
    const waiting = await second.evaluate(() => window.lifecycle.state().readyState);
    const connectedEarly = ledger.page(second.instance)?.connects.length ?? 0;
    await first.close();
    await mustReach("the second tab connected after the first closed", () => ledger.page(second.instance)?.connects.length > 0);
    await letItSend(second);
    const settled = await settle(second, b);
    await second.close();
    const figures = await outcome([a, b]);
    const room = await observed([a, b]);
    const lastOfFirst = room.findLastIndex(([label]) => label === a);
    const firstOfSecond = room.findIndex(([label]) => label === b);
    record(engine, "two tabs, one name", figures, `first tab's last at ${lastOfFirst}, second's first at ${firstOfSecond}`);
    assert.equal(waiting, 0, "while the first tab held the name, the second waited (readyState 0)");
    assert.equal(connectedEarly, 0, "the second tab did not connect while the first held the name");
    assert.ok(settled, "the second tab got every acknowledgement");
    assertNothingSilentlyLost(figures, problems);
    assertStorageHeld(figures);
    assertReceivedOnce(figures);
    assert.ok(lastOfFirst < firstOfSecond, "no interleaving: every message of the first tab reached the room before the second's");
  });

  test("back/forward: restored from the back/forward cache, the session resumes", { timeout: 60_000 }, async () => {
    const name = "chromium-bfcache";
    const problems = [];
    const tab = await openTab(writerUrl({ name }), problems);
    const cdp = await context.newCDPSession(tab.page);
    const notRestored = [];
    cdp.on("Page.backForwardCacheNotUsed", (e) => notRestored.push(...e.notRestoredExplanations.map((x) => `${x.type}:${x.reason}`)));
    await cdp.send("Page.enable");
    await letItSend(tab);
    const left = ledger.page(tab.instance);
    await tab.page.goto(pageUrl(server.http, { role: "idle" }));
    const sentBeforeBack = left.sent.length;
    // A page restored from the cache fires no `load`.
    await tab.page.goBack({ waitUntil: "commit" });
    await tab.ready();
    const restored = tab.instance === left.instance;
    await letItSend(tab);
    const settled = await settle(tab, name);
    await tab.close();
    const figures = await outcome([name]);
    const sentAfterBack = ledger.page(tab.instance).sent.length - (restored ? sentBeforeBack : 0);
    record(engine, "back/forward cache", figures, `${restored ? "restored" : `not restored: ${notRestored.join(", ")}`}; ${sentAfterBack} sent after`);
    assert.deepEqual(notRestored, [], "the page was eligible for the back/forward cache");
    assert.ok(restored, "the same page instance came back");
    assert.ok(left.shows.includes(true), "pageshow with persisted = true");
    assert.ok(sentAfterBack > 0, "the page sent after it was restored");
    assert.ok(settled, "the restored page got every acknowledgement: its session resumed");
    assertNothingSilentlyLost(figures, problems);
    assertStorageHeld(figures);
    assertReceivedOnce(figures);
  });

  test("server forgot the session while no page was open: the next page lists what the closed one left unconfirmed", { timeout: 60_000 }, async () => {
    const name = "chromium-expired";
    const problems = [];
    const first = await openTab(writerUrl({ name }), problems);
    await letItSend(first);
    // The session's token exists once a connection got through the proxy (under load that may take a while).
    let token;
    for (const until = Date.now() + 20_000; !token && Date.now() < until; await sleep(50)) {
      ({ token } = await first.evaluate(() => window.lifecycle.state()));
    }
    await first.close();
    const { affected } = await admin(server.http, `/admin/expire?session=${token}`);
    const second = await openTab(writerUrl({ name }), problems);
    await letItSend(second);
    // Under load the next page may send all of that before its first connection gets through (all of it then goes
    // with the lost session): it sends more in the new one.
    await mustReach("the next page reported the lost session", () => ledger.page(second.instance).sessionLost.length > 0, { tab: second });
    await letItSend(second);
    const settled = await settle(second, name);
    await second.close();
    const figures = await outcome([name]);
    const reported = ledger.page(second.instance).sessionLost;
    record(engine, "session expired between pages", figures, `expired ${affected}; next page: sessionlost ${figures.sessionLost.join(" ") || "none"}`);
    assert.equal(affected, 1, "the server forgot the stored session");
    assert.deepEqual(reported.map((s) => s.reason), ["expired"], "the next page reported the session lost, once");
    assert.ok(settled, "the next page went on in a new session: every message acknowledged");
    assertNothingSilentlyLost(figures, problems);
    assertStorageHeld(figures);
  });

  test("close() ends the session for good: the next page on the name starts a new one", { timeout: 60_000 }, async () => {
    const name = "chromium-closed";
    const problems = [];
    const first = await openTab(writerUrl({ name }), problems);
    await letItSend(first);
    const settled = await settle(first, name); // ends with close()
    await first.close();
    const second = await openTab(writerUrl({ name }), problems);
    await mustReach("the next page connected", () => ledger.page(second.instance)?.connects.length > 0);
    await letItSend(second);
    await settle(second, name);
    await second.close();
    const figures = await outcome([name]);
    const next = ledger.page(second.instance);
    record(engine, "closed, opened again", figures, `next page: ${next.connects[0]}`);
    assert.ok(settled, "the first page's messages were all acknowledged before close()");
    assert.equal(next.connects[0], "open", "the next page opened a new session (nothing left to resume)");
    assert.deepEqual(next.sessionLost, [], "and had no stored session to lose");
    assertNothingSilentlyLost(figures, problems);
    assertStorageHeld(figures);
  });

  test(KILL_TEST, { timeout: 60_000 }, async () => {
    const killAndRestart = async () => {
      // Chromium names its process in the profile's lock: `<host>-<pid>`.
      const pid = Number(readlinkSync(join(profileDir, "SingletonLock")).split("-").at(-1));
      const closed = new Promise((resolve) => context.once("close", resolve));
      process.kill(pid, "SIGKILL");
      await closed;
      await launch();
    };
    await killScenario(engine, openTab, killAndRestart);
  });

  describe("unusable storage: a PersistError, then the socket goes on in memory", () => {
    // A storage origin of their own (a loopback name instead of the address), cleared before each.
    let origin;
    let idle;
    let cdp;

    before(async () => {
      origin = `http://localhost:${server.port}`;
      idle = await context.newPage();
      await idle.goto(pageUrl(origin, { role: "idle" }));
      cdp = await context.newCDPSession(idle);
    });

    after(async () => {
      await cdp.send("Storage.overrideQuotaForOrigin", { origin }).catch(() => {});
      await cdp.send("Storage.clearDataForOrigin", { origin, storageTypes: "all" }).catch(() => {});
      await idle.close();
    });

    const clear = () => cdp.send("Storage.clearDataForOrigin", { origin, storageTypes: "all" });

    /** Sends through a writer whose storage fails: the error is reported, everything is acknowledged and delivered. */
    async function inMemory(name, fault, initScript) {
      const problems = [];
      const tab = await openTab(writerUrl({ name, origin }), problems, initScript);
      await letItSend(tab, 2 * BEFORE_FAULT);
      const settled = await settle(tab, name);
      await tab.close();
      const figures = await outcome([name]);
      const page = ledger.of([name]).at(-1);
      record(engine, fault, figures, `acked ${page.acked}/${page.sent.length}; ${page.persistErrors[0] ?? "no PersistError"}`);
      assert.ok(figures.persistErrors >= 1, "a PersistError event");
      assert.ok(settled, "every message was acknowledged: the socket went on in memory");
      assert.equal(page.acked, page.sent.length, "every send() resolved");
      assertNothingSilentlyLost(figures, problems);
      return figures;
    }

    test("storage disabled (localStorage and indexedDB throw)", { timeout: 60_000 }, async () => {
      await clear();
      await inMemory("chromium-storage-disabled", "storage disabled", () => {
        const disabled = () => {
          throw new DOMException("storage is disabled", "SecurityError");
        };
        Object.defineProperty(window, "localStorage", { get: disabled, configurable: true });
        Object.defineProperty(window, "indexedDB", { get: disabled, configurable: true });
      });
    });

    test("quota exceeded mid-stream (localStorage filled up, IndexedDB quota overridden)", { timeout: 60_000 }, async () => {
      await clear();
      // Real quota errors: localStorage filled to 2 KiB short of its limit, the origin's quota (IndexedDB) 16 KiB
      // above its usage.
      await idle.evaluate((room) => {
        const chunk = "x".repeat(1 << 20);
        let i = 0;
        for (let size = chunk.length; size >= 16; size >>= 1) {
          for (;;) {
            try {
              localStorage.setItem(`lifecycle:filler:${i++}`, chunk.slice(0, size));
            } catch {
              break;
            }
          }
        }
        localStorage.setItem("lifecycle:filler:0", chunk.slice(0, chunk.length - room));
      }, 2048);
      const { usage } = await cdp.send("Storage.getUsageAndQuota", { origin });
      await cdp.send("Storage.overrideQuotaForOrigin", { origin, quotaSize: usage + 16 * 1024 });
      try {
        await inMemory("chromium-storage-quota", "quota exceeded");
      } finally {
        await cdp.send("Storage.overrideQuotaForOrigin", { origin });
      }
    });

    test("corrupt stored session: the next page reports it (PersistError, sessionlost 'storage' if any) and goes on", { timeout: 60_000 }, async () => {
      await clear();
      const name = "chromium-storage-corrupt";
      const problems = [];
      const first = await openTab(writerUrl({ name, origin }), problems);
      await letItSend(first);
      await first.evaluate(() => window.lifecycle.stop());
      await mustReach("every message of the first page acknowledged", async () => (await first.evaluate(() => window.lifecycle.state().pending)) === 0);
      await first.close(); // an unload keeps the session stored
      const corrupted = await idle.evaluate(corruptStorage);
      assert.ok(corrupted.length > 0, "the first page stored its session somewhere (localStorage or IndexedDB)");
      const second = await openTab(writerUrl({ name, origin }), problems);
      await letItSend(second, 2 * BEFORE_FAULT);
      const settled = await settle(second, name);
      await second.close();
      const figures = await outcome([name]);
      const page = ledger.page(second.instance);
      record(engine, "corrupt storage", figures, `corrupted ${corrupted.join(", ")}; sessionlost ${figures.sessionLost.join(" ") || "none"}`);
      assert.ok(page.persistErrors.length >= 1, "the page that found the corrupt data reported a PersistError");
      assert.ok(page.sessionLost.every((s) => s.reason === "storage"), `a session lost to corrupt data says "storage" (saw ${figures.sessionLost})`);
      assert.ok(settled, "every message was acknowledged: the socket went on in memory");
      assert.equal(page.acked, page.sent.length, "every send() of the second page resolved");
      assertNothingSilentlyLost(figures, problems);
    });
  });
}

/**
 * Runs in the page: overwrites every value the library may have stored with garbage — each localStorage key that
 * is not the test page's own, each record of each IndexedDB database. Returns what it corrupted.
 */
async function corruptStorage() {
  const garbage = "\u0000not a session{[";
  const done = [];
  for (const key of Object.keys(localStorage).filter((k) => !k.startsWith("lifecycle:"))) {
    localStorage.setItem(key, garbage);
    done.push(`localStorage ${key}`);
  }
  const request = (r) => new Promise((resolve, reject) => ((r.onsuccess = () => resolve(r.result)), (r.onerror = () => reject(r.error))));
  for (const { name } of await indexedDB.databases()) {
    const db = await request(indexedDB.open(name));
    const stores = [...db.objectStoreNames];
    if (stores.length === 0) continue;
    const tx = db.transaction(stores, "readwrite");
    for (const storeName of stores) {
      const store = tx.objectStore(storeName);
      const keys = await request(store.getAllKeys());
      for (const key of keys) {
        // With in-line keys the garbage must carry the key; with out-of-line keys any value will do.
        if (store.keyPath === null) store.put(garbage, key);
        else if (Array.isArray(store.keyPath)) store.put(store.keyPath.reduce((value, path, i) => setPath(value, path, key[i]), { garbage }));
        else store.put(setPath({ garbage }, store.keyPath, key));
      }
      done.push(`IndexedDB ${name}/${storeName} (${keys.length})`);
    }
    await new Promise((resolve, reject) => ((tx.oncomplete = resolve), (tx.onerror = () => reject(tx.error))));
    db.close();
  }
  return done;

  function setPath(object, path, value) {
    const parts = path.split(".");
    let at = object;
    for (const part of parts.slice(0, -1)) at = at[part] ??= {};
    at[parts.at(-1)] = value;
    return object;
  }
}

function webDriverSuite(engine) {
  let browser;
  let started;
  let tab;
  // Firefox on a profile of the test's own (geckodriver would start each session on a fresh copy): a restarted
  // Firefox finds the killed one's storage. MiniBrowser under automation keeps its data in an ephemeral store and
  // has no option for a data directory: WebKit has no kill scenario.
  const profileDir = engine === "firefox" ? mkdtempSync(join(tmpdir(), "durable-ws-lifecycle-firefox-")) : null;

  async function launch() {
    browser = await launchWebDriverBrowser(engine, { args: profileDir ? ["-profile", profileDir] : [] });
    tab = null;
  }

  before(async () => {
    started = Date.now();
    await launch();
  }, { timeout: 60_000 });

  afterEach(describeUnrecorded);

  after(async () => {
    await browser?.close();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    console.log(`lifecycle suite in ${engine}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  // One window per session: each scenario goes on in the tab the previous one left.
  const openTab = async (url, problems) => {
    if (!tab) tab = await WebDriverTab.open(browser, url, problems);
    else {
      tab.problems = problems;
      await tab.goto(url);
    }
    return tab;
  };

  test(RELOAD_TEST(engine), { timeout: 60_000 }, () => reloadScenario(engine, openTab));

  test(CLOSE_TEST, { timeout: 60_000 }, async () => {
    const reopen = async (tab, url) => {
      await tab.reopen(url);
      return tab;
    };
    await closeTabScenario(engine, openTab, reopen);
  });

  if (profileDir) {
    test(KILL_TEST, { timeout: 60_000 }, async () => {
      const killAndRestart = async () => {
        // Firefox's main process is the one started with the profile (its content processes are not).
        for (const pid of processesWithArguments("-profile", profileDir)) process.kill(pid, "SIGKILL");
        await browser.close(); // the session is dead: this ends its driver
        await launch();
      };
      await killScenario(engine, openTab, killAndRestart);
    });
  }
}

/** The ids of the processes whose command line holds `args` in a row. */
function processesWithArguments(...args) {
  const wanted = `\0${args.join("\0")}\0`;
  const pids = [];
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      if (`\0${readFileSync(`/proc/${entry}/cmdline`, "latin1")}`.includes(wanted)) pids.push(Number(entry));
    } catch {} // gone meanwhile
  }
  return pids;
}
