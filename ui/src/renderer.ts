// The flow-run graph on one canvas: 10,000 task runs are 10,000 rects batched by colour per
// frame, culled to the viewport, not 10,000 DOM nodes. Pan by dragging, zoom with the wheel,
// click a node for its details, click a subflow's header to collapse or expand it.

import { Box, Layout, LayoutKind, Placement, extendStageLayout, refreshStates, stageLayout, timelineLayout } from "./layout";
import { Applied, BLOCKED_COLOR, Graph, WILL_NOT_RUN, blockedText, downstream, isFailed, isPending, stateColor } from "./model";

const CACHE_MARGIN = 400; // css px of scene drawn beyond each edge of the view
const NODE_LABEL_MIN_W = 36; // screen px a node needs before its name is drawn

export interface GraphViewEvents {
  onSelect(task: number | null): void;
  onView?(): void; // the viewport moved or zoomed
}

export interface Timings {
  layoutMs: number;
  drawMs: number;
  renderMaxMs: number; // the longest redraw of the whole scene so far
}

export class GraphView {
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  // The scene as last drawn, a margin wider than the view: a pan copies from it.
  private cache = document.createElement("canvas");
  private cacheCtx = this.cache.getContext("2d", { alpha: false })!;
  private cacheTx = 0;
  private cacheTy = 0;
  private cacheK = 0;
  private dirty = true;
  private lastView = "";
  frames = 0;
  graph: Graph | null = null;
  layout: Layout | null = null;
  kind: LayoutKind = "stage";
  collapsed = new Set<string>(); // subflows the reader collapsed (in lists they start open)
  expanded = new Set<string>(); // subflows the reader opened (in grids they start closed)
  search = "";
  stateFilter = new Set<string>(); // state names (and "Will not run") the chips keep lit
  matches: Uint8Array = new Uint8Array(0);
  matchCount = 0;
  private placement = new Placement();
  relayouts = 0;
  selected: number | null = null;
  private k = 1;
  private tx = 20;
  private ty = 20;
  private fitted = false;
  private frame = 0;
  private hover: number | null = null;
  renders = 0;
  drawnNodes = 0;
  drawnEdges = 0;
  drawnLabels = 0;
  // Stage and subflow labels as last drawn, in view coordinates (for tests and the hook).
  drawnBoxLabels: { label: string; x: number; y: number; px: number }[] = [];
  timings: Timings = { layoutMs: 0, drawMs: 0, renderMaxMs: 0 };
  private tooltip: HTMLDivElement;

  constructor(
    private container: HTMLElement,
    private events: GraphViewEvents,
  ) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "graph-canvas";
    this.canvas.tabIndex = 0; // takes keyboard focus, so the page's shortcuts work after a click
    this.ctx = this.canvas.getContext("2d", { alpha: false })!;
    this.tooltip = document.createElement("div");
    this.tooltip.className = "graph-tooltip";
    container.append(this.canvas, this.tooltip);
    new ResizeObserver(() => this.resize()).observe(container);
    this.bindInput();
    this.resize();
  }

  setGraph(g: Graph): void {
    this.graph = g;
    this.placement = new Placement();
    this.relayout();
  }

  /** After a delta: new task runs or flows are placed (what is placed stays put); a poll
   * that only changed states redraws with new counts and edges, without a layout. */
  update(applied: Applied): void {
    const g = this.graph;
    if (!g || !this.layout) return;
    const t0 = performance.now();
    if (applied.added && !applied.newFlows && !applied.newStages && extendStageLayout(g, this.layout, this.placement, g.n - applied.added)) {
      this.computeMatches();
      this.timings.layoutMs = performance.now() - t0;
      this.requestDraw();
    } else if (applied.added || applied.newFlows || this.kind === "timeline") this.relayout();
    else if (applied.changed || applied.newStages) {
      const t = performance.now();
      refreshStates(g, this.layout);
      this.computeMatches();
      this.timings.layoutMs = performance.now() - t;
      this.requestDraw();
    }
  }

  setKind(kind: LayoutKind): void {
    if (kind === this.kind) return;
    this.kind = kind;
    this.fitted = false;
    this.placement = new Placement();
    this.relayout();
  }

  isCollapsed(flowId: string): boolean {
    return this.layout?.collapsedFlows.has(flowId) ?? this.collapsed.has(flowId);
  }

  toggleSubflow(flowId: string): void {
    if (this.isCollapsed(flowId)) {
      this.collapsed.delete(flowId);
      this.expanded.add(flowId);
    } else {
      this.collapsed.add(flowId);
      this.expanded.delete(flowId);
    }
    this.placement = new Placement(); // the reader asked for a new shape: start over
    this.relayout();
  }

  /** Expand (true) or collapse every subflow. */
  foldAll(expand: boolean): void {
    const g = this.graph;
    if (!g) return;
    this.collapsed.clear();
    this.expanded.clear();
    for (const f of g.payload.flows) if (f.parentTask >= 0) (expand ? this.expanded : this.collapsed).add(f.id);
    this.placement = new Placement();
    this.relayout();
  }

  /** What a node says: its name, then its state (or why it will not run); a collapsed
   * subflow adds how many task runs it holds and how many failed. */
  nodeLabel(i: number, wide: boolean): string {
    const g = this.graph!;
    const L = this.layout!;
    const tk = g.payload.tasks;
    const sub = tk.sub[i];
    if (sub < 0) return wide ? `${tk.name[i]}  ${blockedText(g, i) ?? tk.state[i]}` : tk.name[i];
    const total = L.flowTotals[sub] ?? 0;
    const failed = L.flowFailed[sub] ?? 0;
    const counts = `${total} task run${total === 1 ? "" : "s"}${failed ? `, ${failed} failed` : ""}`;
    return wide ? `▸ ${tk.name[i]}  ${tk.state[i]} · ${counts}` : `▸ ${tk.name[i]}`;
  }

  setSearch(text: string): void {
    this.search = text.trim().toLowerCase();
    this.computeMatches();
    this.requestDraw();
  }

  setStateFilter(names: Set<string>): void {
    this.stateFilter = names;
    this.computeMatches();
    this.requestDraw();
  }

  relayout(): void {
    const g = this.graph;
    if (!g) return;
    const t = performance.now();
    this.layout =
      this.kind === "stage"
        ? stageLayout(g, this.collapsed, this.placement, this.expanded)
        : timelineLayout(g, this.collapsed, Date.now() / 1000, this.placement);
    this.relayouts++;
    this.timings.layoutMs = performance.now() - t;
    this.computeMatches();
    if (!this.fitted) {
      this.fit();
      this.fitted = true;
    }
    this.requestDraw();
  }

  private computeMatches(): void {
    const g = this.graph;
    if (!g) return;
    this.matches = new Uint8Array(g.n);
    this.matchCount = 0;
    if (!this.filtering) return;
    const names = g.payload.tasks.name;
    const ids = g.payload.tasks.id;
    const states = g.payload.tasks.state;
    // `state:fail` matches state names starting so; a bare word matches a name or id, or a
    // state's whole name ("failed", "will not run").
    let text = this.search;
    let stateOnly = false;
    if (text.startsWith("state:")) {
      text = text.slice(6).trim();
      stateOnly = true;
    }
    const filter = this.stateFilter;
    for (let i = 0; i < g.n; i++) {
      const state = g.blockedBy[i] >= 0 ? WILL_NOT_RUN : states[i];
      if (filter.size && !filter.has(state)) continue;
      if (text) {
        const s = state.toLowerCase();
        const hit = stateOnly
          ? s.startsWith(text) || states[i].toLowerCase().startsWith(text)
          : names[i].toLowerCase().includes(text) || ids[i].startsWith(text) || s === text || states[i].toLowerCase() === text;
        if (!hit) continue;
      }
      this.matches[i] = 1;
      this.matchCount++;
    }
  }

  get filtering(): boolean {
    return this.search.length > 0 || this.stateFilter.size > 0;
  }

  /** Failed and crashed task runs in reading order: by column, then top to bottom. */
  failedRuns(): number[] {
    const g = this.graph;
    const L = this.layout;
    if (!g || !L) return [];
    const out: number[] = [];
    for (let i = 0; i < g.n; i++) if (isFailed(g, i) && L.rep[i] >= 0) out.push(i);
    const at = (i: number) => L.rep[i];
    out.sort((a, b) => L.x[at(a)] - L.x[at(b)] || L.y[at(a)] - L.y[at(b)] || a - b);
    return out;
  }

  /** Select and centre the next (+1) or previous (-1) failed run after the selected one. */
  stepFailed(dir: 1 | -1): number | null {
    const list = this.failedRuns();
    if (!list.length) return null;
    const here = this.selected === null ? -1 : list.indexOf(this.selected);
    const next = here < 0 ? (dir > 0 ? 0 : list.length - 1) : (here + dir + list.length) % list.length;
    this.centreOn(list[next]);
    return next;
  }

  centreOn(t: number): void {
    const L = this.layout;
    if (!L) return;
    const i = L.rep[t] >= 0 ? L.rep[t] : t;
    this.k = Math.max(this.k, 1);
    this.tx = this.canvas.clientWidth / 2 - (L.x[i] + L.w[i] / 2) * this.k;
    this.ty = this.canvas.clientHeight / 2 - (L.y[i] + L.h[i] / 2) * this.k;
    this.selected = t;
    this.events.onSelect(t);
    this.requestDraw();
  }

  /** Centre the view on the first visible match of the search. */
  focusFirstMatch(): void {
    const L = this.layout;
    if (!L) return;
    for (let i = 0; i < this.matches.length; i++) {
      if (this.matches[i] && L.visible[i]) {
        this.centreOn(i);
        return;
      }
    }
  }

  /** "k,tx,ty": the viewport, for the URL. */
  viewString(): string {
    return `${+this.k.toFixed(4)},${Math.round(this.tx)},${Math.round(this.ty)}`;
  }

  /** Takes a viewport from the URL; the first layout then keeps it instead of fitting. */
  restoreView(text: string): void {
    const [k, tx, ty] = text.split(",").map(Number);
    if (![k, tx, ty].every(Number.isFinite) || k <= 0) return;
    this.k = Math.min(8, Math.max(0.01, k));
    this.tx = tx;
    this.ty = ty;
    this.fitted = true;
    this.requestDraw();
  }

  fit(): void {
    const L = this.layout;
    if (!L) return;
    const cw = this.canvas.clientWidth || 800;
    const ch = this.canvas.clientHeight || 500;
    const k = Math.min(cw / (L.width + 40), ch / (L.height + 40), 1.5);
    this.k = Math.max(k, 0.02);
    this.tx = (cw - L.width * this.k) / 2;
    this.ty = 20;
    this.requestDraw();
  }

  zoomBy(factor: number, cx?: number, cy?: number): void {
    const x = cx ?? this.canvas.clientWidth / 2;
    const y = cy ?? this.canvas.clientHeight / 2;
    const k = Math.min(8, Math.max(0.01, this.k * factor));
    this.tx = x - ((x - this.tx) * k) / this.k;
    this.ty = y - ((y - this.ty) * k) / this.k;
    this.k = k;
    this.requestDraw();
  }

  get zoom(): number {
    return this.k;
  }

  /** Page coordinates of a task's node centre, or of a subflow box's header (for tests). */
  screenOf(x: number, y: number): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: r.left + x * this.k + this.tx, y: r.top + y * this.k + this.ty };
  }

  private resize(): void {
    const dpr = window.devicePixelRatio || 1;
    const w = this.container.clientWidth;
    const h = this.container.clientHeight;
    this.canvas.width = Math.max(1, Math.floor(w * dpr));
    this.canvas.height = Math.max(1, Math.floor(h * dpr));
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    if (this.layout && !this.fitted) this.fit();
    this.requestDraw();
  }

  /** Draw at the next frame; `changed` false when only the view moved (a pan), which then
   * costs one copy of the cached scene instead of drawing 10,000 nodes again. */
  requestDraw(changed = true): void {
    if (changed) this.dirty = true;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  // -- input ------------------------------------------------------------------------------
  private toWorld(e: MouseEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left - this.tx) / this.k, y: (e.clientY - r.top - this.ty) / this.k };
  }

  /** The topmost visible node under a world point (a linear scan: 10,000 compares is <1 ms). */
  taskAt(x: number, y: number): number | null {
    const L = this.layout;
    if (!L) return null;
    let best: number | null = null;
    let bestArea = Infinity;
    const slack = 2 / this.k;
    for (let i = 0; i < L.visible.length; i++) {
      if (!L.visible[i]) continue;
      const x0 = L.x[i] - slack;
      const y0 = L.y[i] - slack;
      if (x >= x0 && y >= y0 && x <= L.x[i] + L.w[i] + slack && y <= L.y[i] + L.h[i] + slack) {
        const area = L.w[i] * L.h[i];
        if (area < bestArea) {
          best = i;
          bestArea = area;
        }
      }
    }
    return best;
  }

  subflowHeaderAt(x: number, y: number): Box | null {
    const L = this.layout;
    if (!L) return null;
    for (let b = L.boxes.length - 1; b >= 0; b--) {
      const box = L.boxes[b];
      if (box.kind !== "subflow") continue;
      if (x >= box.x && x <= box.x + box.w && y >= box.y && y <= box.y + box.header) return box;
    }
    return null;
  }

  private bindInput(): void {
    const c = this.canvas;
    let drag: { x: number; y: number; tx: number; ty: number; moved: boolean } | null = null;
    c.addEventListener("mousedown", (e) => {
      c.focus({ preventScroll: true });
      drag = { x: e.clientX, y: e.clientY, tx: this.tx, ty: this.ty, moved: false };
    });
    window.addEventListener("mousemove", (e) => {
      if (drag) {
        const dx = e.clientX - drag.x;
        const dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        this.tx = drag.tx + dx;
        this.ty = drag.ty + dy;
        this.requestDraw(false); // a pan: the scene is the same, only where it is shown

        return;
      }
      if (e.target !== c) return;
      const p = this.toWorld(e);
      const t = this.taskAt(p.x, p.y);
      if (t !== this.hover) {
        this.hover = t;
        this.requestDraw();
      }
      this.showTooltip(e, t);
    });
    window.addEventListener("mouseup", (e) => {
      const d = drag;
      drag = null;
      if (!d || d.moved || e.target !== c) return;
      const p = this.toWorld(e);
      const box = this.subflowHeaderAt(p.x, p.y);
      if (box) {
        this.toggleSubflow(this.graph!.payload.flows[box.flow].id);
        return;
      }
      const t = this.taskAt(p.x, p.y);
      const tk = this.graph?.payload.tasks;
      if (t !== null && tk && tk.sub[t] >= 0 && this.isCollapsed(this.graph!.payload.flows[tk.sub[t]].id)) {
        this.toggleSubflow(this.graph!.payload.flows[tk.sub[t]].id); // expand a collapsed subflow
      }
      this.selected = t;
      this.events.onSelect(t);
      this.requestDraw();
    });
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const r = c.getBoundingClientRect();
        this.zoomBy(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
      },
      { passive: false },
    );
    c.addEventListener("mouseleave", () => (this.tooltip.style.display = "none"));
    // Keys while the canvas has focus: arrows pan, + and - zoom, Enter opens or closes the
    // selected subflow, Escape clears the selection.
    c.addEventListener("keydown", (e) => {
      const step = 80;
      const pan: Record<string, [number, number]> = {
        ArrowLeft: [step, 0],
        ArrowRight: [-step, 0],
        ArrowUp: [0, step],
        ArrowDown: [0, -step],
      };
      if (pan[e.key]) {
        this.tx += pan[e.key][0];
        this.ty += pan[e.key][1];
        this.requestDraw(false);
      } else if (e.key === "+" || e.key === "=") this.zoomBy(1.25);
      else if (e.key === "-" || e.key === "_") this.zoomBy(0.8);
      else if (e.key === "Enter" && this.selected !== null && this.graph) {
        const sub = this.graph.payload.tasks.sub[this.selected];
        if (sub >= 0) this.toggleSubflow(this.graph.payload.flows[sub].id);
      } else if (e.key === "Escape") {
        this.selected = null;
        this.events.onSelect(null);
        this.requestDraw();
      } else return;
      e.preventDefault();
    });
  }

  private showTooltip(e: MouseEvent, t: number | null): void {
    const g = this.graph;
    if (t === null || !g) {
      this.tooltip.style.display = "none";
      return;
    }
    const tk = g.payload.tasks;
    const r = this.container.getBoundingClientRect();
    this.tooltip.textContent = tk.sub[t] >= 0 ? this.nodeLabel(t, true) : `${tk.name[t]} · ${blockedText(g, t) ?? tk.state[t]}`;
    this.tooltip.style.display = "block";
    this.tooltip.style.left = `${e.clientX - r.left + 12}px`;
    this.tooltip.style.top = `${e.clientY - r.top + 12}px`;
  }

  // -- drawing ----------------------------------------------------------------------------
  /** Shows the scene: a copy from the cache when only the view moved and the cache covers
   * it, else the scene drawn again into the cache (the view plus a margin on each side). */
  draw(): void {
    const t0 = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const cache = this.cache;
    const dx = Math.round((this.tx - this.cacheTx) * dpr);
    const dy = Math.round((this.ty - this.cacheTy) * dpr);
    const covered =
      dx <= 0 && dy <= 0 && dx + cache.width >= this.canvas.width && dy + cache.height >= this.canvas.height;
    if (this.dirty || !covered || this.cacheK !== this.k) {
      const m = CACHE_MARGIN;
      cache.width = this.canvas.width + 2 * Math.round(m * dpr);
      cache.height = this.canvas.height + 2 * Math.round(m * dpr);
      this.cacheTx = this.tx + m;
      this.cacheTy = this.ty + m;
      this.cacheK = this.k;
      this.dirty = false;
      const r0 = performance.now();
      this.render(this.cacheCtx, cache.width / dpr, cache.height / dpr, this.cacheTx, this.cacheTy);
      this.renders++;
      this.timings.renderMaxMs = Math.max(this.timings.renderMaxMs, performance.now() - r0);
    }
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(cache, Math.round((this.tx - this.cacheTx) * dpr), Math.round((this.ty - this.cacheTy) * dpr));
    this.frames++;
    const where = `${this.k},${this.tx},${this.ty}`;
    if (where !== this.lastView) {
      this.lastView = where;
      this.events.onView?.();
    }
    this.timings.drawMs = performance.now() - t0;
  }

  private render(ctx: CanvasRenderingContext2D, cw: number, ch: number, tx: number, ty: number): void {
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, cw, ch);
    const L = this.layout;
    const g = this.graph;
    this.drawnNodes = 0;
    this.drawnEdges = 0;
    this.drawnLabels = 0;
    this.drawnBoxLabels = [];
    if (!L || !g) return;
    const k = this.k;
    ctx.setTransform(dpr * k, 0, 0, dpr * k, dpr * tx, dpr * ty);
    const vx0 = -tx / k;
    const vy0 = -ty / k;
    const vx1 = vx0 + cw / k;
    const vy1 = vy0 + ch / k;
    const inView = (x: number, y: number, w: number, h: number) =>
      x + w >= vx0 && x <= vx1 && y + h >= vy0 && y <= vy1;
    const px = 1 / k; // one screen pixel in world units

    if (L.kind === "timeline") this.drawAxis(ctx, L, vy0, vy1, px);

    // Boxes: stage blocks and subflows (their labels are drawn last, in screen space).
    const boxesInView: Box[] = [];
    for (const b of L.boxes) {
      if (!inView(b.x, b.y, b.w, b.h)) continue;
      boxesInView.push(b);
      ctx.fillStyle = b.kind === "subflow" ? "#f3f0fb" : "#f6f7f9";
      ctx.fillRect(b.x, b.y, b.w, b.h);
      ctx.lineWidth = px;
      ctx.strokeStyle = b.kind === "subflow" ? "#8c6cd6" : "#d5d9e0";
      ctx.strokeRect(b.x, b.y, b.w, b.h);
    }

    // Edges under the nodes: settled ones grey; each edge into a pending run in its
    // upstream's colour (red when that upstream failed: the run will not start).
    const tk = g.payload.tasks;
    const e = L.edges;
    const sel = this.selected;
    const byColor = new Map<string, number[]>();
    for (let i = 0; i < e.length; i += 2) {
      const u = e[i];
      const t = e[i + 1];
      const x0 = L.x[u] + L.w[u];
      const y0 = L.y[u] + L.h[u] / 2;
      const x1 = L.x[t];
      const y1 = L.y[t] + L.h[t] / 2;
      if (!inView(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0))) continue;
      const color = isPending(g, t) ? stateColor(tk.type[u], tk.state[u]) : "";
      let list = byColor.get(color);
      if (!list) byColor.set(color, (list = []));
      list.push(x0, y0, x1, y1); // its ends, as just worked out for the view test
    }
    const faint = L.pendingEdges > 300;
    for (const [color, list] of byColor) {
      ctx.beginPath();
      for (let i = 0; i < list.length; i += 4) {
        const x0 = list[i];
        const y0 = list[i + 1];
        const x1 = list[i + 2];
        const y1 = list[i + 3];
        const mx = (x0 + x1) / 2;
        ctx.moveTo(x0, y0);
        ctx.bezierCurveTo(mx, y0, mx, y1, x1, y1);
        this.drawnEdges++;
      }
      ctx.strokeStyle = color || "rgba(100,116,139,0.35)";
      ctx.globalAlpha = color && faint ? 0.35 : color ? 0.9 : 1;
      ctx.lineWidth = (color ? 1.6 : 1) * px;
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    const aggLabels: [string, number, number][] = [];
    // One edge per stage pair means "this stage feeds that one": a Stages idea; in the
    // Timeline, where a band spans the whole run, it would only cross the bands.
    for (const a of L.kind === "stage" ? L.aggEdges : []) {
      const from = L.boxes[a.from];
      const to = L.boxes[a.to];
      const x0 = from.x + from.w;
      const y0 = from.y + from.h / 2;
      const x1 = to.x;
      const y1 = to.y + to.h / 2;
      ctx.beginPath();
      ctx.moveTo(x0, y0);
      const mx = (x0 + x1) / 2;
      ctx.bezierCurveTo(mx, y0, mx, y1, x1, y1);
      ctx.strokeStyle = "rgba(100,116,139,0.45)";
      ctx.lineWidth = Math.min(14, 2 + Math.log2(a.count)) * px;
      ctx.stroke();
      this.drawnEdges++;
      aggLabels.push([`${a.count} edges`, mx, (y0 + y1) / 2]);
    }
    if (sel !== null && L.visible[sel]) this.drawSelectionEdges(ctx, L, sel, px);

    // Nodes, batched by colour; dimmed when a search or a state chip leaves them out.
    const filtering = this.filtering;
    const buckets = new Map<string, number[]>();
    const pendingNodes: number[] = [];
    const blockedNodes: number[] = [];
    for (let i = 0; i < g.n; i++) {
      if (!L.visible[i] || !inView(L.x[i], L.y[i], L.w[i], L.h[i])) continue;
      if (L.boxed[i]) continue; // an expanded subflow: drawn as its box
      this.drawnNodes++;
      if (g.blockedBy[i] >= 0) {
        blockedNodes.push(i);
        continue;
      }
      if (isPending(g, i)) {
        pendingNodes.push(i);
        continue;
      }
      const color = stateColor(tk.type[i], tk.state[i]);
      let list = buckets.get(color);
      if (!list) buckets.set(color, (list = []));
      list.push(i);
    }
    const dim = filtering ? 0.2 : 1;
    ctx.globalAlpha = dim;
    for (const [color, list] of buckets) {
      ctx.fillStyle = color;
      ctx.beginPath();
      for (const i of list) ctx.rect(L.x[i], L.y[i], Math.max(L.w[i], px), Math.max(L.h[i], px));
      ctx.fill();
    }
    const outlined = (list: number[], fill: string, stroke: string) => {
      if (!list.length) return;
      ctx.beginPath();
      for (const i of list) ctx.rect(L.x[i], L.y[i], L.w[i], L.h[i]);
      ctx.fillStyle = fill;
      ctx.fill();
      ctx.setLineDash([3 * px, 2 * px]);
      ctx.lineWidth = 1.5 * px;
      ctx.strokeStyle = stroke;
      ctx.stroke();
      ctx.setLineDash([]);
    };
    outlined(pendingNodes, "#ffffff", stateColor("PENDING"));
    outlined(blockedNodes, "#fdecec", BLOCKED_COLOR);
    ctx.globalAlpha = 1;
    if (filtering) {
      ctx.lineWidth = 2 * px;
      ctx.strokeStyle = "#111827";
      for (let i = 0; i < g.n; i++) {
        if (!this.matches[i] || !L.visible[i] || L.boxed[i] || !inView(L.x[i], L.y[i], L.w[i], L.h[i])) continue;
        ctx.fillStyle = g.blockedBy[i] >= 0 ? "#fdecec" : isPending(g, i) ? "#ffffff" : stateColor(tk.type[i], tk.state[i]);
        ctx.fillRect(L.x[i], L.y[i], L.w[i], L.h[i]);
        ctx.strokeRect(L.x[i], L.y[i], L.w[i], L.h[i]);
      }
    }
    for (const i of [this.hover, sel]) {
      if (i === null || i >= g.n || !L.visible[i]) continue;
      ctx.lineWidth = 2.5 * px;
      ctx.strokeStyle = "#111827";
      ctx.strokeRect(L.x[i] - px, L.y[i] - px, L.w[i] + 2 * px, L.h[i] + 2 * px);
    }

    // Text in screen space, so it is crisp and legible at any zoom: node labels once a
    // node is wide enough on screen to hold some of its name (grid cells included: names
    // appear as you zoom in), then stage and subflow names with their counts.
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const sx = (x: number) => x * k + tx;
    const sy = (y: number) => y * k + ty;
    const nodeFont = Math.min(11, L.kind === "stage" ? 11 : 9);
    {
      ctx.font = `${nodeFont}px system-ui, sans-serif`;
      ctx.textBaseline = "middle";
      for (let i = 0; i < g.n; i++) {
        if (!L.visible[i] || L.boxed[i]) continue;
        const w = L.w[i] * k;
        const h = L.h[i] * k;
        if (w < NODE_LABEL_MIN_W || h < nodeFont + 2 || !inView(L.x[i], L.y[i], L.w[i], L.h[i])) continue;
        const pending = isPending(g, i);
        ctx.fillStyle = pending ? "#374151" : "#ffffff";
        if (filtering && !this.matches[i]) ctx.fillStyle = "#9ca3af";
        ctx.fillText(this.nodeLabel(i, w >= 120), sx(L.x[i]) + 4, sy(L.y[i]) + h / 2, w - 7);
        this.drawnLabels++;
      }
      ctx.textBaseline = "alphabetic";
    }
    const viewLeft = tx - this.tx; // the view's left edge in the cache's frame
    for (const b of boxesInView) {
      // A box cut by the view's left edge keeps its label in sight, as it does at the top.
      const bx = Math.max(sx(b.x), Math.min(viewLeft, sx(b.x + b.w) - 160));
      const bw = sx(b.x + b.w) - bx;
      if (bw < 24) continue;
      // The label sits on the box's top edge, or at the top of the view while the box
      // is taller than what is scrolled past: a stage's name stays in sight.
      const viewTop = ty - this.ty; // the view's top edge in the cache's frame
      const top = Math.max(sy(b.y), Math.min(viewTop, sy(b.y + b.h) - 40));
      const label = b.kind === "stage" ? `${b.label} · ${b.count}` : b.label;
      ctx.font = "600 12px system-ui, sans-serif";
      const lw = Math.min(ctx.measureText(label).width, bw - 12);
      const headerFits = b.header * k >= 14;
      if (!headerFits) {
        // Zoomed far out: a backing plate keeps the label readable over the cells.
        ctx.fillStyle = "rgba(255,255,255,0.85)";
        ctx.fillRect(bx + 2, top + 2, lw + 8, 16);
      }
      ctx.fillStyle = b.kind === "subflow" ? "#5b3fb0" : "#1f2937";
      ctx.fillText(label, bx + 6, top + 15, Math.max(12, bw - 12));
      const ox = this.tx - tx; // from the cache's frame to the view's
      const oy = this.ty - ty;
      this.drawnBoxLabels.push({ label, x: bx + 6 + ox, y: top + 15 + oy, px: 12 });
      ctx.font = "11px system-ui, sans-serif";
      const dw = b.detail && b.kind === "stage" ? ctx.measureText(b.detail).width : Infinity;
      if (dw <= bw - lw - 28) {
        // The counts by state, only when they fit whole: squeezed text is not readable.
        if (!headerFits) {
          ctx.fillStyle = "rgba(255,255,255,0.85)";
          ctx.fillRect(bx + 14 + lw, top + 2, dw + 6, 16);
        }
        ctx.fillStyle = "#6b7280";
        ctx.fillText(b.detail, bx + 16 + lw, top + 15);
      }
    }
    if (k >= 0.4) {
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillStyle = "#374151";
      for (const [text, x, y] of aggLabels) ctx.fillText(text, sx(x) - 20, sy(y) - 6);
    }
  }

  private drawSelectionEdges(ctx: CanvasRenderingContext2D, L: Layout, sel: number, px: number): void {
    const g = this.graph!;
    const tk = g.payload.tasks;
    ctx.beginPath();
    const line = (u: number, t: number) => {
      const x0 = L.x[u] + L.w[u];
      const y0 = L.y[u] + L.h[u] / 2;
      const x1 = L.x[t];
      const y1 = L.y[t] + L.h[t] / 2;
      const mx = (x0 + x1) / 2;
      ctx.moveTo(x0, y0);
      ctx.bezierCurveTo(mx, y0, mx, y1, x1, y1);
    };
    for (const u of tk.up[sel]) if (L.rep[u] >= 0 && L.rep[u] !== sel) line(L.rep[u], sel);
    for (const d of downstream(g)[sel]) if (L.rep[d] >= 0 && L.rep[d] !== sel) line(sel, L.rep[d]);
    ctx.strokeStyle = "rgba(17,24,39,0.85)";
    ctx.lineWidth = 2 * px;
    ctx.stroke();
  }

  private drawAxis(ctx: CanvasRenderingContext2D, L: Layout, vy0: number, vy1: number, px: number): void {
    const span = (L.tNow - L.t0) || 1;
    const steps = [0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600];
    const target = 120 * px; // a tick every ~120 screen px
    const step = steps.find((s) => s * L.pxPerSec >= target) ?? span;
    ctx.font = `${11 * px}px system-ui, sans-serif`;
    ctx.lineWidth = px;
    for (let s = 0; s <= span + step; s += step) {
      const x = s * L.pxPerSec;
      ctx.strokeStyle = "#eef0f3";
      ctx.beginPath();
      ctx.moveTo(x, vy0);
      ctx.lineTo(x, vy1);
      ctx.stroke();
      ctx.fillStyle = "#9ca3af";
      ctx.fillText(`${+s.toFixed(3)}s`, x + 3 * px, vy0 + 12 * px);
    }
    const nowX = (L.tNow - L.t0) * L.pxPerSec;
    ctx.strokeStyle = "rgba(47,125,225,0.6)";
    ctx.beginPath();
    ctx.moveTo(nowX, vy0);
    ctx.lineTo(nowX, vy1);
    ctx.stroke();
  }
}
