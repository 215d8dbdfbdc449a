// Showing a value: a format badge and the pretty text, JSON and YAML lightly highlighted.

import { h } from "./dom.js";

const JSON_TOKEN = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

function highlightJson(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(JSON_TOKEN)) {
    out.push(text.slice(last, m.index));
    if (m[1]) out.push(h(m[2] ? "span.tk-key" : "span.tk-str", m[1]), m[2] || "");
    else if (m[3]) out.push(h("span.tk-lit", m[3]));
    else out.push(h("span.tk-num", m[4]));
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out;
}

function highlightYaml(text) {
  return text.split("\n").flatMap((line, i) => {
    const m = line.match(/^(\s*(?:- )*)([^:#\s][^:#]*?)(:)(\s|$)(.*)$/);
    const parts = m ? [m[1], h("span.tk-key", m[2]), m[3], m[4], h("span.tk-str", m[5])] : [line];
    return i ? ["\n", ...parts] : parts;
  });
}

export function formatBadge(format) {
  return h(`span.badge.fmt-${format}`, { dataset: { testid: "format" } }, format.toUpperCase());
}

export function valueView(format, pretty) {
  const body = format === "json" ? highlightJson(pretty) : format === "yaml" ? highlightYaml(pretty) : pretty;
  return h(`pre.value.fmt-${format}`, { dataset: { testid: "value" } },
    format === "empty" ? h("span.muted", "(empty value)") : body);
}
