// Who is signed in: the sidebar's name, project choice and sign-out button, and how this
// server lets people sign in (read without any credential, so it is known even after a 401).

import { h, mount } from "./dom.js";
import * as api from "./api.js";
import * as url from "./url.js";

const PROJECT_KEY = "watchkeeper.project";
let info = null; // GET /api/v1/session's answer for this browser's credential
let methods = { password: false, sso: false, sso_label: "single sign-on" };

export const current = () => info;
export const signInMethods = () => methods;

/** True when this server has accounts or single sign-on: a 401 goes to the sign-in page. */
export const offersSignIn = () => Boolean(methods.password || methods.sso);

/** True when the Members page is of use: an admin somewhere, or auth off. */
export function mayAdminister() {
  if (!info || !info.signed_in) return !offersSignIn();
  return info.admin || Object.values(info.roles || {}).includes("admin");
}

async function readMethods() {
  try {
    const res = await fetch("/api/v1/session", { credentials: "omit", headers: { Accept: "application/json" } });
    if (res.ok) methods = (await res.json()).sign_in || methods;
  } catch {
    /* keep the defaults */
  }
}

/** Ask who this browser is; set the CSRF token and project the API layer sends. */
export async function load() {
  await readMethods();
  try {
    info = await api.get("/api/v1/session");
  } catch {
    info = null;
  }
  const projects = Object.keys((info && info.roles) || {}).sort();
  let project = "";
  if (info && info.kind === "person" && projects.length > 1) {
    const saved = localStorage.getItem(PROJECT_KEY);
    project = projects.includes(saved) ? saved : projects[0];
  }
  api.setSession({ csrf: (info && info.csrf_token) || "", project });
  renderWho(projects, project);
  return info;
}

/** End the session and go to the sign-in page. */
export async function signOut() {
  try {
    await api.del("/api/v1/session");
  } finally {
    info = null;
    api.setSession({});
    renderWho([], "");
    url.navigate("/signin");
  }
}

function renderWho(projects, project) {
  const el = document.getElementById("who");
  if (!el) return;
  if (!info || info.kind !== "person") {
    mount(el);
    return;
  }
  const pick = projects.length > 1
    ? h("label", { class: "field" }, "Project", h("select", { id: "project-select", onchange: (ev) => {
      localStorage.setItem(PROJECT_KEY, ev.target.value);
      api.setSession({ csrf: info.csrf_token || "", project: ev.target.value });
      url.navigate(location.pathname, url.params(), { replace: true });
      window.dispatchEvent(new PopStateEvent("popstate"));
    } }, projects.map((p) => h("option", { value: p, selected: p === project }, p))))
    : null;
  mount(el,
    h("p", { class: "sub", "data-testid": "signed-in-as" }, "Signed in as ",
      h("a", { href: "/account", title: "Your account" }, h("b", {}, info.username || info.name))),
    pick,
    h("button", { type: "button", class: "btn ghost", id: "sign-out", onclick: signOut }, "Sign out"));
}
