// Small DOM helpers. Text always goes in as text nodes, never as HTML: log lines are untrusted.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** A notice for the user: an error (with the gateway's explanation) or a confirmation. */
export function notice(kind, message, more = "") {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("strong", {}, message), more ? h("p", {}, more) : null);
}

export function errorNotice(error) {
  return notice("error", error.message || String(error), error.more || "");
}

/** A labelled form field; `input` is the control element. */
export function field(label, input, hint = "") {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("small", { class: "hint" }, hint) : null);
}

export function table(headers, rows, caption = "") {
  return h("div", { class: "table-wrap" },
    h("table", {}, caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows)));
}

export function statusBadge(status) {
  const text = String(status || "unknown");
  return h("span", { class: `badge ${text.toLowerCase()}` }, text);
}

export function when(isoOrEpoch) {
  if (isoOrEpoch === undefined || isoOrEpoch === null || isoOrEpoch === "") return "";
  const date = typeof isoOrEpoch === "number" ? new Date(isoOrEpoch * 1000) : new Date(isoOrEpoch);
  return date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** `text` with every occurrence of the query's words wrapped in <mark>. */
export function highlighted(text, queryText) {
  const words = (queryText || "").split(/\s+/).filter(Boolean)
    .map((word) => word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  if (!words.length) return [text];
  const pattern = new RegExp(`(${words.join("|")})`, "gi");
  return text.split(pattern).map((part, i) => (i % 2 ? h("mark", {}, part) : part));
}

/** A button that runs `action` and shows its error (or `done`, text or a function) in `where`. */
export function actionButton(label, action, where, { done = "", kind = "" } = {}) {
  const button = h("button", { type: "button", class: kind }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await action();
      if (done) replace(where, notice("ok", typeof done === "function" ? done() : done));
    } catch (error) {
      replace(where, errorNotice(error));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

const FOCUSABLE = "a[href], button, input, select, textarea";

/**
 * `replace` for regions refreshed on a timer: keyboard focus stays where it was (by position),
 * and a region with a half-typed input is left alone until the user leaves it.
 */
export function refreshRegion(parent, ...children) {
  const active = document.activeElement;
  if (!active || !parent.contains(active)) return replace(parent, ...children);
  if (active.matches("input, select, textarea")) return parent;
  const position = [...parent.querySelectorAll(FOCUSABLE)].indexOf(active);
  replace(parent, ...children);
  parent.querySelectorAll(FOCUSABLE)[position]?.focus({ preventScroll: true });
  return parent;
}
