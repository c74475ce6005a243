// SLOs: objective, error budget remaining, burn rates and the budget burn-down.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as fmt from "../format.js";
import * as chart from "../chart.js";
import { cssVar } from "../colors.js";
import { badge, card, empty, failed, kv, loading, pageHeader, stat } from "../ui.js";

export async function render(root, ctx) {
  const body = h("div", {}, loading());
  mount(root, pageHeader("SLOs", "Service level objectives, error budgets and burn rates"), body);
  const load = async () => {
    try {
      const items = (await api.get("/api/v1/slos", {}, ctx.signal)).items;
      if (!items.length) {
        mount(body, empty("No SLOs defined", "Add alerting.slos to the config, e.g. 99% of requests succeed, 99% under 8 s."));
        return;
      }
      mount(body, items.map((slo) => h("div", { class: "slo-block", "data-slo": slo.id }, loading())));
      await Promise.all(items.map((slo, i) => renderSlo(body.children[i], slo, ctx.signal)
        .catch((err) => failed(body.children[i], err, `SLO ${slo.id}`))));
    } catch (err) {
      failed(body, err, "SLOs");
    }
  };
  ctx.live(load);
  await load();
}

async function renderSlo(el, slo, signal) {
  const detail = await api.get("/api/v1/slos/" + encodeURIComponent(slo.id), {}, signal);
  const obj = detail.objective;
  // null: no requests in the period yet
  const remaining = detail.budget_remaining ?? NaN;
  const sli = detail.sli_value ?? NaN;
  const chartBox = h("div", { class: "chart-box" });
  const tone = remaining < 0 ? "bad" : remaining < 0.25 ? "warn" : "ok";
  mount(el, card(detail.name || detail.id, h("div", { class: "grid slo-grid" },
    h("div", { class: "span-5" },
      h("div", { class: "stats" },
        stat("Objective", fmt.pct(obj, 2)),
        stat("Current", Number.isFinite(sli) ? fmt.pct(sli, 3) : "–", { tone: Number.isFinite(sli) && obj !== null && sli < obj ? "bad" : "ok" }),
        stat("Budget left", Number.isFinite(remaining) ? budgetText(remaining) : "–", { tone, testid: "budget-remaining" })),
      h("h3", {}, "Definition"),
      kv([["SLI", sliText(detail)],
        ["Period", fmt.duration(detail.period)],
        ["Requests", `${fmt.int(detail.total)} (${fmt.int(detail.bad)} bad)`],
        ["Filters", filtersText(detail.filters)]]),
      burnTable(detail.burn_rates)),
    h("div", { class: "span-7" }, h("h3", {}, "Error budget burn-down"), chartBox)),
  { subtitle: detail.description || null, actions: remaining < 0 ? badge("budget exhausted", "bad") : null }));
  const pts = detail.burndown.filter((p) => p.budget_remaining !== null).map((p) => ({ t: p.t, v: p.budget_remaining }));
  if (!pts.length) return mount(chartBox, h("div", { class: "chart-empty" }, "No burn-down series yet"));
  const stepMs = pts.length > 1 ? pts[1].t - pts[0].t : 3600e3;
  // The axis spans the SLO's whole period, so the burn-down reads against the time left.
  const end = Math.max(Date.now(), pts.at(-1).t + stepMs);
  const start = Math.min(end - detail.period, pts[0].t);
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
  if (slo.sli === "latency") return `latency: requests faster than ${fmt.ms(slo.latency_threshold_ms)}`;
  return "availability: requests answered (success or fallback)";
}

function filtersText(f) {
  if (!f || typeof f !== "object") return null;
  const parts = Object.entries(f).filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : v}`);
  return parts.length ? h("code", {}, parts.join(" ")) : null;
}

function burnTable(rows) {
  if (!rows.length) return null;
  const rate = (v) => (v == null ? "–" : Number(v).toFixed(2) + "×");
  const win = (b) => `${fmt.duration(b.long_window_ms)} / ${fmt.duration(b.short_window_ms)}`;
  return [h("h3", {}, "Burn rates"), h("table", { class: "attr-table burn-table" },
    h("thead", {}, h("tr", {}, ["Windows", "Long", "Short", "Alert at", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((b) => {
      const factor = b.factor;
      const long = b.long_burn_rate;
      const short = b.short_burn_rate;
      const over = (v) => v != null && v > factor;
      return h("tr", {}, h("td", {}, win(b)),
        h("td", {}, h("b", { class: over(long) ? "n-bad" : null }, rate(long))),
        h("td", {}, h("b", { class: over(short) ? "n-bad" : null }, rate(short))),
        h("td", { title: `pages as ${b.severity}` }, `${factor}×`, h("span", { class: "sub" }, ` ${b.severity}`)),
        h("td", {}, b.firing ? badge("firing", "bad") : badge("ok", "ok")));
    })))];
}
