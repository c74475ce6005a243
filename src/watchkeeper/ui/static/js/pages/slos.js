// SLOs: objective, error budget remaining, burn rates and the budget burn-down.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as fmt from "../format.js";
import * as chart from "../chart.js";
import { cssVar } from "../colors.js";
import { badge, card, empty, failed, kv, loading, pageHeader, stat } from "../ui.js";
import { pick, toMs } from "../alerting.js";

export async function render(root, ctx) {
  const body = h("div", {}, loading());
  mount(root, pageHeader("SLOs", "Service level objectives, error budgets and burn rates"), body);
  const load = async () => {
    try {
      const items = api.itemsOf(await api.get("/api/v1/slos", {}, ctx.signal), "slos");
      if (!items.length) {
        mount(body, empty("No SLOs defined", "Add alerting.slos to the config, e.g. 99% of requests succeed, 99% under 8 s."));
        return;
      }
      mount(body, items.map((slo) => h("div", { class: "slo-block", "data-slo": pick(slo, "id", "name") }, loading())));
      await Promise.allSettled(items.map((slo, i) => renderSlo(body.children[i], slo, ctx.signal)));
    } catch (err) {
      failed(body, err, "SLOs");
    }
  };
  ctx.live(load);
  await load();
}

function objective(slo) {
  const v = Number(pick(slo, "objective", "target"));
  return Number.isFinite(v) ? (v > 1 ? v / 100 : v) : null;
}

async function renderSlo(el, slo, signal) {
  let detail = slo;
  const id = pick(slo, "id", "name");
  try {
    detail = { ...slo, ...(await api.get("/api/v1/slos/" + encodeURIComponent(id), {}, signal)) };
  } catch (err) {
    if (!(err instanceof api.NotAvailable)) throw err;
  }
  const obj = objective(detail);
  const remaining = Number(pick(detail, "budget_remaining", "error_budget_remaining", "remaining"));
  const sli = Number(pick(detail, "sli_value", "current", "attainment", "sli"));
  const burn = pick(detail, "burn_rates", "burn") || {};
  const chartBox = h("div", { class: "chart-box" });
  const tone = remaining < 0 ? "bad" : remaining < 0.25 ? "warn" : "ok";
  mount(el, card(pick(detail, "name", "id"), h("div", { class: "grid slo-grid" },
    h("div", { class: "span-5" },
      h("div", { class: "stats" },
        stat("Objective", fmt.pct(obj, 2)),
        stat("Current", Number.isFinite(sli) ? fmt.pct(sli, 3) : "–", { tone: Number.isFinite(sli) && obj !== null && sli < obj ? "bad" : "ok" }),
        stat("Budget left", Number.isFinite(remaining) ? budgetText(remaining) : "–", { tone, testid: "budget-remaining" })),
      h("h3", {}, "Definition"),
      kv([["SLI", sliText(detail)],
        ["Period", pick(detail, "period", "window_s") != null ? fmt.seconds(Number(pick(detail, "period", "window_s"))) : null],
        ["Requests", pick(detail, "total") != null ? `${fmt.int(pick(detail, "total"))} (${fmt.int(pick(detail, "bad"))} bad)` : null],
        ["Filters", filtersText(pick(detail, "filters", "filter"))]]),
      burnTable(burn)),
    h("div", { class: "span-7" }, h("h3", {}, "Error budget burn-down"), chartBox)),
  { subtitle: pick(detail, "description") || null, actions: remaining < 0 ? badge("budget exhausted", "bad") : null }));
  const series = pick(detail, "burn_down", "burndown", "series", "budget_series") || [];
  const pts = series.map((p) => Array.isArray(p) ? { t: toMs(p[0]), v: p[1] } : { t: toMs(pick(p, "t", "time", "ts")), v: pick(p, "budget_remaining", "remaining", "value", "v") })
    .filter((p) => p.t !== null && p.v !== null && p.v !== undefined && Number.isFinite(Number(p.v)))
    .map((p) => ({ t: p.t, v: Number(p.v) }));
  if (!pts.length) return mount(chartBox, h("div", { class: "chart-empty" }, "No burn-down series yet"));
  const stepMs = pts.length > 1 ? pts[1].t - pts[0].t : 3600e3;
  // The axis spans the SLO's whole period, so the burn-down reads against the time left.
  const periodMs = Number(pick(detail, "period", "window_s")) * 1000 || null;
  const end = Math.max(Date.now(), pts.at(-1).t + stepMs);
  const start = periodMs ? Math.min(end - periodMs, pts[0].t) : pts[0].t;
  chart.timeChart(chartBox, { times: pts.map((p) => p.t), stepMs, start, end, kind: "area",
    label: "Error budget remaining", yFormat: (v) => fmt.pct(v, 0), tipFormat: (v) => fmt.pct(v, 2),
    markers: [{ value: 0, label: "budget exhausted" }],
    series: [{ name: "budget remaining", color: cssVar(remaining < 0 ? "--c-bad" : "--c-1"), values: pts.map((p) => Math.max(p.v, 0)) }] });
}

/** Budget left as a percentage; whole numbers once it is far overspent (-2523%). */
export function budgetText(v) {
  return fmt.pct(v, Math.abs(v) >= 10 ? 0 : 1);
}

function sliText(slo) {
  const kind = pick(slo, "sli", "sli_kind", "kind");
  const thr = pick(slo, "latency_threshold_ms", "threshold_ms");
  if (kind === "latency" && thr) return `latency: requests faster than ${fmt.ms(thr)}`;
  if (kind === "availability") return "availability: requests answered (success or fallback)";
  return typeof kind === "string" ? kind : null;
}

function filtersText(f) {
  if (!f || typeof f !== "object") return null;
  const parts = Object.entries(f).filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : v}`);
  return parts.length ? h("code", {}, parts.join(" ")) : null;
}

function burnTable(burn) {
  const rows = Array.isArray(burn) ? burn : Object.entries(burn).map(([w, v]) => ({ window: w, ...(typeof v === "object" ? v : { rate: v }) }));
  if (!rows.length) return null;
  const rate = (v) => (v == null ? "–" : Number(v).toFixed(2) + "×");
  const win = (b) => {
    const long = pick(b, "long_window_s");
    return long != null ? `${fmt.seconds(long)} / ${fmt.seconds(pick(b, "short_window_s"))}` : String(pick(b, "window", "name") ?? "–");
  };
  return [h("h3", {}, "Burn rates"), h("table", { class: "attr-table burn-table" },
    h("thead", {}, h("tr", {}, ["Windows", "Long", "Short", "Alert at", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((b) => {
      const factor = pick(b, "factor", "threshold");
      const long = pick(b, "long_burn_rate", "rate", "burn_rate", "value");
      const short = pick(b, "short_burn_rate");
      const over = (v) => v != null && factor != null && v > factor;
      return h("tr", {}, h("td", {}, win(b)),
        h("td", {}, h("b", { class: over(long) ? "n-bad" : null }, rate(long))),
        h("td", {}, h("b", { class: over(short) ? "n-bad" : null }, rate(short))),
        h("td", { title: pick(b, "severity") ? `pages as ${pick(b, "severity")}` : null }, factor != null ? `${factor}×` : "–",
          pick(b, "severity") ? h("span", { class: "sub" }, ` ${pick(b, "severity")}`) : null),
        h("td", {}, pick(b, "firing") ? badge("firing", "bad") : badge("ok", "ok")));
    })))];
}
