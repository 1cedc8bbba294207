// Headless Chromium as every browser test of the project runs it: Debian's /usr/bin/chromium (Playwright cannot
// download its own here), with the flags that keep it from reaching for the network at start-up.
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Launches headless Chromium, with `extraArgs` after the project's flags. */
export function launchBrowser(extraArgs = []) {
  return chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}
