// Headrace UI: run history (#/), a flow-run page (#/flowrun/NS/NAME, #/local/ID) with the
// graph in two layouts, results and logs. The page polls while the run goes on.

import "./style.css";
import { LayoutKind } from "./layout";
import { Graph, GraphPayload, STATE_LEGEND, buildGraph, isPending, stateColor } from "./model";
import { GraphView } from "./renderer";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const app = document.getElementById("app")!;
let stopPage: (() => void) | null = null;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}

async function getJson(url: string): Promise<Json> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  return r.json();
}

const FINAL = new Set(["Completed", "Failed", "Crashed", "Cancelled", "TimedOut"]);
const STATE_TYPE: Record<string, string> = {
  Completed: "COMPLETED",
  Cached: "COMPLETED",
  Running: "RUNNING",
  Retrying: "RUNNING",
  Pending: "PENDING",
  Scheduled: "SCHEDULED",
  AwaitingRetry: "SCHEDULED",
  Failed: "FAILED",
  TimedOut: "FAILED",
  Crashed: "CRASHED",
  Cancelled: "CANCELLED",
};

function badge(state: string): HTMLElement {
  const b = h("span", { class: "badge", text: state });
  b.style.background = stateColor(STATE_TYPE[state] ?? "", state);
  return b;
}

function fmtTime(value: string | number | null | undefined): string {
  if (value == null || value === "") return "";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return d.toLocaleString();
}

function fmtSize(n: number | null | undefined): string {
  if (n == null) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// -- run history --------------------------------------------------------------------------
async function historyPage(params: URLSearchParams): Promise<void> {
  const filters = {
    namespace: params.get("namespace") ?? "",
    deployment: params.get("deployment") ?? "",
    state: params.get("state") ?? "",
    q: params.get("q") ?? "",
    page: Number(params.get("page") ?? "0"),
  };
  const go = (patch: Partial<typeof filters>) => {
    const next = { ...filters, ...patch };
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v !== "" && v !== 0) qs.set(k, String(v));
    location.hash = `#/?${qs}`;
  };
  const qs = new URLSearchParams({ pageSize: "50", page: String(filters.page) });
  for (const k of ["namespace", "deployment", "state", "q"] as const) if (filters[k]) qs.set(k, filters[k]);
  const [data, local] = await Promise.all([getJson(`/api/flowruns?${qs}`), getJson("/api/local")]);

  const deployment = h("select", { name: "deployment" }, h("option", { value: "", text: "all deployments" }));
  for (const d of data.deployments as string[]) deployment.append(h("option", { value: d, text: d }));
  deployment.value = filters.deployment;
  deployment.onchange = () => go({ deployment: deployment.value, page: 0 });
  const state = h("select", { name: "state" }, h("option", { value: "", text: "all states" }));
  for (const s of new Set([...(data.states as string[]), ...FINAL, "Running", "Pending"]))
    state.append(h("option", { value: s, text: s }));
  state.value = filters.state;
  state.onchange = () => go({ state: state.value, page: 0 });
  const search = h("input", { type: "search", placeholder: "name contains…", value: filters.q });
  search.onchange = () => go({ q: search.value, page: 0 });
  const ns = h("input", { type: "search", placeholder: "namespace", value: filters.namespace });
  ns.onchange = () => go({ namespace: ns.value, page: 0 });

  const rows = (data.items as Json[]).map((r) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/flowrun/${r.namespace}/${r.name}`, text: r.name })),
      h("td", { text: r.namespace }),
      h("td", { text: r.deployment ?? "" }),
      h("td", {}, badge(r.state)),
      h("td", { text: fmtTime(r.created) }),
      h("td", { text: r.duration ?? "" }),
      h("td", { text: r.progress.total ? `${r.progress.counts.Completed ?? 0}/${r.progress.total}` : "" }),
    ),
  );
  const first = data.page * data.pageSize;
  const prev = h("button", { text: "← newer" });
  prev.disabled = data.page === 0;
  prev.onclick = () => go({ page: data.page - 1 });
  const next = h("button", { text: "older →" });
  next.disabled = first + data.items.length >= data.total;
  next.onclick = () => go({ page: data.page + 1 });

  const localRows = (local.items as Json[]).map((r) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/local/${r.id}`, text: r.name ?? r.id })),
      h("td", { text: r.flowName ?? "" }),
      h("td", {}, badge(r.state)),
      h("td", { text: fmtTime(r.start) }),
      h("td", { text: r.total ? `${r.counts?.Completed ?? 0}/${r.total}` : "" }),
    ),
  );
  app.replaceChildren(
    h(
      "section",
      { class: "history" },
      h("h1", { text: "Flow runs" }),
      data.kube ? null : h("p", { class: "note", text: "No Kubernetes configuration: set KUBECONFIG to see FlowRuns." }),
      h("div", { class: "filters" }, ns, deployment, state, search),
      h(
        "table",
        { class: "runs", id: "flowruns", "data-state": filters.state, "data-deployment": filters.deployment },
        h("thead", {}, h("tr", {}, ...["Name", "Namespace", "Deployment", "State", "Created", "Duration", "Tasks done"].map((t) => h("th", { text: t })))),
        h("tbody", {}, ...rows),
      ),
      h(
        "div",
        { class: "pager" },
        prev,
        h("span", { text: data.total ? `${first + 1}–${first + data.items.length} of ${data.total}` : "no flow runs" }),
        next,
      ),
      localRows.length ? h("h2", { text: "Local runs" }) : null,
      localRows.length
        ? h(
            "table",
            { class: "runs" },
            h("thead", {}, h("tr", {}, ...["Name", "Flow", "State", "Started", "Tasks done"].map((t) => h("th", { text: t })))),
            h("tbody", {}, ...localRows),
          )
        : null,
    ),
  );
}

// -- the flow-run page --------------------------------------------------------------------
interface HeadraceGraphHook {
  ready: boolean;
  state(): Json;
  toggleSubflow(nameOrId: string): void;
  setLayout(kind: LayoutKind): void;
  search(text: string): void;
  nodeScreen(name: string): { x: number; y: number } | null;
  subflowHeaderScreen(name: string): { x: number; y: number } | null;
  timings: Record<string, number>;
}

declare global {
  interface Window {
    headraceGraph?: HeadraceGraphHook;
  }
}

function runPage(base: string, title: string): void {
  let stopped = false;
  let timer = 0;
  stopPage = () => {
    stopped = true;
    clearTimeout(timer);
  };
  const marks: Record<string, number> = { start: performance.now() };

  const header = h("div", { class: "run-header" }, h("h1", { text: title }));
  const tabs = h("div", { class: "tabs" });
  const body = h("div", { class: "tab-body" });
  app.replaceChildren(h("section", { class: "run" }, header, tabs, body));

  // Graph tab
  const graphPane = h("div", { class: "pane graph-pane" });
  const toolbar = h("div", { class: "toolbar" });
  const canvasBox = h("div", { class: "canvas-box" });
  const side = h("aside", { class: "details", text: "Click a task run for its details." });
  graphPane.append(toolbar, h("div", { class: "graph-main" }, canvasBox, side));
  let graph: Graph | null = null;
  const view = new GraphView(canvasBox, {
    onSelect: (t) => showDetails(t),
  });
  const stageBtn = h("button", { class: "on", text: "Stages", "data-layout": "stage" });
  const timeBtn = h("button", { text: "Timeline", "data-layout": "timeline" });
  const setLayout = (kind: LayoutKind) => {
    view.setKind(kind);
    stageBtn.classList.toggle("on", kind === "stage");
    timeBtn.classList.toggle("on", kind === "timeline");
  };
  stageBtn.onclick = () => setLayout("stage");
  timeBtn.onclick = () => setLayout("timeline");
  const search = h("input", { type: "search", placeholder: "search task runs…", class: "graph-search" });
  const matchInfo = h("span", { class: "muted" });
  search.oninput = () => {
    view.setSearch(search.value);
    matchInfo.textContent = search.value ? `${view.matchCount} matches` : "";
  };
  search.onkeydown = (e) => {
    if (e.key === "Enter") view.focusFirstMatch();
  };
  const fit = h("button", { text: "Fit" });
  fit.onclick = () => view.fit();
  const zin = h("button", { text: "+" });
  zin.onclick = () => view.zoomBy(1.25);
  const zout = h("button", { text: "−" });
  zout.onclick = () => view.zoomBy(0.8);
  const legend = h("span", { class: "legend" });
  for (const [name, color] of STATE_LEGEND) {
    const sw = h("i");
    sw.style.background = name === "Pending" ? "#fff" : color;
    if (name === "Pending") sw.style.border = `1px dashed ${color}`;
    legend.append(h("span", {}, sw, name));
  }
  const graphInfo = h("span", { class: "muted graph-info" });
  toolbar.append(h("span", { class: "seg" }, stageBtn, timeBtn), search, matchInfo, zout, zin, fit, graphInfo, legend);

  function showDetails(t: number | null): void {
    if (t === null || !graph) {
      side.textContent = "Click a task run for its details.";
      return;
    }
    const tk = graph.payload.tasks;
    const rows: [string, Node | string][] = [
      ["name", tk.name[t]],
      ["task", tk.key[t]],
      ["state", badge(tk.state[t])],
      ["id", tk.id[t]],
    ];
    if (tk.message[t]) rows.push(["message", tk.message[t]]);
    if (tk.start[t]) rows.push(["started", fmtTime(tk.start[t])]);
    if (tk.start[t] && tk.end[t]) rows.push(["took", `${(tk.end[t]! - tk.start[t]!).toFixed(3)} s`]);
    if (tk.result[t]) rows.push(["result", h("a", { href: `${base}/results/file?id=${encodeURIComponent(tk.id[t])}`, text: tk.result[t]!, target: "_blank" })]);
    const ups = tk.up[t];
    const waits = ups.filter((u) => !["COMPLETED", "FAILED", "CRASHED", "CANCELLED"].includes(tk.type[u]));
    const list = (items: number[]) =>
      h("ul", {}, ...items.slice(0, 50).map((u) => h("li", {}, `${tk.name[u]} `, badge(tk.state[u]))), items.length > 50 ? h("li", { text: `… ${items.length - 50} more` }) : null);
    const parts: Node[] = [
      h("h3", { text: tk.name[t] }),
      h("dl", {}, ...rows.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)])),
    ];
    if (isPending(graph, t)) parts.push(h("h4", { text: `waits on ${waits.length}` }), list(waits));
    else if (ups.length) parts.push(h("h4", { text: `upstream ${ups.length}` }), list(ups));
    side.replaceChildren(...parts);
  }

  // Results tab
  const resultsPane = h("div", { class: "pane results-pane" });
  let resultsOffset = 0;
  let resultsQuery = "";
  async function loadResults(): Promise<void> {
    const qs = new URLSearchParams({ offset: String(resultsOffset), limit: "100" });
    if (resultsQuery) qs.set("q", resultsQuery);
    const data = await getJson(`${base}/results?${qs}`);
    const filter = h("input", { type: "search", placeholder: "task name contains…", value: resultsQuery });
    filter.onchange = () => {
      resultsQuery = filter.value;
      resultsOffset = 0;
      void loadResults();
    };
    const prev = h("button", { text: "←" });
    prev.disabled = resultsOffset === 0;
    prev.onclick = () => {
      resultsOffset = Math.max(0, resultsOffset - 100);
      void loadResults();
    };
    const next = h("button", { text: "→" });
    next.disabled = resultsOffset + data.items.length >= data.total;
    next.onclick = () => {
      resultsOffset += 100;
      void loadResults();
    };
    const rows = (data.items as Json[]).map((r) =>
      h(
        "tr",
        { "data-id": r.id },
        h("td", { text: r.name }),
        h("td", { text: r.key ?? "" }),
        h("td", {}, r.state ? badge(r.state) : ""),
        h("td", { class: "location" }, h("a", { href: `${base}/results/file?id=${encodeURIComponent(r.id)}`, text: r.location, target: "_blank" })),
        h("td", { class: "type", text: r.error ?? r.type ?? "" }),
        h("td", { class: "size", text: fmtSize(r.size) }),
        h("td", { class: "preview" }, r.preview !== undefined ? h("code", { text: JSON.stringify(r.preview).slice(0, 300) }) : ""),
      ),
    );
    resultsPane.replaceChildren(
      h("div", { class: "filters" }, filter, prev, h("span", { text: data.total ? `${data.offset + 1}–${data.offset + data.items.length} of ${data.total}` : "no persisted results yet" }), next),
      h(
        "table",
        { class: "runs results" },
        h("thead", {}, h("tr", {}, ...["Task run", "Task", "State", "Location", "Type", "Size", "Preview"].map((t) => h("th", { text: t })))),
        h("tbody", {}, ...rows),
      ),
    );
  }

  // Logs tab
  const logsPane = h("div", { class: "pane logs-pane" });
  const logFilter = h("input", { type: "search", placeholder: "task name starts with…" });
  const newestFirst = h("input", { type: "checkbox" });
  const logBox = h("pre", { class: "log" });
  const podBox = h("div", { class: "pods" });
  let logLines: Json[] = [];
  const renderLogs = () => {
    const f = logFilter.value;
    let lines = f ? logLines.filter((e) => (e.task_run_name ?? "").startsWith(f)) : logLines;
    if (newestFirst.checked) lines = [...lines].reverse();
    logBox.textContent = lines
      .map((e) => `${new Date(e.ts * 1000).toISOString().slice(11, 23)} | ${String(e.level).padEnd(7)} | ${e.task_run_name ?? "flow"} | ${e.message}`)
      .join("\n");
  };
  logFilter.oninput = renderLogs;
  newestFirst.onchange = renderLogs;
  logsPane.append(
    h("div", { class: "filters" }, logFilter, h("label", {}, newestFirst, " newest first")),
    logBox,
    h("h3", { text: "Pod output" }),
    podBox,
  );
  async function loadLogs(): Promise<void> {
    const data = await getJson(`${base}/logs?after=${logLines.length}`);
    if (data.lines.length) {
      logLines = logLines.concat(data.lines);
      renderLogs();
    }
  }
  async function loadPodLogs(): Promise<void> {
    const data = await getJson(`${base}/podlogs`);
    podBox.replaceChildren(
      ...(data.pods as Json[]).map((p) => h("details", {}, h("summary", { text: `attempt ${p.attempt}: pod ${p.pod}` }), h("pre", { class: "log", text: p.text || "(no output)" }))),
    );
    if (!data.pods.length) podBox.textContent = "No pods (a local run, or not started yet).";
  }

  const panes: Record<string, [HTMLElement, () => Promise<void>]> = {
    graph: [graphPane, async () => {}],
    results: [resultsPane, loadResults],
    logs: [logsPane, async () => Promise.all([loadLogs(), loadPodLogs()]).then(() => {})],
  };
  let current = "graph";
  const tabButtons: HTMLButtonElement[] = [];
  for (const name of Object.keys(panes)) {
    const b = h("button", { text: name[0].toUpperCase() + name.slice(1), "data-tab": name });
    b.onclick = () => {
      current = name;
      tabButtons.forEach((x) => x.classList.toggle("on", x === b));
      body.replaceChildren(panes[name][0]);
      void panes[name][1]();
    };
    tabButtons.push(b);
    tabs.append(b);
  }
  tabButtons[0].classList.add("on");
  body.append(graphPane);

  // The test and benchmark hook: a canvas has no DOM to query.
  const boxByFlow = (nameOrId: string) => {
    const flows = graph?.payload.flows ?? [];
    return flows.findIndex((f) => f.id === nameOrId || f.name === nameOrId || f.flowName === nameOrId);
  };
  window.headraceGraph = {
    ready: false,
    timings: {},
    state() {
      const L = view.layout;
      const g = graph;
      if (!L || !g) return { ready: false };
      const tk = g.payload.tasks;
      const pendingEdges: Json[] = [];
      for (let i = 0; i < L.edges.length && pendingEdges.length < 100; i += 2) {
        const t = L.edges[i + 1];
        if (isPending(g, t)) pendingEdges.push({ from: tk.name[L.edges[i]], to: tk.name[t] });
      }
      return {
        ready: true,
        layout: L.kind,
        tasks: g.n,
        visibleNodes: L.visibleCount,
        drawnNodes: view.drawnNodes,
        visibleEdges: L.edges.length / 2 + L.aggEdges.length,
        individualEdges: L.edges.length / 2,
        aggregatedEdges: L.aggEdges.map((a) => ({ from: L.boxes[a.from].label, to: L.boxes[a.to].label, count: a.count })),
        pendingNodes: L.visibleCount ? L.pendingVisible : 0,
        pendingEdges,
        pendingEdgeCount: L.pendingEdges,
        stages: g.stages.map((s) => ({ flow: g.payload.flows[s.flow]?.name, key: s.key, depth: s.depth, count: s.tasks.length, visible: L.stageBox[s.index] >= 0 })),
        subflows: g.payload.flows
          .filter((f) => f.parentTask >= 0)
          .map((f) => ({ id: f.id, name: f.name, flowName: f.flowName, collapsed: view.collapsed.has(f.id) })),
        matches: view.matchCount,
        final: g.payload.final,
        renders: view.renders,
        layoutMs: view.timings.layoutMs,
        drawMs: view.timings.drawMs,
      };
    },
    toggleSubflow(nameOrId) {
      const f = boxByFlow(nameOrId);
      if (f >= 0 && graph) view.toggleSubflow(graph.payload.flows[f].id);
    },
    setLayout,
    search(text) {
      search.value = text;
      search.oninput?.(new Event("input"));
    },
    nodeScreen(name) {
      const L = view.layout;
      if (!L || !graph) return null;
      const i = graph.payload.tasks.name.indexOf(name);
      if (i < 0 || !L.visible[i]) return null;
      return view.screenOf(L.x[i] + Math.min(L.w[i], 40) / 2, L.y[i] + Math.min(L.h[i], 20) / 2);
    },
    subflowHeaderScreen(nameOrId) {
      const L = view.layout;
      const f = boxByFlow(nameOrId);
      const box = L?.boxes.find((b) => b.kind === "subflow" && b.flow === f);
      return box ? view.screenOf(box.x + 40, box.y + box.header / 2) : null;
    },
  };

  let etag = "";
  let lastRunInfo: Json = null;
  async function poll(): Promise<void> {
    let final = false;
    try {
      const info = await getJson(base);
      lastRunInfo = info;
      renderHeader(info);
      const r = await fetch(`${base}/graph`, { headers: etag ? { "If-None-Match": etag } : {} });
      if (r.status === 200) {
        etag = r.headers.get("ETag") ?? "";
        marks.fetched = performance.now();
        const payload = (await r.json()) as GraphPayload & { waiting?: string };
        marks.parsed = performance.now();
        if (payload.waiting) {
          graphInfo.textContent = payload.waiting;
        } else {
          graph = buildGraph(payload);
          marks.built = performance.now();
          view.setGraph(graph);
          marks.laidOut = performance.now();
          graphInfo.textContent = `${graph.n} task runs · ${graph.stages.length} stages`;
          final = payload.final;
          if (!window.headraceGraph!.ready) {
            view.draw(); // the first paint now, not at the next frame
            marks.painted = performance.now();
            requestAnimationFrame(() => {
              marks.frame = performance.now();
              Object.assign(window.headraceGraph!.timings, {
                fetchMs: marks.fetched - marks.start,
                parseMs: marks.parsed - marks.fetched,
                buildMs: marks.built - marks.parsed,
                layoutMs: marks.laidOut - marks.built,
                paintMs: marks.painted - marks.laidOut,
                totalMs: marks.frame - marks.start,
              });
              window.headraceGraph!.ready = true;
            });
          }
        }
      } else if (r.status === 304) {
        final = graph?.payload.final ?? false;
      }
      if (current === "logs") await loadLogs();
      if (current === "results" && !final) await loadResults();
      if (info.flowrun) final = final && FINAL.has(info.flowrun.state);
    } catch (error) {
      graphInfo.textContent = String(error);
    }
    if (!stopped && !final) timer = window.setTimeout(poll, 1000);
    else if (!stopped && current === "logs") void loadPodLogs();
  }

  function renderHeader(info: Json): void {
    const fr = info.flowrun;
    const items: (Node | string)[] = [h("h1", { text: title })];
    if (fr) {
      items.push(badge(fr.state));
      const attempts = (fr.status.attempts ?? []) as Json[];
      const facts = [
        fr.deployment ? `deployment ${fr.deployment}` : fr.entrypoint,
        fr.startTime ? `started ${fmtTime(fr.startTime)}` : "",
        fr.duration ? `took ${fr.duration}` : "",
        fr.progress.total ? Object.entries(fr.progress.counts).map(([k, v]) => `${k} ${v}`).join(" · ") : "",
        attempts.length ? `pods ${attempts.map((a) => a.podName).join(", ")}` : "",
      ].filter(Boolean);
      items.push(h("span", { class: "facts", text: facts.join("  ·  ") }));
      if (fr.message) items.push(h("div", { class: FINAL.has(fr.state) && fr.state !== "Completed" ? "message bad" : "message", text: fr.message }));
    } else if (graph && graph.payload.root >= 0) {
      const root = graph.payload.flows[graph.payload.root];
      items.push(badge(root.state), h("span", { class: "facts", text: `${root.flowName ?? ""} · local run` }));
    }
    if (info.record) items.push(h("div", { class: "record muted", text: `record ${info.record}` }));
    header.replaceChildren(...items);
  }
  void lastRunInfo;
  void poll();
}

// -- routing ------------------------------------------------------------------------------
function route(): void {
  stopPage?.();
  stopPage = null;
  window.headraceGraph = undefined;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "flowrun" && parts.length === 3) {
    runPage(`/api/flowruns/${encodeURIComponent(parts[1])}/${encodeURIComponent(parts[2])}`, `${parts[1]}/${parts[2]}`);
  } else if (parts[0] === "local" && parts.length === 2) {
    runPage(`/api/local/${encodeURIComponent(parts[1])}`, parts[1]);
  } else {
    historyPage(new URLSearchParams(query ?? "")).catch((e) => app.replaceChildren(h("p", { class: "error", text: String(e) })));
  }
}

window.addEventListener("hashchange", route);
route();
