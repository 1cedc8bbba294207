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

/**
 * The npm build's size (bytes) in `dir` (pkg/ or www/pkg/): `{ wasm, wasmGzip, glue, glueGzip, bundlerTarget }`, the
 * package's JavaScript (the class and wasm-bindgen's glue) bundled and minified by esbuild, both `gzip -9`.
 */
export async function durableWsSize(dir, repoRoot) {
  const wasm = readFileSync(join(dir, "durable_ws_bg.wasm"));
  const bundlerTarget = existsSync(join(dir, "durable_ws_bg.js"));
  // Bundler target: the wasm imports its `__wbg_*` functions from durable_ws_bg.js, so all of them must stay.
  // Web target: durable_ws.js holds the imports and the loader (fetch + instantiateStreaming).
  const entry = bundlerTarget
    ? `export * from ${JSON.stringify(join(dir, "durable_ws_bg.js"))}; import ${JSON.stringify(join(dir, "durable_ws.js"))};`
    : `export * from ${JSON.stringify(join(dir, "durable_ws.js"))}; export { default } from ${JSON.stringify(join(dir, "durable_ws.js"))};`;
  const glue = await bundle(entry, repoRoot, ["*.wasm"]);
  return { wasm: wasm.length, wasmGzip: gzipSize(wasm), glue: glue.length, glueGzip: gzipSize(glue), bundlerTarget };
}

/**
 * The storage driver of persisted sessions (src/store.js, which the package bundles into durable_ws.js) on its own,
 * minified by esbuild: `{ minified, gzip }` in bytes. Inside the package it compresses together with the rest, so
 * this is an upper bound of its share, not a difference.
 */
export async function storeJsSize(repoRoot) {
  const entry = `export * from ${JSON.stringify(join(repoRoot, "src/store.js"))};`;
  const bytes = await bundle(entry, repoRoot);
  return { minified: bytes.length, gzip: gzipSize(bytes) };
}

/** Sizes of each library (bytes): `{ name, minified, gzip, note }`, durable-ws split into its JS glue and wasm. */
export async function bundleSizes(repoRoot, pkgDir = null) {
  const rows = [];
  // `pkgDir`, else the npm build (pkg/), else the demo's copy (www/pkg/): the same build.
  const dir = pkgDir ?? ["pkg", "www/pkg"].map((d) => join(repoRoot, d)).find((d) => existsSync(join(d, "durable_ws_bg.wasm")));
  if (!dir) throw new Error("no wasm package: build it (scripts/test.sh wasm-package)");
  const size = await durableWsSize(dir, repoRoot);
  const where = `${dir.startsWith(repoRoot) ? dir.slice(repoRoot.length + 1) : dir}/, ${size.bundlerTarget ? "bundler" : "web"} target`;
  rows.push({ name: "durable-ws: JS glue", minified: size.glue, gzip: size.glueGzip, note: `${where}: the class and wasm-bindgen's glue; esbuild --minify` });
  rows.push({ name: "durable-ws: wasm", minified: size.wasm, gzip: size.wasmGzip, note: "scripts/common.sh build_npm_package (wasm-opt -Oz)" });
  rows.push({ name: "durable-ws: total (glue + wasm)", minified: size.glue + size.wasm, gzip: size.glueGzip + size.wasmGzip, note: "target ≤ 13 KB gzip", total: true });
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
