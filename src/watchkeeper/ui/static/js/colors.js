// Chart colours come from the theme's CSS variables, read when a chart is drawn.

export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export const outcomeColor = (o) => cssVar({
  success: "--c-ok", error: "--c-bad", timeout: "--c-timeout", fallback: "--c-warn", rejected: "--c-muted",
}[o] || "--c-muted");

/** The n-th categorical colour. */
export const palette = (i) => cssVar(`--c-${(i % 5) + 1}`);
