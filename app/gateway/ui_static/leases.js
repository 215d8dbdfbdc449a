// The Leases view: every lease with a live countdown of its TTL and its attached keys; grant, revoke,
// keep-alive. The countdown runs on the browser's clock between refreshes from /v3/lease/timetolive.

import { b64, hexId, text, v3 } from "./api.js";
import { clear, confirmDialog, errorBox, h, toast } from "./dom.js";
import { folderOf, keysHash } from "./keys.js";

const REFRESH_MS = 5000;
const TICK_MS = 200;
const SHOW_TTL_MAX = 300; // leases beyond this many get no timetolive call each refresh
const EXPIRED_SHOWN_MS = 15000;

export class LeasesView {
  constructor(el) {
    this.el = el;
    this.leases = new Map(); // id -> {id, ttl, granted, keys, expiresAt, expired}
    this.build();
  }

  build() {
    this.ttlInput = h("input#lease-ttl", { type: "number", min: 1, value: 60, size: 6 });
    this.idInput = h("input#lease-id", { placeholder: "auto", size: 12 });
    this.body = h("tbody#lease-rows");
    this.note = h("div#lease-note");
    clear(this.el,
      h("div.toolbar",
        h("label", "TTL (s) ", this.ttlInput),
        h("label", "ID ", this.idInput),
        h("button.primary#lease-grant", { on: { click: () => this.grant() } }, "Grant lease"),
        h("div.spacer"),
        h("button#lease-refresh", { on: { click: () => this.refresh() } }, "Refresh")),
      this.note,
      h("div.card", h("table.leases",
        h("thead", h("tr", h("th", "lease"), h("th", "remaining"), h("th", "granted TTL"), h("th", "keys"), h("th", ""))),
        this.body)));
  }

  reset() {
    this.leases.clear();
  }

  show(params) {
    this.focus = params.lease || null;
    this.refresh();
    clearInterval(this.refreshTimer);
    clearInterval(this.tickTimer);
    this.refreshTimer = setInterval(() => this.refresh(), REFRESH_MS);
    this.tickTimer = setInterval(() => this.tick(), TICK_MS);
  }

  hide() {
    clearInterval(this.refreshTimer);
    clearInterval(this.tickTimer);
  }

  async refresh() {
    let list;
    try {
      list = await v3("lease/leases", {});
    } catch (err) {
      clear(this.note, errorBox(err, "list leases"));
      return;
    }
    clear(this.note);
    const ids = (list.leases || []).map((l) => l.ID || "0");
    const now = Date.now();
    const seen = new Set();
    await Promise.all(ids.slice(0, SHOW_TTL_MAX).map(async (id) => {
      seen.add(id);
      try {
        const t = await v3("lease/timetolive", { ID: id, keys: true });
        const ttl = Number(t.TTL || 0);
        if (ttl < 0) return;
        const prev = this.leases.get(id);
        this.leases.set(id, { id, ttl, granted: Number(t.grantedTTL || 0), keys: t.keys || [], fetchedAt: now,
          expiresAt: now + ttl * 1000, expired: false, row: prev && prev.row });
      } catch (err) {
        this.leases.set(id, { id, error: err, row: (this.leases.get(id) || {}).row });
      }
    }));
    for (const id of ids.slice(SHOW_TTL_MAX)) seen.add(id);
    for (const [id, lease] of this.leases) {
      if (seen.has(id)) continue;
      // Gone from the server: its TTL ran out (or it was revoked). Keep the row a while, marked.
      if (!lease.expired) Object.assign(lease, { expired: true, goneAt: now });
      else if (now - lease.goneAt > EXPIRED_SHOWN_MS) {
        if (lease.row) lease.row.remove();
        this.leases.delete(id);
      }
    }
    this.render(ids.length);
  }

  render(total) {
    const sorted = [...this.leases.values()].sort((a, b) => (a.expired - b.expired) || ((a.expiresAt || 0) - (b.expiresAt || 0)));
    const rows = sorted.map((l) => (l.row = this.row(l)));
    if (!rows.length) rows.push(h("tr", h("td.empty", { colSpan: 5 }, "No leases.")));
    clear(this.body, rows);
    if (total > SHOW_TTL_MAX) this.note.append(h("div.notice.small", `Showing TTLs of the first ${SHOW_TTL_MAX} of ${total} leases.`));
    this.tick();
  }

  row(l) {
    const id = l.id;
    const keys = (l.keys || []).map((k) => h("a.keychip", { href: keysHash(b64(folderOf(text(k))), k) }, text(k)));
    const cls = `${l.expired ? ".expired" : ""}${this.focus === id ? ".focus" : ""}`;
    return h(`tr.lease${cls}`, { dataset: { lease: id } },
      h("td", h("code", hexId(id)), h("div.muted.small", id)),
      h("td.countdown", l.error ? errorBox(l.error, "see this lease") : [h("span.ttl", ""), h("div.bar", h("div.fill"))]),
      h("td", l.granted ? `${l.granted}s` : ""),
      h("td.keys", keys.length ? keys : h("span.muted", "none")),
      h("td.actions-cell", l.expired ? "" : [
        h("button.small.keepalive", { on: { click: () => this.keepAlive(id) } }, "Keep alive"),
        h("button.small.danger.revoke", { on: { click: () => this.revoke(id, l) } }, "Revoke")]));
  }

  tick() {
    const now = Date.now();
    let expiring = false;
    for (const l of this.leases.values()) {
      if (!l.row || l.error) continue;
      const ttlEl = l.row.querySelector(".ttl");
      const fill = l.row.querySelector(".fill");
      if (!ttlEl) continue;
      if (l.expired) {
        ttlEl.textContent = "expired";
        l.row.dataset.remaining = "0";
        fill.style.width = "0%";
        continue;
      }
      const left = Math.max(0, (l.expiresAt - now) / 1000);
      const secs = Math.ceil(left);
      l.row.dataset.remaining = String(secs);
      ttlEl.textContent = left > 0 ? `${secs}s` : "expiring…";
      fill.style.width = `${l.granted ? Math.min(100, (100 * left) / l.granted) : 0}%`;
      l.row.classList.toggle("low", left < 10);
      if (left <= 0) expiring = true;
    }
    // The leader revokes an expired lease through the log; look again soon after the countdown ends.
    if (expiring && !this.soon) this.soon = setTimeout(() => { this.soon = null; this.refresh(); }, 700);
  }

  async grant() {
    const body = { TTL: String(Number(this.ttlInput.value) || 60) };
    if (this.idInput.value.trim()) {
      const raw = this.idInput.value.trim();
      body.ID = /^[0-9a-f]+$/i.test(raw) && /[a-f]/i.test(raw) ? BigInt(`0x${raw}`).toString() : raw;
    }
    try {
      const out = await v3("lease/grant", body);
      if (out.error) throw new Error(out.error);
      toast(`Granted lease ${hexId(out.ID)} (${out.TTL}s).`, "ok");
      this.focus = out.ID;
    } catch (err) {
      return toast(err.message, "error");
    }
    this.refresh();
  }

  async keepAlive(id) {
    try {
      const out = await v3("lease/keepalive", { ID: id });
      const ttl = Number((out.result || out).TTL || 0);
      if (!ttl) return toast("That lease has expired.", "error");
      toast(`Lease ${hexId(id)} kept alive: ${ttl}s.`, "ok");
    } catch (err) {
      return toast(err.message, "error");
    }
    this.refresh();
  }

  async revoke(id, l) {
    const n = (l.keys || []).length;
    const ok = await confirmDialog("Revoke lease?", h("p", `Revoke lease ${hexId(id)}? ${n ? `Its ${n} attached key${n > 1 ? "s" : ""} will be deleted.` : "No keys are attached."}`), "Revoke");
    if (!ok) return;
    try {
      await v3("lease/revoke", { ID: id });
      toast(`Revoked lease ${hexId(id)}.`, "ok");
    } catch (err) {
      return toast(err.message, "error");
    }
    this.refresh();
  }
}
