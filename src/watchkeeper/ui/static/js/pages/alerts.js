// Alerts: what fires now, what fired before, the rules, silences and notification channels.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as fmt from "../format.js";
import { badge, card, empty, failed, kv, loading, pageHeader, table, tabs } from "../ui.js";
import { silenceForm } from "../alerting.js";

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
  const s = x.severity || "info";
  return badge(s, SEVERITY_TONE[s] || "muted");
}

function stateBadge(x) {
  const s = x.status;
  return badge(s, STATE_TONE[s] || "muted");
}

// Labels every alert of a rule shares (its name, id, severity) are shown elsewhere in the row.
const SHOWN_ELSEWHERE = new Set(["alertname", "rule", "severity"]);

function labelChips(x) {
  const l = Object.entries(x.labels).filter(([k]) => !SHOWN_ELSEWHERE.has(k));
  return l.length ? h("span", { class: "score-list" }, l.map(([k, v]) => badge(`${k}=${v}`))) : "–";
}

function traceLinks(x) {
  const ids = x.trace_ids;
  if (!ids.length) return "–";
  return h("span", { class: "examples" }, h("a", { href: "/traces/" + ids[0], class: "mono", title: "an example trace" }, ids[0].slice(0, 8)),
    ids.length > 1 ? h("span", { class: "sub", title: ids.slice(1).join("\n") }, ` +${ids.length - 1}`) : null);
}

/** A link to the silence form, pre-filled to match this alert's labels. */
function silenceLink(x) {
  const labels = x.labels;
  const keys = labels.rule ? ["rule"] : Object.keys(labels);
  const q = new URLSearchParams();
  keys.forEach((k) => q.append("m", `${k}=${labels[k]}`));
  return h("a", { class: "btn small", href: "/alerts/silences?" + q.toString(), "aria-label": `Silence ${x.rule_id}` }, "Silence");
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
  // The rule's kind says its unit (display.unit); an alert whose rule is gone has none.
  const fallback = (v) => (Math.abs(v) < 10 ? String(Math.round(v * 1000) / 1000) : fmt.compact(v));
  return (x.display && UNIT_FORMAT[x.display.unit]) || fallback;
}

function valueCell(x) {
  const v = x.value;
  const t = x.threshold;
  const f = valueFormat(x);
  return h("span", { class: "nowrap" }, h("b", {}, v == null ? "–" : f(v)),
    t == null ? null : h("div", { class: "cell-sub" }, `threshold ${x.comparison} ${f(t)}`));
}

async function rulesById(signal) {
  try {
    const rules = (await api.get("/api/v1/rules", {}, signal)).items;
    return new Map(rules.map((r) => [r.id, r]));
  } catch (err) {
    if (err instanceof api.AuthRequired) throw err;
    return new Map();
  }
}

function ruleName(x, rules) {
  // An alert names its rule; a history entry does not, so its rule is looked up.
  const r = rules.get(x.rule_id);
  return x.rule_name || (r && r.name) || x.rule_id;
}

function withRule(x, rules) {
  const r = rules.get(x.rule_id) || {};
  return { ...r, ...x, kind: r.kind };
}

async function active(el, signal) {
  const [body, rules] = await Promise.all([api.get("/api/v1/alerts", {}, signal), rulesById(signal)]);
  const items = body.items.filter((a) => ["firing", "pending"].includes(a.status)).map((a) => withRule(a, rules));
  if (!items.length) return mount(el, empty("All clear", "No alert is firing or pending."));
  mount(el, table([
    { title: "State", render: stateBadge },
    { title: "Severity", render: severity },
    { title: "Alert", render: (a) => [h("div", { class: "cell-main" }, ruleName(a, rules)),
      clipped(a.summary || a.rule_id)] },
    { title: "Value", render: valueCell },
    { title: "Labels", render: labelChips },
    { title: "Since", render: (a) => h("span", { class: "nowrap" }, fmt.ago(a.status === "firing" ? a.firing_since : a.pending_since)) },
    { title: "Examples", render: traceLinks },
    { title: "", render: silenceLink },
  ], items, { caption: "Active alerts" }));
}

const EVENT_TONE = { firing: "bad", repeat: "warn", resolved: "ok" };

async function history(el, signal) {
  const [body, rules] = await Promise.all([api.get("/api/v1/alerts/history", { limit: 200 }, signal), rulesById(signal)]);
  const items = body.items.map((a) => withRule(a, rules));
  if (!items.length) return mount(el, empty("No alert history yet", "Alerts that fire or resolve are listed here."));
  mount(el, table([
    { title: "Time", render: (a) => fmt.dateTime(a.at) },
    { title: "Event", render: (a) => { return badge(a.event, EVENT_TONE[a.event]); } },
    { title: "Severity", render: severity },
    { title: "Alert", render: (a) => ruleName(a, rules) },
    { title: "Value", render: valueCell },
    { title: "Labels", render: labelChips },
    { title: "Muted", render: (a) => a.muted ? badge(a.muted, "muted") : "" },
  ], items, { caption: "Alert history" }));
}

function ruleQuery(r) {
  const what = r.display.watches;
  const where = Object.entries(r.filters).filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
  return [h("div", {}, what), where ? h("div", { class: "cell-sub mono" }, where) : null];
}

async function rules(el, signal) {
  const items = (await api.get("/api/v1/rules", {}, signal)).items;
  if (!items.length) return mount(el, empty("No alert rules", "Define rules in the config file (alerting.rules) or POST /api/v1/rules."));
  const result = h("div", { role: "status", "aria-live": "polite" });
  const reload = () => rules(el, signal).catch((err) => failed(el, err, "rules"));
  mount(el, result, table([
    { title: "Rule", render: ruleCell },
    { title: "Severity", render: severity },
    { title: "Query", render: ruleQuery },
    { title: "Threshold", align: "right", render: thresholdText },
    { title: "Window", align: "right", render: (r) => fmt.duration(r.window) },
    { title: "For", align: "right", render: (r) => (r.for ? fmt.duration(r.for) : "–") },
    { title: "Enabled", render: (r) => (r.enabled ? badge("enabled", "ok") : badge("disabled")) },
    { title: "", render: (r) => ruleActions(r, result, reload) },
  ], items, { caption: "Alert rules" }));
}

function thresholdText(r) {
  return r.display.condition || `${r.comparison} ${valueFormat(r)(r.threshold)}`;
}

/** The rule's name; unfolds to everything else it says (labels, runbook, routing). */
function ruleCell(r) {
  const ann = r.annotations;
  const labels = Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(" ");
  const runbook = ann.runbook_url ? h("a", { href: ann.runbook_url, target: "_blank", rel: "noopener" }, ann.runbook_url) : null;
  return h("details", { class: "rule-details" },
    h("summary", {}, h("span", { class: "cell-main" }, r.name || r.id),
      h("div", { class: "cell-sub" }, r.description || r.id)),
    kv([["Id", r.id], ["Source", r.source], ["Summary", ann.summary],
      ["Runbook", runbook], ["Group by", r.group_by], ["Labels", labels],
      ["Channels", r.channels.join(", ") || "by routes"],
      ["Repeat every", r.repeat_interval ? fmt.duration(r.repeat_interval) : null],
      ["Min. spans", r.min_count || null]]));
}

function ruleActions(r, result, reload) {
  const id = encodeURIComponent(r.id);
  const enabled = r.enabled;
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
    h("button", { type: "button", class: "btn small", "aria-label": `Test rule ${r.name}`, onclick: run(async () => {
      const res = await api.post(`/api/v1/rules/${id}/test`, {});
      mount(result, h("div", { class: "notice" }, h("b", {}, `Test of ${r.name || r.id}: `), testSummary(res)));
    }) }, "Test"),
    h("button", { type: "button", class: "btn small", onclick: run(async () => {
      await api.post(`/api/v1/rules/${id}/${enabled ? "disable" : "enable"}`, {});
      await reload();
    }) }, enabled ? "Disable" : "Enable"));
}

function testSummary(res) {
  const obs = res.observations;
  const verdict = res.breaching ? badge("would fire", "bad") : badge("would not fire", "ok");
  if (!obs.length) return [verdict, " no data in the window"];
  return [verdict, " ", obs.slice(0, 5).map((o) => {
    const labels = Object.entries(o.labels).map(([k, v]) => `${k}=${v}`).join(" ") || "all";
    const v = o.value;
    return h("span", { class: "obs" }, `${labels}: ${v == null ? "no value" : Math.round(v * 10000) / 10000}` +
      ` over ${fmt.count(o.count, "span")}` + (o.breaching ? " ⚠" : ""));
  })];
}

async function silences(el, signal) {
  const items = (await api.get("/api/v1/silences", {}, signal)).items;
  const reload = () => silences(el, signal).catch((err) => failed(el, err, "silences"));
  const list = items.length ? table([
    { title: "State", render: (s) => s.active ? badge("active", "warn") : badge(s.starts_at > Date.now() ? "pending" : "expired") },
    { title: "Matchers", render: (s) => h("code", {}, s.matchers.map((m) =>
      `${m.name}${m.op}"${m.value}"`).join(", ")) },
    { title: "Comment", render: (s) => s.comment || "–" },
    { title: "By", render: (s) => s.created_by || "–" },
    { title: "Starts", render: (s) => fmt.dateTime(s.starts_at) },
    { title: "Ends", render: (s) => fmt.dateTime(s.ends_at) },
    { title: "", render: (s) => s.ends_at > Date.now() ? h("button", { type: "button", class: "btn small danger",
      onclick: async () => { await api.del("/api/v1/silences/" + encodeURIComponent(s.id)); await reload(); } }, "Expire") : null },
  ], items, { caption: "Silences" }) : empty("No silences", "Create one to mute matching alerts for a while.");
  mount(el, h("div", { class: "grid" },
    h("div", { class: "span-8" }, list),
    h("div", { class: "span-4" }, card("New silence", silenceForm(reload, url.params().getAll("m"))))));
}

async function channels(el, signal) {
  const [body, types] = await Promise.all([api.get("/api/v1/channels", {}, signal), api.get("/api/v1/channel-types", {}, signal)]);
  const items = body.items;
  const typeLabel = new Map(types.items.map((t) => [t.type, t.label]));
  if (!items.length) return mount(el, empty("No channels", "Add Slack, PagerDuty, webhook, e-mail… under alerting.channels in the config file."));
  const result = h("div", { role: "status", "aria-live": "polite" });
  mount(el, result, table([
    { title: "Channel", render: (c) => h("b", {}, c.name) },
    { title: "Type", render: (c) => badge(typeLabel.get(c.type) || c.type, "accent") },
    { title: "Severities", render: (c) => c.severities.length ? h("span", { class: "score-list" }, c.severities.map((x) => badge(x, SEVERITY_TONE[x] || "muted"))) : "all" },
    { title: "", render: (c) => h("button", { type: "button", class: "btn small", "aria-label": `Send test notification to ${c.name}`,
      onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          const res = await api.post(`/api/v1/channels/${encodeURIComponent(c.name)}/test`, {});
          mount(result, h("div", { class: "notice" }, `Test notification delivered to ${c.name} in ${fmt.ms(res.duration_ms)}`));
        } catch (err) {
          mount(result, h("div", { class: "error" }, `Test to ${c.name} failed: ${err.message}`));
        } finally {
          ev.target.disabled = false;
        }
      } }, "Send test notification") },
  ], items, { caption: "Notification channels" }));
}

const DELIVERY_TONE = { delivered: "ok", sent: "ok", failed: "bad", dead: "bad", pending: "warn", retrying: "warn" };

async function notifications(el, signal) {
  const items = (await api.get("/api/v1/notifications", { limit: 200 }, signal)).items;
  if (!items.length) return mount(el, empty("No deliveries yet", "Every notification sent to a channel, with its retries, is logged here."));
  mount(el, table([
    { title: "Time", render: (n) => fmt.dateTime(n.created_at) },
    { title: "Channel", render: (n) => h("b", {}, n.channel) },
    { title: "Alert", render: (n) => [h("div", { class: "cell-main" }, n.notification.rule_name || n.rule_id),
      clipped(n.notification.summary)] },
    { title: "Kind", render: (n) => { const s = n.notification.status; return badge(s, s === "firing" ? "bad" : s === "resolved" ? "ok" : "muted"); } },
    { title: "Delivery", render: (n) => badge(n.state, DELIVERY_TONE[n.state] || "muted") },
    { title: "Attempts", align: "right", render: (n) => n.attempts },
    { title: "Last error", render: (n) => h("span", { class: "cell-sub" }, n.last_error || "") },
  ], items, { caption: "Notification deliveries" }));
}
