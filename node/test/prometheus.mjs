// A strict reader of the Prometheus text exposition format 0.0.4, for the tests: it throws on anything a Prometheus
// server would refuse (a sample before its TYPE, a bad name, label or value, an escape it does not know, a series
// twice, a histogram whose buckets are not cumulative or lack +Inf, _sum or _count).

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseValue(text, line) {
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new Error(`not a value: ${text} (${line})`);
  return Number(text);
}

/** `{a="x",b="y"}` from `i` (at `{`): the labels and the index after `}`. */
function parseLabels(line, i) {
  const labels = {};
  i++;
  for (;;) {
    if (line[i] === "}") return [labels, i + 1];
    let name = "";
    while (i < line.length && line[i] !== "=") name += line[i++];
    if (!LABEL.test(name)) throw new Error(`bad label name "${name}": ${line}`);
    if (name in labels) throw new Error(`label ${name} twice: ${line}`);
    if (line[++i] !== '"') throw new Error(`label value must be quoted: ${line}`);
    i++;
    let value = "";
    for (;;) {
      const c = line[i++];
      if (c === undefined) throw new Error(`unterminated label value: ${line}`);
      if (c === '"') break;
      if (c === "\\") {
        const e = line[i++];
        if (e === "\\") value += "\\";
        else if (e === '"') value += '"';
        else if (e === "n") value += "\n";
        else throw new Error(`unknown escape \\${e}: ${line}`);
      } else value += c;
    }
    labels[name] = value;
    if (line[i] === ",") i++;
    else if (line[i] !== "}") throw new Error(`expected , or } after a label: ${line}`);
  }
}

/**
 * Parses a scrape: a Map of family name → `{ help, type, samples: [{ name, labels, value }] }`, in order. Checks
 * every histogram series (buckets ascending and cumulative, `+Inf` = `_count`, a `_sum`).
 */
export function parsePrometheus(text) {
  if (!text.endsWith("\n")) throw new Error("the text must end with a newline");
  const families = new Map();
  const seen = new Set();
  const familyOf = (name) => {
    if (families.has(name)) return families.get(name);
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = name.endsWith(suffix) ? name.slice(0, -suffix.length) : undefined;
      if (base && families.get(base)?.type === "histogram") return families.get(base);
    }
    return undefined;
  };
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!match) continue; // a comment
      const [, what, name, rest] = match;
      if (!NAME.test(name)) throw new Error(`bad metric name: ${line}`);
      let family = families.get(name);
      if (!family) families.set(name, (family = { help: undefined, type: undefined, samples: [] }));
      if (what === "HELP") {
        if (family.help !== undefined) throw new Error(`HELP twice: ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) throw new Error(`unknown escape in HELP: ${line}`);
        family.help = rest.replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
      } else {
        if (family.type !== undefined) throw new Error(`TYPE twice: ${name}`);
        if (family.samples.length > 0) throw new Error(`TYPE after samples: ${name}`);
        if (!TYPES.has(rest)) throw new Error(`unknown type: ${line}`);
        family.type = rest;
      }
      continue;
    }
    let i = 0;
    while (i < line.length && line[i] !== "{" && line[i] !== " ") i++;
    const name = line.slice(0, i);
    if (!NAME.test(name)) throw new Error(`bad sample name: ${line}`);
    let labels = {};
    if (line[i] === "{") [labels, i] = parseLabels(line, i);
    if (line[i] !== " ") throw new Error(`expected a space before the value: ${line}`);
    const [valueText, timestamp, extra] = line.slice(i + 1).split(" ");
    if (extra !== undefined || (timestamp !== undefined && !/^-?\d+$/.test(timestamp))) throw new Error(`bad value or timestamp: ${line}`);
    const value = parseValue(valueText, line);
    const family = familyOf(name);
    if (!family || family.type === undefined) throw new Error(`sample before its TYPE: ${line}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`series twice: ${line}`);
    seen.add(key);
    family.samples.push({ name, labels, value });
  }
  for (const [name, family] of families) {
    if (family.type === "histogram") checkHistogram(name, family);
  }
  return families;
}

function checkHistogram(name, family) {
  const series = new Map();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (!series.has(key)) series.set(key, { buckets: [], sum: undefined, count: undefined });
    const one = series.get(key);
    if (sample.name === `${name}_bucket`) {
      if (le === undefined) throw new Error(`${name}: a bucket without le`);
      one.buckets.push([parseValue(le, le), sample.value]);
    } else if (sample.name === `${name}_sum`) one.sum = sample.value;
    else if (sample.name === `${name}_count`) one.count = sample.value;
    else throw new Error(`${name}: unexpected sample ${sample.name}`);
  }
  for (const [key, { buckets, sum, count }] of series) {
    if (sum === undefined || count === undefined) throw new Error(`${name}${key}: no _sum or _count`);
    if (buckets.length === 0 || buckets.at(-1)[0] !== Infinity) throw new Error(`${name}${key}: no +Inf bucket last`);
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i][0] > buckets[i - 1][0])) throw new Error(`${name}${key}: buckets not ascending`);
      if (buckets[i][1] < buckets[i - 1][1]) throw new Error(`${name}${key}: buckets not cumulative`);
    }
    if (buckets.at(-1)[1] !== count) throw new Error(`${name}${key}: +Inf bucket ${buckets.at(-1)[1]} ≠ _count ${count}`);
  }
}

/** The value of series `name` with exactly `labels` in a parsed scrape (`undefined`: not there). */
export function sample(families, name, labels = {}) {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const family of families.values()) {
    for (const s of family.samples) {
      if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want) return s.value;
    }
  }
  return undefined;
}
