// Alerts: what fires now, what fired before, the rules, silences and notification channels.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as fmt from "../format.js";
import { badge, card, empty, failed, kv, loading, pageHeader, table, tabs } from "../ui.js";
import { pick, toMs, labelsOf, silenceForm } from "../alerting.js";

const TABS = [["active", "Active"], ["history", "History"], ["rules", "Rules"], ["silences", "Silences"],
  ["channels", "Channels"], ["notifications", "Deliveries"]];
const SEVERITY_TONE = { critical: "bad", warning: "warn", info: "accent" };
const STATE_TONE = { firing: "bad", pending: "warn", resolved: "ok", inactive: "muted" };

export async function render(root, ctx) {
  const tab = TABS.some(([t]) => "/alerts/" + t === ctx.path) ? ctx.path.split("/")[2] : "active";
  const body = h("div", {}, loading());
  mount(root, pageHeader("Alerts", "Rules over spans and scores, silences and notification channels"),
    tabs(TABS.map(([id, label]) => ({ id, label, href: id === "active" ? "/alerts" : "/alerts/" + id })), tab, "Alert views"),
    body);
  const load = () => VIEWS[tab](body, ctx.signal).catch((err) => failed(body, err, label(tab)));
  ctx.live(load);
  await load();
}

/** A one-line, ellipsised detail with its full text on hover. */
const clipped = (text) => h("div", { class: "cell-sub", title: text }, text);
const label = (tab) => TABS.find(([t]) => t === tab)[1].toLowerCase();
const VIEWS = { active, history, rules, silences, channels, notifications };

function severity(x) {
  const s = pick(x, "severity") || "info";
  return badge(s, SEVERITY_TONE[s] || "muted");
}

function stateBadge(x) {
  const s = pick(x, "state", "status") || "unknown";
  return badge(s, STATE_TONE[s] || "muted");
}

// Labels every alert of a rule shares (its name, id, severity) are shown elsewhere in the row.
const SHOWN_ELSEWHERE = new Set(["alertname", "rule", "severity"]);

function labelChips(x) {
  const l = Object.entries(labelsOf(x)).filter(([k]) => !SHOWN_ELSEWHERE.has(k));
  return l.length ? h("span", { class: "score-list" }, l.map(([k, v]) => badge(`${k}=${v}`))) : "–";
}

function traceLinks(x) {
  const ids = pick(x, "trace_ids", "example_trace_ids") || [];
  if (!ids.length) return "–";
  return h("span", { class: "examples" }, h("a", { href: "/traces/" + ids[0], class: "mono", title: "an example trace" }, ids[0].slice(0, 8)),
    ids.length > 1 ? h("span", { class: "sub", title: ids.slice(1).join("\n") }, ` +${ids.length - 1}`) : null);
}

/** A link to the silence form, pre-filled to match this alert's labels. */
function silenceLink(x) {
  const labels = labelsOf(x);
  const keys = labels.rule ? ["rule"] : Object.keys(labels);
  const q = new URLSearchParams();
  keys.forEach((k) => q.append("m", `${k}=${labels[k]}`));
  return h("a", { class: "btn small", href: "/alerts/silences?" + q.toString(), "aria-label": `Silence ${pick(x, "rule_id")}` }, "Silence");
}

/** A rule value in the unit its kind gives (the rule's `display.unit`, from the server). */
const UNIT_FORMAT = {
  "%": (v) => fmt.pct(v, 1),
  ms: fmt.ms,
  s: fmt.seconds,
  USD: fmt.usd,
  x: (v) => Number(v).toFixed(2) + "×",
};

function valueFormat(x) {
  const display = pick(x, "display") || {};
  return UNIT_FORMAT[display.unit] || ((v) => (Math.abs(v) < 10 ? String(Math.round(v * 1000) / 1000) : fmt.compact(v)));
}

function valueCell(x) {
  const v = pick(x, "value", "observed");
  const t = pick(x, "threshold");
  const f = valueFormat(x);
  return h("span", { class: "nowrap" }, h("b", {}, v == null ? "–" : f(v)),
    t == null ? null : h("div", { class: "cell-sub" }, `threshold ${pick(x, "comparison") || ">"} ${f(t)}`));
}

async function rulesById(signal) {
  try {
    const rules = api.itemsOf(await api.get("/api/v1/rules", {}, signal), "rules");
    return new Map(rules.map((r) => [pick(r, "id", "rule_id"), r]));
  } catch (err) {
    if (err instanceof api.AuthRequired) throw err;
    return new Map();
  }
}

function ruleName(x, rules) {
  const r = rules.get(pick(x, "rule_id"));
  return pick(x, "rule_name", "name") || (r && pick(r, "name")) || pick(x, "rule_id");
}

function withRule(x, rules) {
  const r = rules.get(pick(x, "rule_id")) || {};
  return { ...r, ...x, severity: pick(x, "severity") || pick(r, "severity"), kind: pick(r, "kind") };
}

async function active(el, signal) {
  const [body, rules] = await Promise.all([api.get("/api/v1/alerts", {}, signal), rulesById(signal)]);
  const items = api.itemsOf(body, "alerts")
    .filter((a) => ["firing", "pending"].includes(pick(a, "status", "state"))).map((a) => withRule(a, rules));
  if (!items.length) return mount(el, empty("All clear", "No alert is firing or pending."));
  mount(el, table([
    { title: "State", render: stateBadge },
    { title: "Severity", render: severity },
    { title: "Alert", render: (a) => [h("div", { class: "cell-main" }, ruleName(a, rules)),
      clipped(pick(a, "summary", "description") || pick(a, "rule_id"))] },
    { title: "Value", render: valueCell },
    { title: "Labels", render: labelChips },
    { title: "Since", render: (a) => h("span", { class: "nowrap" }, fmt.ago(toMs(pick(a, "firing_since", "pending_since", "started_at")))) },
    { title: "Examples", render: traceLinks },
    { title: "", render: silenceLink },
  ], items, { caption: "Active alerts" }));
}

const EVENT_TONE = { firing: "bad", repeat: "warn", resolved: "ok" };

async function history(el, signal) {
  const [body, rules] = await Promise.all([api.get("/api/v1/alerts/history", { limit: 200 }, signal), rulesById(signal)]);
  const items = api.itemsOf(body, "alerts", "events").map((a) => withRule(a, rules));
  if (!items.length) return mount(el, empty("No alert history yet", "Alerts that fire or resolve are listed here."));
  mount(el, table([
    { title: "Time", render: (a) => fmt.dateTime(toMs(pick(a, "at", "started_at", "ts"))) },
    { title: "Event", render: (a) => { const e = pick(a, "event", "status", "state") || "?"; return badge(e, EVENT_TONE[e] || "muted"); } },
    { title: "Severity", render: severity },
    { title: "Alert", render: (a) => ruleName(a, rules) },
    { title: "Value", render: valueCell },
    { title: "Labels", render: labelChips },
    { title: "Muted", render: (a) => pick(a, "muted") ? badge(pick(a, "muted"), "muted") : "" },
  ], items, { caption: "Alert history" }));
}

function ruleQuery(r) {
  const q = pick(r, "query", "expr", "expression");
  if (typeof q === "string") return h("code", {}, q);
  const what = (pick(r, "display") || {}).watches || pick(r, "kind") || "–";
  const f = pick(r, "filters") || q || {};
  const where = Object.entries(f).filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
  return [h("div", {}, what), where ? h("div", { class: "cell-sub mono" }, where) : null];
}

async function rules(el, signal) {
  const items = api.itemsOf(await api.get("/api/v1/rules", {}, signal), "rules");
  if (!items.length) return mount(el, empty("No alert rules", "Define rules in the config file (alerting.rules) or POST /api/v1/rules."));
  const result = h("div", { role: "status", "aria-live": "polite" });
  const reload = () => rules(el, signal).catch((err) => failed(el, err, "rules"));
  mount(el, result, table([
    { title: "Rule", render: ruleCell },
    { title: "Severity", render: severity },
    { title: "Query", render: ruleQuery },
    { title: "Threshold", align: "right", render: thresholdText },
    { title: "Window", align: "right", render: (r) => fmt.seconds(pick(r, "window_s", "window")) },
    { title: "For", align: "right", render: (r) => (pick(r, "for_s", "for", "for_") ? fmt.seconds(pick(r, "for_s", "for", "for_")) : "–") },
    { title: "Enabled", render: (r) => (pick(r, "enabled") === false ? badge("disabled") : badge("enabled", "ok")) },
    { title: "", render: (r) => ruleActions(r, result, reload) },
  ], items, { caption: "Alert rules" }));
}

function thresholdText(r) {
  const condition = (pick(r, "display") || {}).condition;
  if (condition) return condition;
  const t = pick(r, "threshold");
  return `${pick(r, "comparison", "op") || ">"} ${t == null ? "–" : valueFormat(r)(t)}`;
}

/** The rule's name; unfolds to everything else it says (labels, runbook, routing). */
function ruleCell(r) {
  const ann = pick(r, "annotations") || {};
  const labels = Object.entries(pick(r, "labels") || {}).map(([k, v]) => `${k}=${v}`).join(" ");
  const runbook = ann.runbook_url ? h("a", { href: ann.runbook_url, target: "_blank", rel: "noopener" }, ann.runbook_url) : null;
  return h("details", { class: "rule-details" },
    h("summary", {}, h("span", { class: "cell-main" }, pick(r, "name", "id")),
      h("div", { class: "cell-sub" }, pick(r, "description") || pick(r, "id"))),
    kv([["Id", pick(r, "id")], ["Source", pick(r, "source")], ["Summary", ann.summary],
      ["Runbook", runbook], ["Group by", pick(r, "group_by")], ["Labels", labels],
      ["Channels", (pick(r, "channels") || []).join(", ") || "by routes"],
      ["Repeat every", pick(r, "repeat_interval") ? fmt.seconds(pick(r, "repeat_interval")) : null],
      ["Min. spans", pick(r, "min_count") || null]]));
}

function ruleActions(r, result, reload) {
  const id = encodeURIComponent(pick(r, "id", "rule_id", "name"));
  const enabled = pick(r, "enabled") !== false;
  const run = (fn) => async (ev) => {
    ev.target.disabled = true;
    try {
      await fn();
    } catch (err) {
      mount(result, h("div", { class: "error" }, err.message));
    } finally {
      ev.target.disabled = false;
    }
  };
  return h("span", { class: "page-tools" },
    h("button", { type: "button", class: "btn small", "aria-label": `Test rule ${pick(r, "name")}`, onclick: run(async () => {
      const res = await api.post(`/api/v1/rules/${id}/test`, {});
      mount(result, h("div", { class: "notice" }, h("b", {}, `Test of ${pick(r, "name", "id")}: `), testSummary(res)));
    }) }, "Test"),
    h("button", { type: "button", class: "btn small", onclick: run(async () => {
      await api.post(`/api/v1/rules/${id}/${enabled ? "disable" : "enable"}`, {});
      await reload();
    }) }, enabled ? "Disable" : "Enable"));
}

function testSummary(res) {
  if (!res || typeof res !== "object") return String(res);
  const obs = pick(res, "observations") || [];
  const verdict = pick(res, "breaching") ? badge("would fire", "bad") : badge("would not fire", "ok");
  if (!obs.length) return [verdict, " no data in the window"];
  return [verdict, " ", obs.slice(0, 5).map((o) => {
    const labels = Object.entries(pick(o, "labels") || {}).map(([k, v]) => `${k}=${v}`).join(" ") || "all";
    const v = pick(o, "value");
    return h("span", { class: "obs" }, `${labels}: ${v == null ? "no value" : Math.round(v * 10000) / 10000}` +
      (pick(o, "count") != null ? ` over ${fmt.count(pick(o, "count"), "span")}` : "") + (pick(o, "breaching") ? " ⚠" : ""));
  })];
}

function silenceActive(s) {
  const a = pick(s, "active");
  return a !== undefined ? Boolean(a) : toMs(pick(s, "ends_at")) > Date.now();
}

async function silences(el, signal) {
  const items = api.itemsOf(await api.get("/api/v1/silences", {}, signal), "silences");
  const reload = () => silences(el, signal).catch((err) => failed(el, err, "silences"));
  const list = items.length ? table([
    { title: "State", render: (s) => silenceActive(s) ? badge("active", "warn") : badge(toMs(pick(s, "starts_at")) > Date.now() ? "pending" : "expired") },
    { title: "Matchers", render: (s) => h("code", {}, (pick(s, "matchers") || []).map((m) =>
      `${m.name}${m.op || (m.is_regex ? "=~" : "=")}"${m.value}"`).join(", ")) },
    { title: "Comment", render: (s) => pick(s, "comment") || "–" },
    { title: "By", render: (s) => pick(s, "created_by", "author") || "–" },
    { title: "Starts", render: (s) => fmt.dateTime(toMs(pick(s, "starts_at"))) },
    { title: "Ends", render: (s) => fmt.dateTime(toMs(pick(s, "ends_at"))) },
    { title: "", render: (s) => toMs(pick(s, "ends_at")) > Date.now() ? h("button", { type: "button", class: "btn small danger",
      onclick: async () => { await api.del("/api/v1/silences/" + encodeURIComponent(pick(s, "id", "silence_id"))); await reload(); } }, "Expire") : null },
  ], items, { caption: "Silences" }) : empty("No silences", "Create one to mute matching alerts for a while.");
  mount(el, h("div", { class: "grid" },
    h("div", { class: "span-8" }, list),
    h("div", { class: "span-4" }, card("New silence", silenceForm(reload, url.params().getAll("m"))))));
}

async function channels(el, signal) {
  const [body, types] = await Promise.all([api.get("/api/v1/channels", {}, signal), api.get("/api/v1/channel-types", {}, signal)]);
  const items = api.itemsOf(body, "channels");
  const typeLabel = new Map(types.items.map((t) => [t.type, t.label]));
  if (!items.length) return mount(el, empty("No channels", "Add Slack, PagerDuty, webhook, e-mail… under alerting.channels in the config file."));
  const result = h("div", { role: "status", "aria-live": "polite" });
  mount(el, result, table([
    { title: "Channel", render: (c) => h("b", {}, pick(c, "name")) },
    { title: "Type", render: (c) => badge(typeLabel.get(pick(c, "type")) || pick(c, "type") || "?", "accent") },
    { title: "Severities", render: (c) => { const s = pick(c, "severities"); return Array.isArray(s) && s.length ? h("span", { class: "score-list" }, s.map((x) => badge(x, SEVERITY_TONE[x] || "muted"))) : "all"; } },
    { title: "", render: (c) => h("button", { type: "button", class: "btn small", "aria-label": `Send test notification to ${pick(c, "name")}`,
      onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          const res = await api.post(`/api/v1/channels/${encodeURIComponent(pick(c, "name"))}/test`, {});
          const took = res && pick(res, "duration_ms") != null ? ` in ${fmt.ms(pick(res, "duration_ms"))}` : "";
          mount(result, h("div", { class: "notice" }, `Test notification delivered to ${pick(c, "name")}${took}`));
        } catch (err) {
          mount(result, h("div", { class: "error" }, `Test to ${pick(c, "name")} failed: ${err.message}`));
        } finally {
          ev.target.disabled = false;
        }
      } }, "Send test notification") },
  ], items, { caption: "Notification channels" }));
}

const DELIVERY_TONE = { delivered: "ok", sent: "ok", failed: "bad", dead: "bad", pending: "warn", retrying: "warn" };

async function notifications(el, signal) {
  const items = api.itemsOf(await api.get("/api/v1/notifications", { limit: 200 }, signal), "notifications", "deliveries");
  if (!items.length) return mount(el, empty("No deliveries yet", "Every notification sent to a channel, with its retries, is logged here."));
  const note = (n) => pick(n, "notification") || {};
  mount(el, table([
    { title: "Time", render: (n) => fmt.dateTime(toMs(pick(n, "created_at", "at", "ts"))) },
    { title: "Channel", render: (n) => h("b", {}, pick(n, "channel", "channel_name")) },
    { title: "Alert", render: (n) => [h("div", { class: "cell-main" }, pick(note(n), "rule_name") || pick(n, "rule_id")),
      clipped(pick(note(n), "summary") || "")] },
    { title: "Kind", render: (n) => { const s = pick(note(n), "status") || pick(n, "kind"); return s ? badge(s, s === "firing" ? "bad" : s === "resolved" ? "ok" : "muted") : "–"; } },
    { title: "Delivery", render: (n) => { const s = pick(n, "state", "status") || "?"; return badge(s, DELIVERY_TONE[s] || "muted"); } },
    { title: "Attempts", align: "right", render: (n) => pick(n, "attempts") ?? "–" },
    { title: "Last error", render: (n) => h("span", { class: "cell-sub" }, pick(n, "last_error", "error") || "") },
  ], items, { caption: "Notification deliveries" }));
}
