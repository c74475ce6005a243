// Prompts and completions: chat message lists (OpenAI, Anthropic, OTel GenAI parts) become
// chat bubbles; other JSON is pretty-printed; anything else is shown as text.

import { h } from "./dom.js";

function tryJson(text) {
  if (typeof text !== "string") return text;
  const t = text.trim();
  if (!t || !"[{".includes(t[0])) return undefined;
  try {
    return JSON.parse(t);
  } catch {
    return undefined;
  }
}

function partText(p) {
  if (typeof p === "string") return p;
  if (!p || typeof p !== "object") return String(p);
  if (p.type === "text" || p.type === "input_text" || p.type === "output_text") return p.content ?? p.text ?? "";
  if (p.type === "tool_call" || p.type === "tool_use" || p.type === "function") {
    const args = p.arguments ?? p.input ?? p.function?.arguments;
    return `→ ${p.name || p.function?.name || "tool"}(${typeof args === "string" ? args : JSON.stringify(args ?? {})})`;
  }
  if (p.type === "tool_call_response" || p.type === "tool_result") {
    const r = p.response ?? p.result ?? p.content;
    return "← " + (typeof r === "string" ? r : JSON.stringify(r));
  }
  if (p.type === "reasoning" || p.type === "thinking") return "💭 " + (p.content ?? p.thinking ?? "");
  if (typeof p.text === "string") return p.text;
  if (typeof p.content === "string") return p.content;
  return JSON.stringify(p);
}

function messageText(m) {
  if (Array.isArray(m.parts)) return m.parts.map(partText).join("\n");
  if (Array.isArray(m.content)) return m.content.map(partText).join("\n");
  const base = typeof m.content === "string" ? m.content : m.content == null ? "" : JSON.stringify(m.content, null, 2);
  const calls = (m.tool_calls || []).map((c) => partText({ type: "tool_call", ...c }));
  return [base, ...calls].filter(Boolean).join("\n");
}

/** The message list inside a parsed payload, or null when it is not one. */
export function asMessages(value) {
  let v = value;
  if (v && !Array.isArray(v) && typeof v === "object") v = v.messages ?? v.choices?.map((c) => c.message ?? c);
  if (!Array.isArray(v) || !v.length) return null;
  if (!v.every((m) => m && typeof m === "object" && (typeof m.role === "string" || m.type === "text"))) return null;
  return v.map((m) => ({ role: m.role || "system", text: messageText(m.role ? m : { parts: [m] }), finish: m.finish_reason }));
}

/** Render a payload (input or output text) for the span detail panel. */
export function renderPayload(text) {
  if (text === null || text === undefined || text === "") return null;
  const parsed = tryJson(text);
  const msgs = parsed === undefined ? null : asMessages(parsed);
  if (msgs) {
    return h("div", { class: "msgs" }, msgs.map((m) => h("div", { class: ["msg", "role-" + m.role] },
      h("div", { class: "msg-role" }, m.role, m.finish ? ` · ${m.finish}` : ""),
      h("div", { class: "msg-body" }, m.text))));
  }
  if (parsed !== undefined) return h("pre", { class: "block" }, JSON.stringify(parsed, null, 2));
  return h("pre", { class: "block" }, text);
}

/** Parse a JSON document of the payload row, tolerating absence and junk. */
export function parseDoc(text, fallback) {
  if (!text) return fallback;
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
}
