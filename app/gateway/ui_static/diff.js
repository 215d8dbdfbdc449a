// A line diff (longest common subsequence) rendered as a unified view with a little context.

import { h } from "./dom.js";

const MAX_CELLS = 4_000_000; // beyond this the two texts are shown whole, not diffed

export function diffLines(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  // Trim the common head and tail first: edits are usually small.
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
  const xs = x.slice(head, x.length - tail);
  const ys = y.slice(head, y.length - tail);
  const out = x.slice(0, head).map((l) => [" ", l]);
  if (xs.length * ys.length > MAX_CELLS) {
    out.push(...xs.map((l) => ["-", l]), ...ys.map((l) => ["+", l]));
  } else {
    const n = xs.length;
    const m = ys.length;
    const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i][j] = xs[i] === ys[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && xs[i] === ys[j]) {
        out.push([" ", xs[i]]);
        i++;
        j++;
      } else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) {
        out.push(["+", ys[j++]]);
      } else {
        out.push(["-", xs[i++]]);
      }
    }
  }
  out.push(...x.slice(x.length - tail).map((l) => [" ", l]));
  return out;
}

// Unified diff from `a` (older) to `b` (newer), unchanged runs folded beyond `context` lines.
export function renderDiff(a, b, { context = 3, labelA = "a", labelB = "b" } = {}) {
  const lines = diffLines(a, b);
  const changed = lines.map(([op]) => op !== " ");
  const added = lines.filter(([op]) => op === "+").length;
  const removed = lines.filter(([op]) => op === "-").length;
  const rows = [];
  let skipped = 0;
  lines.forEach(([op, line], idx) => {
    let near = false;
    for (let k = Math.max(0, idx - context); k <= Math.min(lines.length - 1, idx + context); k++) near ||= changed[k];
    if (!near) {
      skipped++;
      return;
    }
    if (skipped) rows.push(h("div.diff-fold", `⋯ ${skipped} unchanged line${skipped > 1 ? "s" : ""}`));
    skipped = 0;
    const cls = op === "+" ? ".add" : op === "-" ? ".del" : "";
    rows.push(h(`div.diff-line${cls}`, h("span.diff-op", op), line));
  });
  if (skipped) rows.push(h("div.diff-fold", `⋯ ${skipped} unchanged line${skipped > 1 ? "s" : ""}`));
  return h("div.diff", { dataset: { testid: "diff", added, removed } },
    h("div.diff-head", h("span.del", `− ${labelA}`), h("span.add", `+ ${labelB}`),
      h("span.muted", `${added} added, ${removed} removed`)),
    added + removed === 0 ? h("div.diff-fold", "identical") : rows);
}
