// Checks that the code the READMEs show is the code the tests compile and run. In README.md and pkg-readme.md,
// a fenced code block right after a marker
//
//   <!-- example: PATH -->           the whole file PATH (relative to the repository root)
//   <!-- example: PATH#NAME -->      the lines between `// #region NAME` and `// #endregion NAME` in PATH
//
// must equal that source exactly. Exits 1 listing every mismatch; prints what it checked otherwise.
//
//   node scripts/check-readme-examples.mjs
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DOCUMENTS = ["README.md", "pkg-readme.md"];
const MARKER = /^<!-- example: ([^#\s]+)(?:#([\w-]+))? -->$/;

/** The text a marker points at, or an error message. */
function source(path, region) {
  const file = join(REPO_ROOT, path);
  if (!existsSync(file)) return { error: `${path} does not exist` };
  const text = readFileSync(file, "utf8");
  if (!region) return { text };
  const lines = text.split("\n");
  const start = lines.findIndex((line) => line.trim() === `// #region ${region}`);
  const end = lines.findIndex((line, i) => i > start && line.trim() === `// #endregion ${region}`);
  if (start < 0 || end < 0) return { error: `${path} has no region "${region}" (// #region ${region} … // #endregion ${region})` };
  return { text: `${lines.slice(start + 1, end).join("\n")}\n` };
}

/** The code blocks that follow markers in `document`: `{ line, path, region, code }`. */
function markedBlocks(document) {
  const lines = readFileSync(join(REPO_ROOT, document), "utf8").split("\n");
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = lines[i].trim().match(MARKER);
    if (!marker) continue;
    const open = lines[i + 1] ?? "";
    const fence = open.match(/^(`{3,})\w*$/);
    if (!fence) {
      blocks.push({ line: i + 1, path: marker[1], region: marker[2], error: "the marker is not followed by a code block" });
      continue;
    }
    const close = lines.findIndex((line, j) => j > i + 1 && line === fence[1]);
    if (close < 0) {
      blocks.push({ line: i + 1, path: marker[1], region: marker[2], error: "the code block is not closed" });
      continue;
    }
    blocks.push({ line: i + 1, path: marker[1], region: marker[2], code: `${lines.slice(i + 2, close).join("\n")}\n` });
    i = close;
  }
  return blocks;
}

/** The first line where `a` and `b` differ (1-based), with both versions. */
function firstDifference(a, b) {
  const [x, y] = [a.split("\n"), b.split("\n")];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] !== y[i]) return `line ${i + 1}:\n      README: ${JSON.stringify(x[i])}\n      source: ${JSON.stringify(y[i])}`;
  }
  return "";
}

const problems = [];
let checked = 0;
for (const document of DOCUMENTS) {
  for (const block of markedBlocks(document)) {
    const where = `${document}:${block.line} (${block.path}${block.region ? `#${block.region}` : ""})`;
    if (block.error) {
      problems.push(`${where}: ${block.error}`);
      continue;
    }
    const expected = source(block.path, block.region);
    if (expected.error) {
      problems.push(`${where}: ${expected.error}`);
    } else if (block.code !== expected.text) {
      problems.push(`${where}: differs from the source at ${firstDifference(block.code, expected.text)}`);
    } else {
      checked++;
      console.log(`ok ${where}`);
    }
  }
}
if (problems.length > 0) {
  console.error(`${problems.length} README example(s) out of date:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
if (checked === 0) {
  console.error("no README example found (<!-- example: PATH[#REGION] --> before a code block)");
  process.exit(1);
}
console.log(`${checked} README examples match their sources`);
