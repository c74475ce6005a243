// The dashboard editor's dialogs: a panel (title, kind, unit, queries: PromQL checked by our
// parser before it is applied, or a span measure), a dashboard's settings, and a title.

import { h } from "./dom.js";
import * as api from "./api.js";
import * as url from "./url.js";
import * as range from "./range.js";
import * as pq from "./promql.js";
import { MEASURES, SPAN_BY, UNITS } from "./board.js";

const KINDS = ["timeseries", "stat", "table"];
const VARIABLES = ["service", "environment", "job", "instance"];

function dialog(title, fields, onApply) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const d = h("dialog", { class: "edit-dialog", "aria-label": title });
  const form = h("form", { method: "dialog", onsubmit: async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    try {
      await onApply();
      d.close();
    } catch (err) {
      error.textContent = String(err.message || err);
      error.hidden = false;
    }
  } }, h("h2", {}, title), fields, error,
  h("div", { class: "row-end" },
    h("button", { type: "button", class: "btn", onclick: () => d.close() }, "Cancel"),
    h("button", { type: "submit", class: "btn primary" }, "Apply")));
  d.append(form);
  d.addEventListener("close", () => d.remove());
  document.body.append(d);
  d.showModal();
  return d;
}

const field = (label, input) => h("label", { class: "field" }, label, input);
const select = (name, values, current) => h("select", { name, "aria-label": name },
  values.map((v) => h("option", { value: v, selected: v === (current ?? "") }, v || "—")));

/** A new panel for `section`, under its lowest one. */
export function newPanel(section) {
  const y = Math.max(0, ...section.panels.map((p) => p.grid.y + p.grid.h));
  return { title: "New panel", kind: "timeseries", unit: "short", description: "", stack: false, empty: "",
    value_map: {}, grid: { x: 0, y, w: 12, h: 8 }, queries: [{ promql: "", legend: "" }] };
}

function queryRow(q, rows) {
  const isSpans = Boolean(q.spans);
  const kind = select("query kind", ["promql", "spans"], isSpans ? "spans" : "promql");
  const expr = h("textarea", { name: "promql", rows: 2, class: "mono", spellcheck: "false", "aria-label": "PromQL" }, q.promql || "");
  const sp = q.spans || { scope: "requests", measure: "count", by: "" };
  const scope = select("scope", ["requests", "spans", "llm"], sp.scope);
  const measure = select("measure", MEASURES, sp.measure);
  const by = select("by", SPAN_BY, sp.by || "");
  const legendIn = h("input", { name: "legend", value: q.legend || "", placeholder: "{{job}} {{instance}}", "aria-label": "Legend" });
  const promqlPart = h("div", { class: "q-promql" }, expr);
  const spansPart = h("div", { class: "q-spans form-grid" }, field("Scope", scope), field("Measure", measure), field("By", by));
  const show = () => { promqlPart.hidden = kind.value !== "promql"; spansPart.hidden = kind.value !== "spans"; };
  kind.addEventListener("change", show);
  show();
  const row = h("div", { class: "query-row" }, h("div", { class: "form-grid" }, field("Query", kind), field("Legend", legendIn)),
    promqlPart, spansPart,
    h("button", { type: "button", class: "btn small danger", onclick: () => { rows.splice(rows.indexOf(read), 1); row.remove(); } }, "Remove query"));
  const read = () => (kind.value === "promql"
    ? { promql: expr.value.trim(), legend: legendIn.value }
    : { spans: { scope: scope.value, measure: measure.value, ...(by.value ? { by: by.value } : {}) }, legend: legendIn.value });
  rows.push(read);
  return row;
}

/** Edit `panel` in a dialog; on Apply its fields change and `done(panel)` is called. */
export function editPanel(panel, done) {
  const title = h("input", { name: "title", value: panel.title, required: true, "aria-label": "Title" });
  const kind = select("kind", KINDS, panel.kind);
  const unit = select("unit", UNITS, panel.unit);
  const description = h("input", { name: "description", value: panel.description || "", "aria-label": "Description" });
  const stack = h("input", { type: "checkbox", name: "stack", checked: panel.stack || null });
  const rows = [];
  const list = h("div", { class: "query-list" }, panel.queries.map((q) => queryRow(q, rows)));
  const add = h("button", { type: "button", class: "btn small", onclick: () => list.append(queryRow({ promql: "" }, rows)) }, "+ Add query");
  dialog("Panel", [h("div", { class: "form-grid" }, field("Title", title), field("Kind", kind), field("Unit", unit)),
    field("Description", description), h("label", { class: "check" }, stack, " Stack the series"), list, add], async () => {
    const queries = rows.map((read) => read());
    if (!queries.length) throw new Error("A panel needs a query.");
    for (const q of queries) {
      if (q.promql === "") throw new Error("Write a PromQL expression (e.g. rate(http_requests_total[5m])).");
      // Our parser checks it now, with its position, instead of when the dashboard is saved.
      if (q.promql) await pq.queryInstant(pq.substitute(q.promql, {}), Date.now());
    }
    Object.assign(panel, { title: title.value.trim(), kind: kind.value, unit: unit.value,
      description: description.value.trim(), stack: stack.checked, queries });
    done(panel);
  });
}

/** Edit a dashboard's title, description and variables. */
export function editSettings(board, done) {
  const title = h("input", { name: "title", value: board.title, required: true, "aria-label": "Title" });
  const description = h("input", { name: "description", value: board.description || "", "aria-label": "Description" });
  const boxes = VARIABLES.map((v) => h("input", { type: "checkbox", name: v, checked: board.variables.includes(v) || null }));
  dialog("Dashboard settings", [field("Title", title), field("Description", description),
    h("fieldset", { class: "vars" }, h("legend", {}, "Variables (filters above the panels; $name in PromQL)"),
      VARIABLES.map((v, i) => h("label", { class: "check" }, boxes[i], " " + v)))], async () => {
    board.title = title.value.trim();
    board.description = description.value.trim();
    board.variables = VARIABLES.filter((_, i) => boxes[i].checked);
    done(board);
  });
}

/** Ask for a title; resolves to it, or null when cancelled. */
export function askTitle(label, value = "") {
  return new Promise((resolve) => {
    const input = h("input", { name: "title", value, required: true, "aria-label": "Title" });
    let answered = null;
    const d = dialog(label, [field("Title", input)], async () => { answered = input.value.trim(); });
    d.addEventListener("close", () => resolve(answered));
    input.focus();
  });
}


/** Add a panel of `expr` to one of the caller's dashboards (chosen in a dialog), then open
 * that dashboard. */
export async function addToDashboard(expr, title) {
  const mine = (await api.get("/api/v1/dashboards")).items.filter((d) => d.editable);
  if (!mine.length) throw new Error("No dashboard of yours yet: create one on the Dashboards page.");
  const board = select("dashboard", mine.map((d) => d.id), mine[0].id);
  [...board.options].forEach((o, i) => { o.textContent = mine[i].title; });
  const name = h("input", { name: "title", value: title, required: true, "aria-label": "Panel title" });
  dialog("Add to dashboard", [field("Dashboard", board), field("Panel title", name)], async () => {
    const { dashboard } = await api.get(`/api/v1/dashboards/${encodeURIComponent(board.value)}`);
    if (!dashboard.sections.length) dashboard.sections.push({ title: "", requires: [], missing: "", panels: [] });
    const section = dashboard.sections.at(-1);
    section.panels.push({ ...newPanel(section), title: name.value.trim(), queries: [{ promql: expr, legend: "" }] });
    await api.put(`/api/v1/dashboards/${encodeURIComponent(dashboard.id)}`, dashboard);
    url.navigate(`/dashboards/${dashboard.id}`, range.carry());
  });
}
