// A key's history: its revisions (newest first), a diff between any two, restoring an old one.

import { formatBytes, text, uiGet } from "./api.js";
import { clear, confirmDialog, errorBox, h, toast } from "./dom.js";
import { renderDiff } from "./diff.js";
import { guardedTxn } from "./keys.js";
import { formatBadge, valueView } from "./value.js";

const PAGE = 100;

export class HistoryPanel {
  constructor(keys) {
    this.keys = keys;
    this.el = h("div.history#history", { hidden: true });
  }

  close() {
    this.el.hidden = true;
    clear(this.el);
  }

  async open(key, kv) {
    this.key = key;
    this.kv = kv;
    this.el.hidden = false;
    if (!this.el.isConnected) this.keys.detail.append(this.el);
    clear(this.el, h("h3", "History"), h("div.muted", "Loading…"));
    let page;
    try {
      page = await uiGet("history", { key, limit: PAGE });
    } catch (err) {
      clear(this.el, h("h3", "History"), errorBox(err, "read this key's history"));
      return;
    }
    this.entries = page.entries;
    this.compact = Number(page.compact_revision);
    const puts = this.entries.filter((e) => e.type === "PUT");
    this.a = puts[1] || puts[0] || null; // older side of the diff
    this.b = puts[0] || null;
    this.render(page.more);
    this.el.scrollIntoView({ block: "nearest" });
  }

  render(more) {
    const current = this.kv ? this.kv.mod_revision : null;
    const rows = this.entries.map((e) => {
      const put = e.type === "PUT";
      const isCurrent = e.revision === current;
      const radio = (side) => h("input", {
        type: "radio", name: `diff-${side}`, title: side === "a" ? "compare from" : "compare to",
        checked: (side === "a" ? this.a : this.b) === e, disabled: !put,
        on: { change: () => { this[side] = e; this.renderDiff(); } },
      });
      return h(`tr.rev${isCurrent ? ".current" : ""}${put ? "" : ".deleted"}`, { dataset: { revision: e.revision } },
        h("td", radio("a"), radio("b")),
        h("td.revnum", e.revision),
        h("td", put ? `v${e.version}` : h("span.badge.del", "DELETE")),
        h("td", put ? formatBytes(e.size) : ""),
        h("td", put ? formatBadge(e.format) : ""),
        h("td.preview", put ? (e.pretty || "").slice(0, 60) : ""),
        h("td", isCurrent ? h("span.badge.ok", "current")
          : put && e.value !== null ? h("button.small.restore", { on: { click: () => this.restore(e) } }, "Restore") : ""));
    });
    this.diffBox = h("div.diff-box");
    clear(this.el,
      h("h3", "History ", h("span.muted", `${this.entries.length}${more ? "+" : ""} revisions`)),
      this.compact > 0 ? h("div.notice.small", { dataset: { testid: "compacted-note" } },
        `Revisions before ${this.compact} were compacted away.`) : null,
      h("table.revs", h("thead", h("tr", h("th", "A B"), h("th", "rev"), h("th", "version"), h("th", "size"), h("th", "format"), h("th", "value"), h("th", ""))),
        h("tbody", rows)),
      this.diffBox);
    this.renderDiff();
  }

  renderDiff() {
    if (!this.a || !this.b) {
      clear(this.diffBox);
      return;
    }
    const [a, b] = Number(this.a.revision) <= Number(this.b.revision) ? [this.a, this.b] : [this.b, this.a];
    clear(this.diffBox, h("h4", `Changes from revision ${a.revision} to ${b.revision}`),
      renderDiff(a.pretty || "", b.pretty || "", { labelA: `rev ${a.revision}`, labelB: `rev ${b.revision}` }));
  }

  async restore(entry) {
    const ok = await confirmDialog("Restore this version?",
      h("div", h("p", `Write the value of revision ${entry.revision} back to `, h("code", text(this.key)),
        this.kv ? ` (now at mod revision ${this.kv.mod_revision})?` : " (deleted now)?"),
      valueView(entry.format, entry.pretty)), "Restore");
    if (!ok) return;
    let res;
    try {
      res = await guardedTxn(this.key, this.kv ? this.kv.mod_revision : 0,
        [{ request_put: { key: this.key, value: entry.value } }]);
    } catch (err) {
      return toast(err.message, "error");
    }
    if (!res.ok) {
      toast("The key changed meanwhile: nothing was restored.", "error");
      return this.keys.showConflict(this.key, this.kv ? this.kv.mod_revision : 0, text(entry.value), false, res.current, false);
    }
    toast(`Restored revision ${entry.revision} (new revision ${res.revision}).`, "ok");
    await this.keys.openKey(this.key);
    await this.open(this.key, this.keys.selected.kv);
  }
}
