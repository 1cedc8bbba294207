// A small W3C WebDriver client (over fetch) for the engines Playwright cannot drive here: Firefox ESR through
// geckodriver, and WebKitGTK (the engine of Safari) through WebKitWebDriver + MiniBrowser on a virtual X display
// (xvfb-run). It offers the part of Playwright's Browser/BrowserContext/Page API that the suites use
// (`newContext`, `newPage`, `goto`, `evaluate`, `waitForFunction`, `on("pageerror")`, `close`), so that one suite
// runs unchanged in every engine (tests/support/browser.mjs chooses).
import { spawn, execFileSync } from "node:child_process";
import { freePort } from "./net.mjs";

export const MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

const which = (command) => execFileSync("bash", ["-c", `command -v ${command}`], { encoding: "utf8" }).trim();

/** How each engine's driver is started and which capabilities ask for the browser. */
const ENGINES = {
  firefox: {
    driver: (port) => ({ command: which("geckodriver"), args: ["--host", "127.0.0.1", "--port", String(port)] }),
    capabilities: (args = []) => ({
      browserName: "firefox",
      "moz:firefoxOptions": { binary: which("firefox-esr"), args: ["-headless", ...args], prefs: { "network.proxy.type": 0 } },
    }),
  },
  webkit: {
    driver: (port) => ({ command: which("xvfb-run"), args: ["-a", which("WebKitWebDriver"), `--port=${port}`] }),
    capabilities: (args = []) => ({
      browserName: "MiniBrowser",
      "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation", ...args] },
    }),
  },
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Launches `engine` ("firefox" or "webkit") under its WebDriver server; returns a Playwright-like browser. `args` go
 * to the browser after the project's (e.g. Firefox's `-profile DIR`, to keep its storage across launches).
 */
export async function launchWebDriverBrowser(engine, { args: browserArgs = [] } = {}) {
  const spec = ENGINES[engine];
  if (!spec) throw new Error(`no WebDriver set-up for engine ${engine}`);
  const port = await freePort();
  const { command, args } = spec.driver(port);
  // A process group of its own (xvfb-run starts Xvfb and the driver, the driver the browser): stopped as one.
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  const log = [];
  const keep = (chunk) => log.length < 500 && log.push(chunk.toString());
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const base = `http://127.0.0.1:${port}`;
  const stop = () => {
    process.off("exit", stop);
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
    }
  };
  // Not left behind if the test process ends without closing the browser (a detached group outlives its parent).
  process.once("exit", stop);
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${command} exited with ${child.exitCode}`);
      const ready = await fetch(`${base}/status`).then((r) => r.json(), () => null);
      if (ready?.value?.ready) break;
      if (Date.now() > deadline) throw new Error(`${command} did not answer /status within 30 s`);
      await sleep(100);
    }
    const session = await command_(base, "POST", "/session", { capabilities: { alwaysMatch: spec.capabilities(browserArgs) } }, 60_000);
    const browser = new WebDriverBrowser(`${base}/session/${session.sessionId}`, stop, session.capabilities);
    await browser.command("POST", "/timeouts", { script: 120_000, pageLoad: 60_000 });
    return browser;
  } catch (error) {
    stop();
    throw new Error(`${engine}: ${error.message}\n--- driver output:\n${log.join("").slice(-4000)}`);
  }
}

async function command_(base, method, path, body, timeoutMs = 150_000) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const json = await response.json();
  if (!response.ok || json.value?.error) {
    throw new Error(`WebDriver ${method} ${path}: ${response.status} ${json.value?.error}: ${json.value?.message}`);
  }
  return json.value;
}

class WebDriverBrowser {
  constructor(url, stop, capabilities) {
    this.url = url;
    this.stop = stop;
    this.capabilities = capabilities;
    this.page = null;
  }

  command(method, path, body) {
    return command_(this.url, method, path, body);
  }

  /** "firefox 128.x" etc., from the session's capabilities. */
  version() {
    return `${this.capabilities.browserName} ${this.capabilities.browserVersion}`;
  }

  /** One session is one window: its "context" is the browser itself, with at most one page. */
  async newContext() {
    return this;
  }

  async newPage() {
    if (this.page) throw new Error("this WebDriver browser has one page only");
    this.page = new WebDriverPage(this);
    return this.page;
  }

  async close() {
    try {
      await this.command("DELETE", "");
    } catch {}
    this.stop();
  }
}

// Records what Playwright reports as "pageerror": uncaught exceptions and unhandled promise rejections.
const INSTALL_ERROR_RECORDER = `
  if (!window.__pageErrors) {
    window.__pageErrors = [];
    window.addEventListener("error", (e) => window.__pageErrors.push(String(e.error?.message ?? e.message)));
    window.addEventListener("unhandledrejection", (e) => window.__pageErrors.push(String(e.reason?.message ?? e.reason)));
  }
  return Array.isArray(window.__pageErrors);`;

class WebDriverPage {
  constructor(browser) {
    this.browser = browser;
    this.listeners = { pageerror: [] };
  }

  on(event, listener) {
    if (!this.listeners[event]) throw new Error(`WebDriverPage: no event ${event}`);
    this.listeners[event].push(listener);
  }

  async goto(url) {
    await this.browser.command("POST", "/url", { url });
    await this.installErrorRecorder(url);
  }

  /** Reloads the page (as Playwright's `reload`). */
  async reload() {
    await this.browser.command("POST", "/refresh", {});
    await this.installErrorRecorder("the reloaded page");
  }

  /**
   * Closes this page's tab and goes on in a new, empty one, driven by this same object (a session cannot be left
   * without a window: closing the last one ends it in some drivers).
   */
  async replaceTab() {
    const { handle } = await this.browser.command("POST", "/window/new", { type: "tab" });
    await this.browser.command("DELETE", "/window");
    await this.browser.command("POST", "/window", { handle });
  }

  async installErrorRecorder(where) {
    const installed = await this.browser.command("POST", "/execute/sync", { script: INSTALL_ERROR_RECORDER, args: [] });
    if (installed !== true) throw new Error(`could not install the page error recorder in ${where}`);
  }

  /** Runs `fn(arg)` in the page (awaiting a promise it returns) and returns its JSON-serialisable result. */
  async evaluate(fn, arg) {
    const script = `
      const done = arguments[arguments.length - 1];
      Promise.resolve()
        .then(() => (${fn.toString()})(arguments[0]))
        .then(
          (value) => done({ ok: true, value: value === undefined ? null : value, errors: (window.__pageErrors ?? []).splice(0) }),
          (error) => done({ ok: false, error: String(error?.stack ?? error), errors: (window.__pageErrors ?? []).splice(0) }),
        );`;
    const result = await this.browser.command("POST", "/execute/async", { script, args: [arg ?? null] });
    for (const message of result.errors) for (const listener of this.listeners.pageerror) listener(new Error(message));
    if (!result.ok) throw new Error(`evaluate failed in the page: ${result.error}`);
    return result.value;
  }

  /** Polls `fn(arg)` until it returns something truthy; fails after `timeout` ms. */
  async waitForFunction(fn, arg, { timeout = 30_000 } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const value = await this.evaluate(fn, arg);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`waitForFunction: ${fn} not true within ${timeout} ms`);
      await sleep(100);
    }
  }
}
