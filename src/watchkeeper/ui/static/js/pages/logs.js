// Logs: counts by severity over time (drag or click to zoom), a search box with its syntax,
// service and severity filters, the newest lines first with older pages appended, every
// field of a line on click, and a live tail. In the URL: q (the search text), service,
// severity, range or start/end, tail, and line (a line to open, from a line's link).

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as range from "../range.js";
import * as chart from "../chart.js";
import * as fmt from "../format.js";
import * as logs from "../logs.js";
import { filterValues } from "../lookups.js";
import { card, empty, failed, loading, pageHeader } from "../ui.js";

const PAGE = 100;
const MAX_LINES = 2000; // lines kept on the page: older pages and the tail stop there
const TAIL_MS = 2000;
const TAIL_LOOKBACK_MS = 30_000; // a record may become searchable a while after its time
const TAIL_PAGE = 1000; // the API's largest page
const HISTOGRAM_EVERY = 5; // tail polls between histogram refreshes

export async function render(root, ctx) {
  const q = url.params();
  const r = range.current(q);
  const tailing = q.get("tail") === "1" && Boolean(r.preset); // a tail follows now
  const parsed = logs.parseQuery(q.get("q"));
  const params = apiParams(q, parsed.params);
  const histBox = h("div", { class: "chart-box", "data-testid": "log-histogram" }, loading());
  const listBox = h("div", { class: "log-list-box" }, loading("Loading logs…"));
  const filterBox = h("div");
  const status = h("div", { class: "tail-status", role: "status", "aria-live": "polite" });
  mount(root,
    pageHeader("Logs", "OTLP log records of every service, newest first",
      range.picker({ showLive: false, q }), tailButton(tailing, r)),
    filterBox,
    parsed.errors.length ? h("div", { class: "error", role: "alert", "data-testid": "query-errors" },
      h("b", {}, "Left out of the search: "), parsed.errors.join("; ")) : null,
    card("Records by severity", histBox, { subtitle: "drag across the chart or click a bar to zoom in" }),
    card("Lines", [status, listBox], { id: "log-lines" }));
  const list = makeList(listBox, q, params);
  const loaded = list.load(ctx.signal);
  // The services that sent logs in the range, those of spans (the lookups) and those of the lines shown.
  const services = renderFilters(filterBox, q, ctx.signal, loaded.then(() => list.shown.map((rec) => rec.service)));
  const hist = drawHistogram(histBox, params, r, ctx.signal);
  await loaded;
  openLine(listBox, q.get("line"));
  await Promise.allSettled([hist, services]);
  if (tailing && !ctx.signal.aborted) startTail(list, status, () => drawHistogram(histBox, params, range.current(q), ctx.signal), ctx.signal);
  slashToSearch(root, ctx.signal);
}

/** Open the line a link named (`line`), when it is on the first page. */
function openLine(el, logId) {
  const li = logId && /^[0-9a-f]{16}$/.test(logId) ? el.querySelector(`li[data-log="${logId}"]`) : null;
  if (!li) return;
  li.querySelector(".log-summary").click();
  li.scrollIntoView({ block: "center" });
  li.focus({ preventScroll: true });
}

/** The API's parameters: the search's terms, the filters' service and severity, the range. */
export function apiParams(q, parsed) {
  const services = [...parsed.service, ...(q.get("service") ? [q.get("service")] : [])];
  const sevs = [parsed.severity, logs.severityParam(q.get("severity"))].filter(Boolean);
  const severity = sevs.sort((a, b) => logs.SEVERITIES.indexOf(b) - logs.SEVERITIES.indexOf(a))[0];
  return { ...parsed, service: [...new Set(services)], severity, ...range.apiRange(range.current(q), 1) };
}

function tailButton(tailing, r) {
  return h("button", {
    type: "button", class: ["btn", "live", tailing && "on"], "aria-pressed": String(tailing), "data-testid": "tail-toggle",
    title: tailing ? "New lines appear as they come (click to stop)" : "Show new lines as they come",
    // A tail follows now: a fixed range gives way to the preset that holds it.
    onclick: () => url.update(tailing ? { tail: null } : { tail: "1", start: null, end: null, line: null,
      range: r.preset || range.presetFor(r.endMs - r.startMs) }),
  }, h("span", { class: "dot", "aria-hidden": "true" }), tailing ? "Live tail" : "Tail");
}

async function renderFilters(el, q, signal, seen) {
  const input = h("input", { name: "q", type: "search", class: "wide log-search", value: q.get("q") || "",
    placeholder: 'timeout "payment failed" service:checkout severity:error order.id=42',
    "aria-label": "Search logs", spellcheck: "false", autocomplete: "off" });
  const severity = h("label", { class: "filter" }, h("span", {}, "Severity"),
    h("select", { "aria-label": "Minimum severity", name: "severity",
      onchange: (ev) => url.update({ severity: ev.target.value, q: input.value.trim(), line: null }) },
      h("option", { value: "" }, "Any"),
      logs.SEVERITIES.map((s) => h("option", { value: s, selected: s === logs.severityParam(q.get("severity")) }, "≥ " + s))));
  const serviceBox = h("span");
  const form = h("form", { class: "filters", role: "search", "aria-label": "Log search", onsubmit: (ev) => {
    ev.preventDefault();
    const data = new FormData(ev.target);
    url.update({ q: String(data.get("q") || "").trim(), severity: data.get("severity"), service: data.get("service"), line: null });
  } },
  h("label", { class: "filter grow" }, h("span", {}, "Search"), input),
  serviceBox, severity,
  h("button", { type: "submit", class: "btn primary" }, "Search"));
  const help = h("details", { class: "syntax", open: q.get("q") ? null : true },
    h("summary", {}, "Search syntax"),
    h("dl", { class: "syntax-list", "data-testid": "syntax" }, logs.SYNTAX.map(([ex, what]) =>
      [h("dt", {}, h("code", {}, ex)), h("dd", {}, what)])),
    h("p", { class: "sub" }, "Every term must hold. Words match whole words in the body, any case; ",
      "there is no OR, negation or wildcard yet. Press / to search."));
  mount(el, h("div", { class: "log-filters" }, form, help));
  mount(serviceBox, serviceSelect(q, [], input));
  // either list may fail alone: a typed service still works from the URL and the search box
  const [ofLogs, ofSpans] = await Promise.allSettled([
    api.get("/api/v1/logs/services", range.apiRange(range.current(q), 1), signal),
    filterValues(signal)]);
  const values = [...new Set([
    ...(ofLogs.status === "fulfilled" ? ofLogs.value.services.map((s) => s.service) : []),
    ...(ofSpans.status === "fulfilled" ? ofSpans.value.items || [] : []),
    ...await seen])].sort();
  if (!signal.aborted) mount(serviceBox, serviceSelect(q, values, input));
}

/** Applied on change, with what the search box holds (typed, perhaps not yet sent). */
function serviceSelect(q, values, input) {
  const cur = q.get("service") || "";
  const opts = [...new Set([...(cur ? [cur] : []), ...values])];
  return h("label", { class: "filter" }, h("span", {}, "Service"),
    h("select", { "aria-label": "Service", name: "service",
      onchange: (ev) => url.update({ service: ev.target.value, q: input.value.trim(), line: null }) },
    h("option", { value: "" }, "All"), opts.map((v) => h("option", { value: v, selected: v === cur }, v))));
}

function slashToSearch(root, signal) {
  const slash = (ev) => {
    if (ev.key !== "/" || ev.target.closest("input, textarea, select")) return;
    ev.preventDefault();
    root.querySelector('input[name="q"]')?.focus();
  };
  document.addEventListener("keydown", slash);
  signal.addEventListener("abort", () => document.removeEventListener("keydown", slash));
}

// --- histogram ---------------------------------------------------------------------------

async function drawHistogram(el, params, r, signal) {
  const stepS = range.stepFor(r, 60);
  const p = { ...params, ...range.apiRange(r, stepS), step_ms: stepS * 1000 };
  let body;
  try {
    body = await api.get("/api/v1/logs/histogram", p, signal);
  } catch (err) {
    return failed(el, err, "the histogram");
  }
  const { times, series } = histogramSeries(body, p.start, p.end);
  chart.timeChart(el, {
    times, series, stepMs: body.step_ms, kind: "stacked", start: p.start, end: p.end, height: 160,
    label: "Log records by severity over time", empty: "No records in this range", yFormat: fmt.compact,
    pickHint: "click to zoom to this bar, drag to zoom to a range",
    onPick: (t) => zoom(t, t + body.step_ms), onSelect: zoom,
  });
}

/** Stacked series, least severe at the bottom, over every bucket from start to end. */
export function histogramSeries(body, startMs, endMs) {
  const step = body.step_ms;
  const times = [];
  for (let t = Math.floor(startMs / step) * step; t < endMs; t += step) times.push(t);
  const index = new Map(times.map((t, i) => [t, i]));
  const names = ["unspecified", ...logs.SEVERITIES];
  const values = Object.fromEntries(names.map((n) => [n, times.map(() => 0)]));
  for (const b of body.buckets) {
    const i = index.get(b.time_ms);
    if (i !== undefined && values[b.severity]) values[b.severity][i] += b.count;
  }
  const series = names.filter((n) => values[n].some((v) => v > 0))
    .map((n) => ({ name: n, color: logs.severityColor(n), values: values[n] }));
  return { times, series };
}

function zoom(fromMs, toMs) {
  if (!(toMs > fromMs)) return;
  url.update({ start: new Date(fromMs).toISOString(), end: new Date(toMs).toISOString(), range: null, tail: null, line: null });
}

// --- the lines ---------------------------------------------------------------------------

/** The list of lines: its first page, older pages appended, new lines put in place. */
function makeList(el, q, params) {
  const ol = h("ol", { class: "log-lines", "aria-label": "Log lines, newest first" });
  const more = h("div", { class: "pager" });
  const shown = []; // records, newest first, as the lines are
  const state = { cursor: null, trimmed: false, reading: false };
  const onAdd = (t) => url.update({ q: [q.get("q"), t].filter(Boolean).join(" "), line: null });
  const line = (rec) => logs.lineItem(rec, { onAdd, extra: rec.trace_id
    ? h("a", { class: "log-trace mono", href: logs.traceHref(rec), title: "Open the trace" }, "trace") : null });
  const pager = () => {
    const note = `${fmt.count(shown.length, "line")} shown` + (state.trimmed ? ` (at most ${fmt.int(MAX_LINES)} are kept)` : "");
    mount(more, h("span", { "data-testid": "log-count" }, note),
      state.cursor && shown.length < MAX_LINES ? h("button", { type: "button", class: "btn", "data-testid": "older",
        onclick: async (ev) => { ev.target.disabled = true; await list.older(); } }, "Older lines ↓") : null);
  };
  const emptyState = () => {
    const filtered = params.q || params.service.length || params.severity || params.attr.length || params.trace_id || params.span_id;
    return filtered
      ? empty("No logs match", "Widen the time range, or remove a term of the search or a filter.")
      : empty("No logs in this range", h("span", {}, "Send OpenTelemetry logs here: point ",
        h("code", {}, "OTEL_EXPORTER_OTLP_ENDPOINT"), " at ", h("code", {}, location.origin),
        " (the log exporter posts to ", h("code", {}, "/v1/logs"), "), or turn on the SDK's log export. ",
        "Try a longer range too."));
  };
  const draw = () => mount(el, shown.length ? [ol, more] : emptyState());
  const list = {
    el: ol, shown, state, params,
    async load(signal) {
      try {
        const page = await api.get("/api/v1/logs", { ...params, limit: PAGE }, signal);
        shown.push(...page.records);
        ol.append(...page.records.map(line));
        state.cursor = page.next_cursor;
        draw();
        pager();
      } catch (err) {
        failed(el, err, "logs");
      }
    },
    async older() {
      try {
        const page = await api.get("/api/v1/logs", { ...params, limit: PAGE, cursor: state.cursor });
        const fresh = page.records.filter((rec) => !shown.some((s) => s.log_id === rec.log_id));
        shown.push(...fresh);
        ol.append(...fresh.map(line));
        state.cursor = page.next_cursor;
      } catch (err) {
        mount(more, h("span", { class: "error" }, "Could not load older lines: " + err.message));
        return;
      }
      pager();
    },
    /** Put new records (any order) in their place, newest first; keep at most MAX_LINES. */
    insert(records) {
      for (const rec of records.sort((a, b) => a.time_ms - b.time_ms)) {
        let i = 0;
        while (i < shown.length && shown[i].time_ms > rec.time_ms) i += 1;
        shown.splice(i, 0, rec);
        ol.insertBefore(line(rec), ol.children[i] || null);
      }
      while (shown.length > MAX_LINES) {
        shown.pop();
        ol.lastElementChild.remove();
        state.trimmed = true;
        state.cursor = null; // the page's cursor is past lines no longer shown
      }
      if (!ol.isConnected) draw(); // the first lines replace the empty state
      pager();
    },
  };
  return list;
}

// --- live tail -----------------------------------------------------------------------------

/**
 * Poll for records newer than the newest seen (less a look-back, for records that become
 * searchable late), every TAIL_MS. New lines wait while the reader is in the list (the
 * pointer over it, a line open, or scrolled down) and a button says how many wait.
 */
function startTail(list, status, redrawHistogram, signal) {
  const seen = new Map(list.shown.map((rec) => [rec.log_id, rec.time_ms]));
  const waiting = [];
  let hovering = false;
  let polls = 0;
  let flooded = false;
  const reading = () => hovering || list.el.getBoundingClientRect().top < 0 ||
    list.el.querySelector('[aria-expanded="true"]');
  list.el.addEventListener("mouseenter", () => { hovering = true; });
  list.el.addEventListener("mouseleave", () => { hovering = false; flush(); });
  const say = () => mount(status, waiting.length
    ? h("button", { type: "button", class: "btn small", "data-testid": "tail-waiting", onclick: () => {
      list.el.querySelectorAll('[aria-expanded="true"]').forEach((li) => {
        li.setAttribute("aria-expanded", "false");
        li.querySelector(".log-detail")?.remove();
      });
      hovering = false;
      status.scrollIntoView({ block: "nearest" });
      flush(true);
    } }, `↑ ${fmt.count(waiting.length, "new line")} (paused while you read)`)
    : h("span", { class: "sub", "data-testid": "tail-live" }, h("span", { class: "dot" }), " Live: new lines appear at the top",
      flooded ? ` · over ${fmt.int(TAIL_PAGE)} lines in ${TAIL_LOOKBACK_MS / 1000} s: only the newest show; narrow the search to see every one` : ""));
  const flush = (force = false) => {
    if (!waiting.length || (!force && reading())) return say();
    list.insert(waiting.splice(0));
    say();
  };
  const poll = async () => {
    if (signal.aborted) return;
    if (document.visibilityState === "visible") {
      const newest = Math.max(list.params.start, ...seen.values());
      try {
        const { end, ...p } = list.params;
        const page = await api.get("/api/v1/logs", { ...p, start: Math.max(p.start, newest - TAIL_LOOKBACK_MS), limit: TAIL_PAGE }, signal);
        flooded = Boolean(page.next_cursor);
        for (const rec of page.records) {
          if (seen.has(rec.log_id)) continue;
          seen.set(rec.log_id, rec.time_ms);
          waiting.push(rec);
        }
        for (const [id, t] of seen) if (t < newest - 2 * TAIL_LOOKBACK_MS) seen.delete(id);
        if (waiting.length > MAX_LINES) {
          waiting.sort((a, b) => b.time_ms - a.time_ms);
          waiting.length = MAX_LINES; // the newest wait; the reader pages back for the rest
        }
        flush();
      } catch (err) {
        if (err.name === "AbortError") return;
        mount(status, h("span", { class: "error" }, "Live tail: " + err.message + " (retrying)"));
      }
      polls += 1;
      if (polls % HISTOGRAM_EVERY === 0) redrawHistogram();
    }
    setTimeout(poll, TAIL_MS);
  };
  say();
  setTimeout(poll, TAIL_MS);
}
