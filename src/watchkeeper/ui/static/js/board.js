// A dashboard drawn from its description (GET /api/v1/dashboards/{id}): sections shown when
// a metric they need exists (else what to install), panels on a 24-column grid, each panel's
// PromQL through /prometheus/api/v1 and span measures through /api/v1/timeseries. In edit
// mode a panel moves with the arrow keys or by dragging its title, and resizes with
// Shift+arrows or its corner handle; every change goes to `onChange`.

import { h, mount } from "./dom.js";
import * as api from "./api.js";
import * as range from "./range.js";
import * as chart from "./chart.js";
import * as pq from "./promql.js";
import { palette } from "./colors.js";
import { filterValues } from "./lookups.js";
import { badge, card, failed, loading } from "./ui.js";

export const COLUMNS = 24;
const ROW_PX = 30;
const GAP_PX = 12;
const MAX_SERIES = 12;

/** Where the panels' data comes from: range, step and the variables' values. */
export function environment(q) {
  const r = range.current(q);
  const stepS = Math.max(10, range.stepFor(r, 100));
  const vars = {};
  for (const k of ["service", "environment", "job", "instance"]) vars[k] = q.get(k) || "";
  return { r, stepS, vars };
}

/**
 * Draw `board` into `root`; `envOf()` gives the range and variables (asked again at each
 * reload, so a live page moves with the clock). opts: {editing, names (Set of metric names,
 * or null: show all), onChange(board), onEdit(si, pi), onRemove(si, pi), onAdd(si)}.
 * Returns {reload(), done}.
 */
export function drawBoard(root, board, envOf, signal, opts = {}) {
  const loaders = [];
  const sections = board.sections.map((section, si) => {
    const present = !opts.names || !section.requires.length || section.requires.some((n) => opts.names.has(n));
    const head = section.title ? h("div", { class: "section-title" }, h("h2", {}, section.title)) : null;
    if (!present) {
      return h("section", { class: "board-section", "data-section": section.title, "data-testid": "section-missing" }, head,
        h("div", { class: "notice missing" }, section.missing || `Nothing exposes the metrics these panels read (${section.requires.join(", ")}).`));
    }
    const grid = h("div", { class: ["board-grid", opts.editing && "editing"] });
    section.panels.forEach((panel, pi) => {
      const body = h("div", { class: "chart-box panel-box" }, loading());
      const el = panelCard(panel, body, opts, si, pi);
      place(el, panel.grid);
      if (opts.editing) editable(el, grid, panel, () => opts.onChange && opts.onChange(board));
      grid.append(el);
      loaders.push((env) => loadPanel(panel, body, env, signal));
    });
    if (opts.editing && opts.onAdd) {
      grid.append(h("button", { type: "button", class: "btn add-panel", onclick: () => opts.onAdd(si) }, "+ Add panel"));
    }
    return h("section", { class: "board-section", "data-section": section.title }, head, grid);
  });
  mount(root, sections);
  const reload = () => {
    const env = envOf();
    return Promise.all(loaders.map((load) => load(env)));
  };
  return { reload, done: reload() };
}

function panelCard(panel, body, opts, si, pi) {
  const actions = opts.editing ? [
    h("button", { type: "button", class: "btn small", onclick: () => opts.onEdit(si, pi) }, "Edit"),
    h("button", { type: "button", class: "btn small danger", onclick: () => opts.onRemove(si, pi) }, "Remove"),
  ] : null;
  const c = card(panel.title, body, { subtitle: panel.description || null, actions });
  c.classList.add("panel");
  c.dataset.panel = panel.title;
  return c;
}

/** Position a panel on the grid: columns x..x+w, rows y..y+h (CSSOM, as the CSP allows). */
export function place(el, g) {
  el.style.gridColumn = `${g.x + 1} / span ${g.w}`;
  el.style.gridRow = `${g.y + 1} / span ${g.h}`;
  el.dataset.grid = `${g.x},${g.y},${g.w},${g.h}`;
}

/** Moved by `dx, dy` cells (resize: the width and height), kept within the 24 columns. */
export function moved(g, dx, dy, resize) {
  if (resize) {
    const w = Math.min(COLUMNS - g.x, Math.max(1, g.w + dx));
    return { ...g, w, h: Math.min(40, Math.max(2, g.h + dy)) };
  }
  return { ...g, x: Math.min(COLUMNS - g.w, Math.max(0, g.x + dx)), y: Math.max(0, g.y + dy) };
}

function editable(el, grid, panel, changed) {
  el.tabIndex = 0;
  el.setAttribute("aria-label", `${panel.title}: arrow keys move, Shift+arrow keys resize`);
  const apply = (g) => {
    panel.grid = g;
    place(el, g);
    changed();
  };
  el.addEventListener("keydown", (ev) => {
    if (ev.target !== el) return;
    const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[ev.key];
    if (!d) return;
    ev.preventDefault();
    apply(moved(panel.grid, d[0], d[1], ev.shiftKey));
  });
  const cell = () => ({ w: (grid.clientWidth + GAP_PX) / COLUMNS, h: ROW_PX + GAP_PX });
  const drag = (handle, resize) => handle.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || ev.target.closest("button")) return;
    ev.preventDefault();
    const start = { x: ev.clientX, y: ev.clientY, g: { ...panel.grid } };
    const move = (e) => {
      const c = cell();
      const g = moved(start.g, Math.round((e.clientX - start.x) / c.w), Math.round((e.clientY - start.y) / c.h), resize);
      if (g.x !== panel.grid.x || g.y !== panel.grid.y || g.w !== panel.grid.w || g.h !== panel.grid.h) apply(g);
    };
    const up = () => { window.removeEventListener("pointermove", move); window.removeEventListener("pointerup", up); };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  });
  drag(el.querySelector(".card-head"), false);
  const corner = h("span", { class: "resize-handle", title: "Drag to resize", "aria-hidden": "true" });
  el.append(corner);
  drag(corner, true);
}

async function loadPanel(panel, el, env, signal) {
  try {
    if (panel.kind === "timeseries") await timeseries(panel, el, env, signal);
    else await latest(panel, el, env, signal);
  } catch (err) {
    failed(el, err, panel.title);
  }
}

function apiFilters(env) {
  const out = {};
  if (env.vars.service) out.service = env.vars.service;
  if (env.vars.environment) out.environment = env.vars.environment;
  return out;
}

/** One query's series over the range: [{name, values}] aligned with `times`. */
async function querySeries(q, env, times, signal) {
  if (q.promql) {
    const res = await pq.queryRange(pq.substitute(q.promql, env.vars), times[0], times.at(-1), env.stepS, signal);
    return res.series.map((s) => ({ name: pq.legend(q.legend, s.labels), values: s.values.slice(0, times.length) }));
  }
  const sp = q.spans;
  const params = { scope: sp.scope, step_ms: env.stepS * 1000, by: sp.by, ...apiFilters(env),
    start: times[0], end: Math.round(env.r.endMs) };
  const body = await api.get("/api/v1/timeseries", params, signal);
  const index = new Map(times.map((t, i) => [t, i]));
  const byKey = new Map();
  for (const p of body.points) {
    const key = p.key ?? "";
    // a bucket without spans counts none (and has no latency); one still to come has nothing
    const none = sp.measure.endsWith("_ms") || sp.measure === "success_rate" ? null : 0;
    if (!byKey.has(key)) byKey.set(key, times.map((t) => (t > env.r.endMs ? null : none)));
    const i = index.get(p.t);
    if (i !== undefined) byKey.get(key)[i] = p[sp.measure] ?? null;
  }
  return [...byKey].map(([key, values]) => ({ name: key ? (q.legend ? `${q.legend} ${key}` : key) : (q.legend || sp.measure), values }));
}

/** The step times of the range: aligned to the step, the last one at or after the end (as
 * `pq.queryRange` evaluates PromQL). */
function alignedTimes(env) {
  const stepMs = env.stepS * 1000;
  const start = Math.floor(env.r.startMs / stepMs) * stepMs;
  const end = Math.ceil(env.r.endMs / stepMs) * stepMs;
  const out = [];
  for (let t = start; t <= end; t += stepMs) out.push(t);
  return out;
}

async function timeseries(panel, el, env, signal) {
  const times = alignedTimes(env);
  const found = (await Promise.all(panel.queries.map((q) => querySeries(q, env, times, signal)))).flat();
  const shown = found.filter((s) => s.values.some((v) => v !== null));
  if (!shown.length) return mount(el, h("div", { class: "chart-empty" }, panel.empty || "No data in this range"));
  const extra = shown.length - MAX_SERIES;
  const series = shown.slice(0, MAX_SERIES).map((s, i) => ({ ...s, color: palette(i) }));
  const format = pq.formatter(panel.unit);
  const instant = panel.queries.every((q) => q.promql); // PromQL values are at the step times
  chart.timeChart(el, { times, series, stepMs: env.stepS * 1000, kind: panel.stack ? "stacked" : "line", instant,
    start: times[0], end: times.at(-1), yFormat: format, label: panel.title, height: chartHeight(panel) });
  if (extra > 0) el.append(h("p", { class: "sub" }, `${extra} more series not drawn: narrow the query (sum by, a label filter).`));
}

function chartHeight(panel) {
  return Math.max(80, panel.grid.h * (ROW_PX + GAP_PX) - GAP_PX - 86);
}

/** stat and table panels: each query's latest values. */
async function latest(panel, el, env, signal) {
  const rows = (await Promise.all(panel.queries.map(async (q) => {
    if (q.promql) {
      const found = await pq.queryInstant(pq.substitute(q.promql, env.vars), env.r.endMs, signal);
      return found.map((r) => ({ name: pq.legend(q.legend, r.labels), value: r.value }));
    }
    const sm = await api.get("/api/v1/summary", { scope: q.spans.scope, ...apiFilters(env),
      start: Math.round(env.r.startMs), end: Math.round(env.r.endMs) }, signal);
    return [{ name: q.legend || q.spans.measure, value: sm[q.spans.measure] ?? null }];
  }))).flat().filter((r) => r.value !== null && !Number.isNaN(r.value));
  if (!rows.length) return mount(el, h("div", { class: "chart-empty" }, panel.empty || "No data in this range"));
  const format = pq.formatter(panel.unit);
  const mapped = (v) => panel.value_map[String(v)];
  if (panel.kind === "stat") {
    return mount(el, h("div", { class: "stats panel-stats" }, rows.slice(0, 8).map((r) =>
      h("div", { class: "stat" }, h("div", { class: "stat-label" }, r.name),
        h("div", { class: "stat-value" }, mapped(r.value) || format(r.value))))));
  }
  rows.sort((a, b) => a.name.localeCompare(b.name));
  mount(el, h("table", { class: "attr-table panel-table" }, h("tbody", {}, rows.map((r) => {
    const name = mapped(r.value);
    const tone = name ? (r.value > 0 ? "ok" : "bad") : null;
    return h("tr", { "data-value": String(r.value) }, h("td", {}, r.name),
      h("td", { class: "num" }, tone ? badge(name, tone) : format(r.value)));
  }))));
}

/** The variables of a board as filters above it: each a select bound to its URL param. */
export async function variableFilters(board, signal) {
  const out = [];
  for (const name of board.variables) {
    let values = [];
    try {
      if (name === "service" || name === "environment") {
        const v = await filterValues(signal);
        values = name === "service" ? v.items : v.environments;
        if (name === "service") values = [...new Set([...values, ...(await pq.labelValues("job", null, signal))])];
      } else {
        values = await pq.labelValues(name, null, signal);
      }
    } catch (err) {
      if (err.name === "AbortError") throw err;
    }
    out.push(range.selectFilter(name, name[0].toUpperCase() + name.slice(1), values.map(String).sort()));
  }
  return out;
}

export const UNITS = ["short", "none", "percentunit", "bytes", "Bps", "s", "ms", "reqps", "ops", "currencyUSD"];
export const MEASURES = ["count", "errors", "timeouts", "fallbacks", "rejected", "success_rate", "p50_ms",
  "p95_ms", "p99_ms", "avg_ms", "max_ms", "input_tokens", "output_tokens", "cost_usd"];
export const SPAN_BY = ["", "service", "environment", "operation", "provider", "model", "outcome"];
