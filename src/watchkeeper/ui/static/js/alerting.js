// The form that creates a silence, and helpers the alerting pages share.

import { h, mount } from "./dom.js";
import * as api from "./api.js";

const DURATIONS_S = [["30m", 1800], ["1h", 3600], ["2h", 7200], ["4h", 14400], ["12h", 43200], ["1d", 86400], ["7d", 604800]];
const OPS = ["=", "!=", "=~", "!~"];

function matcherRow(remove, preset = {}) {
  const row = h("div", { class: "matcher" },
    h("input", { name: "m-name", placeholder: "label", "aria-label": "Matcher label", required: true, value: preset.name || "" }),
    h("select", { name: "m-op", "aria-label": "Matcher operator" }, OPS.map((o) => h("option", { value: o, selected: o === (preset.op || "=") }, o))),
    h("input", { name: "m-value", placeholder: "value", "aria-label": "Matcher value", required: true, value: preset.value || "" }),
    h("button", { type: "button", class: "btn small ghost", "aria-label": "Remove matcher", onclick: () => remove(row) }, "×"));
  return row;
}

/** Parse "name=value", "name!=value", "name=~re" into a matcher. */
export function parseMatcher(text) {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/.exec(text || "");
  return m ? { name: m[1], op: m[2], value: m[3].replace(/^"(.*)"$/, "$1") } : null;
}

/**
 * A form posting a silence: matchers (pre-filled from "name=value" strings), duration,
 * comment, author; calls `done` on success.
 */
export function silenceForm(done, presets = []) {
  const rows = h("div", { class: "matchers" });
  const remove = (row) => { if (rows.children.length > 1) row.remove(); };
  const parsed = presets.map(parseMatcher).filter(Boolean);
  (parsed.length ? parsed : [{}]).forEach((p) => rows.append(matcherRow(remove, p)));
  const status = h("div", { role: "status", "aria-live": "polite" });
  const form = h("form", { class: "silence-form", "aria-label": "New silence", onsubmit: async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const names = fd.getAll("m-name");
    const ops = fd.getAll("m-op");
    const values = fd.getAll("m-value");
    const matchers = names.map((name, i) => ({ name: String(name).trim(), op: ops[i], value: String(values[i]).trim() }));
    const durationMs = Number(fd.get("duration")) * 1000;
    const now = Date.now();
    const body = {
      matchers, starts_at: now, ends_at: now + durationMs,
      comment: String(fd.get("comment") || ""), created_by: String(fd.get("created_by") || "ui"),
    };
    try {
      await api.post("/api/v1/silences", body);
      mount(status, h("div", { class: "notice" }, "Silence created"));
      form.reset();
      await done();
    } catch (err) {
      mount(status, h("div", { class: "error" }, "Could not create the silence: " + err.message));
    }
  } },
  h("div", { class: "field" }, "Matchers", rows,
    h("button", { type: "button", class: "btn small", onclick: () => rows.append(matcherRow(remove)) }, "+ Add matcher")),
  h("label", { class: "field" }, "Duration", h("select", { name: "duration" },
    DURATIONS_S.map(([l, s]) => h("option", { value: s, selected: s === 7200 }, l)))),
  h("label", { class: "field" }, "Comment", h("input", { name: "comment", placeholder: "why (e.g. deploy in progress)", required: true })),
  h("label", { class: "field" }, "Created by", h("input", { name: "created_by", placeholder: "your name", value: "" })),
  h("div", { class: "row-end" }, h("button", { type: "submit", class: "btn primary" }, "Create silence")),
  status);
  return form;
}
