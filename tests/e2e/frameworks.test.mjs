// End-to-end test of the framework examples (examples/leptos-chat, examples/yew-chat): the wasm builds in
// examples/*/dist (scripts/build-examples.sh), served by a reference server of their own (`--www examples`,
// so that both pages share one /chat room), in headless Chromium.
//
// A Leptos page and a Yew page chat with each other; both show every message once, in the server's order.
// Leaving (unmounting the chat component) closes the socket cleanly — the server forgets both sessions —
// without any page error; joining again connects a new session; navigating away raises no error either.
//
//   DURABLE_WS_BIN_DIR=target/debug node --test tests/e2e/frameworks.test.mjs
//
// (scripts/test.sh examples builds the examples and the server first.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser } from "../support/browser.mjs";
import { freePort } from "../support/net.mjs";
import { spawn } from "node:child_process";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const EXAMPLES = ["leptos-chat", "yew-chat"];

let browser;
let server;

before(async () => {
  for (const example of EXAMPLES) {
    const page = join(REPO_ROOT, "examples", example, "dist", "index.html");
    assert.ok(existsSync(page), `${page} is missing: run scripts/build-examples.sh`);
  }
  server = await startServer({ www: join(REPO_ROOT, "examples") });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Starts the reference server (from DURABLE_WS_BIN_DIR) serving `www`, with fault injection. */
async function startServer({ www }) {
  const binDir = process.env.DURABLE_WS_BIN_DIR;
  assert.ok(binDir, "DURABLE_WS_BIN_DIR is not set (scripts/test.sh examples sets it)");
  const port = await freePort();
  const args = ["--listen", `127.0.0.1:${port}`, "--www", www, "--enable-faults"];
  const child = spawn(join(binDir, "durable-ws-server"), args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (chunk) => (log = (log + chunk).slice(-4000)));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const httpUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(new URL("/stats", httpUrl))).ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || i >= 300) {
      child.kill();
      assert.fail(`the reference server did not start on ${httpUrl}; its log:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    httpUrl,
    async stop() {
      if (child.exitCode === null) child.kill();
      await exited;
    },
  };
}

/** Opens an example's page and records page errors and console errors. */
async function openExample(example) {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`${example}: page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`${example}: console error: ${message.text()}`);
  });
  page.on("response", (response) => {
    if (!response.ok()) problems.push(`${example}: ${response.url()} → HTTP ${response.status()}`);
  });
  await page.goto(new URL(`/${example}/dist/`, server.httpUrl).href);
  return { page, problems, example };
}


async function waitForState(page, state) {
  await page.locator("#state").filter({ hasText: new RegExp(`^${state}$`) }).waitFor({ timeout: 30_000 });
}

async function say({ page }, text) {
  await page.locator("#draft").fill(text);
  await page.locator("button[type=submit]").click();
}

const messagesOf = (page) => page.locator("#messages li").allTextContents();

async function waitForMessages(page, expected) {
  await page.waitForFunction(
    (count) => document.querySelectorAll("#messages li").length >= count,
    expected.length,
    { timeout: 30_000, polling: 50 },
  );
  assert.deepEqual(await messagesOf(page), expected);
}

async function fetchStats() {
  const response = await fetch(new URL("/stats", server.httpUrl));
  assert.ok(response.ok, `GET /stats: HTTP ${response.status}`);
  return response.json();
}

/** Polls the server's /stats until `predicate` holds (the close handshake takes a few round trips). */
async function waitForServer(predicate, what) {
  let stats;
  for (let i = 0; i < 300; i++) {
    stats = await fetchStats();
    if (predicate(stats)) return stats;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`the server never reached: ${what} (last /stats: ${JSON.stringify(stats)})`);
}

test("a Leptos and a Yew page chat, unmount cleanly, rejoin and navigate away without errors", async () => {
  const leptos = await openExample("leptos-chat");
  const yew = await openExample("yew-chat");
  const pages = [leptos, yew];
  try {
    for (const { page } of pages) await waitForState(page, "Open");
    await waitForServer((stats) => stats.connections === 2 && stats.sessions === 2, "two members in the room");

    // Each page sends; both show both messages, in the same (the server's) order.
    await say(leptos, "hello from Leptos");
    await waitForMessages(leptos.page, ["hello from Leptos"]);
    await say(yew, "hello from Yew");
    const history = ["hello from Leptos", "hello from Yew"];
    for (const { page } of pages) await waitForMessages(page, history);
    // Both sends were acknowledged: the stats signal / hook followed the acks.
    for (const { page } of pages) {
      await page.locator("#pending").filter({ hasText: /^0$/ }).waitFor({ timeout: 30_000 });
    }

    // Leave: the chat component unmounts and closes its socket with a goodbye (the server ends the session).
    for (const { page } of pages) {
      await page.locator("#toggle").click();
      await page.locator("#state").waitFor({ state: "detached" });
    }
    await waitForServer((stats) => stats.connections === 0 && stats.sessions === 0, "both sockets closed");

    // Join again: a new component, a new session; the room works for it.
    for (const { page } of pages) {
      await page.locator("#toggle").click();
      await waitForState(page, "Open");
      assert.deepEqual(await messagesOf(page), [], "a new chat component starts with no messages");
    }
    await say(yew, "back again");
    for (const { page } of pages) await waitForMessages(page, ["back again"]);

    // Navigating away tears everything down without an error.
    for (const { page } of pages) {
      await page.goto("about:blank");
    }
    await waitForServer((stats) => stats.connections === 0, "the pages' connections gone");
    assert.deepEqual([...leptos.problems, ...yew.problems], []);
  } finally {
    for (const { page } of pages) await page.close();
  }
});

test("messages sent around a dropped connection reach both pages once, in one order", async () => {
  const leptos = await openExample("leptos-chat");
  const yew = await openExample("yew-chat");
  const pages = [leptos, yew];
  try {
    for (const { page } of pages) await waitForState(page, "Open");
    await say(leptos, "before the cut");
    for (const { page } of pages) await waitForMessages(page, ["before the cut"]);

    const cut = await fetch(new URL("/admin/cut?session=all", server.httpUrl), { method: "POST" });
    assert.ok(cut.ok, `POST /admin/cut: HTTP ${cut.status}`);
    // Sent while the pages notice the drop and reconnect: queued, then re-sent on the resumed session.
    await say(leptos, "during the cut (Leptos)");
    await say(yew, "during the cut (Yew)");

    for (const { page } of pages) {
      await page.waitForFunction(() => document.querySelectorAll("#messages li").length >= 3, null, {
        timeout: 30_000,
        polling: 50,
      });
    }
    const [seenByLeptos, seenByYew] = [await messagesOf(leptos.page), await messagesOf(yew.page)];
    assert.deepEqual(seenByYew, seenByLeptos, "both pages show the room's one order");
    assert.deepEqual(
      [...seenByLeptos].sort(),
      ["before the cut", "during the cut (Leptos)", "during the cut (Yew)"].sort(),
      "every message exactly once",
    );
    for (const { page } of pages) await waitForState(page, "Open");
    assert.deepEqual([...leptos.problems, ...yew.problems], []);
  } finally {
    for (const { page } of pages) await page.close();
  }
});
