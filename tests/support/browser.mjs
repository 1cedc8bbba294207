// The browsers every browser test of the project runs in. Chromium: Debian's /usr/bin/chromium through
// playwright-core (Playwright cannot download its own here), with the flags that keep it from reaching for the
// network at start-up. Firefox ESR and WebKitGTK (the engine of Safari), which Playwright cannot drive here: over
// W3C WebDriver (tests/support/webdriver.mjs), behind the same subset of Playwright's API.
import { chromium } from "playwright-core";
import { launchWebDriverBrowser } from "./webdriver.mjs";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

export const ENGINES = ["chromium", "firefox", "webkit"];

/**
 * The engines a multi-engine suite runs in: DURABLE_WS_ENGINES (comma-separated, e.g. "firefox,webkit"), else all
 * three.
 */
export function selectedEngines() {
  const wanted = (process.env.DURABLE_WS_ENGINES ?? ENGINES.join(",")).split(",").map((e) => e.trim()).filter(Boolean);
  for (const engine of wanted) if (!ENGINES.includes(engine)) throw new Error(`DURABLE_WS_ENGINES: unknown engine ${engine}`);
  return wanted;
}

/** Launches headless Chromium, with `extraArgs` after the project's flags. */
export function launchBrowser(extraArgs = []) {
  return chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/**
 * Launches headless Chromium on the profile directory `userDataDir` (its storage outlives the browser: a later launch
 * on the same directory finds it) and returns its persistent context; `options` go to Playwright's
 * `launchPersistentContext`, `extraArgs` after the project's flags.
 */
export function launchPersistentChromium(userDataDir, { extraArgs = [], ...options } = {}) {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    ...options,
  });
}

/** Launches `engine` (one of ENGINES), headless (WebKit on a virtual display). */
export function launchEngine(engine) {
  return engine === "chromium" ? launchBrowser() : launchWebDriverBrowser(engine);
}
