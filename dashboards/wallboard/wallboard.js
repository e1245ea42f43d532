// callpulse wallboard: polls /api/wallboard and redraws; no build step, no libraries.
"use strict";
const REFRESH_MS = 3000;
// Tiles come in the page's order; a KPI tile says its unit ("ratio" or "seconds").

function fmtSeconds(v) {
  if (v === null || v === undefined) return "—";
  if (v < 120) return Math.round(v) + "s";
  if (v < 3600) return Math.floor(v / 60) + "m " + String(Math.round(v % 60)).padStart(2, "0") + "s";
  return Math.floor(v / 3600) + "h " + String(Math.floor((v % 3600) / 60)).padStart(2, "0") + "m";
}
// Compact time for the not-ready tile: "45s", "12m", "1h 05m" (minutes rounded down, like fmtSeconds).
function fmtShort(v) {
  if (v < 60) return Math.floor(v) + "s";
  if (v < 3600) return Math.floor(v / 60) + "m";
  return Math.floor(v / 3600) + "h " + String(Math.floor((v % 3600) / 60)).padStart(2, "0") + "m";
}
function fmtValue(unit, v) {
  if (v === null || v === undefined) return "—";
  if (unit === "ratio") return (v * 100).toFixed(1) + "%";
  if (unit === "seconds") return fmtSeconds(v);
  return String(v);
}
function fmtTarget(tile) {
  if (tile.target === undefined) return "";
  const cmp = tile.higher_is_better ? "≥ " : "≤ ";
  return "target " + cmp + fmtValue(tile.unit, tile.target);
}
function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children || []) node.appendChild(child);
  return node;
}
// Time not ready by reason, longest first; past MAX_REASONS the rest are folded into "+N more".
const MAX_REASONS = 3;
function reasonChip(name, seconds, attrs) {
  return el("span", {class: "reason", title: name + " " + fmtSeconds(seconds), ...attrs}, [
    el("span", {class: "reason-name", text: name}),
    el("span", {class: "reason-time", text: fmtShort(seconds)})]);
}
function notReadyTile(q, t) {
  const shown = t.reasons.length > MAX_REASONS ? t.reasons.slice(0, MAX_REASONS - 1) : t.reasons;
  const rest = t.reasons.slice(shown.length);
  const chips = shown.map((r) => reasonChip(r.reason || "no reason", r.seconds,
    {"data-reason": r.reason || "", "data-seconds": String(r.seconds)}));
  if (rest.length) {
    chips.push(reasonChip("+" + rest.length + " more", rest.reduce((s, r) => s + r.seconds, 0),
      {"data-more": String(rest.length)}));
  }
  if (!chips.length) chips.push(el("span", {class: "reason-none", text: "none"}));
  return el("div", {
    class: "tile agents reasons", "data-queue": q.queue, "data-kpi": "not_ready_time",
    "data-status": t.status, "data-value": String(t.value),
  }, [el("div", {class: "label", text: t.label}), el("div", {class: "reason-list"}, chips)]);
}
// Risk cues, drawn on the tile they concern (amber, with a "⚠" and words, not colour alone):
// callers waiting with no agent ready on the Ready tile, fewer agents logged in than needed
// on the Agents needed tile, an oldest wait near its target on its own tile.
const RISK_TILE = {no_ready: "agents_ready", understaffed: "agents_needed", wait_near_target: "oldest_wait_s"};
function riskText(r) {
  if (r.kind === "no_ready") return "⚠ " + r.waiting + " waiting, none ready";
  if (r.kind === "understaffed") return "⚠ " + r.short_by + " short · " + r.staffed + " in";
  if (r.kind === "wait_near_target") return "⚠ near target " + fmtSeconds(r.target);
  return "⚠ " + r.kind;
}
// Beside the agents needed: how many are logged in (staffed); the title adds how many are ready.
function staffedText(t) { return t.staffed + " staffed"; }
function renderQueues(data) {
  const box = document.getElementById("queues");
  const rows = data.queues.map((q) => {
    const risks = Object.fromEntries((q.risks || []).map((r) => [RISK_TILE[r.kind], r]));
    const tiles = Object.entries(q.tiles).map(([key, t]) => {
      if (key === "not_ready_time") return notReadyTile(q, t);
      const risk = risks[key];
      const attrs = {
        class: "tile" + (key.startsWith("agents_") ? " agents" : ""),
        "data-queue": q.queue, "data-kpi": key, "data-status": t.status,
        "data-value": t.value === null ? "" : String(t.value),
      };
      if (risk && t.status !== "breach") attrs["data-risk"] = risk.kind;
      if (key === "agents_needed") {
        attrs.title = "needed " + fmtValue(t.unit, t.value) + " / staffed " + t.staffed + " / ready " + t.ready;
      }
      const note = risk && t.status !== "breach" ? riskText(risk)
        : (t.why && t.status === "none" ? t.why : key === "agents_needed" ? staffedText(t) : fmtTarget(t));
      return el("div", attrs, [el("div", {class: "label", text: t.label}),
          el("div", {class: "value", text: fmtValue(t.unit, t.value)}),
          el("div", {class: "target", text: note})]);
    });
    const name = el("div", {class: "queue-name"}, [
      el("span", {text: q.queue}),
      el("small", {text: q.offered + " offered / " + data.window})]);
    return el("div", {class: "queue", "data-queue": q.queue}, [name, ...tiles]);
  });
  box.replaceChildren(...rows);
}
function renderBanner(data) {
  const banner = document.getElementById("banner");
  if (!data.breaches.length) { banner.hidden = true; banner.textContent = ""; return; }
  banner.hidden = false;
  // Every breaching window, each named, grouped by queue and KPI so that a bad spell on
  // three windows reads as one line: "billing: Service level 5m 61.0%, 15m 70.0%".
  const byQueue = new Map();
  for (const b of data.breaches) {
    const kpi = b.label.endsWith(" " + b.window) ? b.label.slice(0, -(b.window.length + 1)) : b.label;
    const kpis = byQueue.get(b.queue) || new Map();
    byQueue.set(b.queue, kpis);
    const seen = kpis.get(kpi) || [];
    kpis.set(kpi, seen);
    seen.push((b.window === "live" ? "" : b.window + " ") + fmtValue(b.unit, b.value));
  }
  banner.textContent = "⚠ Breach — " + [...byQueue].map(([queue, kpis]) =>
    queue + ": " + [...kpis].map(([kpi, values]) => kpi + " " + values.join(", ")).join("; ")).join(" · ");
  banner.title = data.breaches.map((b) =>
    b.queue + " " + b.label + " " + fmtValue(b.unit, b.value) + " (" + fmtTarget(b) + ")").join("\n");
}
function fill(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...rows.map((cells) => el("tr", {}, cells.map(([text, cls]) =>
    el("td", cls ? {class: cls, text: text} : {text: text})))));
}
// Lists show whole rows only, as many as the screen holds. Callers waiting and the latest
// abandoned keep their first rows (the longest waits, the newest abandons) and say how many
// more there are; agents rotate through pages every ROTATE_MS, so each is seen in turn.
const ROTATE_MS = 8000;
const agentPage = {index: 0};
let lastData = null;
function fitRows(id, rows) {
  const table = document.getElementById(id);
  const box = table.closest(".list");
  const body = table.querySelector("tbody");
  fill(id, rows.slice(0, 1));
  if (!body.firstElementChild) return {per: 1, pages: 1};
  const rowHeight = body.firstElementChild.getBoundingClientRect().height;
  const bottom = box.getBoundingClientRect().bottom - parseFloat(getComputedStyle(box).paddingBottom);
  const per = Math.max(1, Math.floor((bottom - body.getBoundingClientRect().top) / rowHeight));
  return {per: per, pages: Math.max(1, Math.ceil(rows.length / per))};
}
function waitingRow(w) { return [[w.queue], [fmtSeconds(w.wait_s)], [w.since || "—"], [w.caller || "—"]]; }
function abandonedRow(a) { return [[a.time || "—"], [a.queue], [fmtSeconds(a.wait_s)], [a.caller || "—"]]; }
function agentRow(a) {
  return [[a.agent_id], [a.state.replace("_", " ") + (a.reason ? " · " + a.reason : ""), "state-" + a.state],
    [fmtSeconds(a.in_state_s)], [a.queues.join(", ")]];
}
function more(shown, total) { return total > shown ? " +" + (total - shown) + " more" : ""; }
function renderLists(data) {
  lastData = data;
  const waiting = data.waiting.map(waitingRow);
  const w = fitRows("waiting", waiting);
  fill("waiting", waiting.slice(0, w.per));
  document.getElementById("waiting-count").textContent =
    "(" + data.waiting.length + ")" + more(Math.min(w.per, waiting.length), waiting.length);
  const abandoned = data.abandoned.map(abandonedRow);
  const a = fitRows("abandoned", abandoned);
  fill("abandoned", abandoned.slice(0, a.per));
  const agents = [...data.agents].sort((x, y) => y.in_state_s - x.in_state_s || (x.agent_id < y.agent_id ? -1 : 1))
    .map(agentRow);
  const g = fitRows("agents", agents);
  const page = agentPage.index % g.pages;
  fill("agents", agents.slice(page * g.per, (page + 1) * g.per));
  const table = document.getElementById("agents");
  table.dataset.page = String(page + 1); table.dataset.pages = String(g.pages); table.dataset.per = String(g.per);
  document.getElementById("agents-count").textContent = "(" + data.agents.length + " logged in" +
    (g.pages > 1 ? " · page " + (page + 1) + "/" + g.pages : "") + ")";
}
setInterval(() => { agentPage.index += 1; if (lastData) renderLists(lastData); }, ROTATE_MS);
window.addEventListener("resize", () => { if (lastData) renderLists(lastData); });
// One team's screen: ?queues=billing,sales shows those queues only (tiles, banner, lists;
// an agent is listed if any of their queues is shown).
const QUEUE_FILTER = (() => {
  const raw = new URLSearchParams(window.location.search).get("queues");
  const names = raw ? raw.split(",").map((q) => q.trim()).filter(Boolean) : [];
  return names.length ? new Set(names) : null;
})();
function forScreen(data) {
  if (!QUEUE_FILTER) return data;
  const shown = (q) => QUEUE_FILTER.has(q);
  return {...data,
    queues: data.queues.filter((q) => shown(q.queue)),
    breaches: data.breaches.filter((b) => shown(b.queue)),
    waiting: data.waiting.filter((w) => shown(w.queue)),
    abandoned: data.abandoned.filter((a) => shown(a.queue)),
    agents: data.agents.filter((a) => a.queues.some(shown))};
}
function showFilter(data) {
  const box = document.getElementById("filter");
  if (!QUEUE_FILTER) { box.hidden = true; return; }
  const known = new Set(data.queues.map((q) => q.queue));
  const unknown = [...QUEUE_FILTER].filter((q) => !known.has(q));
  box.hidden = false;
  box.textContent = "queues: " + [...QUEUE_FILTER].filter((q) => known.has(q)).join(", ") +
    (unknown.length ? " (no queue " + unknown.join(", ") + ")" : "");
}
function setStatus(text, cls) {
  const s = document.getElementById("status");
  s.textContent = text; s.className = cls;
}
// Freshness. The feed's data_age_s is the data's age when the server answered; between
// answers, and while the feed does not answer, the page ages it by its own clock. Past
// stale_after_s the page says STALE; past 4x that, in red.
const STALE_RED_FACTOR = 4;
const fresh = {docAge: null, seenAt: null, staleAfter: 120, lastOk: null, error: null};
function noteDocument(data) {
  fresh.docAge = data.data_age_s; fresh.seenAt = Date.now();
  if (data.stale_after_s) fresh.staleAfter = data.stale_after_s;
  fresh.lastOk = Date.now(); fresh.error = null;
}
function showFreshness() {
  const now = Date.now();
  const limit = fresh.staleAfter;
  const age = fresh.docAge === null || fresh.docAge === undefined ? null
    : Math.max(0, fresh.docAge + (now - fresh.seenAt) / 1000);
  document.getElementById("age").textContent = age === null ? "data age —" : "data " + fmtSeconds(age) + " old";
  document.body.setAttribute("data-age", age === null ? "" : String(Math.round(age)));
  let state = "live", text = "● live";
  if (fresh.error !== null) {
    const down = fresh.lastOk === null ? null : (now - fresh.lastOk) / 1000;
    state = down === null || down > limit ? "stale-red" : "stale";
    text = "⚠ STALE: feed unreachable" + (down === null ? "" : " for " + fmtSeconds(down)) + " (" + fresh.error + ")";
  } else if (age === null) {
    state = "stale"; text = "⚠ no events yet";
  } else if (age > limit) {
    state = age > STALE_RED_FACTOR * limit ? "stale-red" : "stale";
    text = "⚠ STALE: no events for " + fmtSeconds(age);
  }
  document.body.setAttribute("data-freshness", state);
  setStatus(text, "status-" + state);
}
async function refresh() {
  try {
    const response = await fetch("/api/wallboard", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    const all = await response.json();
    showFilter(all);
    const data = forScreen(all);
    document.getElementById("clock").textContent = data.watermark_local ? data.watermark_local + " " + data.timezone : "no data yet";
    document.getElementById("window").textContent = "window " + data.window;
    renderQueues(data);
    renderBanner(data);
    renderLists(data);
    noteDocument(data);
    document.body.setAttribute("data-watermark", data.watermark || "");
    document.body.setAttribute("data-loaded", "true");
  } catch (err) {
    fresh.error = err.message;
  }
  showFreshness();
}
refresh();
setInterval(refresh, REFRESH_MS);
