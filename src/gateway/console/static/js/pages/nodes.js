// The account's nodes with their status, refreshed every few seconds.
import { get } from "../api.js";
import { errorNotice, h, refreshRegion, replace, statusBadge, table, when } from "../ui.js";

const REFRESH_MS = 3000;

function nodeRow(node) {
  const request = node.request || {};
  return h("tr", { dataset: { node: node.node_name } },
    h("td", {}, h("a", { href: `#/node/${encodeURIComponent(node.node_name)}` }, node.node_name)),
    h("td", { class: "node-status" }, statusBadge(node.status)),
    h("td", {}, `${request.req_type || ""} ${request.state || ""}`.trim()),
    h("td", { class: "wrap" }, request.reason || ""),
    h("td", {}, `${node.predefcloud || ""} (${(node.cloud || {}).cctype || "?"})`),
    h("td", {}, when(node.updated_at)));
}

export function nodesPage() {
  const body = h("div", { "aria-live": "polite" }, h("p", {}, "Loading…"));
  async function refresh() {
    try {
      const nodes = (await get("/v1/nodes")).results;
      refreshRegion(body, nodes.length
        ? table(["Node", "Status", "Latest request", "Reason", "Cloud", "Updated"], nodes.map(nodeRow))
        : h("p", {}, "No nodes yet. ", h("a", { href: "#/launch" }, "Launch one"), "."));
    } catch (error) {
      replace(body, errorNotice(error));
    }
  }
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  const page = h("section", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Nodes"), h("a", { href: "#/launch", class: "button primary" }, "Launch nodes")),
    body);
  return { page, cleanup: () => clearInterval(timer) };
}
