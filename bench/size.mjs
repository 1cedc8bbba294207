// Bundle sizes: what a page downloads for each library, minified by esbuild and compressed with `gzip -9`.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

/** `gzip -9` size of `bytes` (the real gzip when installed, zlib level 9 otherwise). */
export function gzipSize(bytes) {
  try {
    return execFileSync("gzip", ["-9", "-n", "-c"], { input: bytes, maxBuffer: 64 << 20 }).length;
  } catch {
    return gzipSync(bytes, { level: 9 }).length;
  }
}

/** Bundles `source` (an ES module importing a library) with esbuild --bundle --minify; returns the bytes. */
async function bundle(source, resolveDir, external = []) {
  const result = await build({
    stdin: { contents: source, resolveDir, loader: "js" },
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2020",
    write: false,
    external,
    logLevel: "silent",
    legalComments: "none",
  });
  return Buffer.from(result.outputFiles[0].contents);
}

/** Sizes of each library (bytes): `{ name, minified, gzip, note }`, durable-ws split into its JS glue and wasm. */
export async function bundleSizes(repoRoot) {
  const rows = [];
  const npm = join(repoRoot, "pkg");
  const web = join(repoRoot, "www/pkg");
  const built = (dir) => existsSync(join(dir, "durable_ws_bg.wasm"));
  if (!built(npm) && !built(web)) throw new Error("no wasm package: build it (scripts/test.sh wasm-package)");
  const wasmDir = built(npm) ? npm : web;
  const wasm = readFileSync(join(wasmDir, "durable_ws_bg.wasm"));
  const wasmGzip = gzipSize(wasm);
  let glue;
  if (built(npm)) {
    // Bundler target: the wasm module imports its `__wbg_*` functions from durable_ws_bg.js, so all of them stay.
    const entry = `export * from ${JSON.stringify(join(npm, "durable_ws_bg.js"))}; import ${JSON.stringify(join(npm, "durable_ws.js"))};`;
    const bytes = await bundle(entry, repoRoot, ["*.wasm"]);
    glue = { bytes, note: "npm build (bundler target), esbuild --minify" };
    rows.push({ name: "durable-ws: JS glue", minified: bytes.length, gzip: gzipSize(bytes), note: glue.note });
  }
  if (built(web)) {
    const bytes = await bundle(`export * from ${JSON.stringify(join(web, "durable_ws.js"))};`, repoRoot);
    rows.push({ name: "durable-ws: JS glue (web target)", minified: bytes.length, gzip: gzipSize(bytes), note: "www/pkg, with its fetch/instantiate loader" });
    glue ??= { bytes, note: "web target" };
  }
  const glueGzip = gzipSize(glue.bytes);
  rows.push({ name: "durable-ws: wasm", minified: wasm.length, gzip: wasmGzip, note: "wasm-pack --release (wasm-opt)" });
  rows.push({ name: "durable-ws: total (glue + wasm)", minified: glue.bytes.length + wasm.length, gzip: glueGzip + wasmGzip, note: "target ≤ 13 KB gzip", total: true });
  const others = [
    ["reconnecting-websocket", `export { default } from "reconnecting-websocket";`],
    ["socket.io-client", `export { io } from "socket.io-client";`],
    ["@microsoft/signalr", `export { HubConnectionBuilder } from "@microsoft/signalr";`],
    ["centrifuge", `export { Centrifuge } from "centrifuge";`],
  ];
  const tmp = mkdtempSync(join(tmpdir(), "durable-ws-size-"));
  try {
    for (const [name, source] of others) {
      const version = JSON.parse(readFileSync(join(repoRoot, "node_modules", name, "package.json"), "utf8")).version;
      const bytes = await bundle(source, repoRoot);
      writeFileSync(join(tmp, `${name.replace("/", "_")}.js`), bytes);
      rows.push({ name: `${name} ${version}`, minified: bytes.length, gzip: gzipSize(bytes), note: "esbuild --bundle --minify" });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}
