// Where the bytes of the npm build's wasm go: section sizes, the largest functions and the total per crate.
//
//   node bench/wasm-profile.mjs [file.wasm]
//
// Without a file it profiles the wasm cargo last built for wasm32 (target/wasm32-unknown-unknown/release/
// durable_ws.wasm), taken through wasm-bindgen and wasm-opt as wasm-pack does but keeping the function names
// (wasm-opt -g), so the sizes are those of the shipped file, with names.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SECTION_NAMES = ["custom", "type", "import", "function", "table", "memory", "global", "export", "start", "element", "code", "data", "data count"];

function reader(bytes) {
  let at = 0;
  const r = {
    get at() {
      return at;
    },
    set at(value) {
      at = value;
    },
    byte: () => bytes[at++],
    u32() {
      let result = 0;
      let shift = 0;
      for (;;) {
        const b = bytes[at++];
        result |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) return result >>> 0;
        shift += 7;
      }
    },
    name() {
      const len = r.u32();
      const text = Buffer.from(bytes.subarray(at, at + len)).toString("utf8");
      at += len;
      return text;
    },
  };
  return r;
}

/** Sections (`{ id, name, size }`), function bodies (`{ index, size }`) and function names of a wasm binary. */
export function parseWasm(bytes) {
  const r = reader(bytes);
  r.at = 8;
  const sections = [];
  const bodies = [];
  const names = new Map();
  let importedFunctions = 0;
  while (r.at < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const start = r.at;
    let name = SECTION_NAMES[id] ?? `unknown ${id}`;
    if (id === 0) {
      const custom = r.name();
      name = `custom "${custom}"`;
      if (custom === "name") readNames(r, start + size, names);
    } else if (id === 2) {
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 0) {
          r.u32();
          importedFunctions++;
        } else if (kind === 1) {
          r.byte();
          const flags = r.u32();
          r.u32();
          if (flags & 1) r.u32();
        } else if (kind === 2) {
          const flags = r.u32();
          r.u32();
          if (flags & 1) r.u32();
        } else if (kind === 3) {
          r.byte();
          r.byte();
        } else if (kind === 4) {
          r.byte();
          r.u32();
        }
      }
    } else if (id === 10) {
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        const bodySize = r.u32();
        bodies.push({ index: importedFunctions + i, size: bodySize });
        r.at += bodySize;
      }
    }
    sections.push({ id, name, size });
    r.at = start + size;
  }
  return { sections, bodies, names };
}

function readNames(r, end, names) {
  while (r.at < end) {
    const kind = r.byte();
    const size = r.u32();
    const next = r.at + size;
    if (kind === 1) {
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        const index = r.u32();
        names.set(index, r.name());
      }
    }
    r.at = next;
  }
}

/** The crate a (demangled) function name belongs to: its first path segment, generics stripped. */
export function crateOf(name) {
  if (!name) return "(unnamed)";
  let text = name.replace(/^<+/, "");
  if (text.startsWith("&") || text.startsWith("*")) text = text.replace(/^[&*](mut |const )?/, "");
  if (text.startsWith("[")) return "core (slices)";
  const head = text.split(/::|[ <>(]/)[0];
  if (/^__wbg|^__wbindgen|^__externref/.test(head)) return "wasm-bindgen glue";
  return head || "(unnamed)";
}

/** The project's wasm-opt flags (Cargo.toml's wasm-pack release profile), `-O` as wasm-pack's default. */
function wasmOptFlags(repoRoot) {
  const toml = readFileSync(join(repoRoot, "Cargo.toml"), "utf8");
  const match = toml.match(/\[package\.metadata\.wasm-pack\.profile\.release\][^[]*?wasm-opt\s*=\s*\[([^\]]*)\]/s);
  if (!match) return ["-O"];
  return [...match[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]);
}

/** The cargo wasm taken through wasm-bindgen and wasm-opt with names kept; returns the optimised bytes. */
export function namedBuild(repoRoot) {
  const input = join(repoRoot, "target/wasm32-unknown-unknown/release/durable_ws.wasm");
  if (!existsSync(input)) throw new Error(`${input} is missing: build the npm package first`);
  const dir = mkdtempSync(join(tmpdir(), "durable-ws-wasm-profile-"));
  try {
    const bindgen = [join(homedir(), ".cargo/bin/wasm-bindgen"), "wasm-bindgen"].find((p) => p === "wasm-bindgen" || existsSync(p));
    execFileSync(bindgen, ["--target", "web", "--out-dir", dir, "--out-name", "profile", input], { stdio: "pipe" });
    const wasmOpt = join(repoRoot, "node_modules/.bin/wasm-opt");
    const optimised = join(dir, "profile.opt.wasm");
    execFileSync(wasmOpt, [...wasmOptFlags(repoRoot), "-g", join(dir, "profile_bg.wasm"), "-o", optimised], { stdio: "pipe" });
    return { bytes: readFileSync(optimised), flags: wasmOptFlags(repoRoot) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `{ sections, topFunctions, crates, codeBytes }` of a wasm binary with a name section. */
export function profile(bytes, top = 25) {
  const { sections, bodies, names } = parseWasm(bytes);
  const codeBytes = bodies.reduce((sum, body) => sum + body.size, 0);
  const named = bodies.map((body) => ({ ...body, name: names.get(body.index) ?? `func ${body.index}` }));
  const topFunctions = [...named].sort((a, b) => b.size - a.size).slice(0, top);
  const perCrate = new Map();
  for (const body of named) {
    const crate = crateOf(names.get(body.index));
    const entry = perCrate.get(crate) ?? { crate, functions: 0, size: 0 };
    entry.functions++;
    entry.size += body.size;
    perCrate.set(crate, entry);
  }
  const crates = [...perCrate.values()].sort((a, b) => b.size - a.size);
  return { sections: sections.filter((s) => !s.name.startsWith('custom "name"')), topFunctions, crates, codeBytes };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const repoRoot = join(fileURLToPath(import.meta.url), "..", "..");
  const file = process.argv[2];
  const bytes = file ? readFileSync(file) : namedBuild(repoRoot).bytes;
  const result = profile(bytes, 40);
  console.log("sections:");
  console.table(result.sections.map(({ name, size }) => ({ name, size })));
  console.log(`code: ${result.codeBytes} bytes in functions; per crate:`);
  console.table(result.crates.slice(0, 25));
  console.log("largest functions:");
  console.table(result.topFunctions.map(({ name, size }) => ({ size, name: name.slice(0, 140) })));
}
