// The run record as the server sends it (columns), plus the stage structure derived from it.
// A stage is every task run of one task key in one flow run; stages are ordered by the
// longest dependency path, so `double` runs land in one group and `halve` in the next
// whatever order they ran in. While a run goes on the page applies the server's deltas in
// place (applyDelta): a task run keeps its index, a stage keeps its index and its depth.

export interface FlowInfo {
  id: string;
  name: string;
  flowName: string | null;
  type: string;
  state: string;
  message: string;
  start: number | null;
  end: number | null;
  parentTask: number;
  result: string | null;
}

export interface TaskColumns {
  id: string[];
  name: string[];
  key: string[];
  flow: number[];
  type: string[];
  state: string[];
  message: string[];
  start: (number | null)[];
  end: (number | null)[];
  up: number[][];
  sub: number[];
  mapIndex: (number | null)[];
  result: (string | null)[];
}

export interface GraphPayload {
  record: string;
  final: boolean;
  root: number;
  flows: FlowInfo[];
  tasks: TaskColumns;
  summary: { counts?: Record<string, number>; total?: number } | null;
  cursor?: string;
  lastSeen?: number | null; // the engine's newest heartbeat (server clock)
  now?: number; // the server's clock when it answered
}

export interface GraphDelta extends Omit<GraphPayload, "tasks"> {
  delta: true;
  n: number;
  tasks: TaskColumns & { index: number[] };
}

export interface Stage {
  flow: number;
  key: string;
  depth: number;
  tasks: number[]; // in arrival order (map index order for what the first fetch had)
  upstream: Set<number>; // indices into Graph.stages
  index: number;
}

export interface Graph {
  payload: GraphPayload;
  n: number;
  stageOf: Int32Array; // task -> stage index
  stages: Stage[];
  byKey: Map<string, number>;
  flowStages: number[][]; // flow -> stage indices in dependency order
  down: number[][] | null; // lazily built reverse edges
  blockedBy: Int32Array; // pending task -> the failed run that stops it, else -1
  version: number; // bumped by every change, so views know what they drew is stale
}

// headrace/states.py's FINAL_TYPES and UNSUCCESSFUL_TYPES (tests/ui/test_ui_vocabulary.py
// keeps them the same).
export const PENDING_TYPES = new Set(["PENDING", "SCHEDULED"]);
export const FINAL_TYPES = new Set(["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]);
// An upstream in one of these never completes: what waits on it will not run.
export const UNSUCCESSFUL_TYPES = new Set(["FAILED", "CRASHED", "CANCELLED"]);
const VERBS: Record<string, string> = { FAILED: "failed", CRASHED: "crashed", CANCELLED: "was cancelled" };

export function isPending(g: Graph, t: number): boolean {
  return PENDING_TYPES.has(g.payload.tasks.type[t]);
}

export function isFailed(g: Graph, t: number): boolean {
  const type = g.payload.tasks.type[t];
  return type === "FAILED" || type === "CRASHED";
}

/** "will not run: upstream X failed" for a blocked task run (the same words as `headrace graph`). */
export function blockedText(g: Graph, t: number): string | null {
  const cause = g.blockedBy[t];
  if (cause < 0) return null;
  const tk = g.payload.tasks;
  return `will not run: upstream ${tk.name[cause]} ${VERBS[tk.type[cause]] ?? "failed"}`;
}

/** Stages in dependency order with depths; a cycle is broken at the earliest-seen stage. */
export function orderStages(keys: number[], preds: Map<number, Set<number>>): Map<number, number> {
  const depth = new Map<number, number>();
  const remaining = new Set(keys);
  while (remaining.size) {
    let ready = keys.filter(
      (k) => remaining.has(k) && [...(preds.get(k) ?? [])].every((p) => p === k || depth.has(p)),
    );
    if (!ready.length) ready = [keys.find((k) => remaining.has(k))!];
    for (const k of ready) {
      let d = -1;
      for (const p of preds.get(k) ?? []) if (p !== k && depth.has(p)) d = Math.max(d, depth.get(p)!);
      depth.set(k, d + 1);
      remaining.delete(k);
    }
  }
  return depth;
}

function stageKey(flow: number, key: string): string {
  return `${flow}\u0000${key}`;
}

export function buildGraph(payload: GraphPayload): Graph {
  const t = payload.tasks;
  const n = t.id.length;
  const g: Graph = {
    payload,
    n,
    stageOf: new Int32Array(Math.max(16, n)),
    stages: [],
    byKey: new Map(),
    flowStages: payload.flows.map(() => []),
    down: null,
    blockedBy: new Int32Array(0),
    version: 0,
  };
  for (let i = 0; i < n; i++) addToStage(g, i);
  for (const st of g.stages) st.tasks.sort((a, b) => (t.mapIndex[a] ?? 0) - (t.mapIndex[b] ?? 0) || a - b);
  for (let i = 0; i < n; i++) linkStages(g, i);
  for (const st of g.stages) if (st.flow >= 0) g.flowStages[st.flow].push(st.index);
  for (let f = 0; f < g.flowStages.length; f++) {
    const keys = g.flowStages[f];
    const preds = new Map<number, Set<number>>();
    for (const s of keys) preds.set(s, g.stages[s].upstream);
    const depth = orderStages(keys, preds);
    for (const s of keys) g.stages[s].depth = depth.get(s)!;
    keys.sort((a, b) => g.stages[a].depth - g.stages[b].depth || a - b);
  }
  computeBlocked(g);
  return g;
}

function addToStage(g: Graph, i: number): number {
  const t = g.payload.tasks;
  const k = stageKey(t.flow[i], t.key[i]);
  let s = g.byKey.get(k);
  if (s === undefined) {
    s = g.stages.length;
    g.byKey.set(k, s);
    g.stages.push({ flow: t.flow[i], key: t.key[i], depth: 0, tasks: [], upstream: new Set(), index: s });
  }
  g.stages[s].tasks.push(i);
  if (i >= g.stageOf.length) {
    const grown = new Int32Array(Math.max(i + 1, g.stageOf.length * 2));
    grown.set(g.stageOf);
    g.stageOf = grown;
  }
  g.stageOf[i] = s;
  return s;
}

function linkStages(g: Graph, i: number): void {
  const s = g.stageOf[i];
  for (const u of g.payload.tasks.up[i]) {
    const us = g.stageOf[u];
    if (us !== s && g.stages[us].flow === g.stages[s].flow) g.stages[s].upstream.add(us);
  }
}

export interface Applied {
  added: number;
  changed: number;
  newStages: number;
  newFlows: number;
}

/** Applies the server's changes in place: changed task runs are overwritten at their index,
 * new ones appended to their stage. Existing stages keep their depth, so nothing already
 * placed has a reason to move; a new stage goes one deeper than its deepest upstream. */
export function applyDelta(g: Graph, d: GraphDelta): Applied {
  const t = g.payload.tasks;
  const cols = Object.keys(t) as (keyof TaskColumns)[];
  const order = d.tasks.index.map((_, j) => j).sort((a, b) => d.tasks.index[a] - d.tasks.index[b]);
  const stagesBefore = g.stages.length;
  const flowsBefore = g.payload.flows.length;
  g.payload.flows = d.flows;
  g.payload.root = d.root;
  g.payload.final = d.final;
  g.payload.summary = d.summary;
  g.payload.cursor = d.cursor;
  g.payload.lastSeen = d.lastSeen;
  while (g.flowStages.length < d.flows.length) g.flowStages.push([]);
  let added = 0;
  let changed = 0;
  const fresh: number[] = [];
  for (const j of order) {
    const i = d.tasks.index[j];
    if (i > g.n) continue; // a gap cannot happen with an append-only record; skip rather than corrupt
    for (const c of cols) (t[c] as unknown[])[i] = (d.tasks[c] as unknown[])[j];
    if (i === g.n) {
      g.n++;
      addToStage(g, i);
      fresh.push(i);
      added++;
    } else changed++;
  }
  for (const i of fresh) linkStages(g, i);
  for (let s = stagesBefore; s < g.stages.length; s++) {
    const st = g.stages[s];
    let depth = 0;
    for (const u of st.upstream) if (u !== s) depth = Math.max(depth, g.stages[u].depth + 1);
    st.depth = depth;
    if (st.flow < 0) continue;
    const list = g.flowStages[st.flow];
    // Keep dependency order: after the last stage of a smaller or equal depth.
    let at = list.length;
    while (at > 0 && g.stages[list[at - 1]].depth > depth) at--;
    list.splice(at, 0, s);
  }
  if (added) g.down = null;
  computeBlocked(g);
  g.version++;
  return { added, changed, newStages: g.stages.length - stagesBefore, newFlows: d.flows.length - flowsBefore };
}

/** For each pending task run, the failed run upstream of it (directly, or through other
 * blocked runs) that means it will never start; -1 for the others. O(tasks + edges). */
export function computeBlocked(g: Graph): void {
  const tk = g.payload.tasks;
  const n = g.n;
  const cause = new Int32Array(n).fill(-2); // -2 unknown, -3 on the stack
  const stack: number[] = [];
  for (let s = 0; s < n; s++) {
    if (cause[s] !== -2) continue;
    stack.push(s);
    cause[s] = -3;
    while (stack.length) {
      const i = stack[stack.length - 1];
      if (!PENDING_TYPES.has(tk.type[i])) {
        cause[i] = UNSUCCESSFUL_TYPES.has(tk.type[i]) ? i : -1;
        stack.pop();
        continue;
      }
      let next = -1;
      for (const u of tk.up[i]) if (cause[u] === -2) {
        next = u;
        break;
      }
      if (next >= 0) {
        cause[next] = -3;
        stack.push(next);
        continue;
      }
      let c = -1;
      for (const u of tk.up[i]) if (cause[u] >= 0) {
        c = cause[u];
        break;
      }
      cause[i] = c;
      stack.pop();
    }
  }
  for (let i = 0; i < n; i++) if (cause[i] < 0 || !PENDING_TYPES.has(tk.type[i])) cause[i] = -1;
  g.blockedBy = cause;
}

export function downstream(g: Graph): number[][] {
  if (!g.down) {
    const down: number[][] = Array.from({ length: g.n }, () => []);
    for (let i = 0; i < g.n; i++) for (const u of g.payload.tasks.up[i]) down[u].push(i);
    g.down = down;
  }
  return g.down;
}

export function stateCounts(g: Graph, tasks: Iterable<number>, blocked = false): [string, number][] {
  const counts = new Map<string, number>();
  const st = g.payload.tasks.state;
  for (const i of tasks) {
    const name = blocked && g.blockedBy[i] >= 0 ? WILL_NOT_RUN : st[i];
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1]);
}

/** Counts by state name over all task runs, "will not run" counted apart from Pending. */
export function runCounts(g: Graph): Map<string, number> {
  const counts = new Map<string, number>();
  const st = g.payload.tasks.state;
  for (let i = 0; i < g.n; i++) {
    const name = g.blockedBy[i] >= 0 ? WILL_NOT_RUN : st[i];
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

export const WILL_NOT_RUN = "Will not run";

// Colours by state type, and for the names that differ from their type's (Cached is a
// COMPLETED state, ...). tests/ui/test_ui_vocabulary.py checks every name headrace/states.py
// makes is covered, so a new state cannot silently draw grey.
const COLORS: Record<string, string> = {
  COMPLETED: "#2e9d5b",
  RUNNING: "#2f7de1",
  PENDING: "#9aa3b2",
  SCHEDULED: "#c9a227",
  FAILED: "#d64545",
  CRASHED: "#e0703a",
  CANCELLED: "#6b7280",
};
const NAMED: Record<string, string> = {
  Cached: "#66c08f",
  TimedOut: "#b4235a",
  Retrying: "#8c6cd6",
  AwaitingRetry: "#8c6cd6",
  NotReady: "#9aa3b2",
};
export const BLOCKED_COLOR = "#d64545";
// Not a state the engine writes: the UI's word for a run whose heartbeat stopped.
export const LOST = "Lost";
const LOST_COLOR = "#4b5563";

export function stateColor(type: string, name?: string): string {
  return (name && NAMED[name]) || COLORS[type] || "#9aa3b2";
}

/** State name -> type, from the server's /api/config (built from headrace/states.py). */
export const STATE_TYPE: Record<string, string> = {};

export function setVocabulary(states: [string, string][]): void {
  for (const [name, type] of states) STATE_TYPE[name] = type;
}

export function nameColor(name: string): string {
  if (name === WILL_NOT_RUN) return BLOCKED_COLOR;
  if (name === LOST) return LOST_COLOR;
  return stateColor(STATE_TYPE[name] ?? "", name);
}
