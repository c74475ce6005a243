// Your account: who you are signed in as, your role in each project, a new password.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as session from "../session.js";
import { card, empty, kv, pageHeader, table } from "../ui.js";

export async function render(root) {
  const me = session.current();
  if (!me || me.kind !== "person") {
    mount(root, pageHeader("Account"), empty("Not signed in", "Sign in to see your account.",
      h("a", { class: "btn primary", href: "/signin" }, "Sign in")));
    return;
  }
  const roles = Object.entries(me.roles || {}).sort().map(([project, role]) => ({ project, role }));
  const status = h("div", { role: "status", "aria-live": "polite" });
  const form = h("form", { class: "form-grid", "aria-label": "Change your password", onsubmit: async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    try {
      await api.post("/api/v1/session/password", { current_password: String(fd.get("current")), new_password: String(fd.get("new")) });
      form.reset();
      mount(status, h("div", { class: "notice" }, "Password changed; your other sessions have ended."));
    } catch (err) {
      mount(status, h("div", { class: "error", role: "alert" }, err.message));
    }
  } },
  h("label", { class: "field" }, "Current password", h("input", { name: "current", type: "password", autocomplete: "current-password", required: true })),
  h("label", { class: "field" }, "New password", h("input", { name: "new", type: "password", autocomplete: "new-password", required: true, minlength: 12 })),
  h("div", { class: "row-end" }, h("button", { type: "submit", class: "btn primary" }, "Change password")));
  mount(root, pageHeader("Account", me.username),
    card("You", kv([["Username", me.username], ["Server administrator", me.admin ? "yes" : "no"],
      ["Session ends", me.expires_at ? new Date(me.expires_at).toLocaleString() : null]])),
    card("Your roles", roles.length ? table([
      { title: "Project", render: (r) => r.project },
      { title: "Role", render: (r) => r.role },
    ], roles, { caption: "Your roles" }) : empty("No role yet", "Ask an admin of a project to add you.")),
    card("Password", [status, form]));
}
