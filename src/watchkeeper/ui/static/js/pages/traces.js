// Traces: filtered, paged list of requests (root spans), model calls or all spans.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as range from "../range.js";
import * as fmt from "../format.js";
import { filterValues } from "../lookups.js";
import { failed, loading, outcomeBadge, pageHeader, table, empty } from "../ui.js";

const SCOPES = [["requests", "Requests"], ["llm", "Model calls"], ["spans", "All spans"]];
const OUTCOMES = ["success", "error", "timeout", "fallback", "rejected"];
const TEXT_FILTERS = [
  ["user", "User", "user id"], ["session", "Session", "session id"], ["route", "Route", "/api/chat"],
  ["feature", "Feature", ""],
];
const PASSED = ["service", "environment", "model", "outcome", "user", "session", "route", "feature",
  "min_duration_ms", "max_duration_ms", "q", "provider", "operation", "agent", "trace_id", "name"];
const PAGE = 50;

export async function render(root, ctx) {
  const q = url.params();
  const scope = SCOPES.some(([s]) => s === q.get("scope")) ? q.get("scope") : "requests";
  const list = h("div", { id: "trace-list" }, loading());
  const filterBox = h("div");
  const totalsBox = h("div", { class: "totals", "aria-live": "polite" });
  mount(root,
    pageHeader("Traces", scope === "requests" ? "One row per request (root span)" : scope === "llm" ? "Every model call" : "Every span",
      range.picker({ showLive: false })),
    h("div", { class: "seg", role: "group", "aria-label": "What to list" }, SCOPES.map(([id, label]) =>
      h("button", { type: "button", class: ["seg-btn", id === scope && "active"], "aria-pressed": String(id === scope),
        onclick: () => url.update({ scope: id === "requests" ? null : id, cursor: null }) }, label))),
    h("div", { class: "spacer-8" }),
    filterBox, activeChips(q), totalsBox, list);
  const r = range.current(q);
  const params = { ...range.apiRange(r, 1), limit: PAGE, cursor: q.get("cursor") };
  for (const k of PASSED) if (q.get(k)) params[k] = q.get(k);
  const filtersDone = renderFilters(filterBox, q, ctx.signal);
  const path = scope === "requests" ? "/api/v1/traces" : "/api/v1/spans";
  const listParams = scope === "requests" ? params : { ...params, scope };
  const { limit, cursor, ...summaryParams } = listParams;
  const totals = api.get("/api/v1/summary", { ...summaryParams, scope }, ctx.signal)
    .then((sm) => mount(totalsBox, totalsLine(sm, scope))).catch(() => mount(totalsBox));
  try {
    const body = await api.get(path, listParams, ctx.signal);
    renderList(list, body, q, scope);
  } catch (err) {
    failed(list, err, "traces");
  }
  await Promise.allSettled([filtersDone, totals]);
  if (ctx.signal.aborted) return;
  // "/" jumps to the text search, as in most log and trace viewers.
  const slash = (ev) => {
    if (ev.key !== "/" || ev.target.closest("input, textarea, select")) return;
    ev.preventDefault();
    root.querySelector('input[name="q"]')?.focus();
  };
  document.addEventListener("keydown", slash);
  ctx.signal.addEventListener("abort", () => document.removeEventListener("keydown", slash));
}

async function renderFilters(el, q, sig) {
  let svc = { items: [], models: [], environments: [] };
  try {
    svc = await filterValues(sig);
  } catch {
    /* the selects still work with typed values from the URL */
  }
  const input = (name, label, placeholder, cls) => h("label", { class: "filter" }, h("span", {}, label),
    h("input", { name, value: q.get(name) || "", placeholder, class: cls, "aria-label": label, type: cls === "narrow" ? "number" : "text", min: cls === "narrow" ? 0 : null }));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Trace filters", onsubmit: (ev) => {
    ev.preventDefault();
    const data = new FormData(ev.target);
    const changes = { cursor: null };
    for (const [k, v] of data) changes[k] = String(v).trim();
    // Prompts live on the model and tool spans, not on the request's root span.
    if (changes.q && (q.get("scope") || "requests") === "requests") changes.scope = "spans";
    url.update(changes);
  } },
  range.selectFilter("service", "Service", svc.items || []),
  // Requests rarely carry a model themselves (their model calls do): picking one lists those calls.
  range.selectFilter("model", "Model", svc.models || [], {
    also: (v) => (v && (q.get("scope") || "requests") === "requests" ? { scope: "llm" } : {}) }),
  range.selectFilter("outcome", "Outcome", OUTCOMES),
  TEXT_FILTERS.map(([n, l, p]) => input(n, l, p)),
  input("min_duration_ms", "Min ms", "0", "narrow"),
  input("max_duration_ms", "Max ms", "∞", "narrow"),
  input("q", "Text in prompts", "search prompts & completions", "wide"),
  h("button", { type: "submit", class: "btn primary" }, "Apply"));
  mount(el, form);
}

function activeChips(q) {
  const chips = [];
  for (const k of [...PASSED, "start", "end"]) {
    if (!q.get(k) || k === "service" || k === "model" || k === "outcome") continue;
    chips.push(h("span", { class: "chip" }, `${k} = ${q.get(k)}`,
      h("button", { type: "button", "aria-label": `Remove filter ${k}`, onclick: () => url.update({ [k]: null, cursor: null }) }, "×")));
  }
  if (!chips.length) return null;
  return h("div", { class: "chips", "aria-label": "Active filters" }, chips,
    h("button", { type: "button", class: "btn small ghost", onclick: () => url.navigate("/traces", { range: q.get("range"), scope: q.get("scope") }) }, "Clear all"));
}

/** One line over the list: how many match, how they ended, how slow, what they cost. */
function totalsLine(sm, scope) {
  const noun = scope === "requests" ? "request" : scope === "llm" ? "model call" : "span";
  const bad = [["error", sm.errors], ["timeout", sm.timeouts], ["fallback", sm.fallbacks], ["rejected", sm.rejected, "rejected"]]
    .filter(([, v]) => v).map(([k, v, pl]) => fmt.count(v, k, pl));
  return h("p", { class: "sub", "data-testid": "totals" },
    h("b", {}, fmt.int(sm.count)), ` ${fmt.plural(noun, sm.count)} ${sm.count === 1 ? "matches" : "match"}`,
    sm.count ? ` · success ${fmt.pct(sm.success_rate, 1)}` : "",
    bad.length ? ` · ${bad.join(", ")}` : "",
    sm.count ? ` · p50 ${fmt.ms(sm.p50_ms)}, p95 ${fmt.ms(sm.p95_ms)}` : "",
    sm.cost_usd ? ` · ${fmt.usd(sm.cost_usd)}` : "");
}

/** A one-line, ellipsised detail; its full text on hover. */
function subLine(text) {
  return h("div", { class: "cell-sub", title: text }, text);
}

function openTrace(row) {
  url.navigate("/traces/" + row.trace_id, row.parent_span_id ? { span: row.span_id } : {});
}

function renderList(el, body, q, scope) {
  const items = body.items || [];
  if (!items.length) {
    mount(el, empty("No traces match", q.get("cursor") ? "No more pages." : "Widen the time range or remove a filter."));
    return;
  }
  const maxDur = Math.max(...items.map((r) => r.duration_ms || 0), 1);
  // Root spans of instrumented apps often carry no usage (their model calls do): no empty columns.
  const hasTokens = items.some((r) => r.input_tokens != null || r.output_tokens != null);
  const hasCost = items.some((r) => r.cost_usd != null || r.cost_source === "missing");
  const cols = [
    { title: "Time", render: (r) => h("span", { title: fmt.dateTime(r.start_ms) }, fmt.when(r.start_ms)), class: "nowrap" },
    { title: scope === "requests" ? "Request" : "Span", render: (r) => [
      h("div", { class: "cell-main", title: r.name }, h("a", { href: "/traces/" + r.trace_id + (r.parent_span_id ? "?span=" + r.span_id : "") }, r.name)),
      subLine([r.http_route, r.response_model || r.request_model, r.error_type].filter(Boolean).join(" · ") || r.trace_id)] },
    { title: "Service", render: (r) => r.service },
    { title: "Outcome", render: (r) => outcomeBadge(r.outcome) },
    { title: "Duration", align: "right", render: (r) => h("span", { class: "dur" }, fmt.ms(r.duration_ms),
      h("span", { class: "dur-bar", "aria-hidden": "true" }, h("i", { class: r.duration_ms >= 8000 ? "slow" : null, style: { width: ((r.duration_ms / maxDur) * 100).toFixed(1) + "%" } }))) },
    hasTokens && { title: "Tokens", align: "right", render: (r) => (r.input_tokens != null || r.output_tokens != null) ? `${fmt.compact(r.input_tokens ?? 0)} → ${fmt.compact(r.output_tokens ?? 0)}` : "–" },
    hasCost && { title: "Cost", align: "right", render: (r) => r.cost_source === "missing" ? h("span", { class: "badge tone-warn", title: "no price known for this model" }, "no price") : fmt.usd(r.cost_usd) },
    { title: "User", render: (r) => r.user_id ? h("a", { href: url.href("/traces", { ...range.carry(), user: r.user_id }) }, r.user_id) : "–" },
  ].filter(Boolean);
  const pager = h("div", { class: "pager" },
    h("span", {}, `${fmt.int(items.length)} shown${q.get("cursor") ? " (later page)" : ""} · ↑/↓ to move, Enter to open, / to search`),
    h("div", { class: "page-tools" },
      q.get("cursor") ? h("button", { type: "button", class: "btn", onclick: () => url.update({ cursor: null }) }, "⇤ Newest") : null,
      body.next_cursor ? h("button", { type: "button", class: "btn", "data-testid": "next-page", onclick: () => url.update({ cursor: body.next_cursor }) }, "Older →") : null));
  mount(el, table(cols, items, { onRow: openTrace, caption: "Traces", rowLabel: (r) => `${r.name}, ${r.outcome}, ${fmt.ms(r.duration_ms)}, ${fmt.dateTime(r.start_ms)}` }), pager);
}
