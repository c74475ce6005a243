// Infrastructure: the shipped "infrastructure" dashboard (targets, hosts, PostgreSQL, Redis,
// processes), each section shown when its exporter's metrics exist, else what to install.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as range from "../range.js";
import * as pq from "../promql.js";
import { drawBoard, environment, variableFilters } from "../board.js";
import { failed, loading, pageHeader } from "../ui.js";

export async function render(root, ctx) {
  const q = url.params();
  const filters = h("div", { class: "filters-inline" });
  const body = h("div", {}, loading());
  mount(root, pageHeader("Infrastructure", "Hosts, databases, caches and every scraped target",
    filters, h("a", { class: "btn", href: url.href("/dashboards/infrastructure", range.carry(q)) }, "Open as dashboard"),
    range.picker({ q })), body);
  try {
    const [{ dashboard }, names] = await Promise.all([
      api.get("/api/v1/dashboards/infrastructure", {}, ctx.signal),
      pq.metricNames(ctx.signal),
    ]);
    variableFilters(dashboard, ctx.signal).then((els) => mount(filters, h("div", { class: "range-picker" }, els))).catch(() => {});
    const board = drawBoard(body, dashboard, () => environment(url.params()), ctx.signal, { names });
    ctx.live(board.reload);
    await board.done;
  } catch (err) {
    failed(body, err, "infrastructure");
  }
}
