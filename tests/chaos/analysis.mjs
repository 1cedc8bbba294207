// What a received stream of numbered messages (`${prefix}${n}`, n = 1..count, sent in order) says about delivery.

/**
 * `delivered`: distinct numbers received; `lost`: numbers never received; `duplicated`: receptions beyond the
 * first; `reordered`: first receptions that came after a higher number.
 */
export function analyze(received, prefix, count) {
  const seen = new Set();
  let duplicated = 0;
  let reordered = 0;
  let highest = 0;
  for (const message of received) {
    if (typeof message !== "string" || !message.startsWith(prefix)) continue;
    const n = Number(message.slice(prefix.length));
    if (seen.has(n)) {
      duplicated++;
      continue;
    }
    seen.add(n);
    if (n < highest) reordered++;
    else highest = n;
  }
  let lost = 0;
  for (let n = 1; n <= count; n++) if (!seen.has(n)) lost++;
  return { delivered: seen.size, lost, duplicated, reordered };
}

/** A fixed-width text table: `columns` are keys of the `rows` objects. */
export function table(columns, rows) {
  const cells = [columns, ...rows.map((row) => columns.map((key) => String(row[key] ?? "")))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i].length)));
  const line = (values) => `| ${values.map((value, i) => value.padEnd(widths[i])).join(" | ")} |`;
  return [line(cells[0]), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.slice(1).map(line)].join("\n");
}
