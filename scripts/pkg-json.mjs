// Completes the npm package that scripts/common.sh (build_npm_package: wasm-bindgen --target web) wrote into a
// directory (default pkg/): writes its package.json for npm users (name, version/license/repository/description from Cargo.toml,
// ES module with `exports`, `types`, `sideEffects: false`, `files`) and replaces the README with pkg-readme.md.
//
//   node scripts/pkg-json.mjs [pkg]
//
// `sideEffects: false` holds: importing the package only defines functions and module-local objects (the
// class, the TextEncoder/TextDecoder caches); the wasm is fetched and instantiated only by `init()`.
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PKG = resolve(REPO_ROOT, process.argv[2] ?? "pkg");

function fail(message) {
  console.error(`pkg-json: ${message}`);
  process.exit(1);
}

/** The string value of `key` in the `[section]` table of a TOML file (enough for Cargo.toml's simple keys). */
function tomlString(text, section, key) {
  let current = "";
  for (const line of text.split("\n")) {
    const header = line.match(/^\s*\[([^\]]+)\]\s*$/);
    if (header) {
      current = header[1].trim();
      continue;
    }
    const entry = line.match(/^\s*([A-Za-z0-9_-]+)\s*=\s*"([^"]*)"\s*$/);
    if (current === section && entry?.[1] === key) return entry[2];
  }
  return undefined;
}

const cargoToml = readFileSync(join(REPO_ROOT, "Cargo.toml"), "utf8");
/** A field of the root crate: its own value, or the workspace's when it says `field.workspace = true`. */
const crateField = (key) => tomlString(cargoToml, "package", key) ?? tomlString(cargoToml, "workspace.package", key);

const generated = join(PKG, "package.json");

const version = crateField("version");
const license = crateField("license");
const repository = crateField("repository");
const description = crateField("description");
for (const [field, value] of Object.entries({ version, license, description })) {
  if (!value) fail(`Cargo.toml has no ${field} for the root crate`);
}

const entry = "durable_ws.js";
const types = "durable_ws.d.ts";
const wasm = "durable_ws_bg.wasm";
for (const file of [entry, types, wasm]) {
  if (!existsSync(join(PKG, file))) fail(`${join(PKG, file)} is missing: was it built with --target web?`);
}
// `durable-ws/react` (src/js/react.js), shipped as written: React is an optional peer dependency.
const react = { entry: "react.js", types: "react.d.ts" };
for (const file of Object.values(react)) copyFileSync(join(REPO_ROOT, "src/js", file), join(PKG, file));

// The license texts (the package declares `MIT OR Apache-2.0`), listed in `files` below.
const licenses = ["LICENSE-MIT", "LICENSE-APACHE"];
for (const file of licenses) copyFileSync(join(REPO_ROOT, file), join(PKG, file));

const packageJson = {
  name: "durable-ws",
  version,
  description,
  license,
  ...(repository ? { repository: { type: "git", url: repository } } : {}),
  keywords: ["websocket", "reconnect", "resume", "wasm", "reliable"],
  type: "module",
  main: `./${entry}`,
  module: `./${entry}`,
  types: `./${types}`,
  exports: {
    ".": { types: `./${types}`, default: `./${entry}` },
    "./react": { types: `./${react.types}`, default: `./${react.entry}` },
    [`./${wasm}`]: `./${wasm}`,
    "./package.json": "./package.json",
  },
  peerDependencies: { react: ">=18" },
  peerDependenciesMeta: { react: { optional: true } },
  sideEffects: false,
  files: [entry, types, wasm, `${wasm}.d.ts`, react.entry, react.types, "README.md", ...licenses].filter((file) =>
    existsSync(join(PKG, file)),
  ),
};

// wasm-bindgen declares `[Symbol.dispose]()` (for `using`), which needs the esnext.disposable lib (TypeScript 5.2+):
// without this reference, an app whose tsconfig has `"lib": ["es2022", "dom"]` and no skipLibCheck fails to compile.
const declarations = readFileSync(join(PKG, types), "utf8");
const disposableLib = '/// <reference lib="esnext.disposable" />';
if (declarations.includes("Symbol.dispose") && !declarations.includes(disposableLib)) {
  writeFileSync(join(PKG, types), `${disposableLib}\n${declarations}`);
}

writeFileSync(generated, `${JSON.stringify(packageJson, null, 2)}\n`);
copyFileSync(join(REPO_ROOT, "pkg-readme.md"), join(PKG, "README.md"));
console.log(`pkg-json: ${generated} (durable-ws ${version}) and README.md from pkg-readme.md`);
