// Shrinks a package that `wasm-bindgen --target web` wrote (scripts/common.sh, build_npm_package):
//   1. wasm-opt -Oz, with one- or two-letter import, export and module names (wasm-bindgen's names carry 16-digit
//      hashes, which gzip cannot compress: ≈ 3 KB of the gzipped package);
//   2. the glue (durable_ws.js) and the declarations of the wasm's exports rewritten with binaryen's mapping;
//   3. the package's public face (src/js/face.js: the `DurableWebSocket` class over the wasm's `Core`) and the glue
//      bundled into one minified module by esbuild: durable_ws.js.
//
//   node scripts/minify-pkg.mjs DIR
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

const dir = resolve(process.argv[2] ?? "pkg");
const wasmFile = join(dir, "durable_ws_bg.wasm");
const glueFile = join(dir, "durable_ws.js");
if (existsSync(join(dir, "snippets"))) throw new Error(`minify-pkg: ${dir}/snippets: the JS API's JavaScript belongs in src/js/face.js`);

// The features wasm-bindgen's output uses (binaryen's defaults would reject externref and multi-value).
const FEATURES = ["bulk-memory", "nontrapping-float-to-int", "sign-ext", "mutable-globals", "reference-types", "multivalue"];
const mapping = JSON.parse(
  execFileSync(
    "wasm-opt",
    [wasmFile, "-o", wasmFile, "-Oz", "--strip-producers", "--strip-target-features", "--minify-imports-and-exports-and-modules", ...FEATURES.map((f) => `--enable-${f}`)],
    { encoding: "utf8", maxBuffer: 16 << 20 },
  ),
);
// `memory` keeps its name: `init()` resolves to the exports, and `(await init()).memory` is how a page reads the
// wasm memory (bench/page.js does).
const memory = mapping.exports.find(([name]) => name === "memory");
if (memory) {
  writeFileSync(wasmFile, renameExport(readFileSync(wasmFile), memory[1], "memory"));
  mapping.exports = mapping.exports.filter((entry) => entry !== memory);
}
const modules = new Map(WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(wasmFile))).map((i) => [i.name, i.module]));

const escape = (name) => name.replace(/[$]/g, "\\$&");
let glue = readFileSync(glueFile, "utf8");
// The import object: `return { __proto__: null, "module": importN, … }`, where importN is an object literal of the
// glue (`const importN = { name: function… }`): its keys are renamed in place. (The JS API's JavaScript is
// src/js/face.js, bundled below, not a wasm-bindgen snippet: a snippet's namespace would not be such a literal.)
const returned = glue.match(/return \{\s*__proto__: null,\s*((?:"[^"]+": import\d+,\s*)+)\};/);
if (!returned) throw new Error(`minify-pkg: no import object found in ${glueFile}`);
const objectOf = new Map([...returned[1].matchAll(/"([^"]+)": (import\d+)/g)].map((m) => [m[1], m[2]]));
const entries = new Map(); // short module -> entries of its import object
for (const [module, name, short] of mapping.imports) {
  const object = objectOf.get(module);
  if (!object) throw new Error(`minify-pkg: import module ${module} not in the import object of ${glueFile}`);
  const shortModule = modules.get(short);
  if (!entries.has(shortModule)) entries.set(shortModule, []);
  if (!glue.includes(`const ${object} = {`)) throw new Error(`minify-pkg: import module ${module} is not an object of ${glueFile} (a snippet?)`);
  const key = new RegExp(`(?<![\\w$])${escape(name)}(?=\\s*:)`, "g");
  if (!key.test(glue)) throw new Error(`minify-pkg: import ${name} not found in ${glueFile}`);
  glue = glue.replace(key, () => short); // functions: a `$` in a name is not a replacement pattern
  if (!entries.get(shortModule).includes(`...${object}`)) entries.get(shortModule).push(`...${object}`);
}
const importObject = [...entries].map(([module, list]) => `${JSON.stringify(module)}: { ${list.join(", ")} }`);
glue = glue.replace(returned[0], () => `return { __proto__: null, ${importObject.join(", ")} };`);
const declarations = ["durable_ws.d.ts", "durable_ws_bg.wasm.d.ts"].map((f) => join(dir, f));
const texts = declarations.map((f) => readFileSync(f, "utf8"));
for (const [name, short] of mapping.exports) {
  glue = glue.replace(new RegExp(`(?<=\\bwasm\\.)${escape(name)}(?![\\w$])`, "g"), () => short);
  // `readonly name:` (InitOutput) and `export const name:` (durable_ws_bg.wasm.d.ts).
  texts.forEach((text, i) => {
    texts[i] = text.replace(new RegExp(`(?<=(readonly|export const) )${escape(name)}(?=:)`, "g"), () => short);
  });
}
// The class is declared by the TypeScript section of src/js/types.rs, so wasm-bindgen does not add the reference its
// `[Symbol.dispose]` needs.
const disposable = '/// <reference lib="esnext.disposable" />\n';
if (texts[0].includes("[Symbol.dispose]") && !texts[0].startsWith(disposable)) texts[0] = disposable + texts[0];
texts.forEach((text, i) => writeFileSync(declarations[i], text));

/** `bytes` (a wasm module) with export `from` renamed to `to` (the export section rebuilt). */
function renameExport(bytes, from, to) {
  let at = 8;
  const u32 = () => {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++];
      result |= (b & 0x7f) << shift;
      if (b < 0x80) return result >>> 0;
    }
  };
  const leb = (n) => {
    const out = [];
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    return out;
  };
  while (at < bytes.length) {
    const start = at;
    const id = bytes[at++];
    const size = u32();
    const end = at + size;
    if (id === 7) {
      const count = u32();
      const entries = [];
      for (let i = 0; i < count; i++) {
        const length = u32();
        const name = new TextDecoder().decode(bytes.subarray(at, at + length));
        at += length;
        const kind = bytes[at++];
        const index = leb(u32());
        const newName = new TextEncoder().encode(name === from ? to : name);
        entries.push(...leb(newName.length), ...newName, kind, ...index);
      }
      const body = [...leb(count), ...entries];
      return Buffer.concat([bytes.subarray(0, start), Buffer.from([7, ...leb(body.length), ...body]), bytes.subarray(end)]);
    }
    at = end;
  }
  throw new Error(`minify-pkg: no export section in ${wasmFile}`);
}

// The face imports the glue as ./durable_ws_glue.js and the storage of persisted sessions (src/store.js, which the
// Rust API imports as a wasm-bindgen module) as ./store.js; the bundle takes the glue's place (and its `new
// URL("durable_ws_bg.wasm", import.meta.url)` still resolves next to it).
const selfTypes = glue.match(/^\/\* @ts-self-types="[^"]*" \*\/\n/)?.[0] ?? "";
const gluePart = join(dir, "durable_ws_glue.js");
const facePart = join(dir, "face.js");
const storePart = join(dir, "store.js");
writeFileSync(gluePart, glue);
copyFileSync(fileURLToPath(new URL("../src/js/face.js", import.meta.url)), facePart);
copyFileSync(fileURLToPath(new URL("../src/store.js", import.meta.url)), storePart);
buildSync({
  entryPoints: [facePart],
  outfile: glueFile,
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  legalComments: "none",
  banner: { js: selfTypes.trim() },
  allowOverwrite: true,
  logLevel: "warning",
});
rmSync(gluePart);
rmSync(facePart);
rmSync(storePart);
console.log(`minify-pkg: ${dir} (${mapping.imports.length} imports, ${mapping.exports.length} exports renamed)`);
