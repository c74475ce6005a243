// People: who has which role in which project (an admin of the project, or a server
// administrator), and the accounts themselves (server administrators only).

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as fmt from "../format.js";
import * as session from "../session.js";
import { badge, card, empty, failed, loading, pageHeader, table } from "../ui.js";

const ROLES = ["ingest", "viewer", "editor", "admin"];

function roleSelect(name, value, label, onchange) {
  return h("select", { name, "aria-label": label, onchange },
    ROLES.map((r) => h("option", { value: r, selected: r === value }, r)));
}

function note(status, text, bad = false) {
  mount(status, h("div", { class: bad ? "error" : "notice", role: bad ? "alert" : null }, text));
}

export async function render(root, ctx) {
  const me = session.current();
  const members = h("div", {}, loading());
  const accounts = h("div", {});
  const status = h("div", { role: "status", "aria-live": "polite" });
  const serverAdmin = Boolean(me && (me.admin || !me.signed_in)); // !signed_in: auth is off
  mount(root, pageHeader("People", "Who has which role in which project"), status,
    card("Members", members, { wide: true }),
    serverAdmin ? card("Accounts", accounts, { wide: true, subtitle: "Server administrators only" }) : null);

  const act = async (what, call) => {
    try {
      await call();
      note(status, what);
      await load();
    } catch (err) {
      note(status, err.message, true);
    }
  };

  const loadMembers = async () => {
    try {
      const items = (await api.get("/api/v1/members", {}, ctx.signal)).items;
      const path = (m) => `/api/v1/members/${encodeURIComponent(m.project)}/${encodeURIComponent(m.username)}`;
      mount(members,
        items.length ? table([
          { title: "Project", render: (m) => m.project },
          { title: "Person", render: (m) => [m.username, m.disabled ? " " : null, m.disabled ? badge("disabled") : null] },
          { title: "Role", render: (m) => roleSelect("role", m.role, `Role of ${m.username} in ${m.project}`,
            (ev) => act(`${m.username} is now ${ev.target.value} in ${m.project}`, () => api.put(path(m), { role: ev.target.value }))) },
          { title: "", render: (m) => h("button", { type: "button", class: "btn small danger", "aria-label": `Remove ${m.username} from ${m.project}`,
            onclick: () => act(`${m.username} removed from ${m.project}`, () => api.del(path(m))) }, "Remove") },
        ], items, { caption: "Members" }) : empty("No members yet", "Add a person to a project below."),
        memberForm(act));
    } catch (err) {
      failed(members, err, "members");
    }
  };

  const loadAccounts = async () => {
    if (!serverAdmin) return;
    try {
      const items = (await api.get("/api/v1/people", {}, ctx.signal)).items;
      const patch = (p, body) => api.request("PATCH", `/api/v1/people/${encodeURIComponent(p.username)}`, { body });
      mount(accounts, table([
        { title: "Username", render: (p) => p.username },
        { title: "Name", render: (p) => p.display_name || "" },
        { title: "Kind", render: (p) => [p.admin ? badge("server admin", "warn") : null, " ", badge(p.sso ? "single sign-on" : "local")] },
        { title: "Since", render: (p) => fmt.dateTime(p.created_at) },
        { title: "State", render: (p) => (p.disabled_at ? badge("disabled", "bad") : badge("active", "ok")) },
        { title: "", render: (p) => h("button", { type: "button", class: "btn small", "aria-label": `${p.disabled_at ? "Enable" : "Disable"} ${p.username}`,
          onclick: () => act(`${p.username} ${p.disabled_at ? "enabled" : "disabled"}`, () => patch(p, { disabled: !p.disabled_at })) },
          p.disabled_at ? "Enable" : "Disable") },
      ], items, { caption: "Accounts" }), accountForm(act), passwordForm(act, items, patch));
    } catch (err) {
      failed(accounts, err, "accounts");
    }
  };

  const load = async () => {
    await Promise.all([loadMembers(), loadAccounts()]);
  };
  await load();
}

function memberForm(act) {
  const form = h("form", { class: "form-grid", "aria-label": "Add a member", onsubmit: (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const project = String(fd.get("project")).trim();
    const username = String(fd.get("username")).trim();
    act(`${username} added to ${project}`, async () => {
      await api.put(`/api/v1/members/${encodeURIComponent(project)}/${encodeURIComponent(username)}`, { role: fd.get("role") });
      form.reset();
    });
  } },
  h("label", { class: "field" }, "Project", h("input", { name: "project", required: true })),
  h("label", { class: "field" }, "Username", h("input", { name: "username", required: true, spellcheck: "false" })),
  h("label", { class: "field" }, "Role", roleSelect("role", "viewer", "Role")),
  h("div", { class: "row-end" }, h("button", { type: "submit", class: "btn primary" }, "Add member")));
  return form;
}

function accountForm(act) {
  const form = h("form", { class: "form-grid", "aria-label": "New account", onsubmit: (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const body = { username: String(fd.get("username")).trim(), display_name: String(fd.get("display_name")).trim(),
      password: String(fd.get("password")), admin: fd.get("admin") === "on" };
    act(`account ${body.username} created`, async () => {
      await api.post("/api/v1/people", body);
      form.reset();
    });
  } },
  h("label", { class: "field" }, "Username", h("input", { name: "username", required: true, spellcheck: "false" })),
  h("label", { class: "field" }, "Name", h("input", { name: "display_name" })),
  h("label", { class: "field" }, "Password", h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 12 })),
  h("label", { class: "field" }, h("span", {}, "Server administrator"), h("input", { name: "admin", type: "checkbox" })),
  h("div", { class: "row-end" }, h("button", { type: "submit", class: "btn primary" }, "Create account")));
  return form;
}

function passwordForm(act, items, patch) {
  const local = items.filter((p) => !p.sso || p.has_password);
  const form = h("form", { class: "form-grid", "aria-label": "Set a password", onsubmit: (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const person = local.find((p) => p.username === fd.get("username"));
    act(`password of ${person.username} set; their sessions ended`, async () => {
      await patch(person, { password: String(fd.get("password")) });
      form.reset();
    });
  } },
  h("label", { class: "field" }, "Account", h("select", { name: "username" }, local.map((p) => h("option", { value: p.username }, p.username)))),
  h("label", { class: "field" }, "New password", h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 12 })),
  h("div", { class: "row-end" }, h("button", { type: "submit", class: "btn" }, "Set password")));
  return form;
}
