// Headrace UI: run history (#/), a flow-run page (#/flowrun/NS/NAME, #/local/ID) with the
// graph in two layouts, results and logs. The page polls while the run goes on.

import "./style.css";
import { LayoutKind } from "./layout";
import {
  BLOCKED_COLOR,
  FINAL_TYPES,
  Graph,
  LOST,
  GraphDelta,
  GraphPayload,
  STATE_TYPE,
  UNSUCCESSFUL_TYPES,
  WILL_NOT_RUN,
  applyDelta,
  blockedText,
  buildGraph,
  isPending,
  nameColor,
  runCounts,
  setVocabulary,
} from "./model";
import { GraphView } from "./renderer";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const app = document.getElementById("app")!;
let stopPage: (() => void) | null = null;

/** An artifact's content as page elements, never as markup. */
function artifactBody(a: Json): HTMLElement {
  if (a.type === "link") {
    const text = a.link_text || a.data;
    return /^https?:\/\//i.test(a.data)
      ? h("a", { href: a.data, text, target: "_blank", rel: "noopener noreferrer" })
      : h("code", { text: `${text} <${a.data}>` });
  }
  if (a.type === "table") {
    let table: unknown;
    try {
      table = JSON.parse(a.data);
    } catch {
      return h("pre", { class: "artifact-text", text: a.data });
    }
    const cell = (v: unknown) => h("td", { text: v == null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v) });
    let names: string[] = [];
    let rows: unknown[][] = [];
    if (Array.isArray(table) && table.every((r) => r && typeof r === "object" && !Array.isArray(r))) {
      names = [...new Set(table.flatMap((r) => Object.keys(r)))];
      rows = table.map((r) => names.map((n) => (r as Record<string, unknown>)[n]));
    } else if (Array.isArray(table) && table.every(Array.isArray)) {
      rows = table as unknown[][];
    } else if (table && typeof table === "object" && !Array.isArray(table)) {
      const cols = Object.values(table).map((c) => (Array.isArray(c) ? c : [c]));
      names = Object.keys(table);
      rows = Array.from({ length: Math.max(0, ...cols.map((c) => c.length)) }, (_, i) => cols.map((c) => c[i]));
    }
    return h(
      "table",
      { class: "runs artifact-table" },
      h("thead", {}, h("tr", {}, ...names.map((n) => h("th", { text: n })))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map(cell)))),
    );
  }
  return h("pre", { class: "artifact-text", text: a.data });
}

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

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function getJson(url: string): Promise<Json> {
  const r = await fetch(url);
  if (!r.ok) throw new HttpError(r.status, errorText(await r.text()));
  return r.json();
}

/** The server's `{"error": …}` text, or the body as it came. */
function errorText(body: string): string {
  try {
    return JSON.parse(body).error ?? body;
  } catch {
    return body;
  }
}

let lostAfter = 30; // seconds without a heartbeat; the server's value replaces it
const isFinalName = (state: string) => FINAL_TYPES.has(STATE_TYPE[state] ?? "");
// Failures first: the order chips and counts are shown in.
const TYPE_ORDER = ["FAILED", "CRASHED", "CANCELLED", "RUNNING", "SCHEDULED", "PENDING", "COMPLETED"];

/** State names in reading order, failures first, from headrace/states.py via /api/config. */
function stateNames(): string[] {
  const names = Object.keys(STATE_TYPE);
  return names.sort((a, b) => TYPE_ORDER.indexOf(STATE_TYPE[a]) - TYPE_ORDER.indexOf(STATE_TYPE[b]));
}

function badge(state: string): HTMLElement {
  const b = h("span", { class: "badge", text: state, "data-state": state });
  b.style.background = nameColor(state);
  return b;
}

function fmtElapsed(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A row of toggle chips, one per state with its count; failures first. */
function chipRow(counts: Map<string, number>, on: Set<string>, toggle: (name: string) => void, extra: string[] = []): HTMLElement {
  const row = h("div", { class: "chips" });
  const names = [...stateNames(), ...extra].filter((n) => (counts.get(n) ?? 0) > 0 || on.has(n));
  const order = [WILL_NOT_RUN, ...names.filter((n) => n !== WILL_NOT_RUN)];
  for (const name of order) {
    if (!names.includes(name)) continue;
    const chip = h("button", { class: on.has(name) ? "chip on" : "chip", "data-state": name });
    const dot = h("i");
    dot.style.background = nameColor(name);
    chip.append(dot, `${name} ${counts.get(name) ?? 0}`);
    chip.onclick = () => toggle(name);
    row.append(chip);
  }
  return row;
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

/** "8/10 · 2 failed": finished task runs of all, and the failures, which matter most. */
function tasksDone(counts: Record<string, number>, total: number): (Node | string)[] {
  if (!total) return [];
  let done = 0;
  let failed = 0;
  for (const [name, c] of Object.entries(counts)) {
    if (isFinalName(name)) done += c;
    if (["FAILED", "CRASHED"].includes(STATE_TYPE[name])) failed += c;
  }
  const out: (Node | string)[] = [`${done}/${total}`];
  if (failed) out.push(" · ", h("span", { class: "failed-count", text: `${failed} failed` }));
  return out;
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
  const [data, local] = await Promise.all([getJson(`/api/flowruns?${qs}`), authOn ? { items: [] } : getJson("/api/local")]);

  const deployment = h("select", { name: "deployment" }, h("option", { value: "", text: "all deployments" }));
  for (const d of data.deployments as string[]) deployment.append(h("option", { value: d, text: d }));
  deployment.value = filters.deployment;
  deployment.onchange = () => go({ deployment: deployment.value, page: 0 });
  const state = h("select", { name: "state" }, h("option", { value: "", text: "all states" }));
  for (const s of stateNames()) state.append(h("option", { value: s, text: s }));
  state.value = filters.state;
  state.onchange = () => go({ state: state.value, page: 0 });
  // Chips: the same filter, one click away, with how many runs each state has.
  const localItems = local.items as Json[];
  const counts = new Map<string, number>(Object.entries(data.stateCounts ?? {}) as [string, number][]);
  for (const r of localItems) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  const chips = chipRow(counts, new Set(filters.state ? [filters.state] : []), (name) =>
    go({ state: filters.state === name ? "" : name, page: 0 }),
  );
  chips.id = "history-chips";
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
      h("td", { class: "done" }, ...tasksDone(r.progress.counts, r.progress.total)),
    ),
  );
  const first = data.page * data.pageSize;
  const prev = h("button", { text: "← newer" });
  prev.disabled = data.page === 0;
  prev.onclick = () => go({ page: data.page - 1 });
  const next = h("button", { text: "older →" });
  next.disabled = first + data.items.length >= data.total;
  next.onclick = () => go({ page: data.page + 1 });

  // Local runs take the same filters (namespace and deployment do not apply to them).
  const q = filters.q.toLowerCase();
  const shownLocal = localItems.filter(
    (r) => (!filters.state || r.state === filters.state) && (!q || String(r.name ?? r.id).toLowerCase().includes(q)),
  );
  const localRows = shownLocal.map((r) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/local/${r.id}`, text: r.name ?? r.id })),
      h("td", { text: r.flowName ?? "" }),
      h("td", {}, badge(r.state)),
      h("td", { text: fmtTime(r.start) }),
      h("td", { class: "done" }, ...tasksDone(r.counts ?? {}, r.total ?? 0)),
    ),
  );
  app.replaceChildren(
    h(
      "section",
      { class: "history" },
      h("h1", { text: "Flow runs" }),
      data.kube ? null : h("p", { class: "note", text: "No Kubernetes configuration: set KUBECONFIG to see FlowRuns." }),
      h("div", { class: "filters" }, ns, deployment, state, search),
      chips,
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
      localItems.length ? h("h2", { text: "Local runs" }) : null,
      localItems.length && !localRows.length ? h("p", { class: "note", text: "No local run matches the filters." }) : null,
      localRows.length
        ? h(
            "table",
            { class: "runs", id: "localruns" },
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
  fullEveryPoll?: boolean;
  fetches: Record<string, number>;
  state(): Json;
  positions(names: string[]): Record<string, number[] | null>;
  stageBoxes(): Json[];
  zoomTo(k: number): void;
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

/** The page's place in the URL (tab, layout, selected task run, viewport), replaced in the
 * history as it changes, so a link or a reload opens the same view. */
function saveUrl(patch: Record<string, string | null>): void {
  const [path, query] = location.hash.split("?");
  const qs = new URLSearchParams(query ?? "");
  for (const [k, v] of Object.entries(patch)) {
    if (v === null || v === "") qs.delete(k);
    else qs.set(k, v);
  }
  const text = qs.toString();
  history.replaceState(null, "", `${path}${text ? `?${text}` : ""}`);
}

function runPage(base: string, title: string, params: URLSearchParams = new URLSearchParams()): void {
  let stopped = false;
  let timer = 0;
  stopPage = () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("keydown", onKey);
  };
  const marks: Record<string, number> = { start: performance.now() };

  const header = h("div", { class: "run-header" }, h("h1", { text: title }));
  const tabs = h("div", { class: "tabs" });
  const body = h("div", { class: "tab-body" });
  app.replaceChildren(h("section", { class: "run" }, header, tabs, body));

  // Graph tab. Every row above the canvas has a fixed height and nothing in it wraps, and
  // the legend sits on the canvas: what the poll changes never moves the canvas.
  const graphPane = h("div", { class: "pane graph-pane" });
  const toolbar = h("div", { class: "toolbar" });
  const chipBox = h("div", { class: "chip-bar" });
  const canvasBox = h("div", { class: "canvas-box" });
  const side = h("aside", { class: "details", text: "Click a task run for its details." });
  graphPane.append(toolbar, chipBox, h("div", { class: "graph-main" }, canvasBox, side));
  let graph: Graph | null = null;
  let urlTimer = 0;
  const view = new GraphView(canvasBox, {
    onSelect: (t) => {
      showDetails(t);
      saveUrl({ task: t === null || !graph ? null : graph.payload.tasks.id[t] });
    },
    onView: () => {
      clearTimeout(urlTimer);
      urlTimer = window.setTimeout(() => !stopped && saveUrl({ view: view.viewString() }), 250);
    },
  });
  const stageBtn = h("button", { class: "on", text: "Stages", "data-layout": "stage" });
  const timeBtn = h("button", { text: "Timeline", "data-layout": "timeline" });
  const setLayout = (kind: LayoutKind) => {
    view.setKind(kind);
    saveUrl({ layout: kind === "stage" ? null : kind });
    stageBtn.classList.toggle("on", kind === "stage");
    timeBtn.classList.toggle("on", kind === "timeline");
  };
  stageBtn.onclick = () => setLayout("stage");
  timeBtn.onclick = () => setLayout("timeline");
  const search = h("input", {
    type: "search",
    placeholder: "search task runs, or state:failed…",
    class: "graph-search",
  });
  const matchInfo = h("span", { class: "muted match-info" });
  const showMatches = () => {
    matchInfo.textContent = view.filtering ? `${view.matchCount} matches` : "";
  };
  search.oninput = () => {
    view.setSearch(search.value);
    showMatches();
  };
  search.onkeydown = (e) => {
    if (e.key === "Enter") view.focusFirstMatch();
  };
  const expandAll = h("button", { text: "Expand all", class: "expand-all", title: "open every subflow" });
  expandAll.onclick = () => view.foldAll(true);
  const collapseAll = h("button", { text: "Collapse all", class: "collapse-all", title: "close every subflow" });
  collapseAll.onclick = () => view.foldAll(false);
  const fit = h("button", { text: "Fit" });
  fit.onclick = () => view.fit();
  const zin = h("button", { text: "+" });
  zin.onclick = () => view.zoomBy(1.25);
  const zout = h("button", { text: "−" });
  zout.onclick = () => view.zoomBy(0.8);
  // Failures first: step through failed task runs with the buttons or `p` / `n`.
  const failedInfo = h("span", { class: "muted failed-info" });
  const stepFailed = (dir: 1 | -1) => {
    const at = view.stepFailed(dir);
    const total = view.failedRuns().length;
    failedInfo.textContent = at === null ? "no failed runs" : `failed ${at + 1}/${total}`;
  };
  const prevFailed = h("button", { text: "◀ failed", title: "previous failed task run (p)", class: "prev-failed" });
  prevFailed.onclick = () => stepFailed(-1);
  const nextFailed = h("button", { text: "failed ▶", title: "next failed task run (n)", class: "next-failed" });
  nextFailed.onclick = () => stepFailed(1);
  const onKey = (e: KeyboardEvent) => {
    const target = e.target as HTMLElement | null;
    if (e.ctrlKey || e.metaKey || e.altKey || (target && ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName))) return;
    if (current !== "graph") return;
    if (e.key === "n") stepFailed(1);
    else if (e.key === "p") stepFailed(-1);
  };
  document.addEventListener("keydown", onKey);
  const legend = h("div", { class: "legend" });
  const legendItem = (name: string, fill: string, border?: string) => {
    const sw = h("i");
    sw.style.background = fill;
    if (border) sw.style.border = `1px dashed ${border}`;
    legend.append(h("span", {}, sw, name));
  };
  for (const name of stateNames()) {
    // Other pending names (NotReady) look like Pending, or "Will not run" behind a failure.
    if (STATE_TYPE[name] === "PENDING" && name.toUpperCase() !== "PENDING") continue;
    if (STATE_TYPE[name] === "PENDING") legendItem(name, "#fff", nameColor(name));
    else legendItem(name, nameColor(name));
  }
  legendItem(WILL_NOT_RUN, "#fdecec", BLOCKED_COLOR);
  canvasBox.append(legend);
  const emptyNote = h("div", { class: "empty-note" });
  canvasBox.append(emptyNote);
  const graphInfo = h("span", { class: "muted graph-info" });
  toolbar.append(
    h("span", { class: "seg" }, stageBtn, timeBtn),
    search,
    matchInfo,
    prevFailed,
    nextFailed,
    failedInfo,
    zout,
    zin,
    fit,
    expandAll,
    collapseAll,
    graphInfo,
  );
  const chipsOn = new Set<string>();
  const renderChips = () => {
    if (!graph) return;
    const row = chipRow(runCounts(graph), chipsOn, (name) => {
      if (chipsOn.has(name)) chipsOn.delete(name);
      else chipsOn.add(name);
      view.setStateFilter(new Set(chipsOn));
      showMatches();
      renderChips();
    }, [WILL_NOT_RUN]);
    row.id = "graph-chips";
    chipBox.replaceChildren(row);
  };

  function showDetails(t: number | null): void {
    if (t === null || !graph || t >= graph.n) {
      side.textContent = "Click a task run for its details.";
      return;
    }
    const tk = graph.payload.tasks;
    const blocked = blockedText(graph, t);
    const rows: [string, Node | string][] = [
      ["name", tk.name[t]],
      ["task", tk.key[t]],
      ["state", badge(blocked ? WILL_NOT_RUN : tk.state[t])],
      ["id", tk.id[t]],
    ];
    if (tk.message[t]) rows.push(["message", tk.message[t]]);
    if (tk.start[t]) rows.push(["started", fmtTime(tk.start[t])]);
    if (tk.start[t] && tk.end[t]) rows.push(["took", `${(tk.end[t]! - tk.start[t]!).toFixed(3)} s`]);
    if (tk.result[t]) rows.push(["result", h("a", { href: `${base}/results/file?id=${encodeURIComponent(tk.id[t])}`, text: tk.result[t]!, target: "_blank" })]);
    const ups = tk.up[t];
    const waits = ups.filter((u) => !FINAL_TYPES.has(tk.type[u]));
    const link = (u: number) => {
      const a = h("a", { href: "#", class: "task-link", text: tk.name[u], "data-task": tk.name[u] });
      a.onclick = (e) => {
        e.preventDefault();
        view.centreOn(u); // selects it, so the panel shows it next
      };
      return a;
    };
    const list = (items: number[]) =>
      h("ul", {}, ...items.slice(0, 50).map((u) => h("li", {}, link(u), " ", badge(tk.state[u]))), items.length > 50 ? h("li", { text: `… ${items.length - 50} more` }) : null);
    const parts: Node[] = [h("h3", { text: tk.name[t] })];
    if (blocked) parts.push(h("p", { class: "blocked", text: blocked }));
    parts.push(h("dl", {}, ...rows.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)])));
    if (blocked) parts.push(h("h4", { text: `upstream ${ups.length}` }), list(ups));
    else if (isPending(graph, t)) parts.push(h("h4", { text: `waits on ${waits.length}` }), list(waits));
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

  // Artifacts tab: what the run's code left for people (Prefect's markdown, tables, links).
  // Their content is the user's: shown as text, a table built cell by cell, and a link made
  // a link only for http(s), so a record cannot put script or markup into the page.
  const artifactsPane = h("div", { class: "pane artifacts-pane" });
  const artifactBox = h("div", { class: "artifact" });
  async function showArtifact(id: string): Promise<void> {
    const a = await getJson(`${base}/artifacts?id=${encodeURIComponent(id)}`);
    const title = h("h3", { text: `${a.key ?? a.id} (${a.type})` });
    const about = a.description ? h("p", { class: "description", text: a.description }) : null;
    artifactBox.replaceChildren(title, ...(about ? [about] : []), artifactBody(a));
  }
  async function loadArtifacts(): Promise<void> {
    const data = await getJson(`${base}/artifacts`);
    const rows = (data.items as Json[]).map((a) => {
      const row = h(
        "tr",
        { "data-id": a.id },
        h("td", { text: new Date(a.ts * 1000).toISOString().slice(11, 19) }),
        h("td", { text: a.key ?? "" }),
        h("td", { text: a.type }),
        h("td", { text: a.task_run_name ?? "flow" }),
        h("td", { text: a.description ?? "" }),
        h("td", { class: "size", text: fmtSize(a.size) }),
      );
      row.onclick = () => void showArtifact(a.id);
      return row;
    });
    artifactsPane.replaceChildren(
      h("p", { text: data.total ? `${data.total} artifact${data.total === 1 ? "" : "s"}, newest first` : "no artifacts" }),
      h(
        "table",
        { class: "runs artifacts" },
        h("thead", {}, h("tr", {}, ...["Time", "Key", "Type", "Where", "Description", "Size"].map((t) => h("th", { text: t })))),
        h("tbody", {}, ...rows),
      ),
      artifactBox,
    );
  }

  // Logs tab
  const logsPane = h("div", { class: "pane logs-pane" });
  const logFilter = h("input", { type: "search", placeholder: "task name starts with…" });
  const newestFirst = h("input", { type: "checkbox" });
  const logBox = h("pre", { class: "log" });
  const podBox = h("div", { class: "pods" });
  let logLines: Json[] = [];
  const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
  const levelPick = h("select", { name: "level" }, ...LEVELS.slice(0, 4).map((l) => h("option", { value: l, text: `${l} and up` })));
  levelPick.value = "DEBUG";
  const renderLogs = () => {
    const f = logFilter.value;
    const min = LEVELS.indexOf(levelPick.value);
    let lines = logLines.filter(
      (e) => (!f || (e.task_run_name ?? "").startsWith(f)) && Math.max(0, LEVELS.indexOf(String(e.level))) >= min,
    );
    if (newestFirst.checked) lines = [...lines].reverse();
    // A subflow's lines say which subflow: the root's own lines need no label.
    const flows = graph?.payload.flows ?? [];
    const rootId = graph && graph.payload.root >= 0 ? flows[graph.payload.root].id : null;
    const flowName = new Map(flows.map((fl) => [fl.id, fl.name]));
    logBox.replaceChildren(
      ...lines.map((e) => {
        const sub = rootId && e.flow_run_id && e.flow_run_id !== rootId ? `[${flowName.get(e.flow_run_id) ?? "subflow"}] ` : "";
        const text = `${new Date(e.ts * 1000).toISOString().slice(11, 23)} | ${String(e.level).padEnd(7)} | ${sub}${e.task_run_name ?? "flow"} | ${e.message}\n`;
        return h("span", { class: `line lvl-${e.level}`, text });
      }),
    );
  };
  levelPick.onchange = renderLogs;
  logFilter.oninput = renderLogs;
  newestFirst.onchange = renderLogs;
  logsPane.append(
    h("div", { class: "filters" }, logFilter, levelPick, h("label", {}, newestFirst, " newest first")),
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
    artifacts: [artifactsPane, loadArtifacts],
    logs: [logsPane, async () => Promise.all([loadLogs(), loadPodLogs()]).then(() => {})],
  };
  let current = "graph";
  const tabButtons: HTMLButtonElement[] = [];
  for (const name of Object.keys(panes)) {
    const b = h("button", { text: name[0].toUpperCase() + name.slice(1), "data-tab": name });
    b.onclick = () => {
      current = name;
      saveUrl({ tab: name === "graph" ? null : name });
      tabButtons.forEach((x) => x.classList.toggle("on", x === b));
      body.replaceChildren(panes[name][0]);
      void panes[name][1]();
    };
    tabButtons.push(b);
    tabs.append(b);
  }
  tabButtons[0].classList.add("on");
  body.append(graphPane);
  if (params.get("layout") === "timeline") setLayout("timeline");
  const wantedTab = tabButtons.find((b) => b.dataset.tab === params.get("tab"));
  if (wantedTab && params.get("tab") !== "graph") wantedTab.click();

  // The test and benchmark hook: a canvas has no DOM to query.
  const boxByFlow = (nameOrId: string) => {
    const flows = graph?.payload.flows ?? [];
    return flows.findIndex((f) => f.id === nameOrId || f.name === nameOrId || f.flowName === nameOrId);
  };
  const fetches = { full: 0, delta: 0, notModified: 0, bytes: 0, afterFinal: 0, applyMaxMs: 0 };
  window.headraceGraph = {
    ready: false,
    timings: {},
    fetches,
    state() {
      const L = view.layout;
      const g = graph;
      if (!L || !g) return { ready: false };
      const tk = g.payload.tasks;
      const pendingEdges: Json[] = [];
      const pendingEdgeStates: Json[] = []; // the same edges, with the colour's reason
      for (let i = 0; i < L.edges.length && pendingEdges.length < 100; i += 2) {
        const t = L.edges[i + 1];
        const u = L.edges[i];
        if (isPending(g, t)) {
          pendingEdges.push({ from: tk.name[u], to: tk.name[t] });
          pendingEdgeStates.push({ from: tk.name[u], to: tk.name[t], upstreamState: tk.state[u] });
        }
      }
      const blocked: Json[] = [];
      for (let i = 0; i < g.n && blocked.length < 100; i++) {
        const text = blockedText(g, i);
        if (text) blocked.push({ name: tk.name[i], text });
      }
      return {
        ready: true,
        layout: L.kind,
        tasks: g.n,
        visibleNodes: L.visibleCount,
        drawnNodes: view.drawnNodes,
        drawnLabels: view.drawnLabels,
        boxLabels: view.drawnBoxLabels,
        pxPerSec: L.pxPerSec,
        visibleEdges: L.edges.length / 2 + L.aggEdges.length,
        individualEdges: L.edges.length / 2,
        aggregatedEdges: L.aggEdges.map((a) => ({ from: L.boxes[a.from].label, to: L.boxes[a.to].label, count: a.count })),
        pendingNodes: L.visibleCount ? L.pendingVisible : 0,
        pendingEdges,
        pendingEdgeStates,
        pendingEdgeCount: L.pendingEdges,
        blockingEdgeCount: L.blockingEdges,
        blocked,
        stages: g.stages.map((s) => ({ flow: g.payload.flows[s.flow]?.name, key: s.key, depth: s.depth, count: s.tasks.length, visible: L.stageBox[s.index] >= 0 })),
        subflows: g.payload.flows
          .filter((f) => f.parentTask >= 0)
          .map((f) => ({
            id: f.id,
            name: f.name,
            flowName: f.flowName,
            collapsed: view.isCollapsed(f.id),
            label: L.collapsedFlows.has(f.id) ? view.nodeLabel(f.parentTask, true) : null,
          })),
        matches: view.matchCount,
        selected: view.selected === null ? null : tk.name[view.selected],
        final: g.payload.final,
        renders: view.renders,
        relayouts: view.relayouts,
        zoom: view.zoom,
        layoutMs: view.timings.layoutMs,
        drawMs: view.timings.drawMs,
        renderMaxMs: view.timings.renderMaxMs,
      };
    },
    positions(names) {
      const L = view.layout;
      const g = graph;
      const out: Record<string, number[] | null> = {};
      if (!L || !g) return out;
      const index = new Map(g.payload.tasks.name.map((n, i) => [n, i]));
      for (const name of names) {
        const i = index.get(name);
        out[name] = i === undefined || i >= g.n || !L.visible[i] ? null : [L.x[i], L.y[i], L.w[i], L.h[i]];
      }
      return out;
    },
    stageBoxes() {
      const L = view.layout;
      return L ? L.boxes.filter((b) => b.kind === "stage").map((b) => ({ key: b.label, x: b.x, y: b.y, w: b.w, h: b.h })) : [];
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
      if (i < 0 || i >= graph.n || !L.visible[i]) return null;
      return view.screenOf(L.x[i] + Math.min(L.w[i], 40) / 2, L.y[i] + Math.min(L.h[i], 20) / 2);
    },
    subflowHeaderScreen(nameOrId) {
      const L = view.layout;
      const f = boxByFlow(nameOrId);
      const box = L?.boxes.find((b) => b.kind === "subflow" && b.flow === f);
      return box ? view.screenOf(box.x + 40, box.y + box.header / 2) : null;
    },
    zoomTo(k) {
      view.zoomBy(k / view.zoom);
      view.draw();
    },
  };

  // Polling: the first fetch gets the whole run; after it, `?since=CURSOR` gets only the
  // task runs changed since, applied in place. A final run is not fetched again.
  let cursor = "";
  let etag = "";
  let skew = 0; // server clock minus this browser's
  let lastInfo: Json = null;
  async function fetchGraph(): Promise<boolean> {
    // benchmarks/ui_render.py's baseline: the old way, the whole run fetched and laid out per poll.
    if (window.headraceGraph?.fullEveryPoll) {
      cursor = "";
      etag = "";
    }
    const url = cursor ? `${base}/graph?since=${encodeURIComponent(cursor)}` : `${base}/graph`;
    const r = await fetch(url, { headers: !cursor && etag ? { "If-None-Match": etag } : {} });
    if (graph?.payload.final) fetches.afterFinal++;
    if (r.status === 304) {
      fetches.notModified++;
      // Nothing changed, but time went on: running bars and "now" move right.
      if (view.kind === "timeline" && graph && !graph.payload.final) view.relayout();
      return graph?.payload.final ?? false;
    }
    if (!r.ok) throw new HttpError(r.status, errorText(await r.text()));
    const text = await r.text();
    fetches.bytes += text.length;
    marks.fetched = performance.now();
    const payload = JSON.parse(text) as (GraphPayload | GraphDelta) & { waiting?: string };
    marks.parsed = performance.now();
    if (payload.now) skew = payload.now - Date.now() / 1000;
    if (payload.waiting) {
      graphInfo.textContent = payload.waiting;
      emptyNote.textContent =
        `Nothing to draw yet: ${payload.waiting}. The engine writes the run record when the flow ` +
        "starts, so a FlowRun whose pod is still pending or pulling its image has none; the page " +
        "keeps asking.";
      emptyNote.style.display = "block";
      return false;
    }
    if ("delta" in payload && payload.delta && graph) {
      fetches.delta++;
      cursor = payload.cursor ?? "";
      const t = performance.now();
      const applied = applyDelta(graph, payload);
      view.update(applied);
      fetches.applyMaxMs = Math.max(fetches.applyMaxMs, performance.now() - t);
    } else {
      fetches.full++;
      etag = r.headers.get("ETag") ?? "";
      cursor = payload.cursor ?? "";
      graph = buildGraph(payload as GraphPayload);
      marks.built = performance.now();
      if (current === "logs") renderLogs(); // now subflow lines can be named
      const first = !window.headraceGraph!.ready;
      if (first && params.get("view")) view.restoreView(params.get("view")!); // before the fit
      view.setGraph(graph);
      marks.laidOut = performance.now();
      if (first && params.get("task")) {
        const t = graph.payload.tasks.id.indexOf(params.get("task")!);
        if (t >= 0) {
          view.selected = t;
          showDetails(t);
        }
      }
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
    graphInfo.textContent = `${graph!.n} task runs · ${graph!.stages.length} stages`;
    if (graph!.n === 0) {
      emptyNote.textContent = graph!.payload.final
        ? "This run ended without running any task."
        : "The flow has started and has not submitted a task run yet.";
      emptyNote.style.display = "block";
    } else emptyNote.style.display = "none";
    renderChips();
    showMatches();
    if (view.selected !== null) showDetails(view.selected);
    return graph!.payload.final;
  }

  async function poll(): Promise<void> {
    let final = false;
    try {
      // The FlowRun's status and the graph at once: one round trip, not two, before a paint.
      const [info, graphFinal] = await Promise.all([getJson(base), fetchGraph()]);
      lastInfo = info;
      final = graphFinal;
      renderHeader(info);
      if (current === "logs") await loadLogs();
      if (current === "results" && !final) await loadResults();
      if (info.flowrun) final = final && isFinalName(info.flowrun.state);
    } catch (error) {
      if (error instanceof HttpError && error.status === 401) {
        stopped = true;
        signIn(error.message);
        return;
      }
      if (error instanceof HttpError && error.status === 404) {
        // Not a run (or not any more): say so, and do not keep asking.
        stopped = true;
        document.removeEventListener("keydown", onKey);
        app.replaceChildren(
          h(
            "section",
            { class: "not-found" },
            h("h1", { text: "Run not found" }),
            h("p", { text: error.message }),
            h("p", {}, h("a", { href: "#/", text: "Back to the run history" })),
          ),
        );
        return;
      }
      graphInfo.textContent = String(error);
    }
    if (!stopped && !final) timer = window.setTimeout(poll, 1000);
    else if (!stopped && current === "logs") void loadPodLogs();
  }

  /** Flow name, state badge, counts by state, elapsed time, and a failed run's error. */
  function renderHeader(info: Json): void {
    const fr = info?.flowrun;
    const root = graph && graph.payload.root >= 0 ? graph.payload.flows[graph.payload.root] : null;
    const items: (Node | string)[] = [h("h1", { text: title })];
    const flowName = root?.flowName ?? fr?.entrypoint ?? "";
    if (flowName) items.push(h("span", { class: "flow-name", text: flowName }));
    let state: string = fr?.state ?? root?.state ?? "";
    const seen = graph?.payload.lastSeen;
    const ago = seen ? Date.now() / 1000 + skew - seen : 0;
    const lost = !!graph && !graph.payload.final && !!seen && ago > lostAfter && !isFinalName(state);
    if (lost) state = LOST;
    if (state) items.push(badge(state));
    if (lost && seen) {
      const when = new Date(seen * 1000).toLocaleTimeString();
      items.push(h("span", { class: "lost", text: `last seen ${when}, ${Math.round(ago)} s ago` }));
    }
    if (graph) {
      const counts = runCounts(graph);
      const order = [WILL_NOT_RUN, ...stateNames()].filter((n) => counts.get(n));
      const countBox = h("span", { class: "counts" });
      for (const name of order) {
        const c = h("span", { class: "count", "data-state": name, text: `${name} ${counts.get(name)}` });
        c.style.borderColor = nameColor(name);
        countBox.append(c);
      }
      items.push(countBox);
    }
    const start = fr?.startTime ? Date.parse(fr.startTime) / 1000 : root?.start;
    const end = fr?.completionTime ? Date.parse(fr.completionTime) / 1000 : root?.end;
    if (start) items.push(h("span", { class: "elapsed", text: `${end ? "took" : "running for"} ${fmtElapsed((end ?? Date.now() / 1000) - start)}` }));
    if (fr) {
      const attempts = (fr.status.attempts ?? []) as Json[];
      const facts = [
        fr.deployment ? `deployment ${fr.deployment}` : "",
        fr.startTime ? `started ${fmtTime(fr.startTime)}` : "",
        attempts.length ? `pods ${attempts.map((a) => a.podName).join(", ")}` : "",
      ].filter(Boolean);
      items.push(h("span", { class: "facts", text: facts.join("  ·  ") }));
    } else if (root) {
      items.push(h("span", { class: "facts", text: "local run" }));
    }
    const failed = UNSUCCESSFUL_TYPES.has(STATE_TYPE[state] ?? "");
    const message = (failed ? root?.message || fr?.message : fr?.message) ?? "";
    if (message) items.push(h("div", { class: failed ? "message bad" : "message", text: message }));
    if (info?.record) items.push(h("div", { class: "record muted", text: `record ${info.record}` }));
    header.replaceChildren(...items);
  }
  void lastInfo;
  void poll();
}

// -- signing in (headrace ui --auth kubernetes) ----------------------------------------------
const TOKEN_COOKIE = "headrace-token";
let authOn = false;

/** Asks for a Kubernetes token; the server checks it on every request (TokenReview) and
 * shows only the namespaces it may list FlowRuns in (SubjectAccessReview). */
function signIn(reason: string): void {
  stopPage?.();
  stopPage = null;
  const token = h("textarea", { name: "token", rows: "4", placeholder: "eyJhbGciOi…" });
  const go = h("button", { text: "Sign in", type: "submit" });
  const form = h(
    "form",
    { class: "sign-in" },
    h("h1", { text: "Sign in with a Kubernetes token" }),
    h("p", { class: "error", text: reason }),
    h("p", { text: "Paste a token the cluster accepts, for example: kubectl create token NAME -n NAMESPACE" }),
    token,
    h("div", {}, go),
  );
  form.onsubmit = (e) => {
    e.preventDefault();
    document.cookie = `${TOKEN_COOKIE}=${encodeURIComponent(token.value.trim())}; path=/; SameSite=Strict`;
    route();
  };
  app.replaceChildren(form);
}

function signOut(): void {
  document.cookie = `${TOKEN_COOKIE}=; path=/; max-age=0; SameSite=Strict`;
  signIn("Signed out.");
}

// -- routing ------------------------------------------------------------------------------
function route(): void {
  stopPage?.();
  stopPage = null;
  window.headraceGraph = undefined;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "flowrun" && parts.length === 3) {
    runPage(`/api/flowruns/${encodeURIComponent(parts[1])}/${encodeURIComponent(parts[2])}`, `${parts[1]}/${parts[2]}`, new URLSearchParams(query ?? ""));
  } else if (parts[0] === "local" && parts.length === 2) {
    runPage(`/api/local/${encodeURIComponent(parts[1])}`, parts[1], new URLSearchParams(query ?? ""));
  } else {
    historyPage(new URLSearchParams(query ?? "")).catch((e) => {
      if (e instanceof HttpError && e.status === 401) signIn(e.message);
      else app.replaceChildren(h("p", { class: "error", text: e instanceof HttpError ? `${e.status}: ${e.message}` : String(e) }));
    });
  }
}

window.addEventListener("hashchange", route);
getJson("/api/config")
  .then((config) => {
    setVocabulary(config.states);
    authOn = !!config.auth;
    if (authOn) {
      const out = h("a", { href: "#/", text: "Sign out", class: "sign-out" });
      out.onclick = (e) => {
        e.preventDefault();
        signOut();
      };
      document.querySelector(".topbar nav")?.append(out);
    }
    lostAfter = config.lostAfter ?? lostAfter;
  })
  .catch(() => {})
  .finally(route);
