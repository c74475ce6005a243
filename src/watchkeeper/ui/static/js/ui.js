// Small shared pieces of page layout: cards, stats, badges, tables, tabs and states.

import { h, mount } from "./dom.js";
import { NotAvailable } from "./api.js";

export function card(title, body, { actions, subtitle, id, wide } = {}) {
  return h("section", { class: ["card", wide && "wide"], id, "aria-label": title },
    h("header", { class: "card-head" },
      h("div", {}, h("h2", {}, title), subtitle ? h("p", { class: "sub" }, subtitle) : null),
      actions ? h("div", { class: "card-actions" }, actions) : null),
    h("div", { class: "card-body" }, body));
}

export function stat(label, value, { tone, note, testid } = {}) {
  return h("div", { class: ["stat", tone && "tone-" + tone], "data-testid": testid },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value" }, value),
    note ? h("div", { class: "stat-note", title: typeof note === "string" ? note : null }, note) : null);
}

const OUTCOME_TONE = { success: "ok", error: "bad", timeout: "bad", fallback: "warn", rejected: "muted" };

export function outcomeBadge(outcome) {
  return h("span", { class: ["badge", "tone-" + (OUTCOME_TONE[outcome] || "muted")] }, outcome || "–");
}

export function badge(text, tone = "muted") {
  return h("span", { class: ["badge", "tone-" + tone] }, text);
}

export function empty(title, detail, action) {
  return h("div", { class: "empty" }, h("div", { class: "empty-title" }, title),
    detail ? h("p", {}, detail) : null, action || null);
}

export function loading(label = "Loading…") {
  return h("div", { class: "loading", role: "status", "aria-live": "polite" }, h("span", { class: "spinner" }), label);
}

/** Render an error (or the not-deployed empty state) into `el`. */
export function failed(el, err, what = "this data") {
  if (err && err.name === "AbortError") return;
  if (err instanceof NotAvailable) {
    mount(el, empty(`No ${what} yet`, "This server does not provide this endpoint yet (404)."));
  } else {
    mount(el, h("div", { class: "error", role: "alert" }, h("b", {}, "Could not load " + what + ": "),
      String((err && err.message) || err)));
  }
}

/**
 * A table: columns [{title, render(row) -> node|string, class, align}]; rows; onRow(row)
 * makes each row keyboard-activatable (Enter/Space) and arrow-key navigable.
 */
export function table(columns, rows, { onRow, rowLabel, caption, rowClass } = {}) {
  const body = h("tbody", {}, rows.map((row) => {
    const tr = h("tr", { class: rowClass ? rowClass(row) : null },
      columns.map((c) => h("td", { class: [c.class, c.align === "right" && "num"] }, c.render(row))));
    if (onRow) {
      tr.tabIndex = 0;
      tr.classList.add("clickable");
      if (rowLabel) tr.setAttribute("aria-label", rowLabel(row));
      tr.addEventListener("click", (ev) => {
        if (ev.target.closest("a,button,input,select")) return;
        onRow(row, ev);
      });
      tr.addEventListener("keydown", (ev) => {
        if (ev.target !== tr) return;
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onRow(row, ev); }
        else if (ev.key === "ArrowDown" || ev.key === "j") { ev.preventDefault(); tr.nextElementSibling?.focus(); }
        else if (ev.key === "ArrowUp" || ev.key === "k") { ev.preventDefault(); tr.previousElementSibling?.focus(); }
      });
    }
    return tr;
  }));
  return h("div", { class: "table-wrap" }, h("table", { class: "table" },
    caption ? h("caption", { class: "sr-only" }, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: [c.class, c.align === "right" && "num"] }, c.title)))),
    body));
}

/** Tabs as links (state in the URL): items [{id, label, href, count}]. */
export function tabs(items, active, label) {
  return h("nav", { class: "tabs", "aria-label": label },
    items.map((t) => h("a", { href: t.href, class: ["tab", t.id === active && "active"],
      "aria-current": t.id === active ? "page" : null },
      t.label, t.count != null ? h("span", { class: "count" }, String(t.count)) : null)));
}

export function pageHeader(title, sub, ...right) {
  return h("div", { class: "page-head" },
    h("div", {}, h("h1", {}, title), sub ? h("p", { class: "sub" }, sub) : null),
    h("div", { class: "page-tools" }, right));
}

/** Cells of a key/value list. */
export function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}
