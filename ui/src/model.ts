// The run record as the server sends it (columns), plus the stage structure derived from it.
// A stage is every task run of one task key in one flow run; stages are ordered by the
// longest dependency path, so `double` runs land in one group and `halve` in the next
// whatever order they ran in.

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

export interface GraphPayload {
  record: string;
  final: boolean;
  root: number;
  flows: FlowInfo[];
  tasks: {
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
  };
  summary: { counts?: Record<string, number>; total?: number } | null;
}

export interface Stage {
  flow: number;
  key: string;
  depth: number;
  tasks: number[];
  upstream: Set<number>; // indices into Graph.stages
  index: number;
}

export interface Graph {
  payload: GraphPayload;
  n: number;
  stageOf: Int32Array; // task -> stage index
  stages: Stage[];
  flowStages: number[][]; // flow -> stage indices in dependency order
  down: number[][] | null; // lazily built reverse edges
}

export const PENDING_TYPES = new Set(["PENDING", "SCHEDULED"]);
export const FINAL_TYPES = new Set(["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]);

export function isPending(g: Graph, t: number): boolean {
  return PENDING_TYPES.has(g.payload.tasks.type[t]);
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

export function buildGraph(payload: GraphPayload): Graph {
  const t = payload.tasks;
  const n = t.id.length;
  const stageOf = new Int32Array(n);
  const stages: Stage[] = [];
  const byKey = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = `${t.flow[i]}\u0000${t.key[i]}`;
    let s = byKey.get(k);
    if (s === undefined) {
      s = stages.length;
      byKey.set(k, s);
      stages.push({ flow: t.flow[i], key: t.key[i], depth: 0, tasks: [], upstream: new Set(), index: s });
    }
    stages[s].tasks.push(i);
    stageOf[i] = s;
  }
  for (let i = 0; i < n; i++) {
    const s = stageOf[i];
    for (const u of t.up[i]) {
      const us = stageOf[u];
      if (us !== s && stages[us].flow === stages[s].flow) stages[s].upstream.add(us);
    }
  }
  const flowStages: number[][] = payload.flows.map(() => []);
  for (const st of stages) if (st.flow >= 0) flowStages[st.flow].push(st.index);
  for (let f = 0; f < flowStages.length; f++) {
    const keys = flowStages[f];
    const preds = new Map<number, Set<number>>();
    for (const s of keys) preds.set(s, stages[s].upstream);
    const depth = orderStages(keys, preds);
    for (const s of keys) stages[s].depth = depth.get(s)!;
    keys.sort((a, b) => stages[a].depth - stages[b].depth || a - b);
  }
  return { payload, n, stageOf, stages, flowStages, down: null };
}

export function downstream(g: Graph): number[][] {
  if (!g.down) {
    const down: number[][] = Array.from({ length: g.n }, () => []);
    g.payload.tasks.up.forEach((ups, i) => ups.forEach((u) => down[u].push(i)));
    g.down = down;
  }
  return g.down;
}

export function stateCounts(g: Graph, tasks: number[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const i of tasks) counts.set(g.payload.tasks.state[i], (counts.get(g.payload.tasks.state[i]) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]);
}

const COLORS: Record<string, string> = {
  COMPLETED: "#2e9d5b",
  RUNNING: "#2f7de1",
  PENDING: "#9aa3b2",
  SCHEDULED: "#c9a227",
  FAILED: "#d64545",
  CRASHED: "#e0703a",
  CANCELLED: "#6b7280",
  PAUSED: "#8c6cd6",
};
const NAMED: Record<string, string> = {
  Cached: "#66c08f",
  TimedOut: "#b4235a",
  Retrying: "#8c6cd6",
  AwaitingRetry: "#8c6cd6",
  NotReady: "#9aa3b2",
};

export function stateColor(type: string, name?: string): string {
  return (name && NAMED[name]) || COLORS[type] || "#9aa3b2";
}

export const STATE_LEGEND: [string, string][] = [
  ["Completed", COLORS.COMPLETED],
  ["Cached", NAMED.Cached],
  ["Running", COLORS.RUNNING],
  ["Pending", COLORS.PENDING],
  ["Scheduled", COLORS.SCHEDULED],
  ["Retrying", NAMED.Retrying],
  ["Failed", COLORS.FAILED],
  ["TimedOut", NAMED.TimedOut],
  ["Crashed", COLORS.CRASHED],
  ["Cancelled", COLORS.CANCELLED],
];
