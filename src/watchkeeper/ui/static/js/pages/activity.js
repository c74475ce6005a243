// Sessions and Users: who and which conversations were active, each linking to its traces.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as range from "../range.js";
import * as fmt from "../format.js";
import { failed, loading, pageHeader, table, empty } from "../ui.js";

const KINDS = {
  sessions: { title: "Sessions", sub: "Conversations active in the range, most recent first", param: "session", noun: "session" },
  users: { title: "Users", sub: "End users active in the range, most recent first", param: "user", noun: "user" },
};

export async function render(root, ctx) {
  const kind = KINDS[ctx.nav];
  const q = url.params();
  const list = h("div", {}, loading());
  mount(root, pageHeader(kind.title, kind.sub, range.picker()), list);
  const load = async () => {
    const r = range.current(q);
    try {
      const body = await api.get("/api/v1/" + ctx.nav, { ...range.filters(q), ...range.apiRange(r, 1), limit: 200 }, ctx.signal);
      draw(list, body.items, kind);
    } catch (err) {
      failed(list, err, kind.title.toLowerCase());
    }
  };
  ctx.live(load);
  await load();
}

function draw(el, items, kind) {
  if (!items.length) {
    mount(el, empty(`No ${kind.noun}s in this range`, `Spans carry a ${kind.noun} when the app sets ${kind.noun === "user" ? "user.id" : "session.id"}.`));
    return;
  }
  const tracesOf = (row) => url.href("/traces", { ...range.carry(), [kind.param]: row.key });
  const cols = [
    { title: kind.noun, render: (r) => h("a", { href: tracesOf(r), class: "mono" }, r.key) },
    { title: "Traces", align: "right", render: (r) => fmt.int(r.traces) },
    { title: "Spans", align: "right", render: (r) => fmt.int(r.spans) },
    { title: h("span", { title: "requests (root spans) that ended in error, timeout or rejected" }, "Failed requests"), align: "right",
      render: (r) => r.errors ? h("a", { class: "badge tone-bad", href: url.href("/traces", { ...range.carry(), [kind.param]: r.key, outcome: "error,timeout,rejected" }),
        title: `Show the failed requests of this ${kind.noun}` }, fmt.int(r.errors)) : "0" },
    { title: "Tokens in → out", align: "right", render: (r) => `${fmt.compact(r.input_tokens)} → ${fmt.compact(r.output_tokens)}` },
    { title: "Spend", align: "right", render: (r) => fmt.usd(r.cost_usd) },
    { title: "First seen", render: (r) => fmt.dateTime(r.first_ms) },
    { title: "Last seen", render: (r) => h("span", { title: fmt.dateTime(r.last_ms) }, fmt.ago(r.last_ms)) },
  ];
  mount(el, table(cols, items, {
    caption: kind.noun + "s",
    onRow: (r) => url.navigate("/traces", { ...range.carry(), [kind.param]: r.key }),
    rowLabel: (r) => `${kind.noun} ${r.key}: ${fmt.count(r.traces, "trace")}, ${fmt.count(r.errors, "failed request")}`,
  }));
}
