// Page state lives in the URL: every filter, range and toggle is shareable and survives reload.

const listeners = new Set();

export function onNavigate(fn) {
  listeners.add(fn);
}

function notify() {
  listeners.forEach((fn) => fn());
}

window.addEventListener("popstate", notify);

export function params() {
  return new URLSearchParams(location.search);
}

/** Go to a path (with params); `replace` keeps the history entry. */
export function navigate(path, query, { replace = false } = {}) {
  const q = query instanceof URLSearchParams ? query : new URLSearchParams();
  if (!(query instanceof URLSearchParams)) {
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    }
  }
  const s = q.toString();
  const url = path + (s ? "?" + s : "");
  if (url === location.pathname + location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", url);
  notify();
}

/** Change some params of the current page (null/"" removes one). */
export function update(changes, opts = {}) {
  const q = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === "") q.delete(k);
    else q.set(k, String(v));
  }
  navigate(location.pathname, q, opts);
}

/** An href for a path plus params, for real links (middle-click, copy link). */
export function href(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return path + (s ? "?" + s : "");
}

/** Follow same-origin <a> clicks inside the app without a reload. */
export function interceptLinks(root) {
  root.addEventListener("click", (ev) => {
    const a = ev.target.closest && ev.target.closest("a[href]");
    if (!a || a.target || a.hasAttribute("download") || a.getAttribute("href").startsWith("#")) return;
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api")) return;
    if (url.pathname.startsWith("/docs") || url.pathname.startsWith("/metrics")) return;
    ev.preventDefault();
    history.pushState(null, "", url.pathname + url.search);
    notify();
  });
}
