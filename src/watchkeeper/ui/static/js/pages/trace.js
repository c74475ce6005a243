// One trace: a collapsible waterfall of its spans and the details of the selected span.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as fmt from "../format.js";
import { badge, card, empty, failed, kv, loading, outcomeBadge, stat } from "../ui.js";
import { parseDoc, renderPayload } from "../messages.js";
import * as logs from "../logs.js";

const GUARD_ATTEMPT = "watchkeeper.guard.attempt";
const GUARD_FALLBACK = "watchkeeper.guard.fallback";

export async function render(root, ctx) {
  const traceId = ctx.match[1].toLowerCase();
  mount(root, loading("Loading trace…"));
  let body;
  try {
    body = await api.get("/api/v1/traces/" + traceId, {}, ctx.signal);
  } catch (err) {
    if (err instanceof api.NotAvailable) {
      mount(root, empty("Trace not found", `No trace ${traceId} in this project (it may have been removed by retention).`,
        h("a", { href: "/traces", class: "btn" }, "Back to traces")));
    } else failed(root, err, "the trace");
    return;
  }
  const model = buildModel(body);
  const selected = url.params().get("span") || model.roots[0]?.span_id;
  const view = url.params().get("view") === "logs" ? "logs" : "waterfall";
  const state = { collapsed: new Set(), selected, view, logs: null, openLogs: new Set() };
  const wf = h("div", { class: "waterfall", role: "tree", "aria-label": "Spans of the trace" });
  const logBox = h("div", { "data-testid": "trace-logs" });
  const switcher = h("div");
  const detail = h("div");
  const redraw = () => {
    mount(switcher, viewSwitch(state, setView));
    wf.hidden = state.view !== "waterfall";
    logBox.hidden = state.view !== "logs";
    drawWaterfall(wf, model, state, select);
    drawTraceLogs(logBox, model, state, select, traceId);
    drawDetail(detail, model, state.selected, body.scores || []);
  };
  const setView = (v) => {
    state.view = v;
    const q = url.params();
    if (v === "logs") q.set("view", v); else q.delete("view");
    history.replaceState(null, "", location.pathname + (q.toString() ? "?" + q.toString() : ""));
    redraw();
  };
  const select = (spanId, focus) => {
    state.selected = spanId;
    const q = url.params();
    q.set("span", spanId);
    history.replaceState(null, "", location.pathname + "?" + q.toString());
    redraw();
    if (focus) wf.querySelector(`[data-span="${spanId}"]`)?.focus();
  };
  mount(root, header(model, body),
    h("div", { class: "trace-layout" },
      card("Waterfall", [switcher, wf, logBox], { subtitle: `${spanCount(model, body)} · ${fmt.ms(model.totalMs)}` }),
      h("div", { class: "detail card" }, detail)));
  state.toggleLogs = (spanId) => {
    if (state.openLogs.has(spanId)) state.openLogs.delete(spanId); else state.openLogs.add(spanId);
    redraw();
    wf.querySelector(`[data-span="${spanId}"]`)?.focus();
  };
  state.toggle = (spanId) => {
    if (state.collapsed.has(spanId)) state.collapsed.delete(spanId); else state.collapsed.add(spanId);
    redraw();
    wf.querySelector(`[data-span="${spanId}"]`)?.focus();
  };
  redraw();
  try {
    state.logs = await logs.traceLogs(traceId, model.t0, model.t0 + model.totalMs, ctx.signal);
    state.bySpan = logsBySpan(model, state.logs.records);
  } catch (err) {
    if (err.name === "AbortError") return;
    state.logs = { error: err };
  }
  redraw();
}

function viewSwitch(state, setView) {
  const n = state.logs?.records?.length;
  const item = (id, label) => h("button", { type: "button", class: ["seg-btn", state.view === id && "active"],
    "aria-pressed": String(state.view === id), "data-testid": "view-" + id, onclick: () => setView(id) }, label);
  return h("div", { class: "seg trace-views", role: "group", "aria-label": "What to show" },
    item("waterfall", "Spans"), item("logs", n == null ? "Logs" : `Logs (${fmt.int(n)}${state.logs.more ? "+" : ""})`));
}

/** The trace's logs, grouped by span id (records of no span, or of a span not in the trace, under ""). */
function logsBySpan(model, records) {
  const out = new Map();
  for (const rec of records) {
    const key = model.byId.has(rec.span_id) ? rec.span_id : "";
    if (!out.has(key)) out.set(key, []);
    out.get(key).push(rec);
  }
  return out;
}

/** The Logs tab: every record of the trace, oldest first; a line's span chip selects it. */
function drawTraceLogs(el, model, state, select, traceId) {
  if (el.hidden) return;
  if (!state.logs) return mount(el, loading("Loading the trace's logs…"));
  if (state.logs.error) return failed(el, state.logs.error, "the trace's logs");
  const { records, more } = state.logs;
  const inLogs = h("a", { class: "btn small", href: url.href("/logs", { q: "trace:" + traceId,
    start: new Date(model.t0 - logs.TRACE_MARGIN_MS).toISOString(), end: new Date(model.t0 + model.totalMs + logs.TRACE_MARGIN_MS).toISOString() }) }, "Open in Logs");
  if (!records.length) {
    return mount(el, empty("No logs in this trace", "Records sent over OTLP with this trace's id appear here (the SDK's log export or any OpenTelemetry log exporter).", inLogs));
  }
  mount(el, h("div", { class: "pager" },
    h("span", {}, more ? `the newest ${fmt.int(records.length)} records (there are more: open them in Logs)` : fmt.count(records.length, "record"), " · oldest first"), inLogs),
  h("ol", { class: "log-lines", "aria-label": "Logs of the trace" }, records.map((rec) => traceLogLine(rec, model, state, select))));
}

function traceLogLine(rec, model, state, select) {
  const span = model.byId.get(rec.span_id);
  const chip = span
    ? h("button", { type: "button", class: ["btn", "small", "log-span", span.span_id === state.selected && "active"],
      title: "Select this span", "data-testid": "log-span", onclick: () => select(span.span_id) }, span.name)
    : h("span", { class: "sub log-span" }, rec.span_id ? "span not in trace" : "no span");
  const li = logs.lineItem(rec, { extra: chip, t0: model.t0, onSpan: span ? (id) => select(id) : null });
  if (span && span.span_id === state.selected) li.classList.add("of-selected");
  return li;
}

function logBadge(spanLogs, span, state) {
  if (!spanLogs?.length) return null;
  const open = state.openLogs.has(span.span_id);
  const bad = spanLogs.some((r) => r.severity_number >= 17);
  return h("button", { type: "button", class: ["wf-logs", bad && "has-error"], tabindex: "-1", "aria-expanded": String(open),
    "data-testid": "log-badge", title: `${fmt.count(spanLogs.length, "log line")} of this span (click, or L on the row, to ${open ? "hide" : "show"})`,
    onclick: (ev) => { ev.stopPropagation(); state.toggleLogs(span.span_id); } }, `${fmt.compact(spanLogs.length)} log${spanLogs.length === 1 ? "" : "s"}`);
}

const WF_LOG_LINES = 200;

function spanLogLines(spanLogs, select, t0) {
  const shown = spanLogs.slice(0, WF_LOG_LINES);
  return h("div", { class: "wf-loglines", role: "group", "aria-label": "Logs of the span", "data-testid": "span-logs" },
    h("ol", { class: "log-lines" }, shown.map((rec) => logs.lineItem(rec, { showService: false, t0, onSpan: (id) => select(id) }))),
    spanLogs.length > shown.length ? h("p", { class: "sub" }, `the first ${fmt.int(shown.length)} of ${fmt.int(spanLogs.length)}: all of them in the Logs view`) : null);
}

/** "12 spans", or "the first 500 of 340,000 spans" for a trace longer than one page. */
function spanCount(model, body) {
  const shown = model.spans.length;
  const total = body.span_count || shown;
  return total > shown ? `the first ${fmt.int(shown)} of ${fmt.count(total, "span")}` : fmt.count(shown, "span");
}

function attrsOf(span) {
  return parseDoc(span.payload?.attributes, {}) || {};
}

/** Index spans into a tree ordered by start, with the trace's time origin and length. */
export function buildModel(body) {
  const spans = [...body.spans].sort((a, b) => a.start_ms - b.start_ms);
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent_span_id && byId.has(s.parent_span_id)) {
      if (!children.has(s.parent_span_id)) children.set(s.parent_span_id, []);
      children.get(s.parent_span_id).push(s);
    } else roots.push(s);
  }
  const t0 = Math.min(...spans.map((s) => s.start_ms));
  const t1 = Math.max(...spans.map((s) => s.start_ms + s.duration_ms));
  return { spans, byId, children, roots, t0, totalMs: Math.max(t1 - t0, 0.001) };
}

function header(model, body) {
  const root = model.roots[0];
  const sum = (k) => model.spans.reduce((a, s) => a + (s[k] || 0), 0);
  const llm = model.spans.filter((s) => s.operation === "llm");
  const missing = model.spans.some((s) => s.cost_source === "missing");
  return h("div", {},
    h("div", { class: "page-head" },
      h("div", {},
        h("div", { class: "sub" }, h("a", { href: "/traces" }, "Traces"), " / ", h("span", { class: "mono" }, body.trace_id)),
        h("h1", {}, root?.name || body.trace_id, " ", outcomeBadge(root?.outcome))),
      h("div", { class: "page-tools" },
        root?.user_id ? h("a", { class: "btn", href: url.href("/traces", { user: root.user_id, range: "7d" }) }, "User ", root.user_id) : null,
        root?.session_id ? h("a", { class: "btn", href: url.href("/traces", { session: root.session_id, range: "7d" }) }, "Session ", root.session_id) : null,
        feedbackButtons(body.trace_id))),
    h("div", { class: "stats trace-stats" },
      stat("Started", root ? fmt.time(root.start_ms) : "–", { note: root ? new Date(root.start_ms).toDateString() : null }),
      stat("Duration", fmt.ms(model.totalMs), { tone: model.totalMs >= 8000 ? "bad" : null }),
      stat("Service", root?.service || "–"),
      stat("Model calls", fmt.int(llm.length), { note: [...new Set(llm.map((s) => s.response_model || s.request_model).filter(Boolean))].join(", ") }),
      stat("Tokens", `${fmt.compact(sum("input_tokens"))} → ${fmt.compact(sum("output_tokens"))}`, { note: sum("cache_read_tokens") ? `${fmt.compact(sum("cache_read_tokens"))} cached` : null }),
      stat("Cost", fmt.usd(sum("cost_usd")), { tone: missing ? "warn" : null, note: missing ? "some prices missing" : null })),
    (body.scores || []).length ? h("div", { class: "score-list trace-scores", "aria-label": "Scores" },
      body.scores.map(scoreBadge)) : null);
}

function scoreBadge(sc) {
  const good = sc.value == null ? ["pass", "good", "positive"].includes(sc.label) : sc.value >= 0.5;
  const v = sc.value == null ? sc.label : sc.value.toFixed(2) + (sc.label ? ` (${sc.label})` : "");
  const b = badge(`${sc.name}: ${v}`, good ? "ok" : "bad");
  if (sc.comment) b.title = sc.comment;
  return b;
}

function feedbackButtons(traceId) {
  const status = h("span", { class: "sub", role: "status" });
  const send = (value) => async () => {
    try {
      await api.post("/api/v1/scores", { trace_id: traceId, name: "user_feedback", value, source: "human", comment: "from the UI" });
      status.textContent = "Feedback saved";
    } catch (err) {
      status.textContent = "Could not save: " + err.message;
    }
  };
  return [status, h("div", { class: "seg", role: "group", "aria-label": "Your feedback on this trace" },
    h("button", { type: "button", class: "seg-btn", onclick: send(1) }, "✓ Good answer"),
    h("button", { type: "button", class: "seg-btn", onclick: send(0) }, "✗ Bad answer"))];
}

function flatten(model, collapsed) {
  const out = [];
  const walk = (s, depth) => {
    const kids = model.children.get(s.span_id) || [];
    out.push({ span: s, depth, hasKids: kids.length > 0 });
    if (!collapsed.has(s.span_id)) kids.forEach((k) => walk(k, depth + 1));
  };
  model.roots.forEach((r) => walk(r, 0));
  return out;
}

function tags(span, inRow = true) {
  const a = attrsOf(span);
  const out = [];
  if (span.operation === "guard") out.push(h("span", { class: "wf-tag guard", title: "the SDK guard (deadline, retries, fallback)" }, "guard"));
  const attempt = Number(a[GUARD_ATTEMPT]);
  if (attempt > 1) out.push(h("span", { class: "wf-tag retry", title: "the guard retried this call" }, `retry ${attempt - 1}`));
  if (a[GUARD_FALLBACK] || (inRow && span.outcome === "fallback")) {
    const label = a[GUARD_FALLBACK] ? `fallback: ${a[GUARD_FALLBACK]}` : "fallback";
    out.push(h("span", { class: "wf-tag fallback", title: `answered by a fallback (${label})` }, label));
  }
  if (inRow && (span.outcome === "error" || span.outcome === "timeout")) {
    out.push(h("span", { class: "wf-tag " + span.outcome, title: `${span.outcome}: ${span.error_type || "no error type"}` }, span.error_type || span.outcome));
  }
  return out;
}

function drawWaterfall(el, model, state, select) {
  const rows = flatten(model, state.collapsed);
  const scale = h("div", { class: "wf-scale" }, [0, 0.25, 0.5, 0.75, 1].map((f) =>
    h("span", { style: { left: f * 100 + "%" } }, fmt.ms(model.totalMs * f))));
  mount(el, h("div", { class: "wf-head", "aria-hidden": "true" }, h("span", {}, "Span"), scale, h("span", { class: "wf-dur" }, "Duration")),
    rows.map((r, idx) => {
      const spanLogs = state.bySpan?.get(r.span.span_id);
      return [waterfallRow(model, r, state, select, idx, rows, logBadge(spanLogs, r.span, state)),
        spanLogs && state.openLogs.has(r.span.span_id) ? spanLogLines(spanLogs, select, model.t0) : null];
    }));
}

function waterfallRow(model, { span, depth, hasKids }, state, select, idx, rows, logCount) {
  const left = ((span.start_ms - model.t0) / model.totalMs) * 100;
  const width = Math.max((span.duration_ms / model.totalMs) * 100, 0.2);
  const collapsed = state.collapsed.has(span.span_id);
  const toggle = hasKids ? h("button", { type: "button", class: "wf-toggle", tabindex: "-1",
    "aria-label": collapsed ? "Expand" : "Collapse",
    onclick: (ev) => { ev.stopPropagation(); state.toggle(span.span_id); } }, collapsed ? "▸" : "▾") : h("span", { class: "wf-spacer" });
  const row = h("div", {
    class: ["wf-row", span.span_id === state.selected && "selected"], role: "treeitem", tabindex: "0",
    "aria-level": depth + 1, "aria-selected": String(span.span_id === state.selected),
    "aria-expanded": hasKids ? String(!collapsed) : null, "data-span": span.span_id,
    "aria-label": `${span.name}, ${span.outcome}, ${fmt.ms(span.duration_ms)}`,
  },
  h("div", { class: "wf-name", style: { paddingLeft: depth * 16 + "px" } }, toggle,
    h("span", { class: "label", title: span.name }, span.name), h("span", { class: "wf-tags" }, tags(span)), logCount,
    span.service !== model.roots[0]?.service ? h("span", { class: "svc" }, span.service) : null),
  h("div", { class: "wf-track" }, h("div", { class: ["wf-bar", "op-" + span.operation, "out-" + span.outcome],
    style: { left: left + "%", width: width + "%" }, title: `${span.name}: ${fmt.ms(span.duration_ms)} (starts at +${fmt.ms(span.start_ms - model.t0)})` })),
  h("div", { class: "wf-dur" }, fmt.ms(span.duration_ms)));
  row.addEventListener("click", () => select(span.span_id, true));
  row.addEventListener("keydown", (ev) => {
    const move = (d) => { const r = rows[idx + d]; if (r) { ev.preventDefault(); row.parentElement.querySelector(`[data-span="${r.span.span_id}"]`)?.focus(); } };
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(span.span_id, true); }
    else if (ev.key === "l" && state.bySpan?.has(span.span_id)) { ev.preventDefault(); state.toggleLogs(span.span_id); }
    else if (ev.key === "ArrowDown") move(1);
    else if (ev.key === "ArrowUp") move(-1);
    else if (ev.key === "ArrowLeft" && hasKids && !collapsed) { ev.preventDefault(); state.toggle(span.span_id); }
    else if (ev.key === "ArrowRight" && hasKids && collapsed) { ev.preventDefault(); state.toggle(span.span_id); }
  });
  return row;
}

function drawDetail(el, model, spanId, scores) {
  const span = model.byId.get(spanId) || model.roots[0];
  if (!span) return mount(el, empty("No span selected"));
  const p = span.payload || {};
  const attrs = attrsOf(span);
  const events = p.events || [];
  const mine = scores.filter((s) => s.span_id === span.span_id);
  const tokens = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"]
    .filter((k) => span[k] != null);
  mount(el, h("div", { class: "card-head" }, h("div", {}, h("h2", {}, span.name),
    h("p", { class: "sub mono" }, span.span_id))),
  h("div", { class: "card-body", "data-testid": "span-detail" },
    h("div", { class: "score-list" }, outcomeBadge(span.outcome), badge(span.operation, "accent"), badge(span.span_kind), tags(span, false),
      span.error_type ? badge(span.error_type, "bad") : null),
    p.status_message ? h("div", { class: "error detail-status" }, p.status_message) : null,
    h("h3", {}, "Span"),
    kv([["Service", span.service], ["Environment", span.environment], ["Start", fmt.dateTime(span.start_ms)],
      ["Offset", "+" + fmt.ms(span.start_ms - model.t0)], ["Duration", fmt.ms(span.duration_ms)], ["Status", span.status_code],
      ["Error type", span.error_type], ["Provider", span.provider], ["Request model", span.request_model],
      ["Response model", span.response_model], ["Finish reason", span.finish_reason], ["Agent", span.agent_name],
      ["Tool", span.tool_name], ["HTTP", span.http_method ? `${span.http_method} ${span.http_route || ""} → ${span.http_status_code ?? "–"}` : null],
      ["User", span.user_id], ["Session", span.session_id], ["Feature", span.feature]]),
    tokens.length || span.cost_source !== "none" ? [h("h3", {}, "Tokens and cost"),
      kv([...tokens.map((k) => [k.replace(/_/g, " "), fmt.int(span[k])]),
        ["Cost", span.cost_source === "missing" ? badge("price missing", "warn") : `${fmt.usd(span.cost_usd)} (${span.cost_source})`]])] : null,
    mine.length ? [h("h3", {}, "Scores"), h("div", { class: "score-list" }, mine.map(scoreBadge))] : null,
    p.input ? [h("h3", {}, "Input"), renderPayload(p.input)] : null,
    p.output ? [h("h3", {}, "Output"), renderPayload(p.output)] : null,
    events.length ? [h("h3", {}, `Events (${events.length})`), events.map((ev) => eventView(ev, model.t0))] : null,
    Object.keys(attrs).length ? [h("h3", {}, "Attributes"), attrTable(attrs)] : null,
    resourceView(p.resource)));
}

function eventView(ev, t0) {
  const name = ev.name || "event";
  const at = ev.time_ms - t0;
  return h("div", { class: ["event", name === "exception" && "exception"] },
    h("div", {}, h("b", {}, name), at >= 0 ? h("span", { class: "sub" }, "  +" + fmt.ms(at)) : null),
    ev.attributes && Object.keys(ev.attributes).length ? attrTable(ev.attributes) : null);
}

function attrTable(obj) {
  const rows = Object.entries(obj).sort(([a], [b]) => a.localeCompare(b));
  return h("table", { class: "attr-table" }, h("tbody", {}, rows.map(([k, v]) =>
    h("tr", {}, h("td", {}, k), h("td", {}, typeof v === "string" ? v : JSON.stringify(v))))));
}

function resourceView(text) {
  const res = parseDoc(text, {}) || {};
  if (!Object.keys(res).length) return null;
  return h("details", { class: "resource" }, h("summary", {}, h("h3", { class: "inline" }, "Resource")), attrTable(res));
}
