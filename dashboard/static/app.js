/* rayc dashboard: plain JavaScript over the head's JSON API (/api/v0/...), refreshed every 2 s.
 * Data is put into the page with textContent only (never parsed as HTML). */
"use strict";

const REFRESH_MS = 2000, HISTORY = 150; /* 5 minutes of samples */
const history = [];
let tab = "overview", logsJob = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") e.addEventListener("click", v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e;
}

async function api(path) {
  const r = await fetch(path, {credentials: "same-origin", headers: {"X-Rayc-CSRF": "1"}});
  if (r.status === 401) { location.href = "/login"; throw new Error("unauthorized"); }
  if (!r.ok) throw new Error(path + ": " + r.status);
  const type = r.headers.get("Content-Type") || "";
  return type.startsWith("application/json") ? r.json() : r.text();
}

async function rows(kind, query) {
  const j = await api("/api/v0/" + kind + "?limit=" + (query && query.limit || 1000) +
                      (query && query.job ? "&job_id=" + encodeURIComponent(query.job) : "") +
                      (query && query.filter ? "&filter=" + encodeURIComponent(query.filter) : ""));
  return j.data.result;
}

function short(id) { return id ? String(id).slice(0, 8) : ""; }
function fmtBytes(n) {
  if (n == null) return "";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}
function fmtTime(ms) { return ms ? new Date(ms).toLocaleTimeString() : ""; }
function stateCell(s) { return el("td", {class: String(s).split(" ")[0]}, s); }
function bar(used, total) {
  const pct = total > 0 ? Math.min(100, 100 * used / total) : 0;
  return el("span", {class: "bar", title: pct.toFixed(0) + "%"}, el("span", {style: "width:" + pct + "%"}));
}

function table(id, head, body) {
  const t = document.getElementById(id);
  t.replaceChildren(el("thead", {}, el("tr", {}, ...head.map(h => el("th", {}, h)))),
                    el("tbody", {}, ...body));
}

function resUse(node, name) {
  const total = (node.resources_total || {})[name] || 0;
  const avail = (node.resources_available || {})[name];
  return [total - (avail == null ? total : avail), total];
}

async function showOverview() {
  const nodes = await rows("nodes");
  const alive = nodes.result.filter(n => n.state.startsWith("ALIVE"));
  let cpuUsed = 0, cpuTotal = 0, memUsed = 0, memTotal = 0;
  for (const n of alive) {
    const [cu, ct] = resUse(n, "CPU"), [mu, mt] = resUse(n, "object_store_memory");
    cpuUsed += cu; cpuTotal += ct; memUsed += mu; memTotal += mt;
  }
  history.push({t: Date.now(), cpu: cpuTotal ? cpuUsed / cpuTotal : 0, mem: memTotal ? memUsed / memTotal : 0});
  while (history.length > HISTORY) history.shift();
  document.getElementById("totals").replaceChildren(
    el("div", {class: "card", id: "card-nodes"}, el("div", {class: "n"}, alive.length), "nodes alive"),
    el("div", {class: "card"}, el("div", {class: "n"}, cpuUsed + " / " + cpuTotal), "CPUs in use"),
    el("div", {class: "card"}, el("div", {class: "n"}, fmtBytes(memTotal)), "object store"));
  drawChart();
  table("nodes-table", ["node", "address", "state", "head", "CPU", "object store (reserved)", "memory", "since"],
        nodes.result.map(n => {
          const [cu, ct] = resUse(n, "CPU"), [mu, mt] = resUse(n, "object_store_memory");
          return el("tr", {class: "node-row"}, el("td", {class: "mono"}, short(n.node_id)), el("td", {}, n.ip),
                    stateCell(n.state), el("td", {}, n.is_head ? "yes" : ""),
                    el("td", {}, bar(cu, ct), " " + cu + "/" + ct),
                    el("td", {}, bar(mu, mt), " " + fmtBytes(mu) + " / " + fmtBytes(mt)),
                    el("td", {}, fmtBytes((n.resources_total || {}).memory)), el("td", {}, fmtTime(n.start_time_ms)));
        }));
}

function drawChart() {
  const svg = document.getElementById("chart"), W = 600, H = 160, ns = "http://www.w3.org/2000/svg";
  const line = (key, color) => {
    const p = document.createElementNS(ns, "polyline");
    const pts = history.map((s, i) => (i * W / (HISTORY - 1)).toFixed(1) + "," + (H - 4 - s[key] * (H - 8)).toFixed(1));
    p.setAttribute("points", pts.join(" "));
    p.setAttribute("fill", "none");
    p.setAttribute("stroke", color);
    p.setAttribute("stroke-width", "2");
    return p;
  };
  svg.replaceChildren(line("cpu", "#4c9aff"), line("mem", "#f5a623"));
}

async function showJobs() {
  const [subs, drivers] = await Promise.all([api("/api/jobs/"), rows("jobs")]);
  const linked = new Set(subs.map(j => j.job_id).filter(Boolean));
  const list = subs.map(j => ({id: j.submission_id, submission_id: j.submission_id, status: j.status,
                               entrypoint: j.entrypoint, start: j.start_time, end: j.end_time, note: j.message}))
    .concat(drivers.result.filter(j => !linked.has(j.job_id)).map(j => ({
      id: j.job_id, job_id: j.job_id, status: j.status, entrypoint: j.entrypoint || "driver pid " + j.driver_pid,
      start: j.start_time_ms, end: j.end_time_ms, note: j.end_reason})));
  table("jobs-table", ["job", "status", "entrypoint", "started", "ended", "message", ""],
        list.map(j => el("tr", {class: "job-row", "data-id": j.id}, el("td", {class: "mono"}, j.id), stateCell(j.status),
                         el("td", {class: "mono"}, j.entrypoint), el("td", {}, fmtTime(j.start)),
                         el("td", {}, fmtTime(j.end)), el("td", {}, j.note),
                         el("td", {}, el("button", {class: "logs-link", onclick: () => openJobLogs(j)}, "logs")))));
  if (logsJob) await loadJobLogs();
}

function openJobLogs(job) { logsJob = job; loadJobLogs(); }

/* A job's logs: the supervisor's log for a submitted job, else the logs of its workers on the head. */
async function loadJobLogs() {
  const box = document.getElementById("job-logs");
  box.hidden = false;
  document.getElementById("job-logs-title").textContent = "Logs of job " + logsJob.id;
  let text = "";
  if (logsJob.submission_id) {
    text = (await api("/api/jobs/" + encodeURIComponent(logsJob.submission_id) + "/logs")).logs;
  } else {
    const workers = await rows("workers", {filter: "job_id=" + logsJob.job_id});
    const files = (await api("/api/v0/logs")).data.result.map(f => f.name);
    for (const w of workers.result) {
      const name = files.find(f => f.startsWith("worker-" + w.worker_id.slice(0, 16)) && f.endsWith(".log"));
      if (!name) continue;
      text += "==> " + name + " (pid " + w.pid + ") <==\n" + await api("/api/v0/logs/file?lines=200&file=" + encodeURIComponent(name));
    }
    if (!text) text = "(no log files of this job's workers on the head)";
  }
  document.getElementById("job-logs-text").textContent = text;
}

async function showActors() {
  const actors = await rows("actors");
  table("actors-table", ["actor", "class", "name", "state", "restarts", "address", "death"],
        actors.result.map(a => el("tr", {}, el("td", {class: "mono"}, short(a.actor_id)), el("td", {}, a.class_name),
                                  el("td", {}, a.name), stateCell(a.state), el("td", {}, a.num_restarts),
                                  el("td", {}, a.ip ? a.ip + ":" + a.port : ""), el("td", {}, a.death_message))));
}

async function showTasks() {
  const job = document.getElementById("task-job").value, state = document.getElementById("task-state").value;
  const [tasks, jobs] = await Promise.all([rows("tasks", {job: job, filter: state ? "state=" + state : "", limit: 500}),
                                           rows("jobs")]);
  const sel = document.getElementById("task-job");
  const known = new Set([...sel.options].map(o => o.value));
  for (const j of jobs.result) if (!known.has(j.job_id)) sel.append(el("option", {value: j.job_id}, j.job_id));
  document.getElementById("task-count").textContent = tasks.num_after_truncation + " of " + tasks.total + " tasks";
  table("tasks-table", ["task", "name", "attempt", "state", "job", "node", "worker pid", "duration (ms)", "error"],
        tasks.result.map(t => el("tr", {class: "task-row"}, el("td", {class: "mono"}, short(t.task_id)), el("td", {}, t.name),
                                 el("td", {}, t.attempt), stateCell(t.state), el("td", {class: "mono"}, t.job_id),
                                 el("td", {class: "mono"}, short(t.node_id)), el("td", {}, t.worker_pid || ""),
                                 el("td", {}, t.duration_ms == null ? "" : t.duration_ms.toFixed(2)),
                                 el("td", {class: "mono"}, t.error))));
}

async function showPgs() {
  const pgs = await rows("placement_groups");
  table("pgs-table", ["placement group", "name", "strategy", "state", "bundles", "detail"],
        pgs.result.map(g => el("tr", {}, el("td", {class: "mono"}, short(g.placement_group_id)), el("td", {}, g.name),
                               el("td", {}, g.strategy), stateCell(g.state),
                               el("td", {}, (g.bundles || []).map(b => JSON.stringify(b.resources) + "@" + short(b.node_id)).join(" ")),
                               el("td", {}, g.state_detail))));
}

async function showEvents() {
  const ev = await rows("cluster_events");
  table("events-table", ["time", "severity", "kind", "message"],
        ev.result.slice().reverse().map(e => el("tr", {class: "event-row"}, el("td", {}, new Date(e.time_ms).toLocaleString()),
                                                stateCell(e.severity), el("td", {}, e.kind), el("td", {}, e.message))));
}

async function showLogs() {
  const files = (await api("/api/v0/logs")).data.result;
  table("logs-table", ["file", "size"], files.map(f => el("tr", {},
    el("td", {}, el("button", {onclick: async () => {
      document.getElementById("log-title").textContent = f.name;
      document.getElementById("log-text").textContent = await api("/api/v0/logs/file?lines=500&file=" + encodeURIComponent(f.name));
    }}, f.name)), el("td", {}, fmtBytes(f.size)))));
}

const views = {overview: showOverview, jobs: showJobs, actors: showActors, tasks: showTasks,
               "placement-groups": showPgs, events: showEvents, logs: showLogs};

async function refresh() {
  try {
    await views[tab]();
    if (tab !== "overview") await showOverview(); /* keep the usage history going */
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("status").textContent = "cannot reach the head: " + e.message;
  }
}

function select() {
  tab = (location.hash || "#overview").slice(1);
  if (!views[tab]) tab = "overview";
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("shown", s.id === tab);
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.tab === tab);
  refresh();
}

if (document.getElementById("tabs")) {
  window.addEventListener("hashchange", select);
  document.getElementById("task-job").addEventListener("change", refresh);
  document.getElementById("task-state").addEventListener("change", refresh);
  select();
  setInterval(refresh, REFRESH_MS);
}
