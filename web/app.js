// SPDX-License-Identifier: Apache-2.0
// The gpufuse dashboard: pools, nodes, GPUs (allocation bars and utilization charts), vGPUs,
// alerts and costs from the server's REST API (/api/v1, docs/api.md), refreshed every 5 s.
// The API token is kept in sessionStorage and sent as a Bearer token; "#token=..." in the URL
// signs in without typing (used by the browser test), and is removed from the address bar.
import {h, bytes, tflops, pct, money, hours, ago, table} from "./lib/format.js";
import {meter, lineChart} from "./lib/chart.js";

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);
let timer = null;

function token() {
  return sessionStorage.getItem("gpufuse.token") || "";
}

class ApiError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

async function api(path) {
  const r = await fetch(path, {headers: {Authorization: `Bearer ${token()}`}, cache: "no-store"});
  let body = null;
  try { body = await r.json(); } catch { body = null; }
  if (!r.ok) throw new ApiError(r.status, (body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function status(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

function fill(id, ...content) {
  $(id).replaceChildren(...content.flat().filter((c) => c != null));
}

const empty = (text) => h("p", {class: "muted"}, text);

// ---- sections -------------------------------------------------------------------------------

function renderPools(pools) {
  fill("pools", pools.length ? pools.map((p) =>
    h("article", {class: "card", "data-pool": p.name},
      h("h3", {}, p.name),
      h("p", {class: "sub"}, `${p.strategy} · ${p.nodes_ready}/${p.nodes} nodes ready · ` +
        `${p.gpus} GPUs · ${p.workloads} workloads`),
      meter({label: "VRAM", used: null, request: p.vram_requested, limit: null,
             total: p.vram_bytes, fmt: bytes, kind: "pool-vram"}),
      meter({label: "Compute", used: null, request: p.tflops_requested, limit: null,
             total: p.tflops, fmt: tflops, kind: "pool-tflops"}))) : empty("No pools."));
}

function renderNodes(nodes) {
  fill("nodes", nodes.length ? table("Nodes",
    ["Node", "Pool", "Status", "GPUs", "Allocations", "Address", "Last heartbeat"],
    nodes.map((n) => h("tr", {"data-node": n.name},
      h("th", {scope: "row"}, n.name), h("td", {}, n.pool),
      h("td", {}, h("span", {class: `badge ${n.status === "Ready" ? "ok" : "bad"}`}, n.status)),
      h("td", {class: "num"}, n.gpus), h("td", {class: "num"}, n.allocations),
      h("td", {}, n.address || "–"), h("td", {}, ago(n.last_heartbeat_ms))))) :
    empty("No nodes registered yet: start gpufuse agent on a GPU machine."));
}

function renderGpus(gpus, samples) {
  $("gpu-count").textContent = `(${gpus.length})`;
  fill("gpus", gpus.length ? gpus.map((g) => {
    const s = samples.get(g.uuid) || [];
    const util = s.length ? s[s.length - 1].utilization : g.utilization;
    const chartTitle = `${g.node} GPU ${g.index} over the last samples: utilization ` +
      `${pct(util)} now, VRAM ${bytes(g.vram_used)} of ${bytes(g.vram_bytes)}`;
    return h("article", {class: "card gpu", "data-gpu": g.uuid, "data-node": g.node},
      h("h3", {}, `${g.node} · GPU ${g.index}`),
      h("p", {class: "sub"}, `${g.model} · ${g.vgpus} vGPU${g.vgpus === 1 ? "" : "s"} · ` +
        `${pct(g.utilization)} busy` + (g.temperature_c != null ? ` · ${g.temperature_c} °C` : "") +
        (g.power_mw != null ? ` · ${(g.power_mw / 1000).toFixed(0)} W` : "")),
      meter({label: "VRAM", used: g.vram_used, request: g.vram_requested,
             limit: g.vram_limit_total, total: g.vram_bytes, fmt: bytes, kind: "gpu-vram"}),
      meter({label: "Compute", used: (g.utilization / 100) * g.tflops, request: g.tflops_requested,
             limit: g.tflops_limit_total, total: g.tflops, fmt: tflops, kind: "gpu-tflops"}),
      lineChart(chartTitle, s, g.vram_bytes),
      h("p", {class: "chart-key", "aria-hidden": "true"},
        h("span", {class: "key k-util"}), "utilization ", h("span", {class: "key k-vram"}), "VRAM"));
  }) : empty("No GPUs."));
}

function renderVgpus(allocs, gpus, samples) {
  const gpuBy = new Map(gpus.map((g) => [g.uuid, g]));
  fill("vgpus", allocs.length ? table("vGPUs (allocations)",
    ["Allocation", "Workload", "Node · GPU", "QoS", "State", "VRAM used / requested / limit",
     "Compute used / requested / limit"],
    allocs.map((a) => {
      const g = gpuBy.get(a.gpu_uuid);
      const s = samples.get(a.id) || [];
      const used = s.length && g ? (s[s.length - 1].utilization / 100) * g.tflops : 0;
      return h("tr", {"data-allocation": a.id, "data-workload": a.workload},
        h("th", {scope: "row"}, a.id), h("td", {}, a.workload),
        h("td", {}, `${a.node} · ${a.gpu_index ?? "?"}`), h("td", {}, a.qos),
        h("td", {}, h("span", {class: `badge ${a.state === "active" ? "ok" : "bad"}`}, a.state)),
        h("td", {}, meter({label: "VRAM", used: a.vram_used, request: a.vram_request,
                           limit: a.vram_limit, total: 0, fmt: bytes, kind: "vgpu-vram"})),
        h("td", {}, meter({label: "Compute", used, request: a.tflops_request,
                           limit: a.tflops_limit, total: 0, fmt: tflops, kind: "vgpu-tflops"})));
    })) : empty("No workloads placed."));
}

function alertText(a) {
  const labels = a.labels || {};
  const ann = a.annotations || {};
  return {
    name: labels.alertname || a.alertname || a.name || a.rule || "alert",
    severity: labels.severity || a.severity || "",
    state: a.state || a.status || "firing",
    text: ann.summary || ann.description || a.summary || a.message || a.description || "",
  };
}

function alertItem(raw) {
  const a = alertText(raw);
  return h("li", {class: `alert sev-${a.severity || "none"} state-${a.state}`, "data-alert": a.name},
    h("strong", {}, a.name), a.severity ? h("span", {class: "badge"}, a.severity) : null,
    h("span", {class: `badge ${a.state === "firing" ? "bad" : ""}`}, a.state), " ", a.text);
}

function renderAlerts(body) {
  if (body === null) {
    fill("alerts", empty("This server has no alerts API (GET /api/v1/alerts)."));
    return;
  }
  const items = Array.isArray(body) ? body : body.items || body.alerts || [];
  const active = items.filter((a) => ["firing", "pending"].includes(alertText(a).state));
  const past = items.filter((a) => !active.includes(a)).slice(0, 10);
  fill("alerts",
    active.length ? h("ul", {class: "alerts"}, active.map(alertItem)) :
      h("p", {class: "ok-text"}, "No alerts firing."),
    past.length ? h("details", {class: "past-alerts"},
      h("summary", {}, `Recently resolved (${past.length})`),
      h("ul", {class: "alerts"}, past.map(alertItem))) : null);
}

function renderCosts(c) {
  const wl = c.workloads || [];
  const pools = c.pools || [];
  const t = c.total || {};
  fill("costs",
    h("p", {class: "sub"}, `From ${new Date(c.from_ms).toLocaleString()} to ` +
      `${new Date(c.to_ms).toLocaleString()}. Total `, h("strong", {id: "cost-total"},
      money(t.cost)), ` (reserved ${money(t.reserved_cost)}, burst ${money(t.burst_cost)}); ` +
      `idle: ${money(t.unallocated_cost)} unallocated, ${money(t.idle_allocated_cost)} ` +
      `allocated but unused.`),
    wl.length ? table("Costs per workload",
      ["Workload", "Pool", "QoS", "Reserved TFLOP·h", "Reserved GiB·h", "Burst TFLOP·h",
       "Reserved", "Burst", "Total"],
      wl.map((w) => h("tr", {"data-cost-workload": w.workload, "data-cost": money(w.cost)},
        h("th", {scope: "row"}, w.workload), h("td", {}, w.pool), h("td", {}, w.qos),
        h("td", {class: "num"}, hours(w.reserved_tflop_hours)),
        h("td", {class: "num"}, hours(w.reserved_gib_hours)),
        h("td", {class: "num"}, hours(w.burst_tflop_hours)),
        h("td", {class: "num"}, money(w.reserved_cost)),
        h("td", {class: "num"}, money(w.burst_cost)),
        h("td", {class: "num"}, h("strong", {}, money(w.cost)))))) :
      empty("No workload ran in this period."),
    pools.length ? table("Costs per pool",
      ["Pool", "Capacity TFLOP·h", "Unallocated TFLOP·h", "Allocated, unused TFLOP·h",
       "Unallocated cost", "Idle allocated cost", "Charged"],
      pools.map((p) => h("tr", {"data-cost-pool": p.pool},
        h("th", {scope: "row"}, p.pool), h("td", {class: "num"}, hours(p.capacity_tflop_hours)),
        h("td", {class: "num"}, hours(p.unallocated_tflop_hours)),
        h("td", {class: "num"}, hours(p.idle_allocated_tflop_hours)),
        h("td", {class: "num"}, money(p.unallocated_cost)),
        h("td", {class: "num"}, money(p.idle_allocated_cost)),
        h("td", {class: "num"}, money(p.cost))))) : null);
}

// ---- refresh --------------------------------------------------------------------------------

async function optional(path) {
  try { return await api(path); } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

async function samplesFor(kind, ids) {
  const out = new Map();
  await Promise.all(ids.slice(0, 64).map(async (id) => {
    try {
      const r = await api(`/api/v1/${kind}/${encodeURIComponent(id)}/samples`);
      out.set(id, r.items || []);
    } catch { out.set(id, []); }
  }));
  return out;
}

async function refresh() {
  clearTimeout(timer);
  if (!token()) {
    status("Not signed in: paste the API token (the server's DATA/admin.token) above.");
    document.body.dataset.loaded = "0";
    return;
  }
  try {
    const from = $("period").value;
    const [pools, nodes, gpus, allocs, alerts, costs] = await Promise.all([
      api("/api/v1/pools"), api("/api/v1/nodes"), api("/api/v1/gpus"),
      api("/api/v1/allocations"), optional("/api/v1/alerts"),
      api(`/api/v1/costs?from=${encodeURIComponent(from)}`)]);
    const samples = await samplesFor("gpus", gpus.items.map((g) => g.uuid));
    const asamples = await samplesFor("allocations", allocs.items.map((a) => a.id));
    renderAlerts(alerts);
    renderPools(pools.items);
    renderNodes(nodes.items);
    renderGpus(gpus.items, samples);
    renderVgpus(allocs.items, gpus.items, asamples);
    renderCosts(costs);
    status(`Updated ${new Date().toLocaleTimeString()}.`);
    document.body.dataset.loaded = "1";
  } catch (e) {
    status(e.status === 401 ? "The token was refused: check it and sign in again." :
           `Could not load: ${e.message}`, true);
    document.body.dataset.loaded = "error";
    if (e.status === 401) return;
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function showSignedIn() {
  const on = !!token();
  $("signout").hidden = !on;
  $("token").value = "";
  $("token").placeholder = on ? "signed in (token kept for this tab)" : "contents of DATA/admin.token";
}

function init() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("gpufuse.token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (t) sessionStorage.setItem("gpufuse.token", t);
    showSignedIn();
    refresh();
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem("gpufuse.token");
    showSignedIn();
    refresh();
  });
  $("period").addEventListener("change", refresh);
  showSignedIn();
  refresh();
}

init();
