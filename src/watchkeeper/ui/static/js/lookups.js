// Values for the filter dropdowns (services, environments, models). They change rarely and the
// distinct-values query is one of the costlier ones on a big store, so a tab asks once per
// five minutes, over the last day, and never makes a page wait for it.

import * as api from "./api.js";

const TTL_MS = 5 * 60_000;
const KEY = "watchkeeper.lookups";

function cached() {
  try {
    const c = JSON.parse(sessionStorage.getItem(KEY) || "null");
    return c && c.key === api.getKey() && Date.now() - c.at < TTL_MS ? c.values : null;
  } catch {
    return null;
  }
}

/** {items: [services], environments: [...], models: [...]} seen in the last 24 hours. */
export async function filterValues(signal) {
  const hit = cached();
  if (hit) return hit;
  const values = await api.get("/api/v1/services", { range: "24h" }, signal);
  try {
    sessionStorage.setItem(KEY, JSON.stringify({ key: api.getKey(), at: Date.now(), values }));
  } catch {
    /* storage full or disabled: just ask again next time */
  }
  return values;
}
