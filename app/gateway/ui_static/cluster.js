// The Cluster view: members (health, leader, Raft index and term, database size of each), alarms, quota,
// and small charts from /metrics (Prometheus text) — or, where a server has no /metrics, from status.

import { ApiError, formatBytes, getText, hexId, v3 } from "./api.js";
import { clear, errorBox, h } from "./dom.js";

const POLL_MS = 2000;
const POINTS = 90;

// Prometheus text format: sum each metric's samples over their labels.
export function parseMetrics(textBody) {
  const out = {};
  for (const line of textBody.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
    if (!m) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) out[m[1]] = (out[m[1]] || 0) + v;
  }
  return out;
}

// What the charts show: [title, metric, "rate" | "gauge", formatter].
const METRIC_CHARTS = [
  ["Proposals applied / s", "etcd_server_proposals_applied_total", "rate", (v) => v.toFixed(1)],
  ["Keys", "etcd_debugging_mvcc_keys_total", "gauge", (v) => Math.round(v).toLocaleString("en-US")],
  ["Database size", "etcd_mvcc_db_total_size_in_bytes", "gauge", formatBytes],
  ["Watchers", "etcd_debugging_mvcc_watcher_total", "gauge", (v) => String(Math.round(v))],
  ["Client bytes in / s", "etcd_network_client_grpc_received_bytes_total", "rate", formatBytes],
  ["Client bytes out / s", "etcd_network_client_grpc_sent_bytes_total", "rate", formatBytes],
];
const STATUS_CHARTS = [
  ["Raft index / s", "raftIndex", "rate", (v) => v.toFixed(1)],
  ["Database size", "dbSize", "gauge", formatBytes],
];

class Series {
  constructor(title, kind, fmt) {
    Object.assign(this, { title, kind, fmt, points: [], last: null });
  }
  add(t, value) {
    if (value === undefined) return;
    if (this.kind === "rate") {
      if (this.last && t > this.last.t && value >= this.last.v) this.points.push((value - this.last.v) / ((t - this.last.t) / 1000));
      this.last = { t, v: value };
    } else this.points.push(value);
    if (this.points.length > POINTS) this.points.shift();
  }
}

function sparkline(series) {
  const w = 240;
  const hgt = 56;
  const pts = series.points;
  const max = Math.max(1e-9, ...pts);
  const min = 0;
  const span = max - min || 1;
  const coords = pts.map((v, i) => `${(i * w) / (POINTS - 1)},${(hgt - 4 - ((v - min) / span) * (hgt - 8)).toFixed(1)}`).join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("preserveAspectRatio", "none");
  if (pts.length > 1) {
    const area = document.createElementNS(svg.namespaceURI, "polygon");
    const lastX = ((pts.length - 1) * w) / (POINTS - 1);
    area.setAttribute("points", `0,${hgt} ${coords} ${lastX},${hgt}`);
    area.setAttribute("class", "spark-area");
    const line = document.createElementNS(svg.namespaceURI, "polyline");
    line.setAttribute("points", coords);
    line.setAttribute("class", "spark-line");
    svg.append(area, line);
  }
  const now = pts.length ? series.fmt(pts[pts.length - 1]) : "…";
  return h("div.chart", { dataset: { testid: "chart" } }, h("div.chart-head", h("span", series.title), h("strong", now)), svg);
}

export class ClusterView {
  constructor(el) {
    this.el = el;
    this.metricsState = "unknown"; // "yes" | "no" | "unknown"
    this.series = new Map();
    this.summary = h("div.cards#cluster-cards");
    this.members = h("div.card#members");
    this.charts = h("div.charts#charts");
    this.chartNote = h("span.muted.small#chart-note");
    clear(el, this.summary, h("h3", "Members"), this.members,
      h("h3", "Activity ", this.chartNote), this.charts);
  }

  reset() {
    this.series.clear();
  }

  show() {
    clearInterval(this.timer);
    this.poll();
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  hide() {
    clearInterval(this.timer);
  }

  seriesFor(title, kind, fmt) {
    if (!this.series.has(title)) this.series.set(title, new Series(title, kind, fmt));
    return this.series.get(title);
  }

  async poll() {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.pollOnce();
    } finally {
      this.busy = false;
    }
  }

  async pollOnce() {
    const t = Date.now();
    const [status, members, alarms, metrics] = await Promise.allSettled([
      v3("maintenance/status", {}),
      v3("cluster/member/list", {}),
      v3("maintenance/alarm", { action: "GET" }),
      this.metricsState === "no" ? Promise.resolve(null) : getText("/metrics"),
    ]);
    let m = null;
    if (metrics.status === "fulfilled" && metrics.value !== null) {
      m = parseMetrics(metrics.value);
      this.metricsState = "yes";
    } else if (metrics.status === "rejected" && metrics.reason instanceof ApiError && metrics.reason.status === 404) {
      this.metricsState = "no";
    }
    const st = status.status === "fulfilled" ? status.value : null;
    this.renderSummary(st, status.reason, members.value, alarms, m);
    this.renderMembers(st, members);
    if (m) for (const [title, name, kind, fmt] of METRIC_CHARTS) this.seriesFor(title, kind, fmt).add(t, m[name]);
    else if (st) for (const [title, name, kind, fmt] of STATUS_CHARTS) this.seriesFor(title, kind, fmt).add(t, Number(st[name]));
    this.chartNote.textContent = this.metricsState === "yes" ? "from /metrics, every 2 s"
      : this.metricsState === "no" ? "this server has no /metrics: charts from /v3/maintenance/status" : "";
    this.chartNote.dataset.source = this.metricsState;
    clear(this.charts, [...this.series.values()].filter((s) => (m ? METRIC_CHARTS : STATUS_CHARTS).some((c) => c[0] === s.title)).map(sparkline));
  }

  renderSummary(st, err, memberList, alarms, m) {
    if (!st) {
      clear(this.summary, errorBox(err, "read the server status"));
      return;
    }
    const list = (memberList && memberList.members) || [];
    const leader = list.find((x) => x.ID === st.leader);
    const quota = m && m.etcd_server_quota_backend_bytes;
    const size = Number(st.dbSize);
    const alarmList = alarms.status === "fulfilled" ? alarms.value.alarms || [] : null;
    const card = (label, value, extra, testid) => h("div.card.stat", { dataset: { testid: testid || "" } },
      h("div.stat-label", label), h("div.stat-value", value), extra ? h("div.stat-extra", extra) : null);
    clear(this.summary,
      card("Leader", leader ? leader.name || hexId(leader.ID) : st.leader ? hexId(st.leader) : "none",
        st.leader ? hexId(st.leader) : "no leader", "leader"),
      card("Raft term", st.raftTerm, null, "raft-term"),
      card("Raft index", Number(st.raftIndex).toLocaleString("en-US"), `applied ${Number(st.raftAppliedIndex || st.raftIndex).toLocaleString("en-US")}`, "raft-index"),
      card("Revision", Number(st.header.revision).toLocaleString("en-US"), `cluster ${hexId(st.header.cluster_id)}`),
      card("Database", formatBytes(size),
        quota ? h("div", h("div.bar", h("div.fill", { style: `width:${Math.min(100, (100 * size) / quota)}%` })),
          `${((100 * size) / quota).toFixed(1)}% of ${formatBytes(quota)} quota`)
          : `in use ${formatBytes(st.dbSizeInUse || size)}`, "db-size"),
      card("Alarms", alarmList === null ? "?" : alarmList.length ? alarmList.map((a) => a.alarm).join(", ") : "none",
        alarmList === null ? errorBox(alarms.reason, "read alarms")
          : alarmList.map((a) => h("div", `${a.alarm} on ${hexId(a.memberID)}`)), "alarms"));
  }

  async renderMembers(st, members) {
    if (members.status !== "fulfilled") {
      clear(this.members, errorBox(members.reason, "list members"));
      return;
    }
    const local = st && st.header.member_id;
    const rows = await Promise.all((members.value.members || []).map(async (mem) => {
      const base = mem.ID === local ? "" : (mem.clientURLs || [])[0];
      let health = "unknown";
      let ms = null;
      if (base !== undefined) {
        try {
          const t0 = performance.now();
          const resp = await fetch(`${base}/health`);
          ms = performance.now() - t0;
          health = resp.ok ? "healthy" : "unhealthy";
        } catch {
          health = "unreachable";
        }
      }
      let mst = mem.ID === local ? st : null;
      if (!mst && base && health !== "unreachable") {
        try {
          const resp = await fetch(`${base}/v3/maintenance/status`, { method: "POST", body: "{}" });
          if (resp.ok) mst = await resp.json();
        } catch {
          // A member we cannot reach shows as such in its health column.
        }
      }
      const isLeader = st && mem.ID === st.leader;
      return h(`tr.member${isLeader ? ".leader" : ""}`, { dataset: { member: mem.ID, health } },
        h("td", h("strong", mem.name || "(unstarted)"), isLeader ? h("span.badge.ok", "leader") : null,
          mem.isLearner ? h("span.badge", "learner") : null, mem.ID === local ? h("span.badge", "this member") : null),
        h("td", h("code", hexId(mem.ID))),
        h("td", h(`span.health.${health}`, health), ms !== null ? h("span.muted.small", ` ${ms.toFixed(0)} ms`) : null),
        h("td", mst ? Number(mst.raftIndex).toLocaleString("en-US") : "–"),
        h("td", mst ? mst.raftTerm : "–"),
        h("td", mst ? formatBytes(mst.dbSize) : "–"),
        h("td", mst ? mst.version : "–"),
        h("td.small", (mem.clientURLs || []).join(", ")),
        h("td.small", (mem.peerURLs || []).join(", ")));
    }));
    clear(this.members, h("table.members",
      h("thead", h("tr", ["member", "ID", "health", "raft index", "term", "db size", "version", "client URLs", "peer URLs"].map((x) => h("th", x)))),
      h("tbody", rows)));
  }
}
