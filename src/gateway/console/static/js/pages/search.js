// Full-text search over every archived log line of the account, with the matches marked.
import { get } from "../api.js";
import { errorNotice, field, h, highlighted, replace, statusBadge, table, when } from "../ui.js";

const STATES = ["", "queued", "running", "succeeded", "failed", "cancelled", "dead"];

function epochOf(input) {
  return input.value ? Date.parse(`${input.value}Z`) / 1000 : undefined;
}

export function searchPage() {
  const text = h("input", { type: "search", name: "q", placeholder: "words that must all occur" });
  const node = h("input", { name: "node", placeholder: "any node", autocapitalize: "off" });
  const state = h("select", { name: "state" }, STATES.map((s) => h("option", { value: s }, s || "any state")));
  const since = h("input", { type: "datetime-local", name: "since" });
  const until = h("input", { type: "datetime-local", name: "until" });
  const results = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card search", role: "search" },
    field("Text", text), field("Node", node), field("Job state", state),
    field("From (UTC)", since), field("To (UTC)", until),
    h("button", { type: "submit", class: "primary" }, "Search"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const hits = (await get("/v1/logs/search", {
        q: text.value.trim(), node: node.value.trim(), state: state.value,
        since: epochOf(since), until: epochOf(until), limit: 200,
      })).results;
      replace(results, hits.length
        ? table(["When", "Node", "Job", "Line"], hits.map((hit) => h("tr", { class: "hit" },
          h("td", {}, when(hit.at)),
          h("td", {}, h("a", { href: `#/node/${encodeURIComponent(hit.node_name)}` }, hit.node_name)),
          h("td", {}, h("code", {}, hit.job_id), " ", statusBadge(hit.job_state)),
          h("td", { class: "text" }, highlighted(hit.text, text.value)))), `${hits.length} matching lines, newest first`)
        : h("p", {}, "No log line matches."));
    } catch (error) {
      replace(results, errorNotice(error));
    }
  });
  return h("section", { class: "page" }, h("h1", {}, "Search logs"), form, results);
}
