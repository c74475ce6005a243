// The time range and the global filters (service, environment) read from the URL, turned into
// API parameters, and the picker that edits them.

import { h } from "./dom.js";
import * as url from "./url.js";

export const PRESETS = ["15m", "1h", "6h", "24h", "7d", "30d"];
const UNIT = { m: 60, h: 3600, d: 86400 };

export function presetSeconds(p) {
  const m = /^(\d+)([mhd])$/.exec(p || "");
  return m ? Number(m[1]) * UNIT[m[2]] : null;
}

/** A time in the URL: unix milliseconds (the API's unit) or ISO-8601. */
function parseTime(v) {
  if (!v) return null;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

/** The current range: {preset, startMs, endMs, live}. Custom ranges are not live. */
export function current(q = url.params(), now = Date.now()) {
  const start = parseTime(q.get("start"));
  const end = parseTime(q.get("end"));
  if (start !== null) {
    return { preset: null, startMs: start, endMs: end ?? now, live: false };
  }
  const preset = presetSeconds(q.get("range")) ? q.get("range") : "1h";
  return { preset, startMs: now - presetSeconds(preset) * 1000, endMs: now, live: q.get("live") !== "0" };
}

/** The smallest preset that holds `spanMs` of data (so at least 15 minutes; at most 30 days). */
export function presetFor(spanMs) {
  return PRESETS.find((p) => presetSeconds(p) * 1000 >= spanMs) || PRESETS.at(-1);
}

const STEPS = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/** A bucket size giving at most about `buckets` points over the range. */
export function stepFor(r, buckets = 60) {
  const span = (r.endMs - r.startMs) / 1000;
  return STEPS.find((st) => span / st <= buckets) || 86400;
}

/** API parameters for the range: fixed start/end, aligned to the step so buckets are stable. */
export function apiRange(r, stepS) {
  const stepMs = (stepS || 1) * 1000;
  const start = Math.floor(r.startMs / stepMs) * stepMs;
  return { start: Math.round(start), end: Math.round(r.endMs) };
}

/** The global filters of the URL (service, environment) as API params. */
export function filters(q = url.params()) {
  const out = {};
  for (const k of ["service", "environment"]) if (q.get(k)) out[k] = q.get(k);
  return out;
}

/** Params to carry a range and the global filters to another page (traces list...). */
export function carry(q = url.params()) {
  const out = {};
  for (const k of ["range", "start", "end", "service", "environment"]) if (q.get(k)) out[k] = q.get(k);
  return out;
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

/** The picker: preset buttons, a custom from/to form, and live refresh pause/resume. */
export function picker({ showLive = true, q = url.params() } = {}) {
  const r = current(q);
  const presets = h("div", { class: "seg", role: "group", "aria-label": "Time range" },
    PRESETS.map((p) => h("button", {
      type: "button", class: ["seg-btn", r.preset === p && "active"], "aria-pressed": String(r.preset === p),
      onclick: () => url.update({ range: p, start: null, end: null, cursor: null }),
    }, p)));
  const from = h("input", { type: "datetime-local", "aria-label": "From", value: toLocalInput(r.startMs) });
  const to = h("input", { type: "datetime-local", "aria-label": "To", value: toLocalInput(r.endMs) });
  const custom = h("details", { class: ["custom-range", !r.preset && "active"] },
    h("summary", { class: "seg-btn" }, r.preset ? "Custom" : shortRange(r)),
    h("form", { class: "popover", onsubmit: (ev) => {
      ev.preventDefault();
      const s = Date.parse(from.value);
      const e = Date.parse(to.value);
      if (Number.isNaN(s) || Number.isNaN(e) || e <= s) return;
      url.update({ start: new Date(s).toISOString(), end: new Date(e).toISOString(), range: null, cursor: null });
    } },
    h("label", {}, "From", from), h("label", {}, "To", to),
    h("button", { type: "submit", class: "btn primary" }, "Apply")));
  const live = showLive && r.preset ? h("button", {
    type: "button", class: ["btn", "live", r.live && "on"], "aria-pressed": String(r.live),
    title: r.live ? "Live: refreshing every 10 s (click to pause)" : "Paused (click to refresh live)",
    onclick: () => url.update({ live: r.live ? "0" : null }),
  }, h("span", { class: "dot", "aria-hidden": "true" }), r.live ? "Live" : "Paused") : null;
  return h("div", { class: "range-picker" }, presets, custom, live);
}

function shortRange(r) {
  const f = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
  return f.format(new Date(r.startMs)) + " → " + f.format(new Date(r.endMs));
}

/** A select bound to one URL param, options from `values`. */
export function selectFilter(name, label, values, { allLabel = "All", also = () => ({}) } = {}) {
  const q = url.params();
  const cur = q.get(name) || "";
  const opts = [...new Set([...(cur ? [cur] : []), ...values])];
  const onchange = (ev) => url.update({ [name]: ev.target.value, cursor: null, ...also(ev.target.value) });
  return h("label", { class: "filter" }, h("span", {}, label),
    h("select", { "aria-label": label, onchange },
      h("option", { value: "" }, allLabel),
      opts.map((v) => h("option", { value: v, selected: v === cur }, v))));
}
