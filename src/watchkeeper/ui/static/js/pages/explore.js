// Metrics explorer: search the project's metrics (name, type, help), pick one, filter its
// labels, choose a function (rate, increase, a histogram quantile, an aggregation by a
// label), see the chart, the series and the PromQL — editable — and go to the traces of the
// same service and time. Everything is in the URL: metric, f (label=value), fn, agg, by, q.

import { h, mount } from "../dom.js";
import * as url from "../url.js";
import * as range from "../range.js";
import * as chart from "../chart.js";
import * as pq from "../promql.js";
import { palette } from "../colors.js";
import { addToDashboard } from "../board_edit.js";
import { badge, card, empty, failed, loading, pageHeader } from "../ui.js";

const FUNCTIONS = {
  counter: [["rate", "rate per second"], ["increase", "increase over the window"], ["raw", "raw value"]],
  histogram: [["p50", "p50"], ["p90", "p90"], ["p95", "p95"], ["p99", "p99"], ["rate", "observations per second"], ["avg", "average (sum / count)"]],
  summary: [["raw", "quantiles as exposed"], ["rate", "observations per second"], ["avg", "average (sum / count)"]],
  gauge: [["raw", "raw value"], ["deriv", "change per second (deriv)"]],
};
const AGGREGATIONS = ["", "sum", "avg", "max", "min", "count"];
const HIDDEN_LABELS = new Set(["__name__", "le", "quantile"]);
const MAX_LIST = 300;
const MAX_SERIES = 12;

export async function render(root, ctx) {
  const q = url.params();
  const listBox = h("div", { class: "metric-list" }, loading());
  const main = h("div", { class: "explore-main" });
  mount(root, pageHeader("Metrics explorer", "Search a metric, filter its labels, choose a function", range.picker({ q })),
    h("div", { class: "explore" }, card("Metrics", listBox, { id: "metric-picker" }), main));
  let families;
  try {
    const [names, meta] = await Promise.all([pq.metricNames(ctx.signal), pq.metadata(ctx.signal)]);
    families = catalogue(names, meta);
  } catch (err) {
    return failed(listBox, err, "metrics");
  }
  drawList(listBox, families, q);
  const metric = q.get("metric");
  const family = families.find((f) => f.name === metric);
  if (!family && !q.get("q")) {
    return mount(main, empty(families.length ? "Pick a metric" : "No metrics yet",
      families.length ? "Search by name or help text on the left." : "Scrape a target (metrics.scrape), push OTLP metrics to /v1/metrics or remote-write from Prometheus."));
  }
  const refresh = await drawQuery(main, family, q, ctx.signal);
  ctx.live(refresh); // the chart and series only: what is being typed stays
  await refresh();
}

/** One entry per metric family (a histogram's _bucket/_sum/_count under its name). */
export function catalogue(names, meta) {
  const out = new Map();
  for (const [name, m] of Object.entries(meta)) {
    const series = m.type === "counter" && !names.has(name) && names.has(name + "_total") ? name + "_total" : name;
    if (names.has(series) || names.has(name + "_bucket") || names.has(name + "_count")) {
      // listed as PromQL names it: a counter by its series, a histogram by its family
      const key = m.type === "counter" ? series : name;
      out.set(key, { name: key, base: name, series, type: m.type, help: m.help || "" });
    }
  }
  const bases = new Set([...out.values()].map((f) => f.base));
  const covered = (n) => out.has(n) || ["_bucket", "_sum", "_count", "_total", "_created"]
    .some((sfx) => n.endsWith(sfx) && bases.has(n.slice(0, -sfx.length)));
  for (const n of names) {
    if (!covered(n)) out.set(n, { name: n, base: n, series: n, type: n.endsWith("_total") ? "counter" : "unknown", help: "" });
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function drawList(el, families, q) {
  const input = h("input", { type: "search", class: "metric-search", placeholder: "Search metrics and help…", "aria-label": "Search metrics", value: q.get("search") || "" });
  const list = h("ul", { class: "metric-items", role: "listbox", "aria-label": "Metrics" });
  const fill = () => {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    const hits = families.filter((f) => words.every((w) => f.name.toLowerCase().includes(w) || f.help.toLowerCase().includes(w)));
    mount(list, hits.slice(0, MAX_LIST).map((f) => h("li", { role: "option", "aria-selected": String(f.name === q.get("metric")) },
      h("a", { href: url.href("/explore", { ...range.carry(q), metric: f.name }), class: ["metric-item", f.name === q.get("metric") && "active"], "data-metric": f.name },
        h("span", { class: "metric-name mono" }, f.name), badge(f.type, f.type === "unknown" ? "muted" : "accent"),
        f.help ? h("span", { class: "metric-help" }, f.help) : null))),
    hits.length > MAX_LIST ? h("li", { class: "sub" }, `${hits.length - MAX_LIST} more: narrow the search`) : null,
    hits.length ? null : h("li", { class: "sub" }, "No metric matches"));
  };
  input.addEventListener("input", fill);
  fill();
  mount(el, input, list);
}

function kindOf(family) {
  if (!family) return "gauge";
  return FUNCTIONS[family.type] ? family.type : family.series.endsWith("_total") ? "counter" : "gauge";
}

/** The label filters of the URL (`f=label=value`, repeatable) as matchers. */
function filtersOf(q) {
  return q.getAll("f").map((s) => s.split("=")).filter((p) => p.length >= 2 && /^[A-Za-z_]\w*$/.test(p[0]))
    .map(([k, ...v]) => [k, v.join("=")]);
}

/** The PromQL of the explorer's choices. */
export function build(family, { fn, agg, by, filters, windowS }) {
  const m = filters.map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`).join(",");
  const sel = (name) => `${name}${m ? `{${m}}` : ""}`;
  const w = `[${windowS % 60 ? windowS + "s" : windowS / 60 + "m"}]`;
  const byList = by ? `${by}` : "";
  const kind = kindOf(family);
  const name = family.base;
  if (kind === "histogram" && /^p\d+$/.test(fn)) {
    const quant = Number(fn.slice(1)) / 100;
    return `histogram_quantile(${quant}, sum by (${byList ? byList + ", " : ""}le) (rate(${sel(name + "_bucket")}${w})))`;
  }
  if ((kind === "histogram" || kind === "summary") && fn === "avg") {
    const a = (x) => `sum${byList ? ` by (${byList})` : ""} (rate(${sel(x)}${w}))`;
    return `${a(name + "_sum")} / ${a(name + "_count")}`;
  }
  let inner;
  if ((kind === "histogram" || kind === "summary") && fn === "rate") inner = `rate(${sel(name + "_count")}${w})`;
  else if (fn === "rate" || fn === "increase" || fn === "deriv") inner = `${fn}(${sel(family.series)}${w})`;
  else inner = sel(family.series);
  if (!agg) return inner;
  return `${agg}${byList ? ` by (${byList})` : ""} (${inner})`;
}

async function drawQuery(main, family, q, signal) {
  const r = range.current(q);
  const stepS = Math.max(10, range.stepFor(r, 120));
  const windowS = Math.max(60, stepS * 4);
  const kind = kindOf(family);
  const fns = FUNCTIONS[kind];
  const fn = fns.some(([v]) => v === q.get("fn")) ? q.get("fn") : fns[0][0];
  const agg = AGGREGATIONS.includes(q.get("agg")) ? q.get("agg") || "" : "";
  const by = q.get("by") || "";
  const filters = filtersOf(q);
  const built = family ? build(family, { fn, agg, by, filters, windowS }) : "";
  const expr = q.get("q") || built;
  const labels = family ? await labelSets(family, r, signal) : new Map();
  const exprBox = h("textarea", { class: "promql-input mono", rows: 2, spellcheck: "false", "aria-label": "PromQL", name: "q" }, expr);
  const run = (ev) => { ev.preventDefault(); url.update({ q: exprBox.value.trim() === built ? null : exprBox.value.trim() }); };
  exprBox.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) run(ev); });
  const chartBox = h("div", { class: "chart-box", id: "explore-chart" }, loading());
  const seriesBox = h("div", { id: "explore-series" });
  const tracesBox = h("div", { class: "traces-links", id: "explore-traces" });
  mount(main,
    family ? card(family.name, controls(family, kind, fns, { fn, agg, by, filters }, labels), { subtitle: family.help || `${family.type} metric` }) : null,
    h("form", { class: "promql-form", onsubmit: run }, h("label", { class: "field" }, "PromQL", exprBox),
      h("div", { class: "row-end" }, q.get("q") ? h("span", { class: "sub" }, "Edited by hand: the choices above no longer apply. ") : null,
        q.get("q") ? h("button", { type: "button", class: "btn", onclick: () => url.update({ q: null }) }, "Back to the choices") : null,
        h("button", { type: "button", class: "btn", onclick: () => addToDashboard(exprBox.value.trim(), family ? family.name : "Query")
          .catch((err) => main.prepend(h("div", { class: "error", role: "alert" }, err.message))) }, "Add to dashboard"),
        h("button", { type: "submit", class: "btn primary" }, "Run"))),
    card("Chart", [chartBox, tracesBox], { subtitle: `one point every ${stepS} s` }),
    card("Series", seriesBox));
  return () => plot(expr, { chartBox, seriesBox, tracesBox }, { labels, filters, stepS }, signal);
}

async function plot(expr, { chartBox, seriesBox, tracesBox }, { labels, filters, stepS }, signal) {
  const r = range.current(url.params());
  try {
    const res = await pq.queryRange(expr, r.startMs, r.endMs, stepS, signal);
    const shown = res.series.filter((s) => s.values.some((v) => v !== null));
    if (!shown.length) {
      mount(chartBox, h("div", { class: "chart-empty" }, "No data in this range"));
    } else {
      const series = shown.slice(0, MAX_SERIES).map((s, i) => ({ name: pq.legend("", s.labels), color: palette(i), values: s.values }));
      chart.timeChart(chartBox, { times: res.times, series, stepMs: stepS * 1000, kind: "line", instant: true,
        start: res.times[0], end: res.times.at(-1), label: expr, height: 260 });
    }
    seriesTable(seriesBox, shown);
    traceLinks(tracesBox, servicesOf(shown, labels, filters), r);
  } catch (err) {
    failed(chartBox, err, "the query");
    mount(seriesBox);
  }
}

/** label -> sorted values, over the metric's series in the range. */
async function labelSets(family, r, signal) {
  const name = family.type === "histogram" || family.type === "summary" ? family.base + "_count" : family.series;
  const out = new Map();
  try {
    for (const s of await pq.series(name, r.startMs, r.endMs, signal)) {
      for (const [k, v] of Object.entries(s)) {
        if (HIDDEN_LABELS.has(k)) continue;
        if (!out.has(k)) out.set(k, new Set());
        out.get(k).add(v);
      }
    }
  } catch (err) {
    if (err.name === "AbortError") throw err;
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, [...v].sort()]));
}

function controls(family, kind, fns, cur, labels) {
  const set = (changes) => url.update({ ...changes, q: null });
  const filterSelects = [...labels].map(([label, values]) => {
    const now = cur.filters.find(([k]) => k === label)?.[1] || "";
    return h("label", { class: "filter" }, h("span", {}, label),
      h("select", { "aria-label": `Filter ${label}`, "data-label": label, onchange: (ev) => {
        const q = url.params();
        const rest = q.getAll("f").filter((f) => !f.startsWith(label + "="));
        q.delete("f");
        rest.forEach((f) => q.append("f", f));
        if (ev.target.value) q.append("f", `${label}=${ev.target.value}`);
        q.delete("q");
        url.navigate(location.pathname, q);
      } }, h("option", { value: "" }, "any"), values.map((v) => h("option", { value: v, selected: v === now }, v))));
  });
  const quantile = kind === "histogram" && /^p\d+$/.test(cur.fn);
  return h("div", { class: "explore-controls" },
    h("div", { class: "range-picker" }, filterSelects),
    h("div", { class: "range-picker" },
      h("label", { class: "filter" }, h("span", {}, "Function"),
        h("select", { "aria-label": "Function", onchange: (ev) => set({ fn: ev.target.value }) },
          fns.map(([v, label]) => h("option", { value: v, selected: v === cur.fn }, label)))),
      quantile ? null : h("label", { class: "filter" }, h("span", {}, "Aggregate"),
        h("select", { "aria-label": "Aggregate", onchange: (ev) => set({ agg: ev.target.value }) },
          AGGREGATIONS.map((a) => h("option", { value: a, selected: a === cur.agg }, a || "none")))),
      h("label", { class: "filter" }, h("span", {}, "by"),
        h("select", { "aria-label": "By", onchange: (ev) => set({ by: ev.target.value }) },
          h("option", { value: "" }, "—"), [...labels.keys()].map((l) => h("option", { value: l, selected: l === cur.by }, l))))));
}

function seriesTable(el, shown) {
  if (!shown.length) return mount(el, h("p", { class: "sub" }, "No series."));
  mount(el, h("table", { class: "attr-table series-table" }, h("tbody", {}, shown.slice(0, 200).map((s) => {
    const last = [...s.values].reverse().find((v) => v !== null);
    return h("tr", {}, h("td", {}, pq.legend("", s.labels)), h("td", { class: "num" }, Number.isInteger(last) ? String(last) : String(Number(last.toPrecision(6)))));
  }))), shown.length > 200 ? h("p", { class: "sub" }, `${shown.length - 200} more series`) : null);
}

const SERVICE_LABELS = ["service", "service_name", "job"];

/** The services the series come from: the filter on their job (or service) label, else the
 * values of that label among the metric's series, else among the answer's. */
function servicesOf(shown, labels, filters) {
  for (const l of SERVICE_LABELS) {
    const chosen = filters.find(([k]) => k === l);
    if (chosen) return [chosen[1]];
  }
  for (const l of SERVICE_LABELS) if (labels.has(l)) return labels.get(l).slice(0, 6);
  return [...new Set(shown.flatMap((s) => SERVICE_LABELS.map((l) => s.labels[l])).filter(Boolean))].slice(0, 6);
}

/** Links to the traces of those services over the same time range (an OTLP resource's
 * service.name is its series' job; a scrape job is named after the service it scrapes). */
function traceLinks(el, services, r) {
  if (!services.length) return mount(el);
  const when = { start: new Date(r.startMs).toISOString(), end: new Date(r.endMs).toISOString() };
  mount(el, h("span", { class: "sub" }, "Traces of the same service and time: "),
    services.map((s) => h("a", { class: "btn small", href: url.href("/traces", { service: s, ...when }), "data-service": s }, s)));
}
