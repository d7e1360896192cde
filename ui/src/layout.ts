// Two layouts of the same graph, computed directly (no general graph layout needed):
// - "stage": columns by stage depth, each stage a block of its task runs (a labelled list
//   when small, a grid of cells when large), independent of running time;
// - "timeline": x is time, each stage a band of lanes packed by start time.
// Subflows are boxes that expand in place; a collapsed subflow is its placeholder node, and
// the tasks inside it are represented by that node for edges.

import { Graph, isPending, stateCounts } from "./model";

export type LayoutKind = "stage" | "timeline";

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
  kind: "stage" | "subflow";
  label: string;
  detail: string;
  flow: number; // the flow the box belongs to (stage) or shows (subflow)
  stage: number; // stage index, -1 for subflow boxes
  collapsed: boolean;
  header: number;
}

export interface AggEdge {
  from: number; // box index
  to: number;
  count: number;
  pending: number;
}

export interface Layout {
  kind: LayoutKind;
  x: Float32Array;
  y: Float32Array;
  w: Float32Array;
  h: Float32Array;
  visible: Uint8Array;
  boxed: Uint8Array; // an expanded subflow's node, drawn as its box
  rep: Int32Array; // each task's visible representative (itself, or a collapsed subflow's node)
  boxes: Box[];
  stageBox: Int32Array;
  edges: Int32Array; // individual edges as (from, to) pairs
  aggEdges: AggEdge[];
  width: number;
  height: number;
  visibleCount: number;
  pendingVisible: number;
  pendingEdges: number;
  t0: number;
  pxPerSec: number;
  tNow: number;
}

export const EDGE_LIMIT = 3000; // more edges than this are drawn as one edge per stage pair
export const PENDING_EDGE_LIMIT = 3000; // pending tasks' waits are drawn one by one up to this

const LABEL_LIMIT = 40;
const NODE_W = 160;
const NODE_H = 22;
const NODE_GAP = 6;
const CELL = 10;
const CELL_GAP = 3;
const PAD = 8;
const HEADER = 24;
const COL_GAP = 90;
const BLOCK_GAP = 28;

interface Size {
  w: number;
  h: number;
}

function newLayout(g: Graph, kind: LayoutKind): Layout {
  const n = g.n;
  return {
    kind,
    x: new Float32Array(n),
    y: new Float32Array(n),
    w: new Float32Array(n),
    h: new Float32Array(n),
    visible: new Uint8Array(n),
    boxed: new Uint8Array(n),
    rep: new Int32Array(n).fill(-1),
    boxes: [],
    stageBox: new Int32Array(g.stages.length).fill(-1),
    edges: new Int32Array(0),
    aggEdges: [],
    width: 0,
    height: 0,
    visibleCount: 0,
    pendingVisible: 0,
    pendingEdges: 0,
    t0: 0,
    pxPerSec: 0,
    tNow: 0,
  };
}

function sortedTasks(g: Graph, tasks: number[]): number[] {
  const mi = g.payload.tasks.mapIndex;
  return [...tasks].sort((a, b) => (mi[a] ?? 0) - (mi[b] ?? 0) || a - b);
}

function flowLabel(g: Graph, f: number): string {
  const fl = g.payload.flows[f];
  return `${fl.name}${fl.flowName ? ` (${fl.flowName})` : ""}`;
}

function stageDetail(g: Graph, tasks: number[]): string {
  return stateCounts(g, tasks)
    .map(([s, c]) => `${s} ${c}`)
    .join(" · ");
}

/** Marks every task of flow f (and of its subflows) as represented by `rep`. */
function hideFlow(g: Graph, L: Layout, f: number, rep: number): void {
  for (const s of g.flowStages[f])
    for (const t of g.stages[s].tasks) {
      L.rep[t] = rep;
      const sub = g.payload.tasks.sub[t];
      if (sub >= 0) hideFlow(g, L, sub, rep);
    }
}

export function stageLayout(g: Graph, collapsed: Set<string>): Layout {
  const L = newLayout(g, "stage");
  const tk = g.payload.tasks;
  const flows = g.payload.flows;
  const stageSize = new Map<number, Size>();
  const flowSize = new Map<number, Size>();
  const isExpanded = (t: number) => tk.sub[t] >= 0 && !collapsed.has(flows[tk.sub[t]].id);

  const columnsOf = (f: number): number[][] => {
    const cols: number[][] = [];
    for (const s of g.flowStages[f]) (cols[g.stages[s].depth] ??= []).push(s);
    return cols.filter(Boolean);
  };

  const measureFlow = (f: number): Size => {
    let w = 0;
    let h = 0;
    for (const col of columnsOf(f)) {
      let cw = 0;
      let ch = 0;
      for (const s of col) {
        const size = measureStage(s);
        cw = Math.max(cw, size.w);
        ch += size.h + BLOCK_GAP;
      }
      w += cw + COL_GAP;
      h = Math.max(h, ch - BLOCK_GAP);
    }
    const size = { w: Math.max(0, w - COL_GAP), h };
    flowSize.set(f, size);
    return size;
  };

  const subBoxSize = (sub: number): Size => {
    const inner = measureFlow(sub);
    return { w: Math.max(NODE_W, inner.w + 2 * PAD), h: HEADER + inner.h + PAD };
  };

  const measureStage = (s: number): Size => {
    const tasks = g.stages[s].tasks;
    let size: Size;
    if (tasks.length <= LABEL_LIMIT) {
      let w = NODE_W;
      let h = 0;
      for (const t of tasks) {
        const item = isExpanded(t) ? subBoxSize(tk.sub[t]) : { w: NODE_W, h: NODE_H };
        w = Math.max(w, item.w);
        h += item.h + NODE_GAP;
      }
      size = { w: w + 2 * PAD, h: HEADER + h - NODE_GAP + PAD };
    } else {
      const cols = Math.ceil(Math.sqrt(tasks.length * 0.75));
      const rows = Math.ceil(tasks.length / cols);
      size = {
        w: Math.max(NODE_W, cols * (CELL + CELL_GAP) - CELL_GAP) + 2 * PAD,
        h: HEADER + rows * (CELL + CELL_GAP) - CELL_GAP + PAD,
      };
    }
    stageSize.set(s, size);
    return size;
  };

  const placeTask = (t: number, x: number, y: number, w: number, h: number) => {
    L.x[t] = x;
    L.y[t] = y;
    L.w[t] = w;
    L.h[t] = h;
    L.visible[t] = 1;
    L.rep[t] = t;
  };

  const placeFlow = (f: number, ox: number, oy: number) => {
    let x = ox;
    for (const col of columnsOf(f)) {
      let y = oy;
      let cw = 0;
      for (const s of col) {
        const size = stageSize.get(s)!;
        placeStage(s, x, y, size);
        y += size.h + BLOCK_GAP;
        cw = Math.max(cw, size.w);
      }
      x += cw + COL_GAP;
    }
  };

  const placeStage = (s: number, x: number, y: number, size: Size) => {
    const st = g.stages[s];
    L.stageBox[s] = L.boxes.length;
    L.boxes.push({
      x,
      y,
      w: size.w,
      h: size.h,
      kind: "stage",
      label: `${st.key} · ${st.tasks.length}`,
      detail: stageDetail(g, st.tasks),
      flow: st.flow,
      stage: s,
      collapsed: false,
      header: HEADER,
    });
    const tasks = sortedTasks(g, st.tasks);
    if (tasks.length <= LABEL_LIMIT) {
      let ty = y + HEADER;
      for (const t of tasks) {
        const sub = tk.sub[t];
        if (sub >= 0 && isExpanded(t)) {
          const box = subBoxSize(sub);
          placeTask(t, x + PAD, ty, box.w, box.h);
          L.boxed[t] = 1;
          L.boxes.push({
            x: x + PAD,
            y: ty,
            w: box.w,
            h: box.h,
            kind: "subflow",
            label: `▾ ${flowLabel(g, sub)}`,
            detail: flows[sub].state,
            flow: sub,
            stage: -1,
            collapsed: false,
            header: HEADER,
          });
          placeFlow(sub, x + 2 * PAD, ty + HEADER);
          ty += box.h + NODE_GAP;
        } else {
          placeTask(t, x + PAD, ty, size.w - 2 * PAD, NODE_H);
          if (sub >= 0) hideFlow(g, L, sub, t);
          ty += NODE_H + NODE_GAP;
        }
      }
    } else {
      const cols = Math.ceil(Math.sqrt(tasks.length * 0.75));
      tasks.forEach((t, i) => {
        placeTask(
          t,
          x + PAD + (i % cols) * (CELL + CELL_GAP),
          y + HEADER + Math.floor(i / cols) * (CELL + CELL_GAP),
          CELL,
          CELL,
        );
        if (tk.sub[t] >= 0) hideFlow(g, L, tk.sub[t], t); // mapped subflows stay collapsed
      });
    }
  };

  const root = g.payload.root >= 0 ? g.payload.root : 0;
  if (flows.length) {
    const size = measureFlow(root);
    placeFlow(root, 0, 0);
    L.width = size.w;
    L.height = size.h;
  }
  return finish(g, L);
}

/** A min-heap of lane end times, so packing 10,000 bars is O(n log n). */
class LaneHeap {
  ends: number[] = [];
  lanes: number[] = [];
  push(end: number, lane: number) {
    const e = this.ends;
    const l = this.lanes;
    e.push(end);
    l.push(lane);
    let i = e.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (e[p] <= e[i]) break;
      [e[p], e[i]] = [e[i], e[p]];
      [l[p], l[i]] = [l[i], l[p]];
      i = p;
    }
  }
  popIfBefore(t: number): number {
    const e = this.ends;
    const l = this.lanes;
    if (!e.length || e[0] > t) return -1;
    const lane = l[0];
    const lastE = e.pop()!;
    const lastL = l.pop()!;
    if (e.length) {
      e[0] = lastE;
      l[0] = lastL;
      let i = 0;
      for (;;) {
        const a = 2 * i + 1;
        const b = a + 1;
        let m = i;
        if (a < e.length && e[a] < e[m]) m = a;
        if (b < e.length && e[b] < e[m]) m = b;
        if (m === i) break;
        [e[m], e[i]] = [e[i], e[m]];
        [l[m], l[i]] = [l[i], l[m]];
        i = m;
      }
    }
    return lane;
  }
}

const LANE = 12;
const BAR = 9;
const TIMELINE_WIDTH = 1400;
const PENDING_PER_ROW = 20;

export function timelineLayout(g: Graph, collapsed: Set<string>, now: number): Layout {
  const L = newLayout(g, "timeline");
  const tk = g.payload.tasks;
  const flows = g.payload.flows;
  let t0 = Infinity;
  let tEnd = -Infinity;
  for (let i = 0; i < g.n; i++) {
    const s = tk.start[i];
    const e = tk.end[i];
    if (s != null) t0 = Math.min(t0, s);
    if (e != null) tEnd = Math.max(tEnd, e);
  }
  for (const f of flows) {
    if (f.start != null) t0 = Math.min(t0, f.start);
    if (f.end != null) tEnd = Math.max(tEnd, f.end);
  }
  if (!isFinite(t0)) t0 = now;
  const tNow = g.payload.final && isFinite(tEnd) ? tEnd : Math.max(now, isFinite(tEnd) ? tEnd : now);
  const pps = TIMELINE_WIDTH / Math.max(tNow - t0, 0.001);
  L.t0 = t0;
  L.tNow = tNow;
  L.pxPerSec = pps;
  const nowX = (tNow - t0) * pps;
  const pendingW = 6;
  let maxX = nowX;

  const placeFlow = (f: number, indent: number, oy: number): number => {
    let y = oy;
    for (const s of g.flowStages[f]) {
      const st = g.stages[s];
      const tasks = [...st.tasks].sort(
        (a, b) => (tk.start[a] ?? Infinity) - (tk.start[b] ?? Infinity) || a - b,
      );
      const heap = new LaneHeap();
      let lanes = 0;
      const bandY = y + HEADER;
      const subs: number[] = [];
      let pendingSeen = 0;
      for (const t of tasks) {
        const pending = tk.start[t] == null;
        let x: number;
        let w: number;
        let lane: number;
        if (pending) {
          // Pending runs have no time yet: a block of markers just right of "now".
          const p = pendingSeen++;
          x = nowX + 6 + (p % PENDING_PER_ROW) * (pendingW + 2);
          w = pendingW;
          lane = Math.floor(p / PENDING_PER_ROW);
          lanes = Math.max(lanes, lane + 1);
        } else {
          const start = tk.start[t]!;
          x = (start - t0) * pps;
          w = Math.max(2, ((tk.end[t] ?? tNow) - start) * pps);
          lane = heap.popIfBefore(start);
          if (lane < 0) lane = lanes++;
          heap.push((x + w + 2) / pps + t0, lane); // a lane frees up after its drawn bar
        }
        L.x[t] = indent + x;
        L.y[t] = bandY + lane * LANE;
        L.w[t] = w;
        L.h[t] = BAR;
        L.visible[t] = 1;
        L.rep[t] = t;
        maxX = Math.max(maxX, indent + x + w);
        if (tk.sub[t] >= 0) {
          if (collapsed.has(flows[tk.sub[t]].id)) hideFlow(g, L, tk.sub[t], t);
          else subs.push(t);
        }
      }
      const bandH = HEADER + Math.max(1, lanes) * LANE + PAD;
      L.stageBox[s] = L.boxes.length;
      L.boxes.push({
        x: indent - PAD,
        y,
        w: 0, // set once the width is known
        h: bandH,
        kind: "stage",
        label: `${st.key} · ${st.tasks.length}`,
        detail: stageDetail(g, st.tasks),
        flow: f,
        stage: s,
        collapsed: false,
        header: HEADER,
      });
      y += bandH + 6;
      for (const t of subs) {
        const sub = tk.sub[t];
        const boxIndex = L.boxes.length;
        L.boxes.push({
          x: indent,
          y,
          w: 0,
          h: 0,
          kind: "subflow",
          label: `▾ ${flowLabel(g, sub)}`,
          detail: flows[sub].state,
          flow: sub,
          stage: -1,
          collapsed: false,
          header: HEADER,
        });
        const endY = placeFlow(sub, indent + 2 * PAD, y + HEADER);
        L.boxes[boxIndex].h = endY - y + PAD;
        y = endY + PAD + 6;
      }
    }
    return y;
  };

  const root = g.payload.root >= 0 ? g.payload.root : 0;
  const height = flows.length ? placeFlow(root, 0, 0) : 0;
  L.width = maxX + 2 * PAD;
  L.height = height;
  for (const b of L.boxes) b.w = L.width - b.x;
  return finish(g, L);
}

/** Counts, and the edges: one per dependency while they are few, else one per stage pair,
 * always keeping each pending task's edges to what it waits on. */
function finish(g: Graph, L: Layout): Layout {
  const tk = g.payload.tasks;
  let total = 0;
  for (let t = 0; t < g.n; t++) {
    if (!L.visible[t]) continue;
    L.visibleCount++;
    if (isPending(g, t)) L.pendingVisible++;
    for (const u of tk.up[t]) if (L.rep[u] >= 0 && L.rep[u] !== t) total++;
  }
  const individual = total <= EDGE_LIMIT;
  const pairs: number[] = [];
  const agg = new Map<number, AggEdge>();
  const nb = L.boxes.length;
  let pendingEdges = 0;
  for (let t = 0; t < g.n; t++) {
    if (!L.visible[t]) continue;
    const pending = isPending(g, t);
    for (const u of tk.up[t]) {
      const ru = L.rep[u];
      if (ru < 0 || ru === t) continue;
      if (individual || (pending && pendingEdges < PENDING_EDGE_LIMIT)) {
        pairs.push(ru, t);
        if (pending) pendingEdges++;
        continue;
      }
      const from = L.stageBox[g.stageOf[ru]];
      const to = L.stageBox[g.stageOf[t]];
      if (from < 0 || to < 0 || from === to) continue;
      const key = from * nb + to;
      let e = agg.get(key);
      if (!e) agg.set(key, (e = { from, to, count: 0, pending: 0 }));
      e.count++;
      if (pending) e.pending++;
    }
  }
  L.edges = Int32Array.from(pairs);
  L.aggEdges = [...agg.values()];
  L.pendingEdges = pendingEdges;
  return L;
}
