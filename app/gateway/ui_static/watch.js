// The Watch view: follows a prefix over /watch/sse. Every SSE event id is a revision, so the browser's
// own reconnect (Last-Event-ID) resumes right after the last revision shown: no gap, no duplicate.
// When the server has compacted that revision away, the stream says so and the pane shows it.

import { b64, text } from "./api.js";
import { clear, h } from "./dom.js";
import { keysHash, folderOf } from "./keys.js";

const MAX_ROWS = 2000;
const REOPEN_MS = 2000;

export class WatchView {
  constructor(el) {
    this.el = el;
    this.source = null;
    this.lastRev = 0;
    this.count = 0;
    this.dupes = 0;
    this.reconnects = 0;
    this.build();
  }

  build() {
    this.prefixInput = h("input#watch-prefix", { placeholder: "prefix (empty = every key)", spellcheck: "false" });
    this.startInput = h("input#watch-start", { placeholder: "now", size: 8, title: "first revision (empty = from now on)" });
    this.prevKv = h("input#watch-prevkv", { type: "checkbox", checked: true });
    this.toggle = h("button.primary#watch-toggle", { on: { click: () => (this.source ? this.stop() : this.start()) } }, "Watch");
    this.status = h("span.watch-status#watch-status", { dataset: { state: "idle" } }, "not watching");
    this.banner = h("div#watch-banner");
    this.counters = h("span.muted#watch-counters");
    this.rows = h("tbody#watch-events");
    clear(this.el,
      h("div.toolbar",
        h("label", "Prefix ", this.prefixInput),
        h("label", "from revision ", this.startInput),
        h("label.check", this.prevKv, " previous values"),
        this.toggle,
        h("button#watch-clear", { on: { click: () => { clear(this.rows); this.count = 0; this.updateCounters(); } } }, "Clear"),
        h("div.spacer"), this.status),
      this.banner,
      h("div.card.events-card",
        h("table.events", h("thead", h("tr", h("th", "rev"), h("th", "event"), h("th", "key"), h("th", "value"), h("th", "previous"))), this.rows)),
      h("div.footer-line", this.counters));
  }

  reset() {
    this.stop();
  }

  hide() {}

  show(params) {
    if (params.prefix !== undefined && !this.source) {
      this.prefixInput.value = params.prefix;
      if (params.start) this.startInput.value = params.start;
      this.start();
    }
  }

  url(resumeAfter) {
    const q = new URLSearchParams({ key: this.prefix, prefix: "true", progress_interval: "5" });
    if (this.prevKv.checked) q.set("prev_kv", "true");
    if (resumeAfter) q.set("last_event_id", String(resumeAfter));
    else if (this.startRev) q.set("start_revision", String(this.startRev));
    return `/watch/sse?${q}`;
  }

  setStatus(state, message) {
    this.status.dataset.state = state;
    this.status.textContent = message;
  }

  start() {
    this.stop();
    this.prefix = this.prefixInput.value;
    this.startRev = Number(this.startInput.value) || 0;
    this.lastRev = 0;
    this.dupes = 0;
    this.reconnects = 0;
    this.created = false;
    clear(this.banner);
    this.toggle.textContent = "Stop";
    this.open(0);
  }

  open(resumeAfter) {
    this.setStatus("connecting", "connecting…");
    const source = new EventSource(this.url(resumeAfter));
    this.source = source;
    source.addEventListener("created", (e) => {
      const d = JSON.parse(e.data);
      const resumed = this.created;
      this.created = true;
      this.setStatus("live", resumed ? `live — resumed at revision ${d.start_revision}` : `live from revision ${d.start_revision}`);
      if (resumed) {
        this.reconnects++;
        this.rows.prepend(h("tr.resume-mark", h("td", { colSpan: 5 },
          `reconnected — resumed after revision ${Number(d.start_revision) - 1}, nothing missed`)));
      }
      this.updateCounters();
    });
    source.addEventListener("progress", (e) => {
      const rev = JSON.parse(e.data).revision;
      this.setStatus("live", `live — up to date at revision ${rev}`);
    });
    source.onmessage = (e) => this.onEvents(JSON.parse(e.data));
    source.addEventListener("compacted", (e) => {
      const d = JSON.parse(e.data);
      source.close();
      this.source = null;
      this.toggle.textContent = "Watch";
      this.setStatus("compacted", "stopped: history compacted");
      clear(this.banner, h("div.notice.error#watch-compacted", { dataset: { testid: "compacted", compactRevision: d.compact_revision } },
        h("strong", "History was compacted. "),
        `The server no longer has the revisions after ${this.lastRev || this.startRev || "the start"} (compacted at revision ${d.compact_revision}), so events in between cannot be shown. `,
        h("button.small", { on: { click: () => { this.startInput.value = ""; this.start(); } } }, "Watch from now")));
    });
    source.addEventListener("canceled", () => {
      // The server is shutting down; EventSource reconnects by itself once it is back.
      this.setStatus("reconnecting", "server restarting — reconnecting…");
    });
    source.onerror = () => {
      if (this.source !== source) return;
      if (source.readyState === EventSource.CONNECTING) {
        this.setStatus("reconnecting", "connection lost — reconnecting…");
      } else {
        // Refused for good (an error answer, e.g. a permission refusal): retry a little later, resuming.
        source.close();
        this.setStatus("reconnecting", "disconnected — retrying…");
        this.reopenTimer = setTimeout(() => this.source === source && this.open(this.lastRev || 0), REOPEN_MS);
      }
    };
  }

  stop() {
    clearTimeout(this.reopenTimer);
    if (this.source) this.source.close();
    this.source = null;
    this.toggle.textContent = "Watch";
    this.setStatus("idle", "not watching");
  }

  onEvents(data) {
    const rev = Number(data.revision);
    if (rev <= this.lastRev) {
      this.dupes++; // never expected: the server resumes after Last-Event-ID
      this.updateCounters();
      return;
    }
    this.lastRev = rev;
    for (const ev of data.events) {
      const type = ev.type || "PUT";
      const key = text(ev.kv.key);
      const prev = ev.prev_kv ? text(ev.prev_kv.value || "") : "";
      const row = h(`tr.ev.${type.toLowerCase()}`, { dataset: { rev: String(rev), key } },
        h("td.revnum", String(rev)),
        h("td", h(`span.badge.${type === "PUT" ? "put" : "del"}`, type)),
        h("td", h("a", { href: keysHash(b64(folderOf(key)), ev.kv.key) }, key)),
        h("td.val", type === "PUT" ? text(ev.kv.value || "").slice(0, 200) : ""),
        h("td.val.muted", prev.slice(0, 200)));
      this.rows.prepend(row);
      this.count++;
    }
    while (this.rows.childElementCount > MAX_ROWS) this.rows.lastElementChild.remove();
    this.setStatus("live", `live — revision ${rev}`);
    this.updateCounters();
  }

  updateCounters() {
    this.counters.dataset.count = this.count;
    this.counters.dataset.dupes = this.dupes;
    this.counters.dataset.last = this.lastRev;
    this.counters.dataset.resumes = this.reconnects;
    this.counters.textContent = `${this.count} events · last revision ${this.lastRev || "–"} · ${this.reconnects} resumes · ${this.dupes} duplicates dropped`;
  }
}
