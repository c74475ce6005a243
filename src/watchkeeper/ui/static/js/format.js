// Number, time and money formatting shared by every page.

const nf = new Intl.NumberFormat("en-US");

export function int(n) {
  return n === null || n === undefined ? "–" : nf.format(Math.round(n));
}

/** Compact counts: 1.2k, 3.4M. */
export function compact(n) {
  if (n === null || n === undefined) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "B";
  if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e3) return (n / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
  return String(Math.round(n * 100) / 100);
}

export function ms(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v === 0) return "0 ms";
  if (v >= 60000) return (v / 60000).toFixed(1) + " min";
  if (v >= 10000) return (v / 1000).toFixed(1) + " s";
  if (v >= 1000) return (v / 1000).toFixed(2) + " s";
  if (v >= 10) return Math.round(v) + " ms";
  return v.toFixed(1) + " ms";
}

/** Axis labels of durations: short and without needless decimals ("0", "250 ms", "2.5 s"). */
export function msAxis(v) {
  if (!v) return "0";
  if (v >= 1000) return Number((v / 1000).toFixed(2)) + " s";
  return Number(v.toFixed(v < 1 ? 2 : 1)) + " ms";
}

export function pct(r, digits = 1) {
  if (r === null || r === undefined || Number.isNaN(r)) return "–";
  const p = r * 100;
  if (p > 99.9 && p < 100) return p.toFixed(Math.max(digits, 2)) + "%";
  return p.toFixed(digits) + "%";
}

const usdSig = new Intl.NumberFormat("en-US", { minimumSignificantDigits: 2, maximumSignificantDigits: 2 });
const usdCents = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/**
 * Money, the one formatter every page uses: two significant digits below a dollar
 * ($0.000024, $0.0031, $0.50), cents below $1,000 ($1.23), whole dollars above ($1,234).
 */
export function usd(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v === 0) return "$0";
  const sign = v < 0 ? "-" : "";
  const a = Math.abs(v);
  if (a < 1) return sign + "$" + usdSig.format(a);
  if (a < 1000) return sign + "$" + usdCents.format(a);
  return sign + "$" + nf.format(Math.round(a));
}

/** A count and its noun, singular for one: "1 timeout", "3 timeouts", "1,200 requests". */
export function count(n, singular, pluralForm = singular + "s") {
  return int(n) + " " + plural(singular, n, pluralForm);
}

/** The noun alone for a count: plural("timeout", 1) → "timeout". */
export function plural(singular, n, pluralForm = singular + "s") {
  return Math.round(n) === 1 ? singular : pluralForm;
}

const timeFmt = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullFmt = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

/** A unix-ms timestamp as "Nov 23, 18:04:05". */
export function dateTime(tMs) {
  return tMs ? fullFmt.format(new Date(tMs)) : "–";
}

/** A row timestamp: the time of day for today, else the date and minute. */
export function when(tMs, now = Date.now()) {
  const d = new Date(tMs);
  if (d.toDateString() === new Date(now).toDateString()) return timeFmt.format(d);
  return dayFmt.format(d) + ", " + timeFmt.format(d).slice(0, 5);
}

export function time(tMs) {
  return timeFmt.format(new Date(tMs));
}

/** Axis label of a time tick: hh:mm for short spans, "Nov 23" across days. */
export function tick(tMs, spanMs) {
  const d = new Date(tMs);
  if (spanMs > 3 * 86400e3) return dayFmt.format(d);
  const hhmm = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  if (spanMs > 86400e3) return dayFmt.format(d) + " " + hhmm;
  return hhmm;
}

export function ago(tMs, now = Date.now()) {
  if (!tMs) return "–";
  const s = Math.max(0, (now - tMs) / 1000);
  if (s < 60) return Math.round(s) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}

/** A duration in seconds as "5m", "2h", "1d 3h". */
export function seconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return Math.round(s) + "s";
  if (s < 3600) return Math.round(s / 60) + "m";
  if (s < 86400) return (s / 3600).toFixed(s % 3600 ? 1 : 0) + "h";
  return (s / 86400).toFixed(s % 86400 ? 1 : 0) + "d";
}

/** A duration in milliseconds (the API's unit) as "5m", "2h", "1d 3h". */
export function duration(ms) {
  return ms === null || ms === undefined ? "–" : seconds(ms / 1000);
}
