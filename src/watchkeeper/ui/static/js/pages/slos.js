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
    h("div", { class: "span-4" },
      h("div", { class: "stats" },
        stat("Objective", fmt.pct(obj, 2)),
        stat("Current", Number.isFinite(sli) ? fmt.pct(sli, 3) : "–", { tone: Number.isFinite(sli) && obj !== null && sli < obj ? "bad" : "ok" }),
        stat("Budget left", Number.isFinite(remaining) ? fmt.pct(remaining, 1) : "–", { tone, testid: "budget-remaining" })),
      h("h3", {}, "Definition"),
      kv([["SLI", pick(detail, "sli_kind", "kind", "type", "indicator")], ["Description", pick(detail, "description")],
        ["Threshold", pick(detail, "threshold_ms") ? fmt.ms(pick(detail, "threshold_ms")) : null],
        ["Window", pick(detail, "window_s", "window_days") ? (pick(detail, "window_s") ? fmt.seconds(pick(detail, "window_s")) : pick(detail, "window_days") + "d") : pick(detail, "window")],
        ["Filter", pick(detail, "filter") ? JSON.stringify(pick(detail, "filter")) : null]]),
      burnTable(burn)),
    h("div", { class: "span-8" }, h("h3", {}, "Error budget burn-down"), chartBox)),
  { subtitle: pick(detail, "description") || null, actions: remaining < 0 ? badge("budget exhausted", "bad") : null }));
  const series = pick(detail, "burn_down", "burndown", "series", "budget_series") || [];
  const pts = series.map((p) => Array.isArray(p) ? { t: toMs(p[0]), v: p[1] } : { t: toMs(pick(p, "t", "time", "ts")), v: Number(pick(p, "remaining", "budget_remaining", "value", "v")) })
    .filter((p) => p.t !== null && Number.isFinite(p.v));
  if (!pts.length) return mount(chartBox, h("div", { class: "chart-empty" }, "No burn-down series yet"));
  const stepMs = pts.length > 1 ? pts[1].t - pts[0].t : 3600e3;
  chart.timeChart(chartBox, { times: pts.map((p) => p.t), stepMs, start: pts[0].t, end: pts.at(-1).t + stepMs, kind: "area",
    label: "Error budget remaining", yFormat: (v) => fmt.pct(v, 0), tipFormat: (v) => fmt.pct(v, 2),
    markers: [{ value: 0, label: "budget exhausted" }],
    series: [{ name: "budget remaining", color: cssVar(remaining < 0 ? "--c-bad" : "--c-1"), values: pts.map((p) => Math.max(p.v, 0)) }] });
}

function burnTable(burn) {
  const rows = Array.isArray(burn) ? burn.map((b) => [pick(b, "window", "name", "long") + (pick(b, "short") ? "/" + pick(b, "short") : ""), pick(b, "rate", "burn_rate", "value"), pick(b, "threshold", "factor")])
    : Object.entries(burn).map(([w, v]) => [w, typeof v === "object" ? pick(v, "rate", "value") : v, typeof v === "object" ? pick(v, "threshold") : null]);
  if (!rows.length) return null;
  return [h("h3", {}, "Burn rates"), h("table", { class: "attr-table" }, h("tbody", {}, rows.map(([w, r, t]) =>
    h("tr", {}, h("td", {}, String(w)), h("td", {}, r == null ? "–" : h("b", { class: t != null && r >= t ? "n-bad" : null }, Number(r).toFixed(2) + "×"),
      t != null ? h("span", { class: "sub" }, ` (alert at ${t}×)`) : null)))))];
}
