// Overview: the last N requests in one sentence, system health, AI quality, cost.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as range from "../range.js";
import * as fmt from "../format.js";
import * as chart from "../chart.js";
import { cssVar, outcomeColor, palette } from "../colors.js";
import { filterValues } from "../lookups.js";
import { card, stat, failed, loading, pageHeader, empty } from "../ui.js";

const LAST_N = [100, 1000, 10000];
const BOUNDS = [50, 100, 250, 500, 750, 1000, 1500, 2000, 3000, 5000, 8000, 12000, 20000, 30000];
const DEFAULT_DEADLINE_MS = 8000;

export async function render(root, ctx) {
  const q = url.params();
  // No range in the URL: the smallest preset that holds all the data (a fresh demo fills
  // the charts instead of their right tenth).
  if (!q.get("range") && !q.get("start")) q.set("range", await defaultRange(q, ctx.signal));
  const services = h("div", { class: "filters-inline" });
  mount(root,
    pageHeader("Overview", "Requests, quality and cost of your AI services", services, range.picker({ q })),
    h("div", { id: "headline" }, loading()),
    sectionTitle("System health", "root spans of each trace (requests)"),
    h("div", { class: "grid" },
      box("vol", "Request volume", "requests per bucket, by outcome", "span-6"),
      box("rates", "Error and timeout rate", "share of requests", "span-6"),
      box("lat", "Latency", "p50 / p95 / p99 of requests", "span-6"),
      box("heat", "Latency heatmap", "requests per latency band; dashed line = deadline", "span-6")),
    sectionTitle("AI quality", "evaluation scores and user feedback"),
    h("div", { class: "grid" }, box("quality", "Scores", null, "span-12")),
    sectionTitle("Cost and efficiency", "model calls (LLM spans)"),
    h("div", { class: "grid" },
      box("usage", "Usage", null, "span-12"),
      box("bymodel", "Spend by model", null, "span-4"),
      box("byuser", "Spend by user", null, "span-4"),
      box("byfeature", "Spend by feature", null, "span-4")));
  const load = () => loadAll(root, ctx, q, services);
  ctx.live(load);
  await load();
}

// The first request of the last 30 days, per filters and key: it only changes when retention
// drops old data, so a tab asks once and computes the preset from the time now.
const firstSeen = new Map();

async function defaultRange(q, sig) {
  const filters = range.filters(q);
  const key = JSON.stringify([api.getKey(), filters]);
  try {
    if (!firstSeen.has(key)) {
      const sm = await api.get("/api/v1/summary", { ...filters, range: "30d", scope: "requests", percentiles: false }, sig);
      firstSeen.set(key, sm.count ? sm.first_ms : null);
    }
  } catch {
    return "1h"; // the page's own requests show what went wrong
  }
  const first = firstSeen.get(key);
  return first === null ? "1h" : range.presetFor(Date.now() - first);
}

function sectionTitle(title, sub) {
  return h("div", { class: "section-title" }, h("h2", {}, title), h("span", { class: "sub" }, sub));
}

function box(id, title, subtitle, span) {
  const c = card(title, h("div", { class: "chart-box", id: "box-" + id }, loading()), { subtitle });
  c.classList.add(span);
  return c;
}

async function loadAll(root, ctx, q, servicesEl) {
  const r = range.current(q);
  const stepS = range.stepFor(r);
  const base = { ...range.filters(q), ...range.apiRange(r, stepS) };
  const sig = ctx.signal;
  const slos = api.get("/api/v1/slos", {}, sig).then((b) => b.items).catch(() => []);
  if (!servicesEl.firstChild) renderFilters(servicesEl, sig); // not awaited: never holds the page
  // Heaviest queries first: the browser sends six requests at once, the rest wait their turn.
  const tasks = [
    renderHeadline(root.querySelector("#headline"), q, slos, sig),
    renderHealth(root, { ...base, scope: "requests" }, r, stepS, slos, sig),
    renderCost(root, q, { ...base, scope: "llm" }, sig),
    renderQuality(root.querySelector("#box-quality"), base, sig),
  ];
  await Promise.allSettled(tasks);
}

async function renderFilters(el, sig) {
  try {
    const body = await filterValues(sig);
    const sel = (name, label, values) => range.selectFilter(name, label, values || [], { allLabel: "All " + label.toLowerCase() + "s" });
    mount(el, h("div", { class: "range-picker" }, sel("service", "Service", body.items),
      (body.environments || []).length ? sel("environment", "Environment", body.environments) : null));
  } catch (err) {
    mount(el);
  }
}

function lastN(q) {
  const n = Number(q.get("last_n"));
  return LAST_N.includes(n) ? n : 1000;
}

async function renderHeadline(el, q, slosP, sig) {
  const n = lastN(q);
  try {
    const [sm, slos] = await Promise.all([
      api.get("/api/v1/summary", { ...range.filters(q), scope: "requests", last_n: n }, sig), slosP]);
    if (!sm.count) {
      mount(el, h("div", { class: "headline" }, h("div", { class: "headline-main", "data-testid": "headline" },
        h("div", { class: "headline-text" }, "No requests yet"),
        h("p", { class: "sub" }, "Point any OpenTelemetry SDK at this server: ",
          h("code", {}, `OTEL_EXPORTER_OTLP_ENDPOINT=${location.origin}`),
          " (traces go to ", h("code", {}, "/v1/traces"), ").")), sloGauge(sm, slos)));
      return;
    }
    const sel = h("select", { "aria-label": "Number of recent requests", onchange: (ev) => url.update({ last_n: ev.target.value }, { replace: true }) },
      LAST_N.map((v) => h("option", { value: v, selected: v === n }, fmt.int(v))));
    // Each count links to the requests behind it (same filters, the range they fall in).
    const num = (v, cls, id, outcome) => {
      const b = h("b", { class: v ? cls : null, "data-testid": id }, fmt.int(v));
      if (!outcome || !v || !sm.first_ms) return b;
      return h("a", { class: "plain", href: url.href("/traces", { ...range.filters(q), outcome,
        start: new Date(sm.first_ms).toISOString(), end: new Date(sm.last_ms + 1).toISOString() }),
        title: `Show the ${outcome} requests` }, b);
    };
    const text = h("div", { class: "headline-text", "data-testid": "headline" },
      sm.count < n ? ["Last ", num(sm.count, null, "hl-count"), " ", fmt.plural("request", sm.count)] : ["Last ", sel, " requests"],
      " → ", num(sm.timeouts, "n-timeout", "hl-timeouts", "timeout"), " ", fmt.plural("timeout", sm.timeouts), ", ",
      num(sm.errors, "n-bad", "hl-errors", "error"), " ", fmt.plural("error", sm.errors), ", ",
      num(sm.fallbacks, "n-warn", "hl-fallbacks", "fallback"), " ", fmt.plural("fallback", sm.fallbacks),
      sm.rejected ? [", ", num(sm.rejected, "n-bad", "hl-rejected", "rejected"), " rejected"] : null);
    mount(el, h("div", { class: "headline" }, text, sloGauge(sm, slos)));
  } catch (err) {
    failed(el, err, "the summary");
  }
}

/** The availability SLO if one exists, else nothing: success rate is compared with it. */
function availabilitySlo(slos) {
  return slos.find((s) => s.sli === "availability") || null;
}

function sloGauge(sm, slos) {
  const rate = sm.success_rate;
  const slo = availabilitySlo(slos);
  const target = slo ? slo.objective : null;
  const ok = target === null || rate === null || rate >= target;
  const bar = h("div", { class: "slo-bar", "aria-hidden": "true" },
    h("span", { class: ["fill", !ok && "bad"], style: { width: ((rate ?? 0) * 100).toFixed(2) + "%" } }),
    target !== null ? h("span", { class: "target", style: { left: (target * 100).toFixed(2) + "%" } }) : null);
  return h("div", { class: "slo-gauge" },
    h("div", {}, h("div", { class: "stat-label" }, "Success rate"),
      h("div", { class: ["headline-text", ok ? "n-ok" : "n-bad"], "data-testid": "hl-success-rate" }, h("b", {}, fmt.pct(rate, 2)))),
    bar,
    h("div", { class: "sub" }, target !== null ? [`SLO ${fmt.pct(target, 2)} `, h("a", { href: "/slos" }, slo.name || "")] : h("a", { href: "/slos" }, "no availability SLO")));
}

function tracesLink(q, extra) {
  return (params) => url.navigate("/traces", { ...range.carry(q), ...extra, ...params });
}

function pickBucket(stepS, extra) {
  return (t) => url.navigate("/traces", {
    ...range.filters(), ...extra, start: new Date(t).toISOString(), end: new Date(t + stepS * 1000).toISOString(),
  });
}

async function renderHealth(root, params, r, stepS, slosP, sig) {
  const volEl = root.querySelector("#box-vol");
  const ratesEl = root.querySelector("#box-rates");
  const latEl = root.querySelector("#box-lat");
  const heatEl = root.querySelector("#box-heat");
  // Both queries start at once, not after the SLOs (which only give the deadline marker).
  const tsBody = api.get("/api/v1/timeseries", { ...params, step_ms: stepS * 1000 }, sig);
  const hmBody = api.get("/api/v1/heatmap", { ...params, step_ms: stepS * 1000, bounds: BOUNDS.join(",") }, sig);
  const deadlineP = slosP.then((slos) => {
    const lat = slos.find((s) => s.sli === "latency");
    return lat ? lat.latency_threshold_ms : DEFAULT_DEADLINE_MS;
  });
  const span = { start: params.start, end: r.endMs, stepMs: stepS * 1000 };
  const ts = Promise.all([tsBody, deadlineP]).then(([body, deadline]) => {
    const stepMs = body.step_ms;
    const { times, pts } = densify(body.points.filter((p) => p.key == null), params.start, r.endMs, stepMs);
    if (!pts.some((p) => p && p.count)) {
      [volEl, ratesEl, latEl].forEach((el) => mount(el, h("div", { class: "chart-empty" }, "No requests in this range")));
      return;
    }
    const pick = pickBucket(stepS, {});
    chart.timeChart(volEl, { ...span, stepMs, times, kind: "stacked", label: "Request volume", yFormat: fmt.compact, onPick: pick,
      series: [["success", "success"], ["fallbacks", "fallback"], ["errors", "error"], ["timeouts", "timeout"], ["rejected", "rejected"]]
        .filter(([k], i) => i < 4 || pts.some((p) => p && p[k]))
        .map(([k, o]) => ({ name: o, color: outcomeColor(o), values: pts.map((p) => (p ? p[k] : 0)) })) });
    const share = (k) => pts.map((p) => (p && p.count ? p[k] / p.count : null));
    chart.timeChart(ratesEl, { ...span, stepMs, times, kind: "line", label: "Error and timeout rate",
      yFormat: (v) => fmt.pct(v, v < 0.1 ? 1 : 0), tipFormat: (v) => fmt.pct(v, 2), onPick: (t) => pickBucket(stepS, { outcome: "error,timeout" })(t),
      series: [{ name: "errors", color: outcomeColor("error"), values: share("errors") },
        { name: "timeouts", color: outcomeColor("timeout"), values: share("timeouts") }] });
    chart.timeChart(latEl, { ...span, stepMs, times, kind: "line", label: "Latency percentiles", yFormat: fmt.msAxis, tipFormat: fmt.ms, onPick: pick,
      markers: [{ value: deadline, label: "deadline " + fmt.ms(deadline) }],
      series: [{ name: "p50", color: palette(1), values: pts.map((p) => p?.p50_ms ?? null) },
        { name: "p95", color: palette(0), values: pts.map((p) => p?.p95_ms ?? null) },
        { name: "p99", color: palette(2), values: pts.map((p) => p?.p99_ms ?? null) }] });
  }).catch((err) => [volEl, ratesEl, latEl].forEach((el) => failed(el, err, "the time series")));
  const hm = Promise.all([hmBody, deadlineP]).then(([body, deadline]) => {
    chart.heatmap(heatEl, body, { ...span, stepMs: body.step_ms, deadlineMs: deadline, label: "Latency heatmap",
      onPick: (t, lo, hi) => url.navigate("/traces", { ...range.filters(), start: new Date(t).toISOString(),
        end: new Date(t + stepS * 1000).toISOString(), min_duration_ms: lo, max_duration_ms: hi }) });
  }).catch((err) => failed(heatEl, err, "the heatmap"));
  await Promise.allSettled([ts, hm]);
}

/** Every bucket of the range, in order; buckets without requests hold null (the API omits them). */
export function densify(points, startMs, endMs, stepMs) {
  const byT = new Map(points.map((p) => [p.t, p]));
  const first = Math.floor(startMs / stepMs) * stepMs;
  const times = [];
  for (let t = first; t < endMs; t += stepMs) times.push(t);
  for (const p of points) if (!byT.has(p.t) || p.t < first || p.t >= endMs) times.push(p.t);
  const uniq = [...new Set(times)].sort((a, b) => a - b);
  return { times: uniq, pts: uniq.map((t) => byT.get(t) || null) };
}

async function renderQuality(el, base, sig) {
  try {
    const items = (await api.get("/api/v1/scores/summary", base, sig)).items;
    if (!items.length) {
      mount(el, empty("No scores in this range", "Evaluations and user feedback (POST /api/v1/scores) show up here."));
      return;
    }
    const fb = items.find((s) => s.name === "user_feedback");
    const total = items.reduce((a, s) => a + s.count, 0);
    const lowN = items.reduce((a, s) => a + (s.low_share ?? 0) * s.count, 0);
    mount(el, h("div", { class: "stats", "data-testid": "quality-stats" },
      stat("Scores", fmt.int(total)),
      stat("Low-score share", fmt.pct(total ? lowN / total : null), { tone: total && lowN / total > 0.2 ? "bad" : null, note: "scores below 0.5" }),
      stat("User feedback", fb ? fmt.pct(fb.pass_rate, 0) : "–", { note: fb ? `positive of ${fmt.count(fb.count, "answer")}` : "none yet" })),
    h("h3", {}, "Pass rate by evaluation"),
    h("div", { id: "score-bars" }));
    chart.barList(el.querySelector("#score-bars"), items.map((s) => ({
      label: s.name, value: s.pass_rate ?? 0,
      note: `avg ${s.avg == null ? "–" : s.avg.toFixed(2)} · ${fmt.count(s.count, "score")} · ${fmt.pct(s.low_share, 0)} low`,
      color: (s.pass_rate ?? 0) < 0.8 ? cssVar("--c-warn") : cssVar("--c-ok"),
    })), { format: (v) => fmt.pct(v, 0) });
  } catch (err) {
    failed(el, err, "scores");
  }
}

async function renderCost(root, q, params, sig) {
  // One request for the three rankings: a browser runs at most six requests to a server at once.
  const dims = [["model", "#box-bymodel"], ["user", "#box-byuser"], ["feature", "#box-byfeature"]];
  const all = api.get("/api/v1/breakdowns", { ...params, by: dims.map(([by]) => by).join(","), order: "cost", limit: 8, percentiles: false }, sig);
  const usageEl = root.querySelector("#box-usage");
  const usage = api.get("/api/v1/summary", { ...params, percentiles: false }, sig).then((sm) => {
    const inTok = sm.input_tokens || 0;
    mount(usageEl, h("div", { class: "stats", "data-testid": "cost-stats" },
      stat("Spend", fmt.usd(sm.cost_usd), { note: fmt.count(sm.count, "model call") }),
      stat("Input tokens", fmt.compact(inTok)),
      stat("Output tokens", fmt.compact(sm.output_tokens), { note: sm.reasoning_tokens ? `${fmt.compact(sm.reasoning_tokens)} reasoning` : null }),
      stat("Cached input", fmt.pct(inTok ? (sm.cache_read_tokens || 0) / inTok : null), { note: `${fmt.compact(sm.cache_read_tokens)} ${fmt.plural("token", sm.cache_read_tokens)} read from cache` }),
      stat("Missing price", fmt.int(sm.missing_price), { tone: sm.missing_price ? "warn" : null, note: "calls without a known price" }),
      stat("Cost / call", fmt.usd(sm.count ? sm.cost_usd / sm.count : null))));
  }).catch((err) => failed(usageEl, err, "usage"));
  const groups = dims.map(([by, sel], i) => {
    const el = root.querySelector(sel);
    return all.then((body) => {
      let gs = body.items[i].groups.filter((g) => g.key !== null && g.key !== "" && g.count > 0);
      if (by === "model") gs = foldModelAliases(gs);
      chart.barList(el, gs.map((g, i) => ({ label: g.key, value: g.cost_usd, color: palette(i), keys: g.keys || [g.key],
        title: g.keys && g.keys.length > 1 ? `${g.key} (also asked for as ${g.keys.slice(1).join(", ")})` : g.key,
        note: `${fmt.count(g.count, "call")} · ${fmt.compact(g.input_tokens + g.output_tokens)} tok` })), {
        format: fmt.usd, empty: `No ${by} tagged on model calls`,
        onPick: (it) => tracesLink(q, { scope: "llm", [by]: it.keys.join(",") })() });
    }).catch((err) => failed(el, err, "spend by " + by));
  });
  await Promise.allSettled([usage, ...groups]);
}

// A dated snapshot of a model alias: gpt-4.1 → gpt-4.1-2025-04-14, claude-sonnet-4 → claude-sonnet-4-20250514.
const SNAPSHOT_SUFFIX = /^-(\d{4}-\d{2}-\d{2}|\d{8})$/;
const SUMMED = ["count", "errors", "timeouts", "cost_usd", "input_tokens", "output_tokens"];

/**
 * Model groups (the API groups a call by its response model, else its request model) with
 * each alias's calls folded into the one dated snapshot it resolved to in the same list:
 * a call that failed before the provider answered names only the alias it asked for.
 * `keys` lists the models a group stands for; the result is ordered by spend.
 */
export function foldModelAliases(groups) {
  const out = groups.map((g) => ({ ...g, keys: [g.key] }));
  const snapshotOf = (g) => {
    const dated = out.filter((o) => o !== g && o.key.startsWith(g.key) && SNAPSHOT_SUFFIX.test(o.key.slice(g.key.length)));
    return dated.length === 1 ? dated[0] : null;
  };
  const folded = new Set();
  for (const g of out) {
    const snap = snapshotOf(g);
    if (!snap) continue;
    for (const k of SUMMED) snap[k] = (snap[k] || 0) + (g[k] || 0);
    snap.keys.push(g.key);
    folded.add(g);
  }
  return out.filter((g) => !folded.has(g)).sort((a, b) => (b.cost_usd || 0) - (a.cost_usd || 0));
}
