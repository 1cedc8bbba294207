// Where the bytes of the npm build's wasm go: section sizes, the largest functions and the total per crate.
//
//   node bench/wasm-profile.mjs [file.wasm]
//
// Without a file it builds the npm build's wasm (crates/npm, as scripts/common.sh's build_npm_wasm does) and takes it
// through wasm-bindgen and wasm-opt -Oz as the package build does but keeping the function names (wasm-opt -g), so
// the sizes are those of the shipped file, with names (and with the import and export names not yet minified).
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
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
        bodies.push({ index: importedFunctions + i, size: bodySize, start: r.at });
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

const VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);

/** The functions each body calls directly (`call`, `return_call`): `Map<caller index, Set<callee index>>`. */
export function directCalls(bytes, bodies) {
  const calls = new Map();
  for (const body of bodies) {
    const r = reader(bytes);
    r.at = body.start;
    const end = body.start + body.size;
    const callees = new Set();
    const groups = r.u32();
    for (let i = 0; i < groups; i++) {
      r.u32();
      r.byte();
    }
    const sleb = () => {
      while (r.byte() & 0x80);
    };
    while (r.at < end) {
      const op = r.byte();
      if (op === 0x02 || op === 0x03 || op === 0x04) {
        const peek = bytes[r.at];
        if (peek === 0x40 || VALTYPES.has(peek)) r.at++;
        else sleb();
      } else if (op === 0x0c || op === 0x0d || (op >= 0x20 && op <= 0x26) || op === 0xd2) r.u32();
      else if (op === 0x0e) {
        const n = r.u32();
        for (let i = 0; i <= n; i++) r.u32();
      } else if (op === 0x10 || op === 0x12) callees.add(r.u32());
      else if (op === 0x11 || op === 0x13) {
        r.u32();
        r.u32();
      } else if (op === 0x1c) {
        const n = r.u32();
        r.at += n;
      } else if (op >= 0x28 && op <= 0x3e) {
        r.u32();
        r.u32();
      } else if (op === 0x3f || op === 0x40 || op === 0xd0) r.at++;
      else if (op === 0x41 || op === 0x42) sleb();
      else if (op === 0x43) r.at += 4;
      else if (op === 0x44) r.at += 8;
      else if (op === 0xfc) {
        const sub = r.u32();
        if (sub === 8) {
          r.u32();
          r.at++;
        } else if (sub === 9 || sub === 13 || (sub >= 15 && sub <= 17)) r.u32();
        else if (sub === 10) r.at += 2;
        else if (sub === 11) r.at++;
        else if (sub === 12 || sub === 14) {
          r.u32();
          r.u32();
        }
      } else if (op === 0xfd) throw new Error("SIMD instructions are not decoded");
      // Every other opcode has no immediates.
    }
    calls.set(body.index, callees);
  }
  return calls;
}

/**
 * The functions outside `isTarget` that call a function inside it directly, with the targets they call:
 * who pulls a piece of code (e.g. `core::fmt`) into the binary.
 */
export function callersInto(bytes, isTarget) {
  const { bodies, names } = parseWasm(bytes);
  const calls = directCalls(bytes, bodies);
  const name = (index) => names.get(index) ?? `func ${index}`;
  const result = [];
  for (const [caller, callees] of calls) {
    if (isTarget(name(caller))) continue;
    const into = [...callees].filter((callee) => isTarget(name(callee))).map(name);
    if (into.length) result.push({ caller: name(caller), into });
  }
  const targetBytes = bodies.filter((b) => isTarget(name(b.index))).reduce((sum, b) => sum + b.size, 0);
  return { callers: result, targetBytes };
}

/** The crate a (demangled) function name belongs to: its first path segment, generics stripped. */
export function crateOf(name) {
  if (!name) return "(unnamed)";
  let text = name.replace(/^<+/, "");
  if (text.startsWith("&") || text.startsWith("*")) text = text.replace(/^[&*](mut |const )?/, "");
  if (text.startsWith("[")) return "core (slices)";
  const head = text.split(/::|[ <>(]/)[0].replace(/\[[0-9a-f]+\]$/, "");
  if (/^__wbg|^__wbindgen|^__externref/.test(head)) return "wasm-bindgen glue";
  if (/^durablewebsocket_/.test(head)) return "durable_ws (exported methods)";
  if (/^(u8|u16|u32|u64|usize|i32|i64|f64|str|char)$/.test(head)) return "core";
  return head || "(unnamed)";
}

/** The package build's wasm-opt flags (scripts/minify-pkg.mjs), without its renaming of imports and exports. */
function wasmOptFlags() {
  const features = ["bulk-memory", "nontrapping-float-to-int", "sign-ext", "mutable-globals", "reference-types", "multivalue"];
  return ["-Oz", ...features.map((f) => `--enable-${f}`)];
}

/**
 * The npm build's wasm (cargo, features of the npm build) taken through wasm-bindgen and wasm-opt with names kept;
 * returns the optimised bytes. Built in the npm build's target directory (target/npm-package), and copied away at once.
 */
export function namedBuild(repoRoot) {
  const dir = mkdtempSync(join(tmpdir(), "durable-ws-wasm-profile-"));
  const input = join(dir, "durable_ws.wasm");
  try {
    // The npm build's own build (scripts/common.sh): an up-to-date package means no rebuild here.
    const env = { ...process.env, PATH: `${join(homedir(), ".cargo/bin")}:${process.env.PATH}` };
    execFileSync("bash", ["-c", 'source scripts/common.sh && build_npm_wasm >/dev/null && echo "$NPM_WASM"'], {
      cwd: repoRoot,
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    copyFileSync(join(repoRoot, "target/npm-package/wasm32-unknown-unknown/release/durable_ws_npm.wasm"), input);
    const bindgen = [join(homedir(), ".cargo/bin/wasm-bindgen"), "wasm-bindgen"].find((p) => p === "wasm-bindgen" || existsSync(p));
    execFileSync(bindgen, ["--target", "web", "--out-dir", dir, "--out-name", "profile", input], { stdio: "pipe" });
    const wasmOpt = join(repoRoot, "node_modules/.bin/wasm-opt");
    const optimised = join(dir, "profile.opt.wasm");
    execFileSync(wasmOpt, [...wasmOptFlags(), "-g", join(dir, "profile_bg.wasm"), "-o", optimised], { stdio: "pipe" });
    return { bytes: readFileSync(optimised), flags: ["-Oz"] }; // the features enabled are left out
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

/** Formatting machinery: `core::fmt` and what only it uses. */
export const isFormatting = (name) => /core(\[[0-9a-f]+\])?::(fmt|str::count)|Formatter|fmt::write|pad_integral|core::fmt::num/.test(name);

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
  const fmt = callersInto(bytes, isFormatting);
  console.log(`core::fmt and its helpers: ${fmt.targetBytes} bytes; called directly from:`);
  console.table(fmt.callers.map(({ caller, into }) => ({ caller: caller.slice(0, 100), into: into.join(", ").slice(0, 120) })));
}
