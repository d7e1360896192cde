// Two layouts of the same graph, computed directly (no general graph layout needed):
// - "stage": columns by stage depth, each stage a block of its task runs (a labelled list
//   when small, a grid of cells when large), independent of running time;
// - "timeline": x is time, each stage a band of lanes packed by start time.
// Subflows are boxes that expand in place; a collapsed subflow is its placeholder node, and
// the tasks inside it are represented by that node for edges.

import { Graph, PENDING_TYPES, stateCounts } from "./model";

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
  count: number; // task runs of a stage
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
  collapsedFlows: Set<string>; // subflows drawn as their node
  flowTotals: Int32Array; // task runs in each flow and its subflows
  flowFailed: Int32Array; // of which failed or crashed
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
  blockingEdges: number; // individual edges into pending runs whose upstream has not completed
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
    collapsedFlows: new Set(),
    flowTotals: new Int32Array(0),
    flowFailed: new Int32Array(0),
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
    blockingEdges: 0,
    t0: 0,
    pxPerSec: 0,
    tNow: 0,
  };
}

function flowLabel(g: Graph, f: number): string {
  const fl = g.payload.flows[f];
  return `${fl.name}${fl.flowName ? ` (${fl.flowName})` : ""}`;
}

function stageDetail(g: Graph, tasks: number[]): string {
  return stateCounts(g, tasks, true)
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

/** Where each stage was put, kept between polls so that what is on screen stays put: a
 * stage keeps its place and its shape (list or grid, and the grid's width) once placed; a
 * new stage goes below the others of its column, or into a new column on the right; a
 * stage that outgrows the room above the next stage moves itself to the column's end, so
 * it is never the others that move. Collapsing a subflow or switching layout starts over. */
export class Placement {
  flows = new Map<string, FlowPlace>();
  timeline: { t0: number; pps: number } | null = null;
}

interface StagePlace {
  x: number;
  y: number;
  wide: boolean; // a list of labelled nodes, else a grid of cells
  cols: number;
  w: number;
  h: number;
  limit: number; // where the stage placed below it starts (Infinity if none)
  column: number;
}

interface Column {
  x: number;
  w: number;
  bottom: number;
  last: string | null; // the key of the stage at the bottom
  frozen: boolean; // a column exists to the right: the width may no longer grow
}

interface FlowPlace {
  columns: Column[];
  stages: Map<string, StagePlace>;
  size: Size;
}

const MIN_COLS = 12;

/** A grid's width in cells for n task runs: about 4:3, never wider than a column that
 * already has one to its right (its width may no longer grow). */
function gridCols(n: number, col: Column): number {
  const cols = Math.max(MIN_COLS, Math.ceil(Math.sqrt(n * 0.75)));
  if (!col.frozen) return cols;
  return Math.max(MIN_COLS, Math.min(cols, Math.floor((col.w - 2 * PAD + CELL_GAP) / (CELL + CELL_GAP))));
}

/** Subflows are expanded by default in a list stage and collapsed in a grid (a map may call
 * thousands); `collapsed` and `expanded` are the reader's choices against those defaults. */
export function stageLayout(
  g: Graph,
  collapsed: Set<string>,
  memory: Placement = new Placement(),
  expanded: Set<string> = new Set(),
): Layout {
  const L = newLayout(g, "stage");
  const tk = g.payload.tasks;
  const flows = g.payload.flows;
  const isExpanded = (t: number) => tk.sub[t] >= 0 && !collapsed.has(flows[tk.sub[t]].id);
  const gridExpanded = (t: number) => tk.sub[t] >= 0 && expanded.has(flows[tk.sub[t]].id);

  // Phase 1: where each stage is, relative to its flow's origin, and each flow's size.
  const placeFlow = (f: number): Size => {
    const id = flows[f].id;
    let fp = memory.flows.get(id);
    if (!fp) memory.flows.set(id, (fp = { columns: [], stages: new Map(), size: { w: 0, h: 0 } }));
    const place = fp;
    for (const s of g.flowStages[f]) {
      const st = g.stages[s];
      let p = place.stages.get(st.key);
      if (!p) {
        const depth = Math.min(st.depth, place.columns.length);
        if (depth === place.columns.length) {
          const prev = place.columns[depth - 1];
          if (prev) prev.frozen = true;
          place.columns.push({ x: prev ? prev.x + prev.w + COL_GAP : 0, w: 0, bottom: 0, last: null, frozen: false });
        }
        const col = place.columns[depth];
        const wide = st.tasks.length <= LABEL_LIMIT;
        const cols = wide ? 1 : gridCols(st.tasks.length, col);
        const y = col.last === null ? 0 : col.bottom + BLOCK_GAP;
        if (col.last !== null) place.stages.get(col.last)!.limit = y;
        p = { x: col.x, y, wide, cols, w: 0, h: 0, limit: Infinity, column: depth };
        place.stages.set(st.key, p);
        col.last = st.key;
      } else if (p.wide && st.tasks.length > LABEL_LIMIT) {
        // A list that grows past the label limit (a map whose first runs came in one poll)
        // becomes a grid where it stands: a list of thousands of rows would dwarf the run.
        p.wide = false;
        p.cols = gridCols(st.tasks.length, place.columns[p.column]);
      }
      const size = measureStage(s, p);
      const col = place.columns[p.column];
      if (p.y + size.h > p.limit - BLOCK_GAP / 2) {
        // Outgrew its room: this stage moves to the end of its column, nothing else does.
        place.stages.get(col.last!)!.limit = col.bottom + BLOCK_GAP;
        p.y = col.bottom + BLOCK_GAP;
        p.limit = Infinity;
        col.last = st.key;
      }
      p.w = size.w;
      p.h = size.h;
      if (col.last === st.key) col.bottom = p.y + p.h;
      if (!col.frozen) col.w = Math.max(col.w, p.w);
    }
    let w = 0;
    let h = 0;
    for (const p of place.stages.values()) {
      w = Math.max(w, p.x + p.w);
      h = Math.max(h, p.y + p.h);
    }
    place.size = { w, h };
    return place.size;
  };

  const subBoxSize = (sub: number): Size => {
    const inner = placeFlow(sub);
    return { w: Math.max(NODE_W, inner.w + 2 * PAD), h: HEADER + inner.h + PAD };
  };

  const measureStage = (s: number, p: StagePlace): Size => {
    const tasks = g.stages[s].tasks;
    if (p.wide) {
      let w = NODE_W;
      let h = 0;
      for (const t of tasks) {
        const item = isExpanded(t) ? subBoxSize(tk.sub[t]) : { w: NODE_W, h: NODE_H };
        w = Math.max(w, item.w);
        h += item.h + NODE_GAP;
      }
      return { w: w + 2 * PAD, h: HEADER + h - NODE_GAP + PAD };
    }
    const rows = Math.ceil(tasks.length / p.cols);
    let w = Math.max(NODE_W, p.cols * (CELL + CELL_GAP) - CELL_GAP);
    let h = HEADER + rows * (CELL + CELL_GAP) - CELL_GAP + PAD;
    // Subflows opened from a grid: boxes below its cells, which stay where they are.
    for (const t of tasks) {
      if (!gridExpanded(t)) continue;
      const box = subBoxSize(tk.sub[t]);
      w = Math.max(w, box.w);
      h += box.h + NODE_GAP;
    }
    return { w: w + 2 * PAD, h };
  };

  const placeTask = (t: number, x: number, y: number, w: number, h: number) => {
    L.x[t] = x;
    L.y[t] = y;
    L.w[t] = w;
    L.h[t] = h;
    L.visible[t] = 1;
    L.rep[t] = t;
  };

  // Phase 2: absolute positions, boxes and task runs.
  // An open subflow: its box at (bx, by), its own stages inside. A list row and a grid cell
  // open theirs alike; only where the box goes differs.
  const openSubflow = (sub: number, bx: number, by: number): Size => {
    const box = subBoxSize(sub);
    L.boxes.push({
      x: bx,
      y: by,
      w: box.w,
      h: box.h,
      kind: "subflow",
      label: `▾ ${flowLabel(g, sub)}`,
      detail: flows[sub].state,
      flow: sub,
      stage: -1,
      collapsed: false,
      header: HEADER,
      count: 0,
    });
    emitFlow(sub, bx + PAD, by + HEADER);
    return box;
  };
  const closeSubflow = (sub: number, t: number) => {
    hideFlow(g, L, sub, t);
    L.collapsedFlows.add(flows[sub].id);
  };
  const emitFlow = (f: number, ox: number, oy: number) => {
    const place = memory.flows.get(flows[f].id)!;
    for (const s of g.flowStages[f]) {
      const st = g.stages[s];
      const p = place.stages.get(st.key)!;
      const x = ox + p.x;
      const y = oy + p.y;
      L.stageBox[s] = L.boxes.length;
      L.boxes.push({
        x,
        y,
        w: p.w,
        h: p.h,
        kind: "stage",
        label: st.key,
        detail: stageDetail(g, st.tasks),
        flow: st.flow,
        stage: s,
        collapsed: false,
        header: HEADER,
        count: st.tasks.length,
      });
      if (p.wide) {
        let ty = y + HEADER;
        for (const t of st.tasks) {
          const sub = tk.sub[t];
          if (sub >= 0 && isExpanded(t)) {
            const box = subBoxSize(sub);
            placeTask(t, x + PAD, ty, box.w, box.h);
            L.boxed[t] = 1;
            openSubflow(sub, x + PAD, ty);
            ty += box.h + NODE_GAP;
          } else {
            placeTask(t, x + PAD, ty, p.w - 2 * PAD, NODE_H);
            if (sub >= 0) closeSubflow(sub, t);
            ty += NODE_H + NODE_GAP;
          }
        }
      } else {
        const cols = p.cols;
        let by = y + HEADER + Math.ceil(st.tasks.length / cols) * (CELL + CELL_GAP) - CELL_GAP + PAD;
        st.tasks.forEach((t, i) => {
          placeTask(t, x + PAD + (i % cols) * (CELL + CELL_GAP), y + HEADER + Math.floor(i / cols) * (CELL + CELL_GAP), CELL, CELL);
          const sub = tk.sub[t];
          if (sub < 0) return;
          if (!gridExpanded(t)) {
            closeSubflow(sub, t);
            return;
          }
          by += openSubflow(sub, x + PAD, by).h + NODE_GAP;
        });
      }
    }
  };

  const root = g.payload.root >= 0 ? g.payload.root : 0;
  if (flows.length) {
    const size = placeFlow(root);
    emitFlow(root, 0, 0);
    L.width = size.w;
    L.height = size.h;
  }
  return finish(g, L);
}

/** The common poll of a map going on: new task runs that join grid stages already placed,
 * with room below them. They take the next cells of their grid; nothing else is placed
 * again. Returns false (the caller lays out in full, from the kept placement) for anything
 * else: a new stage or flow, a list stage, a subflow, a stage that outgrows its room. */
export function extendStageLayout(g: Graph, L: Layout, memory: Placement, from: number): boolean {
  if (L.kind !== "stage") return false;
  const tk = g.payload.tasks;
  const flows = g.payload.flows;
  const root = g.payload.root >= 0 ? g.payload.root : 0;
  const place = memory.flows.get(flows[root]?.id ?? "");
  if (!place) return false;
  const grown = new Map<number, StagePlace>();
  for (let t = from; t < g.n; t++) {
    const s = g.stageOf[t];
    const st = g.stages[s];
    const p = place.stages.get(st.key);
    // Only the root flow's own grids: a subflow's growth would resize its box.
    if (tk.sub[t] >= 0 || st.flow !== root || (L.stageBox[s] ?? -1) < 0 || !p || p.wide) return false;
    grown.set(s, p);
  }
  for (const [s, p] of grown) {
    const tasks = g.stages[s].tasks;
    if (tasks.some((t) => tk.sub[t] >= 0)) return false; // its subflows may open below it
    const rows = Math.ceil(tasks.length / p.cols);
    const h = HEADER + rows * (CELL + CELL_GAP) - CELL_GAP + PAD;
    if (p.y + h > p.limit - BLOCK_GAP / 2) return false;
  }
  const n = g.n;
  const grow = <T extends Float32Array | Uint8Array | Int32Array>(a: T, make: (k: number) => T, fill?: number): T => {
    const out = make(n);
    if (fill !== undefined) (out as Int32Array).fill(fill);
    out.set(a as never);
    return out;
  };
  L.x = grow(L.x, (k) => new Float32Array(k));
  L.y = grow(L.y, (k) => new Float32Array(k));
  L.w = grow(L.w, (k) => new Float32Array(k));
  L.h = grow(L.h, (k) => new Float32Array(k));
  L.visible = grow(L.visible, (k) => new Uint8Array(k));
  L.boxed = grow(L.boxed, (k) => new Uint8Array(k));
  L.rep = grow(L.rep, (k) => new Int32Array(k), -1);
  for (const [s, p] of grown) {
    const b = L.boxes[L.stageBox[s]];
    const tasks = g.stages[s].tasks;
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i];
      if (t < from) continue;
      L.x[t] = b.x + PAD + (i % p.cols) * (CELL + CELL_GAP);
      L.y[t] = b.y + HEADER + Math.floor(i / p.cols) * (CELL + CELL_GAP);
      L.w[t] = CELL;
      L.h[t] = CELL;
      L.visible[t] = 1;
      L.rep[t] = t;
    }
    const rows = Math.ceil(tasks.length / p.cols);
    p.h = b.h = HEADER + rows * (CELL + CELL_GAP) - CELL_GAP + PAD;
    b.count = tasks.length;
    const col = place.columns[p.column];
    if (col.last === g.stages[s].key) col.bottom = p.y + p.h;
    place.size.h = Math.max(place.size.h, p.y + p.h);
    L.height = Math.max(L.height, b.y + b.h);
  }
  refreshStates(g, L);
  return true;
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
// A band holds at most this many lanes: more concurrent runs than that fold over the band
// (lane modulo MAX_LANES), so 3,000 runs at once are a dense band, not 36,000 px of lanes.
const MAX_LANES = 48;

export function timelineLayout(
  g: Graph,
  collapsed: Set<string>,
  now: number,
  memory: Placement = new Placement(),
): Layout {
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
  // The scale is kept while the run goes on, and halved only when the run has grown to
  // twice the width it was laid out for: the axis extends instead of rescaling every poll.
  let pps = TIMELINE_WIDTH / Math.max(tNow - t0, 0.001);
  const kept = memory.timeline;
  if (kept && kept.t0 === t0) {
    pps = kept.pps;
    while ((tNow - t0) * pps > 2 * TIMELINE_WIDTH) pps /= 2;
  }
  memory.timeline = { t0, pps };
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
      let pendingTotal = 0;
      for (const t of tasks) if (tk.start[t] == null) pendingTotal++;
      const perRow = Math.max(PENDING_PER_ROW, Math.ceil(pendingTotal / MAX_LANES));
      for (const t of tasks) {
        const pending = tk.start[t] == null;
        let x: number;
        let w: number;
        let lane: number;
        if (pending) {
          // Pending runs have no time yet: a block of markers just right of "now".
          const p = pendingSeen++;
          x = nowX + 6 + (p % perRow) * (pendingW + 2);
          w = pendingW;
          lane = Math.floor(p / perRow);
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
        L.y[t] = bandY + (lane % MAX_LANES) * LANE;
        L.w[t] = w;
        L.h[t] = BAR;
        L.visible[t] = 1;
        L.rep[t] = t;
        maxX = Math.max(maxX, indent + x + w);
        if (tk.sub[t] >= 0) {
          if (collapsed.has(flows[tk.sub[t]].id)) {
            hideFlow(g, L, tk.sub[t], t);
            L.collapsedFlows.add(flows[tk.sub[t]].id);
          }
          else subs.push(t);
        }
      }
      const bandH = HEADER + Math.max(1, Math.min(lanes, MAX_LANES)) * LANE + PAD;
      L.stageBox[s] = L.boxes.length;
      L.boxes.push({
        x: indent - PAD,
        y,
        w: 0, // set once the width is known
        h: bandH,
        kind: "stage",
        label: lanes > MAX_LANES ? `${st.key} (up to ${lanes} at once, folded)` : st.key,
        detail: stageDetail(g, st.tasks),
        flow: f,
        stage: s,
        collapsed: false,
        header: HEADER,
        count: st.tasks.length,
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
          count: 0,
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

/** Counts, and the edges: one per dependency while they are few. Past the budget, edges
 * into pending runs are kept one by one, those that still block (their upstream has not
 * completed) first, and the rest are drawn as one edge per stage pair. */
function finish(g: Graph, L: Layout): Layout {
  refreshStates(g, L);
  return L;
}

/** What depends on states only: stage counts, visible counts and the edges. A poll that
 * only changed states runs this, not the layout. */
export function refreshStates(g: Graph, L: Layout): void {
  const tk = g.payload.tasks;
  for (const b of L.boxes) {
    if (b.kind === "stage") b.detail = stageDetail(g, g.stages[b.stage].tasks);
    else b.detail = g.payload.flows[b.flow].state;
  }
  // Counts of each flow with its subflows, for collapsed subflows' labels.
  const flows = g.payload.flows;
  L.flowTotals = new Int32Array(flows.length);
  L.flowFailed = new Int32Array(flows.length);
  for (let t = 0; t < g.n; t++) {
    const failed = tk.type[t] === "FAILED" || tk.type[t] === "CRASHED";
    for (let f = tk.flow[t], hops = 0; f >= 0 && hops < 64; hops++) {
      L.flowTotals[f]++;
      if (failed) L.flowFailed[f]++;
      const parent = flows[f].parentTask;
      f = parent >= 0 ? tk.flow[parent] : -1;
    }
  }
  const rep = L.rep;
  let total = 0;
  L.visibleCount = 0;
  L.pendingVisible = 0;
  for (let t = 0; t < g.n; t++) {
    if (!L.visible[t]) continue;
    L.visibleCount++;
    if (PENDING_TYPES.has(tk.type[t])) L.pendingVisible++;
    for (const u of tk.up[t]) if (rep[u] >= 0 && rep[u] !== t) total++;
  }
  const individual = total <= EDGE_LIMIT;
  const pairs: number[] = [];
  const agg = new Map<number, AggEdge>();
  const nb = L.boxes.length;
  let pendingEdges = 0;
  let blockingEdges = 0;
  const aggregate = (ru: number, t: number, pending: boolean) => {
    const from = L.stageBox[g.stageOf[ru]];
    const to = L.stageBox[g.stageOf[t]];
    if (from < 0 || to < 0 || from === to) return;
    const key = from * nb + to;
    let e = agg.get(key);
    if (!e) agg.set(key, (e = { from, to, count: 0, pending: 0 }));
    e.count++;
    if (pending) e.pending++;
  };
  // Pass 0: edges that still block a pending run; pass 1: the other edges.
  for (const pass of [0, 1]) {
    for (let t = 0; t < g.n; t++) {
      if (!L.visible[t]) continue;
      const pending = PENDING_TYPES.has(tk.type[t]);
      if (!individual && !pending) {
        if (pass === 1) for (const u of tk.up[t]) if (rep[u] >= 0 && rep[u] !== t) aggregate(rep[u], t, false);
        continue;
      }
      for (const u of tk.up[t]) {
        const ru = rep[u];
        if (ru < 0 || ru === t) continue;
        const blocking = pending && tk.type[u] !== "COMPLETED";
        if ((pass === 0) !== blocking) continue;
        if (individual || pendingEdges < PENDING_EDGE_LIMIT) {
          pairs.push(ru, t);
          if (pending) pendingEdges++;
          if (blocking) blockingEdges++;
        } else aggregate(ru, t, pending);
      }
    }
  }
  L.edges = Int32Array.from(pairs);
  L.aggEdges = [...agg.values()];
  L.pendingEdges = pendingEdges;
  L.blockingEdges = blockingEdges;
}
