// Audit log (admins): every change, who made it, from where, and what it changed.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as fmt from "../format.js";
import { badge, empty, failed, loading, pageHeader, table } from "../ui.js";

const PAGE = 100;
const FILTERS = [
  { param: "action", label: "Action", placeholder: "rule.* or key.revoke" },
  { param: "actor", label: "Actor", placeholder: "name or kind (key, user, cli)" },
  { param: "target", label: "Target", placeholder: "rule checkout-latency" },
  { param: "project", label: "Project", placeholder: "any" },
];

export async function render(root, ctx) {
  const q = url.params();
  const list = h("div", {}, loading());
  const more = h("div", { class: "row-end" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter the audit log",
    onsubmit: (ev) => {
      ev.preventDefault();
      const data = new FormData(ev.target);
      url.update(Object.fromEntries(FILTERS.map((f) => [f.param, data.get(f.param) || null])));
    } },
  FILTERS.map((f) => h("label", { class: "field" }, f.label,
    h("input", { name: f.param, value: q.get(f.param) || "", placeholder: f.placeholder, autocomplete: "off" }))),
  h("button", { type: "submit", class: "btn" }, "Filter"));
  const exportLink = h("a", { class: "btn ghost", href: "#", onclick: (ev) => { ev.preventDefault(); download(q); } }, "Export JSON lines");
  mount(root, pageHeader("Audit log", "Every change: who, when, from where, before → after (secrets masked)", exportLink), form, list, more);
  const params = Object.fromEntries(FILTERS.map((f) => [f.param, q.get(f.param)]));
  let rows = [];
  const load = async (beforeSeq) => {
    try {
      const body = await api.get("/api/v1/audit", { ...params, limit: PAGE, before_seq: beforeSeq }, ctx.signal);
      rows = beforeSeq ? rows.concat(body.items) : body.items;
      draw(list, rows);
      mount(more, body.next_before_seq
        ? h("button", { type: "button", class: "btn", onclick: () => load(body.next_before_seq) }, "Older entries")
        : null);
    } catch (err) {
      failed(list, err, "audit entries");
    }
  };
  ctx.live(() => load());
  await load();
}

function draw(el, rows) {
  if (!rows.length) {
    mount(el, empty("No changes recorded", "Changes to keys, rules, silences, channels and settings appear here."));
    return;
  }
  mount(el, table([
    { title: "Time", render: (e) => h("span", { title: `#${e.seq} · sha256 ${e.hash}` }, fmt.dateTime(e.at)) },
    { title: "Actor", render: (e) => h("span", {}, badge(e.actor_kind), " ", e.actor) },
    { title: "From", render: (e) => h("span", { title: e.user_agent }, e.address) },
    { title: "Action", render: (e) => h("code", {}, e.action) },
    { title: "Target", render: (e) => e.target },
    { title: "Project", render: (e) => e.project || "(server)" },
    { title: "Change", render: (e) => change(e) },
  ], rows, { caption: "Audit log entries, newest first",
    rowClass: () => "audit-row" }));
}

// What changed: the fields whose values differ, each as before → after.
function change(e) {
  const before = e.before && typeof e.before === "object" ? e.before : {};
  const after = e.after && typeof e.after === "object" ? e.after : {};
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  if (!keys.length) return "";
  const show = (v) => (v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
  return h("details", {}, h("summary", {}, keys.length === 1 ? keys[0] : `${keys.length} fields`),
    h("dl", { class: "kv" }, keys.map((k) => [h("dt", {}, k),
      h("dd", { class: "mono" }, `${show(before[k])} → ${show(after[k])}`)])));
}

// The export needs the key header, so it is fetched and handed to the browser as a file.
async function download(q) {
  const params = new URLSearchParams();
  for (const f of FILTERS) if (q.get(f.param)) params.set(f.param, q.get(f.param));
  const headers = {};
  if (api.getKey()) headers.Authorization = "Bearer " + api.getKey();
  const res = await fetch("/api/v1/audit/export?" + params, { headers });
  if (!res.ok) return;
  const link = h("a", { href: URL.createObjectURL(await res.blob()), download: "watchkeeper-audit.jsonl" });
  document.body.append(link);
  link.click();
  link.remove();
}
