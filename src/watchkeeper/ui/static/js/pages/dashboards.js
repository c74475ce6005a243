// Dashboards: the list (shipped and the user's YAML files), one dashboard with its variables
// and time range in the URL, and its editor: add, move, resize, edit and remove panels of
// PromQL or span queries, then save (PUT) — or save a copy of a shipped one (POST).

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as range from "../range.js";
import * as pq from "../promql.js";
import { drawBoard, environment, variableFilters } from "../board.js";
import { askTitle, editPanel, editSettings, newPanel } from "../board_edit.js";
import { badge, empty, failed, loading, pageHeader, table } from "../ui.js";

export async function render(root, ctx) {
  const id = ctx.match[1] ? decodeURIComponent(ctx.match[1].slice(1)) : null;
  return id ? renderOne(root, ctx, id) : renderList(root, ctx);
}

async function renderList(root, ctx) {
  const body = h("div", {}, loading());
  mount(root, pageHeader("Dashboards", "Shipped dashboards and yours (YAML files in the config directory)",
    h("button", { type: "button", class: "btn primary", onclick: () => createNew() }, "New dashboard")), body);
  try {
    const list = await api.get("/api/v1/dashboards", {}, ctx.signal);
    const carry = range.carry();
    mount(body, table([
      { title: "Dashboard", render: (d) => [h("div", { class: "cell-main" }, h("a", { href: url.href(`/dashboards/${d.id}`, carry) }, d.title)),
        h("div", { class: "cell-sub" }, d.description)] },
      { title: "Panels", align: "right", render: (d) => String(d.panels) },
      { title: "Tags", render: (d) => d.tags.join(", ") },
      { title: "Source", render: (d) => (d.editable ? badge("yours", "accent") : badge("shipped")) },
    ], list.items, { onRow: (d) => url.navigate(`/dashboards/${d.id}`, carry), rowLabel: (d) => d.title, caption: "Dashboards" }),
    list.problems.length ? h("div", { class: "error problems", role: "alert" }, h("b", {}, "Files that are not dashboards:"),
      h("ul", {}, list.problems.map((p) => h("li", {}, h("code", {}, p.file), " — ", p.error)))) : null);
  } catch (err) {
    failed(body, err, "dashboards");
  }
}

/** A new, empty dashboard of the caller's project, then its page in edit mode. */
async function createNew(from) {
  const title = await askTitle(from ? "Save a copy" : "New dashboard", from ? `${from.title} (copy)` : "");
  if (!title) return;
  const id = slug(title);
  const board = from ? { ...structuredClone(from), id, title, project: undefined }
    : { id, title, variables: ["service"], sections: [{ title: "", panels: [] }] };
  try {
    await api.post("/api/v1/dashboards", board);
    url.navigate(`/dashboards/${id}`, { ...range.carry(), edit: "1" });
  } catch (err) {
    document.getElementById("main").prepend(h("div", { class: "error", role: "alert" }, `Could not create the dashboard: ${err.message}`));
  }
}

function slug(title) {
  const s = title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 50) || "dashboard";
  return `${s}-${Date.now().toString(36).slice(-4)}`;
}

async function renderOne(root, ctx, id) {
  const q = url.params();
  const body = h("div", {}, loading());
  const head = h("div");
  mount(root, head, body);
  let entry;
  let names;
  try {
    [entry, names] = await Promise.all([api.get(`/api/v1/dashboards/${encodeURIComponent(id)}`, {}, ctx.signal),
      pq.metricNames(ctx.signal).catch(() => null)]);
  } catch (err) {
    mount(head, pageHeader("Dashboard", null));
    return failed(body, err, `dashboard ${id}`);
  }
  const board = entry.dashboard;
  const editing = q.get("edit") === "1" && entry.editable; // a shipped one: save a copy
  const status = h("span", { class: "sub save-status", role: "status" });
  const filters = h("div", { class: "filters-inline" });
  const draw = () => {
    const opts = editing ? {
      editing, onChange: () => { status.textContent = "Unsaved changes"; },
      onEdit: (si, pi) => editPanel(board.sections[si].panels[pi], () => { status.textContent = "Unsaved changes"; draw(); }),
      onRemove: (si, pi) => { board.sections[si].panels.splice(pi, 1); status.textContent = "Unsaved changes"; draw(); },
      onAdd: (si) => editPanel(newPanel(board.sections[si]), (p) => { board.sections[si].panels.push(p); status.textContent = "Unsaved changes"; draw(); }),
    } : { names };
    return drawBoard(body, board, () => environment(url.params()), ctx.signal, opts);
  };
  const save = async () => {
    try {
      await api.put(`/api/v1/dashboards/${encodeURIComponent(board.id)}`, board);
      status.textContent = "Saved";
      url.update({ edit: null });
    } catch (err) {
      status.textContent = `Not saved: ${err.message}`;
      status.classList.add("n-bad");
    }
  };
  const tools = editing ? [
    h("button", { type: "button", class: "btn", onclick: () => editSettings(board, () => { status.textContent = "Unsaved changes"; renderHead(); draw(); }) }, "Settings"),
    h("button", { type: "button", class: "btn", onclick: () => { board.sections.push({ title: "New section", requires: [], missing: "", panels: [] }); draw(); } }, "Add section"),
    h("button", { type: "button", class: "btn", onclick: () => url.update({ edit: null }) }, "Cancel"),
    h("button", { type: "button", class: "btn primary", onclick: save }, "Save"),
  ] : [
    entry.editable ? h("button", { type: "button", class: "btn", onclick: () => url.update({ edit: "1" }) }, "Edit") : null,
    h("button", { type: "button", class: "btn", onclick: () => createNew(board) }, "Save a copy"),
    h("button", { type: "button", class: "btn", onclick: () => grafana(board.id, ctx.signal) }, "Grafana JSON"),
  ];
  const renderHead = () => mount(head, pageHeader(board.title, board.description || (entry.editable ? "Your dashboard" : "Shipped with Watchkeeper"),
    filters, status, ...tools, range.picker({ q })));
  renderHead();
  variableFilters(board, ctx.signal).then((els) => mount(filters, h("div", { class: "range-picker" }, els))).catch(() => {});
  if (!board.sections.some((s) => s.panels.length) && !editing) {
    return mount(body, empty("No panels yet", entry.editable ? "Edit the dashboard to add one." : null));
  }
  const drawn = draw();
  if (!editing) ctx.live(drawn.reload);
  await drawn.done;
}

/** Download the Grafana JSON model (the request carries the key, so no plain link). */
async function grafana(id, signal) {
  const model = await api.get(`/api/v1/dashboards/${encodeURIComponent(id)}/grafana`, {}, signal);
  const a = h("a", { href: URL.createObjectURL(new Blob([JSON.stringify(model, null, 2)], { type: "application/json" })),
    download: `watchkeeper-${id}.json` });
  document.body.append(a);
  a.click();
  a.remove();
}
