// Our small SVG chart module: time series (line, area, stacked bars), horizontal bars and a
// latency heatmap. Axes carry units, a crosshair tooltip follows the pointer (and the arrow
// keys), and a click (or Enter) on a bucket or bar calls back with what was hit.

import { h, s, mount } from "./dom.js";
import * as fmt from "./format.js";

const M = { top: 12, right: 16, bottom: 26, left: 56 };

let tip = null;

function tooltip() {
  if (!tip) {
    tip = h("div", { class: "tooltip", role: "tooltip", hidden: true });
    document.body.append(tip);
  }
  return tip;
}

/** Show the shared tooltip near (x, y) in viewport pixels. */
export function showTip(x, y, ...content) {
  const t = tooltip();
  mount(t, ...content);
  t.hidden = false;
  const w = t.offsetWidth;
  const hgt = t.offsetHeight;
  const left = x + 14 + w > window.innerWidth ? x - w - 14 : x + 14;
  const top = Math.min(window.innerHeight - hgt - 8, Math.max(8, y - hgt / 2));
  t.style.left = left + "px";
  t.style.top = top + "px";
}

export function hideTip() {
  if (tip) tip.hidden = true;
}

/** Round numbers for an axis from 0 (or min) to max: about `count` ticks. */
export function niceTicks(min, max, count = 4) {
  if (!(max > min)) max = min + 1;
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) || raw;
  // The axis ends on the first tick at or above the data, so the top gridline has a label.
  const top = Math.ceil(max / step - 1e-9) * step;
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= top + step * 1e-9; v += step) {
    out.push(Math.round(v * 1e9) / 1e9);
  }
  return { ticks: out, max: top };
}

const TIME_STEPS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
  21600, 43200, 86400, 172800, 604800].map((x) => x * 1000);

function timeTicks(start, end, width) {
  const want = Math.max(2, Math.floor(width / 90));
  const step = TIME_STEPS.find((st) => (end - start) / st <= want) || TIME_STEPS.at(-1);
  const tz = new Date(start).getTimezoneOffset() * 60000;
  const out = [];
  for (let t = Math.ceil((start - tz) / step) * step + tz; t <= end; t += step) out.push(t);
  return out;
}

function frame(container, height) {
  const width = Math.max(240, container.clientWidth || 600);
  return { width, height, iw: width - M.left - M.right, ih: height - M.top - M.bottom };
}

function yAxis(g, f, ticks, yScale, format) {
  for (const v of ticks) {
    const y = yScale(v);
    g.append(
      s("line", { class: "grid", x1: M.left, x2: M.left + f.iw, y1: y, y2: y }),
      s("text", { class: "axis-label", x: M.left - 6, y: y + 4, "text-anchor": "end" }, format(v)),
    );
  }
}

function xAxis(g, f, start, end, xScale) {
  for (const t of timeTicks(start, end, f.iw)) {
    const x = xScale(t);
    g.append(
      s("line", { class: "tick", x1: x, x2: x, y1: M.top + f.ih, y2: M.top + f.ih + 4 }),
      s("text", { class: "axis-label", x, y: f.height - 8, "text-anchor": "middle" },
        fmt.tick(t, end - start)),
    );
  }
  g.append(s("line", { class: "axis", x1: M.left, x2: M.left + f.iw, y1: M.top + f.ih,
    y2: M.top + f.ih }));
}

/** Re-render `draw` into `container` whenever its width changes. */
function responsive(container, draw) {
  let lastWidth = -1;
  const redraw = () => {
    const w = container.clientWidth;
    if (w === lastWidth) return;
    lastWidth = w;
    draw();
  };
  if (typeof ResizeObserver !== "undefined") {
    const ro = new ResizeObserver(() => requestAnimationFrame(redraw));
    ro.observe(container);
  }
  redraw();
}

function emptyChart(container, message) {
  mount(container, h("div", { class: "chart-empty" }, message || "No data in this range"));
}

/**
 * A time chart. opts: series [{name, color, values: [number|null] aligned with times}],
 * times (bucket starts, unix ms), stepMs, kind ("line" | "area" | "stacked"), yFormat,
 * markers [{value, label}], onPick(t, index) and pickHint (its tooltip line), onSelect(from,
 * to) (a range dragged across), label (aria), height, instant (values are at the times, as
 * PromQL evaluates them, not over buckets that start there).
 */
export function timeChart(container, opts) {
  const { times, series, stepMs } = opts;
  if (!times.length || !series.length) return emptyChart(container, opts.empty);
  responsive(container, () => drawTimeChart(container, opts, times, series, stepMs));
}

function stackTops(series, i) {
  let acc = 0;
  return series.map((sr) => (acc += sr.values[i] || 0));
}

function drawTimeChart(container, opts, times, series, stepMs) {
  const f = frame(container, opts.height || 200);
  const kind = opts.kind || "line";
  const yFormat = opts.yFormat || fmt.compact;
  const start = opts.start ?? times[0];
  const end = Math.max(opts.end ?? times.at(-1) + stepMs, times.at(-1) + stepMs);
  let maxV = 0;
  times.forEach((_, i) => {
    const vals = kind === "stacked" ? [stackTops(series, i).at(-1)] : series.map((x) => x.values[i]);
    vals.forEach((v) => { if (v != null && v > maxV) maxV = v; });
  });
  for (const m of opts.markers || []) if (m.value > maxV && m.value < maxV * 3) maxV = m.value;
  const { ticks, max } = niceTicks(0, maxV || 1, 4);
  const x = (t) => M.left + ((t - start) / (end - start)) * f.iw;
  const y = (v) => M.top + f.ih - (v / max) * f.ih;
  const svg = s("svg", { class: "chart", width: f.width, height: f.height, role: "img",
    "aria-label": opts.label || "time chart" });
  const g = s("g");
  svg.append(g);
  yAxis(g, f, ticks, y, yFormat);
  xAxis(g, f, start, end, x);
  const bw = Math.max(1, (f.iw * stepMs) / (end - start) - (f.iw / times.length > 6 ? 1.5 : 0));
  if (kind === "stacked") {
    times.forEach((t, i) => {
      let base = 0;
      series.forEach((sr) => {
        const v = sr.values[i] || 0;
        if (v > 0) {
          g.append(s("rect", { class: "bar", x: x(t), y: y(base + v), width: bw,
            height: Math.max(0.5, y(base) - y(base + v)), fill: sr.color }));
        }
        base += v;
      });
    });
  } else {
    const at = opts.instant ? 0 : stepMs / 2;
    for (const sr of series) drawLine(g, sr, times, at, x, y, kind, f);
  }
  for (const m of opts.markers || []) {
    if (m.value > max) continue;
    g.append(
      s("line", { class: "marker", x1: M.left, x2: M.left + f.iw, y1: y(m.value), y2: y(m.value) }),
      s("text", { class: "marker-label", x: M.left + f.iw - 4, y: y(m.value) - 4,
        "text-anchor": "end" }, m.label),
    );
  }
  interact(svg, g, f, opts, { times, series, stepMs, x, start, end });
  mount(container, svg, legend(series));
}

function drawLine(g, sr, times, at, x, y, kind, f) {
  // Break the line where a bucket has no value instead of drawing through the gap.
  let d = "";
  let area = "";
  let run = [];
  const flush = () => {
    if (!run.length) return;
    d += run.map(([px, py], j) => (j ? "L" : "M") + px.toFixed(1) + "," + py.toFixed(1)).join("");
    if (kind === "area") {
      area += "M" + run[0][0].toFixed(1) + "," + (M.top + f.ih) +
        run.map(([px, py]) => "L" + px.toFixed(1) + "," + py.toFixed(1)).join("") +
        "L" + run.at(-1)[0].toFixed(1) + "," + (M.top + f.ih) + "Z";
    }
    if (run.length === 1) g.append(s("circle", { cx: run[0][0], cy: run[0][1], r: 2.5, fill: sr.color }));
    run = [];
  };
  times.forEach((t, i) => {
    const v = sr.values[i];
    if (v === null || v === undefined) flush();
    else run.push([x(t + at), y(v)]);
  });
  flush();
  if (area) g.append(s("path", { class: "area", d: area, fill: sr.color }));
  g.append(s("path", { class: "line", d, stroke: sr.color, "stroke-dasharray": sr.dash || null }));
}

function legend(series) {
  if (series.length < 2) return null;
  return h("div", { class: "legend" }, series.map((sr) =>
    h("span", { class: "legend-item" }, h("i", { class: "swatch", style: { background: sr.color } }), sr.name)));
}

function interact(svg, g, f, opts, { times, series, stepMs, x, start, end }) {
  const at = opts.instant ? 0 : stepMs / 2;
  const cross = s("line", { class: "crosshair", y1: M.top, y2: M.top + f.ih, visibility: "hidden" });
  g.append(cross);
  const overlay = s("rect", { class: "overlay", x: M.left, y: M.top, width: f.iw, height: f.ih });
  svg.append(overlay);
  let current = -1;
  const yFormat = opts.tipFormat || opts.yFormat || fmt.compact;
  const show = (i, cx, cy) => {
    current = i;
    const t = times[i];
    const px = x(t + at);
    cross.setAttribute("x1", px);
    cross.setAttribute("x2", px);
    cross.setAttribute("visibility", "visible");
    const rows = series.map((sr) => h("div", { class: "tip-row" },
      h("i", { class: "swatch", style: { background: sr.color } }), h("span", {}, sr.name),
      h("b", {}, sr.values[i] == null ? "–" : yFormat(sr.values[i]))));
    if (opts.kind === "stacked" && series.length > 1) {
      rows.push(h("div", { class: "tip-row tip-total" }, h("span", {}, "total"),
        h("b", {}, yFormat(stackTops(series, i).at(-1)))));
    }
    const hint = opts.onPick ? h("div", { class: "tip-hint" }, opts.pickHint || "click to see these traces") : null;
    showTip(cx, cy, h("div", { class: "tip-title" }, fmt.dateTime(t) + " · " + fmt.seconds(stepMs / 1000)),
      rows, hint);
  };
  const indexAt = (clientX) => {
    const r = svg.getBoundingClientRect();
    const t = start + ((clientX - r.left - M.left) / f.iw) * (end - start);
    let best = 0;
    times.forEach((tt, i) => { if (Math.abs(tt + at - t) < Math.abs(times[best] + at - t)) best = i; });
    return best;
  };
  overlay.addEventListener("mousemove", (ev) => show(indexAt(ev.clientX), ev.clientX, ev.clientY));
  overlay.addEventListener("mouseleave", () => { hideTip(); cross.setAttribute("visibility", "hidden"); });
  const dragged = opts.onSelect ? selectable(svg, g, f, overlay, start, end, opts.onSelect) : () => false;
  if (opts.onPick) {
    overlay.classList.add("pickable");
    overlay.addEventListener("click", (ev) => {
      if (dragged()) return;
      const i = indexAt(ev.clientX);
      opts.onPick(times[i], i);
    });
  }
  // Keyboard: the chart is one tab stop; arrows move between buckets, Enter opens one.
  svg.setAttribute("tabindex", "0");
  svg.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      ev.preventDefault();
      const i = Math.min(times.length - 1, Math.max(0, current + (ev.key === "ArrowRight" ? 1 : -1)));
      const r = svg.getBoundingClientRect();
      show(i, r.left + x(times[i] + at), r.top + M.top + 20);
    } else if ((ev.key === "Enter" || ev.key === " ") && current >= 0 && opts.onPick) {
      ev.preventDefault();
      opts.onPick(times[current], current);
    }
  });
  svg.addEventListener("blur", () => { hideTip(); cross.setAttribute("visibility", "hidden"); });
}

/**
 * Drag across the chart to pick a time range: a band follows the pointer and, on release
 * over more than a few pixels, onSelect(fromMs, toMs). Returns whether the last press was
 * a drag (so the click that ends it is not also a pick).
 */
function selectable(svg, g, f, overlay, start, end, onSelect) {
  const band = s("rect", { class: "select-band", y: M.top, height: f.ih, width: 0, visibility: "hidden" });
  g.append(band);
  let wasDrag = false;
  // Clamped to the plot: a drag may leave the chart and still end at its edge.
  const px = (ev) => Math.min(M.left + f.iw, Math.max(M.left, ev.clientX - svg.getBoundingClientRect().left));
  const toTime = (x) => start + ((x - M.left) / f.iw) * (end - start);
  overlay.addEventListener("mousedown", (ev) => {
    if (ev.button !== 0) return;
    ev.preventDefault(); // no text selection while dragging
    const from = px(ev);
    wasDrag = false;
    const move = (e) => {
      const x = px(e);
      wasDrag = wasDrag || Math.abs(x - from) > 4;
      band.setAttribute("x", Math.min(x, from));
      band.setAttribute("width", Math.abs(x - from));
      band.setAttribute("visibility", wasDrag ? "visible" : "hidden");
    };
    const up = (e) => {
      document.removeEventListener("mousemove", move);
      document.removeEventListener("mouseup", up);
      band.setAttribute("visibility", "hidden");
      const x = px(e);
      if (wasDrag) onSelect(Math.round(toTime(Math.min(from, x))), Math.round(toTime(Math.max(from, x))));
    };
    document.addEventListener("mousemove", move);
    document.addEventListener("mouseup", up);
  });
  return () => wasDrag;
}

/**
 * Horizontal bars, one row per item: [{label, value, note?}] with a value formatter.
 * Rows are links (or buttons) when `onPick` is given.
 */
export function barList(container, items, { format = fmt.compact, onPick, color, empty } = {}) {
  if (!items.length) return emptyChart(container, empty);
  const max = Math.max(...items.map((it) => it.value || 0)) || 1;
  const rows = items.map((it) => {
    const row = h("div", { class: "barrow" },
      h("span", { class: "barrow-label", title: it.title || it.label }, it.label),
      h("span", { class: "barrow-track" },
        h("span", { class: "barrow-fill", style: { width: ((it.value || 0) / max) * 100 + "%",
          background: it.color || color || "var(--accent)" } })),
      h("span", { class: "barrow-value" }, format(it.value)),
      h("span", { class: "barrow-note" }, it.note || ""));
    if (onPick) {
      row.classList.add("pickable");
      row.tabIndex = 0;
      row.setAttribute("role", "link");
      row.setAttribute("aria-label", `${it.label}: ${format(it.value)}, show traces`);
      const go = () => onPick(it);
      row.addEventListener("click", go);
      row.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
      });
    }
    return row;
  });
  mount(container, h("div", { class: "barlist" }, rows));
}

/**
 * Latency heatmap: data {t: [ms], bounds_ms: [...], counts: [[...]]}, stepMs; a dashed line
 * marks `deadlineMs`. onPick(t, lowMs, highMs) on click.
 */
export function heatmap(container, data, opts) {
  const total = data.counts.reduce((a, row) => a + row.reduce((x, y) => x + y, 0), 0);
  if (!data.t.length || !total) return emptyChart(container, opts.empty);
  responsive(container, () => drawHeatmap(container, data, opts));
}

function drawHeatmap(container, data, opts) {
  const f = frame(container, opts.height || 220);
  const { t: times, bounds_ms: bounds, counts } = data;
  const stepMs = opts.stepMs;
  const start = opts.start ?? times[0];
  const end = Math.max(opts.end ?? times.at(-1) + stepMs, times.at(-1) + stepMs);
  const rowsN = counts[0]?.length || bounds.length;
  const ch = f.ih / rowsN;
  const x = (t) => M.left + ((t - start) / (end - start)) * f.iw;
  const rowY = (j) => M.top + f.ih - (j + 1) * ch;
  const maxC = Math.max(1, ...counts.flat());
  const svg = s("svg", { class: "chart heatmap", width: f.width, height: f.height, role: "img",
    "aria-label": opts.label || "latency heatmap" });
  const g = s("g");
  svg.append(g);
  const label = (j) => (j < bounds.length ? "≤ " + fmt.ms(bounds[j]) : "> " + fmt.ms(bounds.at(-1)));
  const labelEvery = Math.ceil(rowsN / Math.max(2, Math.floor(f.ih / 18)));
  for (let j = 0; j < rowsN; j += labelEvery) {
    g.append(s("text", { class: "axis-label", x: M.left - 6, y: rowY(j) + ch / 2 + 4,
      "text-anchor": "end" }, label(j)));
  }
  xAxis(g, f, start, end, x);
  const cw = Math.max(1, (f.iw * stepMs) / (end - start));
  times.forEach((t, i) => counts[i].forEach((c, j) => {
    if (!c) return;
    // Log scale so a few slow requests stay visible next to thousands of fast ones.
    const k = Math.log1p(c) / Math.log1p(maxC);
    g.append(s("rect", { class: "cell", x: x(t) + 0.5, y: rowY(j) + 0.5, width: Math.max(1, cw - 1),
      height: Math.max(1, ch - 1), "fill-opacity": (0.15 + 0.85 * k).toFixed(3),
      dataset: { i, j } }));
  }));
  const dl = opts.deadlineMs;
  if (dl) {
    // Bounds are upper edges: the line sits between the row that ends at the deadline and the next.
    let j = bounds.findIndex((b) => b >= dl);
    if (j < 0) j = bounds.length - 1;
    const yy = rowY(j);
    g.append(s("line", { class: "marker", x1: M.left, x2: M.left + f.iw, y1: yy, y2: yy }),
      s("text", { class: "marker-label", x: M.left + f.iw - 4, y: yy - 4, "text-anchor": "end" },
        "deadline " + fmt.ms(dl)));
  }
  svg.addEventListener("mousemove", (ev) => {
    const cell = ev.target.closest && ev.target.closest(".cell");
    if (!cell) return hideTip();
    const i = Number(cell.dataset.i);
    const j = Number(cell.dataset.j);
    const lo = j === 0 ? 0 : bounds[j - 1];
    showTip(ev.clientX, ev.clientY, h("div", { class: "tip-title" }, fmt.dateTime(times[i])),
      h("div", { class: "tip-row" }, h("span", {}, fmt.ms(lo) + " – " + (j < bounds.length ? fmt.ms(bounds[j]) : "∞")),
        h("b", {}, fmt.int(counts[i][j]) + " req")),
      opts.onPick ? h("div", { class: "tip-hint" }, "click to see these traces") : null);
  });
  svg.addEventListener("mouseleave", hideTip);
  if (opts.onPick) {
    svg.classList.add("pickable");
    svg.addEventListener("click", (ev) => {
      const cell = ev.target.closest && ev.target.closest(".cell");
      if (!cell) return;
      const i = Number(cell.dataset.i);
      const j = Number(cell.dataset.j);
      opts.onPick(times[i], j === 0 ? null : bounds[j - 1], j < bounds.length ? bounds[j] : null);
    });
  }
  mount(container, svg, h("div", { class: "legend" },
    h("span", { class: "legend-item" }, h("i", { class: "swatch heat-lo" }), "few"),
    h("span", { class: "legend-item" }, h("i", { class: "swatch heat-hi" }), "many requests (log scale)")));
}
