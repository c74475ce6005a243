// Sign in: a username and password, or the identity provider; or an API key instead.

import { h, mount } from "../dom.js";
import * as api from "../api.js";
import * as url from "../url.js";
import * as session from "../session.js";
import { pageHeader } from "../ui.js";

/** A page on this server to land on after signing in (never another site). */
function landing(next) {
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/signin") ? next : "/";
}

export async function render(root) {
  document.title = "Sign in · Watchkeeper";
  const q = url.params();
  const next = landing(q.get("next"));
  const methods = session.signInMethods();
  const status = h("div", { role: "status", "aria-live": "polite" },
    q.get("error") ? h("div", { class: "error", role: "alert" }, q.get("error")) : null);
  const form = h("form", { class: "signin-form", "aria-label": "Sign in", onsubmit: async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    try {
      await api.post("/api/v1/session", { username: String(fd.get("username")), password: String(fd.get("password")) });
      api.setKey(""); // the session speaks for this browser from now on
      await session.load();
      url.navigate(next);
    } catch (err) {
      form.querySelector("[name=password]").value = "";
      mount(status, h("div", { class: "error", role: "alert" }, err.message));
    }
  } },
  h("label", { class: "field" }, "Username",
    h("input", { name: "username", autocomplete: "username", required: true, autofocus: true, spellcheck: "false" })),
  h("label", { class: "field" }, "Password",
    h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
  h("div", { class: "row-end" }, h("button", { type: "submit", class: "btn primary" }, "Sign in")));
  const sso = methods.sso
    ? h("p", {}, h("a", { class: "btn", href: url.href("/api/v1/oidc/login", { next }) }, "Sign in with " + methods.sso_label))
    : null;
  const key = h("p", { class: "sub" }, "Or ",
    h("button", { type: "button", class: "btn small", onclick: () => document.getElementById("key-button").click() }, "use an API key"),
    " — what scripts and dashboards send.");
  mount(root, pageHeader("Sign in", "to this Watchkeeper server"),
    h("div", { class: "card signin-card" }, h("div", { class: "card-body" }, status, form, sso, key)));
}
