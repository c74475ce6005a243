// Log records as the Logs page and the trace view show them: the search syntax parsed into
// the API's parameters, severity names and colours, a record's one-line view and every one
// of its fields, and the records of one trace (paged through, capped).

import { h } from "./dom.js";
import * as api from "./api.js";
import * as url from "./url.js";
import * as fmt from "./format.js";
import { cssVar } from "./colors.js";

/** The severity ranges, least to most severe, as the API names them. */
export const SEVERITIES = ["trace", "debug", "info", "warn", "error", "fatal"];
const SEVERITY_ALIASES = { warning: "warn", err: "error", critical: "fatal", crit: "fatal", dbg: "debug" };
const SEVERITY_VAR = {
  trace: "--c-muted", debug: "--c-2", info: "--c-ok", warn: "--c-warn", error: "--c-bad",
  fatal: "--c-5", unspecified: "--c-muted",
};

/** The colour of a severity range (the theme's: errors red and warnings amber, as elsewhere). */
export const severityColor = (name) => cssVar(SEVERITY_VAR[name] || "--c-muted");

/** The syntax the search box takes, shown beside it. */
export const SYNTAX = [
  ["timeout", "a word in the body (whole word, any case)"],
  ['"payment failed"', "a phrase"],
  ["service:checkout", "the service (repeat for several)"],
  ["severity:warn", "at least this severity (trace debug info warn error fatal)"],
  ["order.id=42", "an attribute equals a value (quote values with spaces)"],
  ["trace:4bf9…", "the records of a trace (span: for a span)"],
];

const TOKEN = /(-?)([A-Za-z0-9_.-]+)(:|=)("([^"]*)"?|\S*)|"([^"]*)"?|(\S+)/g;
const HEX = { trace: /^[0-9a-f]{32}$/, span: /^[0-9a-f]{16}$/ };

/**
 * The search box's text as API parameters and what could not be used:
 * {params: {q, service: [], severity, attr: [], trace_id, span_id}, errors: [text]}.
 * Every term must hold (AND); there is no OR nor negation in the API.
 */
export function parseQuery(text) {
  const params = { service: [], attr: [] };
  const words = [];
  const errors = [];
  for (const m of String(text || "").matchAll(TOKEN)) {
    const [whole, neg, key, op, rawValue, quoted, phrase, word] = m;
    if (phrase !== undefined) { if (/\w/.test(phrase)) words.push(`"${phrase}"`); continue; }
    if (word !== undefined) {
      if (/^-\S/.test(word)) errors.push(`${word}: negation is not supported`);
      else if (/\w/.test(word)) words.push(word);
      else errors.push(`${word}: not a word`);
      continue;
    }
    const value = quoted !== undefined ? quoted : rawValue;
    if (neg) { errors.push(`${whole}: negation is not supported`); continue; }
    if (op === "=") { params.attr.push(`${key}=${value}`); continue; }
    const name = key.toLowerCase();
    if (name === "service") {
      if (value) params.service.push(value); else errors.push(`${whole}: which service?`);
    } else if (name === "severity" || name === "level") {
      const sev = severityParam(value);
      if (sev) params.severity = maxSeverity(params.severity, sev);
      else errors.push(`${whole}: not one of ${SEVERITIES.join(", ")}`);
    } else if (name === "trace" || name === "trace_id" || name === "span" || name === "span_id") {
      const kind = name.startsWith("trace") ? "trace" : "span";
      if (HEX[kind].test(value.toLowerCase())) params[kind + "_id"] = value.toLowerCase();
      else errors.push(`${whole}: a ${kind} id is ${kind === "trace" ? 32 : 16} hex digits`);
    } else if (/\w/.test(whole)) {
      words.push(whole); // "http://x" or "12:30": a word of the body, not a field
    }
  }
  if (words.length) params.q = words.join(" ");
  return { params, errors };
}

/** A severity as the API takes it (a range name), or null. */
export function severityParam(value) {
  const v = String(value || "").toLowerCase();
  const name = SEVERITY_ALIASES[v] || v;
  return SEVERITIES.includes(name) ? name : null;
}

function maxSeverity(a, b) {
  return !a || SEVERITIES.indexOf(b) > SEVERITIES.indexOf(a) ? b : a;
}

/** A term of the search syntax for `key = value` (quoted when it has to be). */
export function term(key, value) {
  const v = String(value);
  return /[\s"]/.test(v) || v === "" ? `${key}="${v.replace(/"/g, "")}"` : `${key}${v}`;
}

/** The trace page's URL for a record (its span selected when it has one). */
export function traceHref(rec) {
  return url.href("/traces/" + rec.trace_id, rec.span_id ? { span: rec.span_id } : {});
}

/** A link to one line: the second around it, its service, the line open (`line`). */
export function lineHref(rec) {
  return url.href("/logs", { start: new Date(rec.time_ms - 1000).toISOString(),
    end: new Date(rec.time_ms + 1000).toISOString(), service: rec.service, line: rec.log_id });
}

/** A severity badge coloured as the histogram. */
export function severityBadge(rec) {
  const name = rec.severity || "unspecified";
  const text = rec.severity_text || name;
  return h("span", { class: ["sev", "sev-" + name], title: `${name} (${rec.severity_number})` }, text);
}

function observedMs(rec) {
  return rec.observed_ms || null;
}

function attrRows(obj, onAdd) {
  const rows = Object.entries(obj || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!rows.length) return h("p", { class: "sub" }, "none");
  return h("table", { class: "attr-table" }, h("tbody", {}, rows.map(([k, v]) => {
    const text = typeof v === "string" ? v : JSON.stringify(v);
    const add = onAdd && /^[A-Za-z0-9_.-]{1,200}$/.test(k) ? h("button", {
      type: "button", class: "btn small ghost", title: `Search for ${k}=${text}`,
      "aria-label": `Filter by ${k}`, onclick: () => onAdd(term(k + "=", text)) }, "+") : null;
    return h("tr", {}, h("td", {}, k), h("td", {}, text), onAdd ? h("td", { class: "num" }, add) : null);
  })));
}

function bodyView(body) {
  if (/^[[{]/.test(body)) {
    try {
      return h("pre", { class: "log-body-full" }, JSON.stringify(JSON.parse(body), null, 2));
    } catch { /* a body that only looks like JSON */ }
  }
  return h("pre", { class: "log-body-full" }, body);
}

/**
 * Every field of a record: body, times, severity, service, trace and span (links), scope,
 * attributes and resource. `onAdd(term)` adds a filter term from an attribute (optional);
 * `onSpan(spanId)` selects the span instead of linking to the trace (the trace view).
 */
export function recordDetail(rec, { onAdd, onSpan } = {}) {
  const obs = observedMs(rec);
  const field = (k, v) => (v === null || v === undefined || v === "" ? null : [h("dt", {}, k), h("dd", {}, v)]);
  const traceLink = rec.trace_id ? h("a", { href: traceHref(rec), class: "mono", "data-testid": "log-trace-link" }, rec.trace_id) : null;
  const spanLink = rec.span_id ? (onSpan
    ? h("button", { type: "button", class: "btn small mono", onclick: () => onSpan(rec.span_id) }, rec.span_id)
    : h("a", { href: traceHref(rec), class: "mono" }, rec.span_id)) : null;
  return h("div", { class: "log-detail", "data-testid": "log-detail" },
    bodyView(rec.body),
    h("dl", { class: "kv" },
      field("Time", `${fmt.dateTime(rec.time_ms)}.${String(rec.time_ms % 1000).padStart(3, "0")} (${new Date(rec.time_ms).toISOString()})`),
      field("Observed", obs ? `${fmt.dateTime(obs)}.${String(obs % 1000).padStart(3, "0")}` : null),
      field("Severity", `${rec.severity_text || "–"} · ${rec.severity} (${rec.severity_number})`),
      field("Service", rec.service), field("Environment", rec.environment), field("Host", rec.host),
      field("Trace", traceLink), field("Span", spanLink),
      field("Scope", rec.scope), field("Event", rec.event_name),
      field("Log id", [h("span", { class: "mono" }, rec.log_id), " ",
        h("a", { href: lineHref(rec), "data-testid": "line-link", title: "A link that opens this line" }, "link to this line")])),
    h("h3", {}, "Attributes"), attrRows(rec.attributes, onAdd),
    h("h3", {}, "Resource"), attrRows(rec.resource, onAdd && null));
}

const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

/** A line's time to the millisecond: "14:03:07.583" today, "Dec 5 14:03:07.583" before. */
export function lineTime(tMs, now = Date.now()) {
  const d = new Date(tMs);
  const clock = `${fmt.time(tMs)}.${String(d.getMilliseconds()).padStart(3, "0")}`;
  return d.toDateString() === new Date(now).toDateString() ? clock : `${dayFmt.format(d)} ${clock}`;
}

/** One line: time (or, with `t0`, the offset from it), severity, service and the body's first line. */
export function recordLine(rec, { showService = true, extra = null, t0 = null } = {}) {
  const first = String(rec.body).split("\n", 1)[0];
  const at = lineTime(rec.time_ms);
  return [
    h("span", { class: "log-time mono", title: t0 === null ? fmt.dateTime(rec.time_ms) : at },
      t0 === null ? at : (rec.time_ms < t0 ? "−" + fmt.ms(t0 - rec.time_ms) : "+" + fmt.ms(rec.time_ms - t0))),
    severityBadge(rec),
    showService ? h("span", { class: "log-svc", title: rec.service }, rec.service) : null,
    h("span", { class: "log-body", title: first.length > 200 ? null : first }, first),
    extra,
  ];
}

/**
 * A line of a list (an <li>): its one-line view, and every field under it on click or
 * Enter; arrows (and j/k) move between lines. opts: those of recordLine and recordDetail.
 */
export function lineItem(rec, opts = {}) {
  const li = h("li", { class: ["log-line", "sev-row-" + rec.severity], tabindex: "0", "data-log": rec.log_id,
    "aria-expanded": "false" }, h("div", { class: "log-summary" }, recordLine(rec, opts)));
  const toggle = (ev) => {
    if (ev.target.closest("a, button") || (ev.type === "click" && !ev.target.closest(".log-summary"))) return;
    if (ev.type === "click" && String(window.getSelection() || "")) return; // selecting text
    const open = li.getAttribute("aria-expanded") === "true";
    li.setAttribute("aria-expanded", String(!open));
    if (open) li.querySelector(".log-detail")?.remove();
    else li.append(recordDetail(rec, opts));
  };
  li.addEventListener("click", toggle);
  li.addEventListener("keydown", (ev) => {
    if (ev.target !== li) return;
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); toggle(ev); }
    else if (ev.key === "ArrowDown" || ev.key === "j") { ev.preventDefault(); li.nextElementSibling?.focus(); }
    else if (ev.key === "ArrowUp" || ev.key === "k") { ev.preventDefault(); li.previousElementSibling?.focus(); }
  });
  return li;
}

export const TRACE_CAP = 5000;
export const TRACE_MARGIN_MS = 15 * 60_000;

/**
 * The records of a trace between `startMs` and `endMs` (plus a margin: a log line may be
 * written just before or after its spans), oldest first; at most TRACE_CAP (the newest).
 * {records, more}.
 */
export async function traceLogs(traceId, startMs, endMs, signal) {
  const params = { trace_id: traceId, start: Math.max(0, Math.floor(startMs - TRACE_MARGIN_MS)),
    end: Math.ceil(endMs + TRACE_MARGIN_MS), limit: 1000 };
  const records = [];
  let cursor = null;
  do {
    const page = await api.get("/api/v1/logs", { ...params, cursor }, signal);
    records.push(...page.records);
    cursor = page.next_cursor;
  } while (cursor && records.length < TRACE_CAP);
  return { records: records.slice(0, TRACE_CAP).reverse(), more: Boolean(cursor) };
}
