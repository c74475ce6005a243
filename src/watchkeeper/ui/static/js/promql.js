// Metric queries through our Prometheus API (/prometheus/api/v1): range and instant queries
// turned into chart series, legends ("{{job}} {{instance}}"), dashboard variables, and the
// formatting of each panel unit.

import * as api from "./api.js";
import * as fmt from "./format.js";

const BASE = "/prometheus/api/v1";

/** The Prometheus API's answer, or an ApiError with its message (a parse error says where). */
async function prom(path, params, signal) {
  const body = await api.get(BASE + path, params, signal);
  if (!body || body.status !== "success") throw new api.ApiError(400, (body && body.error) || "query failed");
  return body.data;
}

/** Seconds as the Prometheus API takes them. */
const secs = (ms) => (ms / 1000).toFixed(3);

/** A range query: {times (ms), series: [{labels, values aligned with times (null: no sample)}]}. */
export async function queryRange(expr, startMs, endMs, stepS, signal) {
  const stepMs = stepS * 1000;
  const start = Math.floor(startMs / stepMs) * stepMs;
  // The last point at or after the end: a series younger than one step still shows.
  const end = Math.ceil(endMs / stepMs) * stepMs;
  const data = await prom("/query_range", { query: expr, start: secs(start), end: secs(end), step: stepS }, signal);
  const times = [];
  for (let t = start; t <= end; t += stepMs) times.push(t);
  const index = new Map(times.map((t, i) => [t, i]));
  const series = data.result.map((r) => {
    const values = times.map(() => null);
    for (const [t, v] of r.values || []) {
      const i = index.get(Math.round(Number(t) * 1000));
      const n = Number(v);
      if (i !== undefined && Number.isFinite(n)) values[i] = n;
    }
    return { labels: r.metric || {}, values };
  });
  return { times, series };
}

/** An instant query at `atMs`: [{labels, value}] (a scalar answer is one unlabelled row). */
export async function queryInstant(expr, atMs, signal) {
  const data = await prom("/query", { query: expr, time: secs(atMs) }, signal);
  if (data.resultType === "scalar") return [{ labels: {}, value: Number(data.result[1]) }];
  return data.result.map((r) => ({ labels: r.metric || {}, value: Number(r.value[1]) }));
}

/** Every metric name of the project (ever seen, so a stopped exporter is not "not installed"). */
export async function metricNames(signal) {
  return new Set(await prom("/label/__name__/values", {}, signal));
}

/** Each metric family's {type, help, unit}. */
export async function metadata(signal) {
  const data = await prom("/metadata", {}, signal);
  const out = {};
  for (const [name, entries] of Object.entries(data)) out[name] = entries[0];
  return out;
}

/** The values of a label, optionally among the series of a selector. */
export async function labelValues(label, match, signal) {
  return prom(`/label/${encodeURIComponent(label)}/values`, match ? { "match[]": match } : {}, signal);
}

/** The series of a selector (label sets) within a range. */
export async function series(match, startMs, endMs, signal) {
  return prom("/series", { "match[]": match, start: secs(startMs), end: secs(endMs) }, signal);
}

/** A legend: "{{job}} {{instance}}" filled from labels; without one, the label set. */
export function legend(format, labels) {
  if (format) return format.replace(/\{\{\s*([A-Za-z_][\w]*)\s*\}\}/g, (_, k) => labels[k] ?? "").trim() || format;
  const { __name__: name, ...rest } = labels;
  const inner = Object.entries(rest).map(([k, v]) => `${k}="${v}"`).join(", ");
  return (name || "") + (inner ? `{${inner}}` : "") || "value";
}

/** A regex matching exactly `v` (for a variable's value inside =~"..."). */
export function regexEscape(v) {
  return v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/"/g, '\\"');
}

/** Replace $job, $instance, $service, $environment by their values ("" or absent: all). */
export function substitute(expr, vars) {
  return expr.replace(/\$(service|environment|job|instance)\b/g, (_, name) =>
    vars[name] ? regexEscape(vars[name]) : ".*");
}

const bytesUnits = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** A number in bytes: "1.5 GiB". */
export function bytes(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  let i = 0;
  let a = Math.abs(v);
  while (a >= 1024 && i < bytesUnits.length - 1) { a /= 1024; i += 1; }
  const n = (v < 0 ? -a : a);
  return Number(n.toFixed(a >= 100 || (i === 0 && a >= 10) ? 0 : a >= 10 ? 1 : 2)) + " " + bytesUnits[i];
}

/** Plain numbers: compact above 1,000, two significant digits below 1 (0.0023). */
export function number(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v !== 0 && Math.abs(v) < 1) return String(Number(v.toPrecision(2)));
  return fmt.compact(v);
}

/** Seconds, from microseconds to days. */
function durationS(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v !== 0 && Math.abs(v) < 1) return fmt.ms(v * 1000);
  if (Math.abs(v) < 60) return Number(v.toFixed(2)) + " s";
  return fmt.seconds(v);
}

/** The formatter of a panel's unit (Grafana's unit ids). */
export function formatter(unit) {
  switch (unit) {
    case "percentunit": return (v) => (v === null || !Number.isFinite(v) ? "–" : fmt.pct(v, Math.abs(v) < 0.1 ? 2 : 1));
    case "bytes": return bytes;
    case "Bps": return (v) => bytes(v) + "/s";
    case "s": return durationS;
    case "ms": return fmt.ms;
    case "reqps": return (v) => number(v) + " req/s";
    case "ops": return (v) => number(v) + "/s";
    case "currencyUSD": return fmt.usd;
    default: return number;
  }
}
