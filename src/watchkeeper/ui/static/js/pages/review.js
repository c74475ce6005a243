// Review: traces that need a human look — low evaluation scores and negative feedback.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as range from "../range.js";
import * as fmt from "../format.js";
import { badge, empty, failed, loading, pageHeader, table } from "../ui.js";

export async function render(root, ctx) {
  const q = url.params();
  const list = h("div", {}, loading());
  const onlyLow = q.get("all") !== "1";
  mount(root, pageHeader("Review", "Low scores and negative feedback, newest first",
    h("div", { class: "seg", role: "group", "aria-label": "Which scores" },
      h("button", { type: "button", class: ["seg-btn", onlyLow && "active"], "aria-pressed": String(onlyLow), onclick: () => url.update({ all: null }) }, "Needs review"),
      h("button", { type: "button", class: ["seg-btn", !onlyLow && "active"], "aria-pressed": String(!onlyLow), onclick: () => url.update({ all: "1" }) }, "All scores")),
    range.picker()), list);
  const load = async () => {
    try {
      const r = range.current(q);
      const items = (await api.get("/api/v1/scores", { ...range.apiRange(r, 1), limit: 500 }, ctx.signal)).items;
      const shown = onlyLow ? items.filter(isLow) : items;
      if (!shown.length) {
        mount(list, empty(onlyLow ? "Nothing to review" : "No scores in this range", "Scores below 0.5 and negative feedback appear here."));
        return;
      }
      mount(list, table([
        { title: "Time", render: (s) => fmt.dateTime(s.created_ms) },
        { title: "Score", render: (s) => badge(s.name, isLow(s) ? "bad" : "ok") },
        { title: "Value", align: "right", render: (s) => (s.value == null ? s.label || "–" : s.value.toFixed(2)) },
        { title: "Comment", render: (s) => s.comment || "" },
        { title: "Source", render: (s) => s.source },
        { title: "Trace", render: (s) => h("a", { href: "/traces/" + s.trace_id, class: "mono" }, s.trace_id.slice(0, 12) + "…") },
      ], shown, { caption: "Scores to review", onRow: (s) => url.navigate("/traces/" + s.trace_id),
        rowLabel: (s) => `${s.name} ${s.value ?? s.label} on trace ${s.trace_id}` }));
    } catch (err) {
      failed(list, err, "scores");
    }
  };
  ctx.live(load);
  await load();
}

function isLow(s) {
  if (s.value != null) return s.value < 0.5;
  return ["fail", "bad", "negative"].includes(String(s.label || "").toLowerCase());
}
