// The shell: navigation, theme, API key prompt, client routing and live refresh.

import { h, mount } from "./dom.js";
import * as api from "./api.js";
import * as url from "./url.js";
import * as range from "./range.js";
import * as session from "./session.js";
import { hideTip } from "./chart.js";

const ROUTES = [
  { re: /^\/(overview)?$/, page: "overview", nav: "overview" },
  { re: /^\/traces\/([0-9a-fA-F-]+)$/, page: "trace", nav: "traces" },
  { re: /^\/traces$/, page: "traces", nav: "traces" },
  { re: /^\/logs$/, page: "logs", nav: "logs" },
  { re: /^\/sessions$/, page: "activity", nav: "sessions" },
  { re: /^\/users$/, page: "activity", nav: "users" },
  { re: /^\/alerts(\/\w+)?$/, page: "alerts", nav: "alerts" },
  { re: /^\/slos(\/[\w.-]+)?$/, page: "slos", nav: "slos" },
  { re: /^\/review$/, page: "review", nav: "review" },
  { re: /^\/infrastructure$/, page: "infrastructure", nav: "infrastructure" },
  { re: /^\/explore$/, page: "explore", nav: "explore" },
  { re: /^\/dashboards(\/[a-z0-9-]+)?$/, page: "dashboards", nav: "dashboards" },
  { re: /^\/audit$/, page: "audit", nav: "audit" },
  { re: /^\/signin$/, page: "signin", nav: null },
  { re: /^\/account$/, page: "account", nav: null },
  { re: /^\/admin\/people$/, page: "people", nav: "people" },
];

const NAV = [
  { id: "overview", label: "Overview", href: "/", icon: "M3 13h4v8H3zM10 8h4v13h-4zM17 3h4v18h-4z" },
  { id: "traces", label: "Traces", href: "/traces", icon: "M3 5h12M6 10h12M9 15h10M5 20h8" },
  { id: "logs", label: "Logs", href: "/logs", icon: "M4 6h16M4 10h10M4 14h16M4 18h8" },
  { id: "sessions", label: "Sessions", href: "/sessions", icon: "M4 5h16v10H8l-4 4z" },
  { id: "users", label: "Users", href: "/users", icon: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21c0-4 4-6 8-6s8 2 8 6" },
  { id: "infrastructure", label: "Infrastructure", href: "/infrastructure", icon: "M4 4h16v6H4zM4 14h16v6H4zM8 7h.01M8 17h.01" },
  { id: "explore", label: "Metrics", href: "/explore", icon: "M3 20h18M6 16l4-6 4 3 5-8" },
  { id: "dashboards", label: "Dashboards", href: "/dashboards", icon: "M4 4h7v7H4zM13 4h7v4h-7zM13 10h7v10h-7zM4 13h7v7H4z" },
  { id: "alerts", label: "Alerts", href: "/alerts", icon: "M12 3a6 6 0 0 0-6 6v4l-2 3h16l-2-3V9a6 6 0 0 0-6-6zM10 19a2 2 0 0 0 4 0" },
  { id: "slos", label: "SLOs", href: "/slos", icon: "M12 3a9 9 0 1 0 9 9h-9z" },
  { id: "review", label: "Review", href: "/review", icon: "M5 12l4 4 10-10" },
  { id: "audit", label: "Audit log", href: "/audit", icon: "M7 3h10v18H7zM10 8h4M10 12h4M10 16h2" },
  { id: "people", label: "People", href: "/admin/people", icon: "M9 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM3 20c0-3 3-5 6-5s6 2 6 5M16 5a3 3 0 0 1 0 6M18 15c2 .5 3 2 3 5" },
];

const LIVE_MS = 10_000;
const THEME_KEY = "watchkeeper.theme";

let active = null; // {controller, refresh, timer}

function renderNav(current) {
  const carry = range.carry();
  const shown = NAV.filter((n) => n.id !== "people" || session.mayAdminister());
  mount(document.getElementById("nav"), h("ul", {}, shown.map((n) => {
    const keep = ["overview", "traces", "logs", "sessions", "users", "infrastructure", "explore", "dashboards"].includes(n.id) ? carry : {};
    return h("li", {}, h("a", {
      href: url.href(n.href, keep), class: ["nav-link", n.id === current && "active"],
      "aria-current": n.id === current ? "page" : null,
    }, svgIcon(n.icon), h("span", {}, n.label)));
  })));
}

// How many alerts fire, on the Alerts link of every page: asked at most every 30 s (the
// engine answers from its in-memory snapshot), never blocking a page.
const firing = { at: 0, count: 0 };

async function refreshFiring() {
  if (Date.now() - firing.at < 30_000) return showFiring();
  firing.at = Date.now();
  try {
    const body = await api.get("/api/v1/alerts", { state: "firing" });
    firing.count = body.items.length;
  } catch {
    firing.count = 0;
  }
  showFiring();
}

function showFiring() {
  const link = document.querySelector('#nav a[href="/alerts"]');
  if (!link) return;
  link.querySelector(".nav-count")?.remove();
  if (firing.count) {
    link.append(h("span", { class: "nav-count", "aria-label": `${firing.count} firing` }, String(firing.count)));
  }
}

function svgIcon(d) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const p = document.createElementNS("http://www.w3.org/2000/svg", "path");
  p.setAttribute("d", d);
  svg.append(p);
  return svg;
}

function stop() {
  hideTip(); // its chart is about to go
  if (!active) return;
  active.controller.abort();
  clearInterval(active.timer);
  active = null;
}

async function route() {
  stop();
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const match = ROUTES.find((r) => r.re.test(path));
  renderNav(match ? match.nav : null);
  const main = document.getElementById("main");
  // aria-busy tells assistive technology (and the browser tests) that the page is loading.
  main.setAttribute("aria-busy", "true");
  if (!match) {
    main.setAttribute("aria-busy", "false");
    mount(main, h("div", { class: "page" }, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/" }, "Back to the overview"))));
    refreshFiring();
    return;
  }
  const controller = new AbortController();
  const state = { controller, refresh: null, timer: null };
  active = state;
  const ctx = {
    signal: controller.signal,
    path,
    match: match.re.exec(path),
    nav: match.nav,
    /** A page that can refresh in place registers it; the shell calls it while live. */
    live(fn) { state.refresh = fn; },
  };
  const page = await import(`./pages/${match.page}.js`);
  if (active !== state) return;
  const root = h("div", { class: "page", "data-page": match.page });
  mount(main, root);
  document.title = `${NAV.find((n) => n.id === match.nav)?.label || "Watchkeeper"} · Watchkeeper`;
  try {
    await page.render(root, ctx);
  } catch (err) {
    if (err.name !== "AbortError") console.error(err);
  }
  if (active !== state) return;
  main.setAttribute("aria-busy", "false");
  performance.mark("wk-page-ready"); // for timing: the page has drawn its data
  // The nav badge asks after the page's own data: a browser runs six requests to a server
  // at once, and the page's charts come first.
  refreshFiring();
  if (range.current().live) {
    state.timer = setInterval(() => {
      if (document.visibilityState === "visible" && state.refresh && !document.querySelector("details[open], dialog[open]")) {
        state.refresh();
      }
    }, LIVE_MS);
  }
}

function initTheme() {
  const root = document.documentElement;
  const saved = localStorage.getItem(THEME_KEY);
  if (saved) root.dataset.theme = saved;
  const btn = document.getElementById("theme-toggle");
  const isDark = () => root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  const label = () => {
    btn.textContent = isDark() ? "☀ Light theme" : "☾ Dark theme";
    btn.setAttribute("aria-pressed", String(isDark()));
  };
  label();
  btn.addEventListener("click", () => {
    root.dataset.theme = isDark() ? "light" : "dark";
    localStorage.setItem(THEME_KEY, root.dataset.theme);
    label();
    route(); // charts read colours from CSS variables; redraw them
  });
}

// Whether this server requires a key: null until GET /api/v1/auth answers. Without it the
// key dialog only offers a key; it asks for one when the server does (or answers 401).
let authRequired = null;

function initAuth() {
  const dialog = document.getElementById("auth-dialog");
  const input = document.getElementById("auth-key");
  const open = (message) => {
    if (dialog.open) return;
    const optional = authRequired === false;
    document.getElementById("auth-title").textContent = optional ? "API key (optional)" : "API key required";
    document.getElementById("auth-message").textContent = optional
      ? "This server does not require an API key; with one, pages show the key's project."
      : message || "This server asks for an API key.";
    input.required = !optional;
    input.value = api.getKey();
    dialog.showModal();
    input.focus();
  };
  api.onAuthRequired((message) => {
    authRequired = true;
    // A server with accounts signs people in; a key refused (or none, without accounts) asks.
    if (session.offersSignIn() && !api.getKey()) {
      if (location.pathname !== "/signin") url.navigate("/signin", { next: location.pathname + location.search });
      return;
    }
    open(message);
  });
  api.get("/api/v1/auth").then((body) => {
    if (authRequired === null) authRequired = Boolean(body && body.auth_required);
  }).catch(() => {});
  document.getElementById("key-button").addEventListener("click", () => open("Paste an API key for this server."));
  document.getElementById("auth-form").addEventListener("submit", () => {
    api.setKey(input.value.trim());
    route();
  });
  document.getElementById("auth-clear").addEventListener("click", () => {
    api.setKey("");
    input.value = "";
    dialog.close();
    route();
  });
}

function initSkipLink() {
  // Focus the content without a fragment navigation (which would re-route the app).
  document.querySelector(".skip").addEventListener("click", (ev) => {
    ev.preventDefault();
    document.getElementById("main").focus();
  });
}

initTheme();
initAuth();
initSkipLink();
url.interceptLinks(document.body);
url.onNavigate(route);
session.load().finally(route);
