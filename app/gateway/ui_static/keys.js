// The Keys view: a tree by prefix and "/" (paged by the server), and the selected key's value, which
// can be edited (guarded by a compare on mod_revision), deleted, or traced through its history.

import { b64, bytesFromB64, formatBytes, prefixEnd, session, text, uiGet, v3 } from "./api.js";
import { clear, confirmDialog, errorBox, h, toast } from "./dom.js";
import { renderDiff } from "./diff.js";
import { HistoryPanel } from "./history.js";
import { formatBadge, valueView } from "./value.js";

const PAGE = 200;
const DELIMITER = "/";

export function keysHash(prefixB64, keyB64) {
  const q = new URLSearchParams();
  if (prefixB64) q.set("prefix", prefixB64);
  if (keyB64) q.set("key", keyB64);
  return `#/keys?${q}`;
}

// The folder of a key: everything up to its last delimiter.
export function folderOf(keyText) {
  return keyText.slice(0, keyText.lastIndexOf(DELIMITER) + 1);
}

// A compare-guarded write: `compare` on the key's mod_revision; on failure, the key as it is now.
export async function guardedTxn(keyB64, modRevision, success) {
  const out = await v3("kv/txn", {
    compare: [{ key: keyB64, target: "MOD", result: "EQUAL", mod_revision: String(modRevision || 0) }],
    success,
    failure: [{ request_range: { key: keyB64 } }],
  });
  if (out.succeeded) return { ok: true, revision: Number(out.header.revision) };
  const kvs = (out.responses[0].response_range || {}).kvs || [];
  return { ok: false, current: kvs[0] || null };
}

// The key ranges this user's roles may read, for users who may not list everything.
export async function readableRanges() {
  if (!session.user) return [];
  const user = await v3("auth/user/get", { name: session.user });
  const ranges = [];
  for (const role of user.roles || []) {
    const r = await v3("auth/role/get", { role });
    for (const p of r.perm || []) {
      if ((p.permType || "READ") !== "WRITE") ranges.push({ key: p.key || "", end: p.range_end || "", type: p.permType || "READ" });
    }
  }
  return ranges;
}

export class KeysView {
  constructor(el) {
    this.el = el;
    this.prefix = null;
    this.entries = [];
    this.selected = null;
    this.history = new HistoryPanel(this);
    this.build();
  }

  build() {
    this.input = h("input#prefix-input", {
      type: "search", placeholder: "Search keys by prefix…", spellcheck: "false", autocomplete: "off",
      on: { input: () => this.onSearch(), keydown: (e) => e.key === "Enter" && this.onSearch(true) },
    });
    this.crumbs = h("nav.crumbs#crumbs");
    this.meta = h("div.tree-meta#tree-meta");
    this.list = h("ul.tree#tree-list");
    this.more = h("button.more#tree-more", { hidden: true, on: { click: () => this.loadTree(true) } }, "Load more");
    this.detail = h("section.detail#key-detail");
    clear(this.el, h("div.keys-layout",
      h("aside.tree-pane",
        h("div.pathbar", this.input,
          h("button.primary#new-key", { title: "Create a key here", on: { click: () => this.newKey() } }, "+ New key")),
        this.crumbs, this.meta, this.list, this.more),
      this.detail));
    this.emptyDetail();
  }

  reset() {
    this.prefix = null;
    this.selected = null;
    this.emptyDetail();
  }

  hide() {}

  show(params) {
    const prefix = params.prefix || "";
    if (prefix !== this.prefix) {
      this.prefix = prefix;
      // Keep what the user is typing; any other navigation shows the prefix it went to.
      if (!this.searching) this.input.value = text(prefix);
      this.searching = false;
      this.loadTree(false);
    }
    if (params.key && params.key !== (this.selected && this.selected.key)) this.openKey(params.key);
    else if (!params.key && this.selected) this.emptyDetail();
  }

  onSearch(now = false) {
    clearTimeout(this.searchTimer);
    const go = () => {
      const target = b64(this.input.value);
      if (target === this.prefix) return;
      this.searching = true;
      location.hash = keysHash(target, null);
    };
    if (now) go();
    else this.searchTimer = setTimeout(go, 250);
  }

  // ------------------------------------------------------------------ tree

  renderCrumbs() {
    const full = text(this.prefix);
    const parts = full.split(DELIMITER);
    const nodes = [h("a.crumb", { href: keysHash("", null) }, "root")];
    let acc = "";
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      acc += part + (last ? "" : DELIMITER);
      if (!part && !last) {
        if (i === 0) nodes.push(h("a.crumb", { href: keysHash(b64(acc), null) }, DELIMITER));
        return;
      }
      if (!part) return;
      nodes.push(h("span.sep", "›"), h("a.crumb", { href: keysHash(b64(acc), null) }, part + (last ? "" : DELIMITER)));
    });
    clear(this.crumbs, nodes);
  }

  async loadTree(append) {
    const prefix = this.prefix;
    const token = (this.treeToken = {});
    if (!append) {
      this.entries = [];
      this.renderCrumbs();
      this.list.classList.add("loading");
    }
    const after = append && this.entries.length ? this.entries[this.entries.length - 1].key : undefined;
    const t0 = performance.now();
    let page;
    try {
      page = await uiGet("tree", { prefix, delimiter: DELIMITER, limit: PAGE, after });
    } catch (err) {
      if (token !== this.treeToken) return;
      this.list.classList.remove("loading");
      return this.treeError(err);
    }
    if (token !== this.treeToken) return;
    const ms = performance.now() - t0;
    this.entries.push(...page.entries);
    this.revision = page.revision;
    this.list.classList.remove("loading");
    this.renderTree(page.more, ms);
  }

  renderTree(more, ms) {
    const rows = this.entries.map((e) => {
      const name = e.name || text(e.key);
      const href = e.type === "folder" ? keysHash(e.key, null) : keysHash(this.prefix, e.key);
      const selected = this.selected && this.selected.key === e.key;
      if (e.type === "folder") {
        return h("li.folder", { dataset: { key: e.key, name } },
          h("a", { href }, h("span.icon.folder-icon"), h("span.name", name),
            h("span.count", { title: e.exact ? "keys" : "at least this many keys" },
              `${e.count.toLocaleString("en-US")}${e.exact ? "" : "+"}`)));
      }
      return h(`li.key${selected ? ".selected" : ""}`, { dataset: { key: e.key, name } },
        h("a", { href }, h("span.icon.key-icon"), h("span.name", name),
          h("span.size", formatBytes(e.size))));
    });
    if (!rows.length) rows.push(h("li.empty", this.prefix ? "No keys with this prefix." : "No keys yet."));
    clear(this.list, rows);
    const folders = this.entries.filter((e) => e.type === "folder").length;
    const keys = this.entries.length - folders;
    clear(this.meta,
      h("span", `${folders.toLocaleString("en-US")} folder${folders === 1 ? "" : "s"}, ${keys.toLocaleString("en-US")} key${keys === 1 ? "" : "s"}${more ? " shown" : ""}`),
      h("span.muted", { dataset: { testid: "tree-time", ms: ms.toFixed(1) } }, `rev ${this.revision} · ${ms.toFixed(0)} ms`));
    this.more.hidden = !more;
  }

  async treeError(err) {
    if (!err.forbidden) {
      clear(this.list, h("li.empty", errorBox(err)));
      return;
    }
    // A restricted user: show where they may look instead of an error.
    const box = h("li.readable", errorBox(err, `list “${text(this.prefix) || "all keys"}”`));
    clear(this.list, box);
    clear(this.meta);
    try {
      const ranges = await readableRanges();
      if (!ranges.length) return;
      box.append(h("div.muted", "Key ranges you can read:"),
        h("ul.ranges", { dataset: { testid: "readable" } }, ranges.map((r) => {
          const isPrefix = r.end && r.end === prefixEnd(r.key);
          const label = isPrefix ? `${text(r.key)}*` : r.end ? `${text(r.key)} … ${r.end === "AA==" ? "end" : text(r.end)}` : text(r.key);
          const href = isPrefix ? keysHash(r.key, null) : keysHash(b64(folderOf(text(r.key))), r.key);
          return h("li", h("a", { href }, h("span.icon.folder-icon"), label), h("span.badge", r.type));
        })));
    } catch {
      // The user may not even read its own roles; the notice above is all we can say.
    }
  }

  // ------------------------------------------------------------------ one key

  emptyDetail() {
    this.selected = null;
    clear(this.detail, h("div.placeholder", h("div.big-icon"), h("p", "Select a key to see its value, edit it or browse its history.")));
  }

  async openKey(keyB64) {
    this.selected = { key: keyB64 };
    for (const li of this.list.querySelectorAll("li.key")) li.classList.toggle("selected", li.dataset.key === keyB64);
    clear(this.detail, h("div.placeholder", "Loading…"));
    let got;
    try {
      got = await uiGet("key", { key: keyB64 });
    } catch (err) {
      clear(this.detail, this.keyHeader(keyB64, null), errorBox(err, `read “${text(keyB64)}”`));
      return;
    }
    if (!this.selected || this.selected.key !== keyB64) return;
    this.selected = { key: keyB64, kv: got.kv, format: got.format, pretty: got.pretty };
    this.renderKey();
  }

  keyHeader(keyB64, kv) {
    return h("div.key-head",
      h("h2.key-name", { dataset: { testid: "key-name" } }, text(keyB64)),
      kv ? h("div.key-meta",
        h("span", { dataset: { testid: "mod-revision" } }, `mod rev ${kv.mod_revision}`),
        h("span", `create rev ${kv.create_revision}`),
        h("span", { dataset: { testid: "version" } }, `version ${kv.version}`),
        h("span", formatBytes(kv.size)),
        kv.lease !== "0" ? h("a", { href: `#/leases?lease=${kv.lease}` }, `lease ${BigInt(kv.lease).toString(16)}`) : null) : null);
  }

  renderKey() {
    const { key, kv, format, pretty } = this.selected;
    if (!kv) {
      clear(this.detail, this.keyHeader(key, null),
        h("div.notice", { dataset: { testid: "key-missing" } }, "This key does not exist (anymore)."),
        h("div.actions", h("button#history-btn", { on: { click: () => this.history.open(key, null) } }, "History")));
      return;
    }
    clear(this.detail, this.keyHeader(key, kv),
      h("div.actions",
        formatBadge(format),
        h("div.spacer"),
        h("button#edit-btn", { on: { click: () => this.edit() } }, "Edit"),
        h("button#history-btn", { on: { click: () => this.history.open(key, kv) } }, "History"),
        h("button.danger#delete-btn", { on: { click: () => this.remove() } }, "Delete")),
      valueView(format, pretty),
      this.history.el);
    this.history.close();
  }

  // ------------------------------------------------------------------ create, edit, delete

  newKey() {
    this.selected = { key: null, kv: null };
    const keyInput = h("input#new-key-name", { value: folderOf(text(this.prefix)) || text(this.prefix), spellcheck: "false" });
    const area = h("textarea#editor", { spellcheck: "false", rows: 14, placeholder: "value" });
    const save = async () => {
      if (!keyInput.value) return toast("A key needs a name.", "error");
      const keyB64 = b64(keyInput.value);
      await this.save(keyB64, 0, area.value, false, true);
    };
    clear(this.detail, h("div.key-head", h("h2", "New key")),
      h("label.field", "Key", keyInput), h("label.field", "Value", area),
      h("div.actions", h("button.primary#save-btn", { on: { click: save } }, "Create"),
        h("button", { on: { click: () => this.emptyDetail() } }, "Cancel")));
    keyInput.focus();
  }

  edit() {
    const { key, kv, format } = this.selected;
    const binary = format === "binary";
    const area = h("textarea#editor", { spellcheck: "false", rows: 16 });
    area.value = binary ? kv.value : text(kv.value);
    const status = h("div#edit-status");
    clear(this.detail, this.keyHeader(key, kv),
      binary ? h("div.notice", "Binary value: edit it as base64.") : null,
      area, status,
      h("div.actions",
        h("button.primary#save-btn", { on: { click: () => this.save(key, kv.mod_revision, area.value, binary, false, status) } }, "Save"),
        h("button#cancel-btn", { on: { click: () => this.renderKey() } }, "Cancel"),
        h("span.muted", `Saves only if the key is still at mod revision ${kv.mod_revision}.`)));
    area.focus();
  }

  async save(keyB64, modRevision, valueText, binary, creating, status) {
    const value = binary ? valueText.replace(/\s+/g, "") : b64(valueText);
    let res;
    try {
      res = await guardedTxn(keyB64, modRevision, [{ request_put: { key: keyB64, value, ignore_lease: !creating && this.selected.kv && this.selected.kv.lease !== "0" } }]);
    } catch (err) {
      toast(err.message, "error");
      if (status) clear(status, errorBox(err, "write this key"));
      return;
    }
    if (res.ok) {
      toast(creating ? "Key created." : "Saved.", "ok");
      await this.openKey(keyB64);
      this.refreshTreeSoon();
      location.hash = keysHash(this.prefix, keyB64);
      return;
    }
    this.showConflict(keyB64, modRevision, valueText, binary, res.current, creating);
  }

  showConflict(keyB64, modRevision, mine, binary, theirs, creating) {
    const theirsText = theirs ? (binary ? theirs.value : text(theirs.value)) : "";
    const what = creating ? "This key was created by someone else meanwhile"
      : theirs ? `Someone else changed this key (mod revision ${modRevision} → ${theirs.mod_revision})`
        : "Someone else deleted this key";
    const box = h("div.conflict#conflict", { dataset: { testid: "conflict" } },
      h("h3", "Not saved: the key changed while you were editing"),
      h("p", `${what}. Nothing was overwritten. Their version and your edit:`),
      renderDiff(theirsText, mine, { labelA: theirs ? `theirs (rev ${theirs.mod_revision})` : "theirs (deleted)", labelB: "yours" }),
      h("div.actions",
        h("button.primary#overwrite-btn", {
          on: { click: () => this.save(keyB64, theirs ? theirs.mod_revision : 0, mine, binary, creating) },
        }, "Save mine over theirs"),
        h("button#take-theirs-btn", { on: { click: () => this.openKey(keyB64) } }, "Discard mine, show theirs")));
    clear(this.detail, this.keyHeader(keyB64, theirs && { ...theirs, size: bytesFromB64(theirs.value).length, lease: theirs.lease || "0", version: theirs.version, create_revision: theirs.create_revision }), box);
  }

  async remove() {
    const { key, kv } = this.selected;
    const ok = await confirmDialog("Delete key?", h("p", "Delete ", h("code", text(key)), ` (mod revision ${kv.mod_revision})? This cannot be undone, but the value stays in its history until compaction.`));
    if (!ok) return;
    let res;
    try {
      res = await guardedTxn(key, kv.mod_revision, [{ request_delete_range: { key } }]);
    } catch (err) {
      return toast(err.message, "error");
    }
    if (!res.ok) return this.showConflict(key, kv.mod_revision, text(kv.value), false, res.current, false);
    toast("Deleted.", "ok");
    location.hash = keysHash(this.prefix, null);
    this.emptyDetail();
    this.refreshTreeSoon();
  }

  refreshTreeSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.loadTree(false), 50);
  }
}
