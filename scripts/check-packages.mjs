// Checks that packages are ready to publish (issue 22): what `npm pack` and `cargo package` would upload.
//
//   node scripts/check-packages.mjs DIR...           npm packages (pkg, node): packs each into a temporary directory
//   node scripts/check-packages.mjs FILE.crate...    crates that `cargo package` wrote (target/package/*.crate)
//   node scripts/check-packages.mjs --publishable-crates
//                                                    prints "NAME CRATE-FILE" for each workspace member meant for
//                                                    crates.io (no `publish = false`)
//
// An npm package: the tarball holds README.md, LICENSE-MIT and LICENSE-APACHE (as in this repository), nothing from
// tests or fixtures, no source map, .tgz or node_modules, no file over 2 MiB; package.json names no placeholder URL;
// `main`, `module`, `types`, `bin` and every target of the `exports` map are files of the tarball (a conditions
// object lists `types` first, as TypeScript requires); and TypeScript resolves its types as an application would:
// the tarball is installed (`npm install --no-save`, with its dependencies) into a scratch project, whose consumer
// imports every exported subpath that has types and is compiled with `tsc --noEmit` (strict, no skipLibCheck) under
// `moduleResolution` "bundler" (module esnext, consumer.ts) and "node16" (module node16, consumer.mts; and
// consumer.cts with `require` for a CommonJS package). What the declarations import from outside the package is
// installed beside it, as an application would have it: @types/node when they import a Node.js module (the version
// of the package's devDependencies, if listed), and a peer dependency they import (React), with its @types package
// when it has no types of its own. A dependency whose types they use must bring them or have its @types package in
// `dependencies` (an application does not get the package's devDependencies), and an import that is neither a
// dependency nor a peer dependency fails the check.
//
// A crate: LICENSE-MIT and LICENSE-APACHE are files (not links) equal to the repository's; the README that its
// Cargo.toml names is there; nothing from fuzz/, target/, node_modules/ or a fixtures directory, no .tgz, .crate,
// .wasm or source map, no file over 1 MiB, under 10 MiB in all; no placeholder URL in its Cargo.toml.
//
// Exit status 1 when a check failed; every check runs, and each failure is printed.
import { spawnSync } from "node:child_process";
import { builtinModules } from "node:module";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TSC = join(REPO_ROOT, "node_modules/typescript/bin/tsc");
const LICENSES = ["LICENSE-MIT", "LICENSE-APACHE"];
const PLACEHOLDER_URL = /\bexample\.(invalid|com|org|net)\b|\blocalhost\b|\bTODO\b/i;
const NPM_MAX_FILE_BYTES = 2 * 1024 * 1024;
const CRATE_MAX_FILE_BYTES = 1024 * 1024;
const CRATE_MAX_TOTAL_BYTES = 10 * 1024 * 1024;

let failures = 0;
function fail(what, message) {
  failures += 1;
  console.error(`check-packages: ${what}: FAIL: ${message}`);
}
const note = (what, message) => console.log(`check-packages: ${what}: ${message}`);

/** Runs a command; its output, or a failure with what it printed. */
function run(command, args, options = {}) {
  const limits = { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 300_000 };
  const result = spawnSync(command, args, { ...limits, ...options });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  const ok = result.status === 0;
  const error = result.error ? `${result.error.message}\n` : "";
  return { ok, stdout: result.stdout ?? "", output: `${error}${output}` };
}

// ---------------------------------------------------------------------------------------------------------------
// crates

function publishableCrates() {
  const metadata = run("cargo", ["metadata", "--no-deps", "--format-version", "1"], { cwd: REPO_ROOT });
  if (!metadata.ok) {
    console.error(metadata.output);
    process.exit(1);
  }
  const { packages, workspace_members: members, target_directory: target } = JSON.parse(metadata.stdout);
  // `publish`: null for any registry, [] for `publish = false`.
  return packages
    .filter((pkg) => members.includes(pkg.id) && (pkg.publish === null || pkg.publish.length > 0))
    .map((pkg) => ({ name: pkg.name, file: join(target, "package", `${pkg.name}-${pkg.version}.crate`) }));
}

/** The entries of a .tar.gz: `{ type, size, path }` (type "-" for a file, "l" for a link, "d" for a directory). */
function tarEntries(file) {
  const listing = run("tar", ["-tvzf", file]);
  if (!listing.ok) throw new Error(`tar -tvzf ${file}: ${listing.output}`);
  return listing.stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      // -rw-r--r-- 0/0   11357 2006-07-24 03:21 durable-ws-0.1.0/LICENSE-APACHE
      const match = line.match(/^(\S)\S*\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.*?)(?: -> .*)?$/);
      if (!match) throw new Error(`tar -tvzf ${file}: cannot read "${line}"`);
      return { type: match[1], size: Number(match[2]), path: match[3] };
    });
}

function tarFile(archive, path) {
  return run("tar", ["-xzOf", archive, path]).stdout;
}

function checkCrate(file) {
  const what = basename(file);
  if (!existsSync(file)) return fail(what, `${file} does not exist (did cargo package run?)`);
  const prefix = basename(file, ".crate");
  const entries = tarEntries(file);
  const byPath = new Map();
  let total = 0;
  for (const entry of entries) {
    if (!entry.path.startsWith(`${prefix}/`)) fail(what, `${entry.path} is outside ${prefix}/`);
    const path = entry.path.slice(prefix.length + 1);
    byPath.set(path, entry);
    total += entry.size;
    if (/(^|\/)(fuzz|target|node_modules|test-output|fixtures)\//.test(path)) fail(what, `ships ${path}`);
    if (/\.(tgz|crate|wasm|map)$/.test(path)) fail(what, `ships ${path}`);
    if (entry.size > CRATE_MAX_FILE_BYTES) fail(what, `${path} is ${entry.size} B (over ${CRATE_MAX_FILE_BYTES})`);
  }
  if (total > CRATE_MAX_TOTAL_BYTES) fail(what, `${total} B unpacked (over ${CRATE_MAX_TOTAL_BYTES})`);
  for (const license of LICENSES) {
    const entry = byPath.get(license);
    if (!entry) fail(what, `no ${license}`);
    else if (entry.type !== "-") fail(what, `${license} is not a file (tar type ${entry.type})`);
    else if (tarFile(file, `${prefix}/${license}`) !== readFileSync(join(REPO_ROOT, license), "utf8")) {
      fail(what, `${license} differs from the repository's`);
    }
  }
  const manifest = tarFile(file, `${prefix}/Cargo.toml`);
  if (!manifest) fail(what, "no Cargo.toml");
  if (!/^license(-file)? = /m.test(manifest)) fail(what, "Cargo.toml declares no license");
  const url = manifest.split("\n").find((line) => /^\w+ = "https?:/.test(line) && PLACEHOLDER_URL.test(line));
  if (url) fail(what, `a placeholder URL in Cargo.toml: ${url}`);
  const readme = manifest.match(/^readme = "([^"]+)"/m)?.[1];
  if (readme && !byPath.has(readme)) fail(what, `Cargo.toml names the readme ${readme}, which is not in the crate`);
  const files = entries.filter((entry) => entry.type === "-").length;
  const packed = statSync(file).size;
  note(what, `${files} files, ${total} B unpacked, ${packed} B packed, ${readme ? `readme ${readme}` : "no readme"}`);
}

// ---------------------------------------------------------------------------------------------------------------
// npm packages

/** Every target string of an `exports` value, with the chain of conditions that leads to it. */
function exportTargets(value, conditions = []) {
  if (typeof value === "string") return [{ target: value, conditions }];
  if (Array.isArray(value)) return value.flatMap((item) => exportTargets(item, conditions));
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([key, item]) => exportTargets(item, [...conditions, key]));
  }
  return []; // null: an excluded subpath
}

/** The `exports` map as `{ subpath: value }` (sugar: a string, an array or a conditions object for "."). */
function exportsMap(exports) {
  if (exports === undefined) return undefined;
  if (typeof exports === "string" || Array.isArray(exports)) return { ".": exports };
  const keys = Object.keys(exports);
  if (keys.length && keys.every((key) => !key.startsWith("."))) return { ".": exports };
  return exports;
}

/** The conditions objects of an `exports` value (nested ones too). */
function conditionObjects(value) {
  if (!value || typeof value !== "object") return [];
  if (Array.isArray(value)) return value.flatMap(conditionObjects);
  return [value, ...Object.values(value).flatMap(conditionObjects)];
}

/** Whether a target path (relative, maybe with one `*`) names files of the tarball. */
function targetExists(target, files) {
  const path = posix.normalize(target.replace(/^\.\//, ""));
  if (!path.includes("*")) return files.has(path);
  const [head, tail] = path.split("*");
  return [...files].some((file) => file.startsWith(head) && file.endsWith(tail));
}

/** The declaration file TypeScript takes for a JavaScript file of the tarball, if any. */
function declarationFor(path, files) {
  if (/\.d\.[cm]?ts$/.test(path)) return files.has(path) ? path : undefined;
  const match = path.match(/^(.*)\.([cm]?)js$/);
  const candidate = match ? `${match[1]}.d.${match[2]}ts` : undefined;
  return candidate && files.has(candidate) ? candidate : undefined;
}

/** The module specifiers that a declaration file imports (import/export from, import(), reference types). */
function declarationImports(text) {
  const specifiers = new Set();
  for (const match of text.matchAll(/^\/\/\/\s*<reference\s+types=["']([^"']+)["']/gm)) specifiers.add(match[1]);
  // Comments may quote code (`import { WebSocket } from "ws"` in an option's documentation).
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
  for (const pattern of [
    /\b(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\(\s*["']([^"']+)["']\s*\)/g,
  ]) {
    for (const match of code.matchAll(pattern)) specifiers.add(match[1]);
  }
  return specifiers;
}

/** The package name of a bare module specifier ("react/jsx-runtime" → "react", "@a/b/c" → "@a/b"). */
const packageOf = (specifier) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/");
const typesPackageOf = (name) => `@types/${name.startsWith("@") ? name.slice(1).replace("/", "__") : name}`;
/** Whether an installed package has declarations of its own. */
function shipsTypes(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  return Boolean(
    manifest.types ||
      manifest.typings ||
      existsSync(join(dir, "index.d.ts")) ||
      JSON.stringify(manifest.exports ?? {}).includes('"types"'),
  );
}
const isNodeBuiltin = (specifier) => specifier.startsWith("node:") || builtinModules.includes(packageOf(specifier));

function checkNpmPackage(dir) {
  const packageDir = resolve(REPO_ROOT, dir);
  const what = `npm ${dir}`;
  if (!existsSync(join(packageDir, "package.json"))) {
    return fail(what, `${packageDir}/package.json does not exist (is it built?)`);
  }
  const scratch = mkdtempSync(join(tmpdir(), "check-packages-"));
  try {
    checkNpmPackageIn(packageDir, what, scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function checkNpmPackageIn(packageDir, what, scratch) {
  const packed = run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", scratch], { cwd: packageDir });
  if (!packed.ok) return fail(what, `npm pack failed:\n${packed.output}`);
  const [report] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("[")));
  const tarball = join(scratch, report.filename);
  const files = new Set(report.files.map((file) => file.path));
  const manifest = JSON.parse(tarFile(tarball, "package/package.json"));
  const sizes = `${report.size} B packed, ${report.unpackedSize} B unpacked`;
  note(what, `${manifest.name}@${manifest.version}: ${files.size} files, ${sizes}`);

  // Contents.
  for (const required of ["README.md", ...LICENSES]) {
    if (!files.has(required)) fail(what, `no ${required} in the tarball`);
  }
  for (const license of LICENSES) {
    const text = files.has(license) ? tarFile(tarball, `package/${license}`) : undefined;
    if (text !== undefined && text !== readFileSync(join(REPO_ROOT, license), "utf8")) {
      fail(what, `${license} differs from the repository's`);
    }
  }
  for (const file of report.files) {
    const path = file.path;
    if (/(^|\/)(tests?|__tests__|fixtures|test-output|node_modules)\//.test(path) || /\.test\.[cm]?[jt]s$/.test(path)) {
      fail(what, `ships ${path} (tests)`);
    }
    if (/\.(map|tgz|tsbuildinfo)$/.test(path) || /(^|\/)node_modules(\/|$)/.test(path)) fail(what, `ships ${path}`);
    if (file.size > NPM_MAX_FILE_BYTES) fail(what, `${path} is ${file.size} B (over ${NPM_MAX_FILE_BYTES})`);
  }
  if (!manifest.license) fail(what, "package.json has no license");
  for (const field of ["repository", "homepage", "bugs"]) {
    const value = JSON.stringify(manifest[field]);
    if (value !== undefined && PLACEHOLDER_URL.test(value)) fail(what, `placeholder ${field}: ${value}`);
  }

  // Entry points.
  const entries = [];
  for (const field of ["main", "module", "types", "typings"]) {
    if (typeof manifest[field] === "string") entries.push([field, manifest[field]]);
  }
  const bins = typeof manifest.bin === "string" ? { [manifest.name]: manifest.bin } : (manifest.bin ?? {});
  for (const [name, path] of Object.entries(bins)) entries.push([`bin ${name}`, path]);
  for (const [field, path] of entries) {
    if (!targetExists(path, files)) fail(what, `${field} "${path}" is not in the tarball`);
  }
  const exports = exportsMap(manifest.exports);
  const typed = []; // [subpath, declaration file]
  if (exports) {
    for (const [subpath, value] of Object.entries(exports)) {
      for (const { target, conditions } of exportTargets(value)) {
        if (!target.startsWith("./")) fail(what, `exports["${subpath}"] target "${target}" does not start with ./`);
        else if (!targetExists(target, files)) {
          const path = conditions.map((condition) => `.${condition}`).join("");
          fail(what, `exports["${subpath}"]${path} "${target}" is not in the tarball`);
        }
        if (conditions.at(-1) === "types" && !/\.d\.[cm]?ts$/.test(target)) {
          fail(what, `exports["${subpath}"] types "${target}" is not a declaration file`);
        }
      }
      for (const object of conditionObjects(value)) {
        const keys = Object.keys(object);
        if (keys.includes("types") && keys[0] !== "types") {
          fail(what, `exports["${subpath}"]: "types" must be the first condition (TypeScript reads them in order)`);
        }
        if (keys.includes("default") && keys.at(-1) !== "default") {
          fail(what, `exports["${subpath}"]: "default" must be the last condition`);
        }
      }
      if (subpath.includes("*")) continue;
      // The declarations TypeScript would find: a `types` target, else those beside a JavaScript target.
      const targets = exportTargets(value);
      const declaration =
        targets.find(({ conditions }) => conditions.includes("types"))?.target.replace(/^\.\//, "") ??
        targets.map(({ target }) => declarationFor(target.replace(/^\.\//, ""), files)).find(Boolean);
      if (declaration) typed.push([subpath, declaration]);
      else note(what, `exports["${subpath}"] has no types: not imported by the TypeScript consumer`);
    }
  } else {
    const declaration = manifest.types ?? manifest.typings ?? declarationFor(manifest.main ?? "index.js", files);
    if (declaration) typed.push([".", declaration.replace(/^\.\//, "")]);
  }
  if (!typed.length) {
    note(what, "no types: no TypeScript check");
    return;
  }

  // What the declarations import from outside the package.
  const dependencies = new Set(Object.keys(manifest.dependencies ?? {}));
  const peers = new Set(Object.keys(manifest.peerDependencies ?? {}));
  const devVersions = manifest.devDependencies ?? {};
  const outside = new Set();
  for (const file of files) {
    if (!/\.d\.[cm]?ts$/.test(file)) continue;
    for (const specifier of declarationImports(tarFile(tarball, `package/${file}`))) {
      if (!specifier.startsWith(".") && !specifier.startsWith("/")) outside.add(specifier);
    }
  }
  const extra = new Set();
  const versioned = (name) => (devVersions[name] ? `${name}@${devVersions[name]}` : name);
  for (const specifier of outside) {
    const name = packageOf(specifier);
    if (isNodeBuiltin(specifier)) extra.add(versioned("@types/node"));
    else if (name === manifest.name || dependencies.has(name)) continue;
    else if (peers.has(name)) {
      // The peer itself, or its @types package when the package's devDependencies say that is where its types are.
      extra.add(devVersions[typesPackageOf(name)] ? versioned(typesPackageOf(name)) : versioned(name));
    } else fail(what, `its declarations import "${specifier}", which is neither a dependency nor a peer dependency`);
  }

  // A scratch project that installs the tarball as an application would.
  const project = join(scratch, "consumer");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), `${JSON.stringify({ name: "consumer", private: true }, null, 2)}\n`);
  const install = ["install", "--no-save", "--no-package-lock", "--ignore-scripts", "--prefer-offline"];
  install.push("--no-audit", "--no-fund");
  const packages = [tarball, ...extra];
  note(what, `npm install ${packages.map((p) => (p === tarball ? basename(p) : p)).join(" ")} (scratch project)`);
  const installed = run("npm", [...install, ...packages], { cwd: project });
  if (!installed.ok) return fail(what, `npm install in the scratch project failed:\n${installed.output}`);
  const hasTypes = (name) =>
    shipsTypes(join(project, "node_modules", name)) || existsSync(join(project, "node_modules", typesPackageOf(name)));
  // A peer installed for its types that has none of its own (React): its @types package too.
  const untyped = [...extra]
    .map((spec) => spec.replace(/(.)@.*$/, "$1"))
    .filter((name) => peers.has(name) && !hasTypes(name))
    .map(typesPackageOf);
  // A dependency whose types the declarations use must bring them, or have its @types package as a dependency too:
  // an application gets only `dependencies` (a devDependency is for building the package).
  for (const name of new Set([...outside].map(packageOf).filter((name) => dependencies.has(name)))) {
    if (hasTypes(name)) continue;
    const types = typesPackageOf(name);
    fail(
      what,
      `its declarations import "${name}", which has no types of its own, and ${types} is not a dependency` +
        `${devVersions[types] ? " (only a devDependency)" : ""}: a TypeScript application gets TS7016 (or, with ` +
        `skipLibCheck, \`any\` for its types). Make ${types} a dependency. (Installed here to check the rest.)`,
    );
    untyped.push(devVersions[types] ? `${types}@${devVersions[types]}` : types);
  }
  if (untyped.length) {
    note(what, `npm install ${untyped.join(" ")} (types the package's own dependencies do not bring)`);
    const more = run("npm", [...install, ...packages, ...untyped], { cwd: project });
    if (!more.ok) return fail(what, `npm install in the scratch project failed:\n${more.output}`);
  }

  const esm = manifest.type === "module";
  const nodeTypes = [...extra].some((p) => p.startsWith("@types/node"));
  // A browser package compiles with the DOM's types, a Node.js one with Node's (no DOM to hide a missing type).
  const lib = nodeTypes ? ["es2022"] : ["es2022", "dom", "dom.iterable"];
  const imports = (style) =>
    typed
      .map(([subpath], index) => {
        const specifier = subpath === "." ? manifest.name : `${manifest.name}/${subpath.slice(2)}`;
        return style === "require"
          ? `import m${index} = require("${specifier}");`
          : `import * as m${index} from "${specifier}";`;
      })
      .join("\n") + `\nexport const modules = [${typed.map((_, index) => `m${index}`).join(", ")}];\n`;
  const node16 = { module: "node16", moduleResolution: "node16" };
  const configurations = [
    ["bundler", { module: "esnext", moduleResolution: "bundler" }, "consumer.ts", "import"],
    ["node16", node16, "consumer.mts", "import"],
  ];
  if (!esm) configurations.push(["node16 (CommonJS)", node16, "consumer.cts", "require"]);
  else note(what, "an ES module package: no CommonJS (require) consumer");
  for (const [label, options, file, style] of configurations) {
    const base = file.replace(/\./g, "-");
    writeFileSync(join(project, file), imports(style));
    const config = {
      compilerOptions: {
        ...options,
        target: "es2022",
        lib,
        strict: true,
        skipLibCheck: false,
        noEmit: true,
        types: nodeTypes ? ["node"] : [],
      },
      files: [file],
    };
    writeFileSync(join(project, `tsconfig.${base}.json`), `${JSON.stringify(config, null, 2)}\n`);
    const compiled = run(process.execPath, [TSC, "-p", `tsconfig.${base}.json`], { cwd: project });
    const subpaths = typed.map(([subpath]) => subpath).join(" ");
    if (compiled.ok) note(what, `tsc --noEmit, moduleResolution ${label}: ${subpaths} resolve and compile`);
    else fail(what, `tsc --noEmit, moduleResolution ${label} (${subpaths}):\n${compiled.output.trim()}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------

const args = process.argv.slice(2);
if (!args.length) {
  console.error("usage: node scripts/check-packages.mjs DIR... | FILE.crate... | --publishable-crates");
  process.exit(2);
}
if (args[0] === "--publishable-crates") {
  for (const { name, file } of publishableCrates()) console.log(`${name} ${file}`);
  process.exit(0);
}
for (const arg of args) {
  try {
    if (arg.endsWith(".crate")) checkCrate(resolve(REPO_ROOT, arg));
    else checkNpmPackage(arg);
  } catch (error) {
    fail(arg, error.stack ?? String(error));
  }
}
if (failures) {
  console.error(`check-packages: ${failures} failure(s)`);
  process.exit(1);
}
console.log(`check-packages: ${args.join(", ")}: OK`);
