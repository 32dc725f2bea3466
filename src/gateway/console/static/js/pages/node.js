// One node: status, job history with cancel, delete, the live log and the metrics charts.
import { call, get, post } from "../api.js";
import { charts } from "../chart.js";
import { LogTail } from "../tail.js";
import { actionButton, duration, errorNotice, h, refreshRegion, replace, statusBadge, table, when } from "../ui.js";

const REFRESH_MS = 3000;
const METRICS_MS = 10000;
const MAX_LINES_SHOWN = 5000;
const UNFINISHED = new Set(["queued", "running", "retrying", "cancelling"]);
// The gateway picks the resolution for the span: raw samples up to 6 hours, then 5-minute
// points, then hourly ones (each kept as long as the gateway's metric retention says).
const METRIC_RANGES = [["Last hour", 3600], ["Last 6 hours", 6 * 3600], ["Last day", 86400],
  ["Last week", 7 * 86400], ["Last 30 days", 30 * 86400], ["Last year", 365 * 86400]];
const METRIC_POINTS = 5000;

function jobDuration(job) {
  const history = job.history || [];
  const started = history.find((step) => step.state === "running");
  const last = history[history.length - 1];
  if (!started || !last) return "";
  const end = UNFINISHED.has(job.state) ? Date.now() : Date.parse(last.at);
  return duration((end - Date.parse(started.at)) / 1000);
}

function jobRow(job, messages) {
  const cancel = UNFINISHED.has(job.state)
    ? actionButton("Cancel", () => post(`/v1/jobs/${encodeURIComponent(job.id)}/cancel`, {}), messages,
      { done: `Cancel of ${job.id} requested.` })
    : null;
  return h("tr", { dataset: { job: job.id, state: job.state } },
    h("td", {}, h("code", {}, job.id)),
    h("td", {}, job.req_type),
    h("td", { class: "job-state" }, statusBadge(job.state)),
    h("td", { class: "wrap" }, job.reason || job.waiting_reason?.text || ""),
    h("td", {}, jobDuration(job)),
    h("td", {}, when(job.created_at)),
    h("td", {}, cancel));
}

function logLine(line) {
  return h("li", { class: `line ${line.stream}`, dataset: { id: line.id, job: line.job_id, seq: line.seq } },
    h("time", {}, (line.at || "").slice(11, 23)), " ", h("span", { class: "text" }, line.text));
}

export function nodePage({ params, go }) {
  const nodeName = decodeURIComponent(params[0]);
  const messages = h("div", { class: "messages", "aria-live": "polite" });
  const summary = h("div", { class: "summary" }, "Loading…");
  const jobs = h("div", {});
  const lines = h("ol", { class: "log", "aria-label": `Log of ${nodeName}` });
  const tailState = h("span", { class: "tail-state", role: "status" }, "connecting");
  const metrics = h("div", { class: "charts" });
  const range = h("select", { id: "metric-range", onchange: () => refreshMetrics() },
    ...METRIC_RANGES.map(([text, seconds]) => h("option", { value: seconds }, text)));
  const follow = h("input", { type: "checkbox", checked: true, id: "follow-log" });

  async function refresh() {
    try {
      const [node, requests] = await Promise.all([
        get(`/v1/nodes/${encodeURIComponent(nodeName)}`),
        get(`/v1/requests/${encodeURIComponent(nodeName)}`)]);
      replace(summary, h("dl", {},
        h("dt", {}, "Status"), h("dd", { class: "node-status" }, statusBadge(node.status)),
        h("dt", {}, "Cloud"), h("dd", {}, `${node.predefcloud} (${(node.cloud || {}).cctype || "?"})`),
        h("dt", {}, "Id"), h("dd", {}, h("code", {}, node.id)),
        h("dt", {}, "Created"), h("dd", {}, when(node.created_at))));
      const rows = requests.results.map((job) => jobRow(job, messages));
      refreshRegion(jobs, table(["Job", "Type", "State", "Reason", "Duration", "Created", ""], rows, "Job history"));
    } catch (error) {
      replace(summary, errorNotice(error));
    }
  }

  async function refreshMetrics() {
    try {
      const since = (Date.now() / 1000 - Number(range.value)).toFixed(0);
      const path = `/v1/nodes/${encodeURIComponent(nodeName)}/metrics`;
      const samples = (await get(path, { since, limit: METRIC_POINTS })).results;
      const empty = `No metric samples for this node in the ${range.selectedOptions[0].text.toLowerCase()}.`;
      replace(metrics, samples.length ? charts(samples) : h("p", {}, empty));
    } catch (error) {
      replace(metrics, errorNotice(error));
    }
  }

  const tail = new LogTail(nodeName, {
    onLine(line) {
      lines.append(logLine(line));
      while (lines.childElementCount > MAX_LINES_SHOWN) lines.firstElementChild.remove();
      if (follow.checked) lines.lastElementChild.scrollIntoView({ block: "nearest" });
    },
    onStatus() {
      refresh();
    },
    onState(state, why) {
      tailState.textContent = why ? `${state}: ${why}` : state;
      tailState.dataset.state = state;
    },
  }).start();
  window.megamConsole.tail = tail; // test hook: tests drop the connection through it

  const confirmBox = h("div", { class: "confirm" });
  const deleteButton = h("button", { type: "button", class: "danger" }, "Delete node…");
  deleteButton.addEventListener("click", () => {
    replace(confirmBox, h("p", {}, `Delete ${nodeName}? Its cloud server is destroyed.`),
      actionButton(`Yes, delete ${nodeName}`, async () => {
        await call("POST", "/v1/requests/content", { body: { node_name: nodeName, req_type: "delete" } });
        replace(confirmBox);
        refresh();
      }, messages, { done: `Delete of ${nodeName} requested; follow it in the log below.`, kind: "danger" }),
      h("button", { type: "button", onclick: () => replace(confirmBox) }, "Keep it"));
    confirmBox.querySelector("button").focus();
  });

  refresh();
  refreshMetrics();
  const timers = [setInterval(refresh, REFRESH_MS), setInterval(refreshMetrics, METRICS_MS)];
  const page = h("section", { class: "page" },
    h("p", {}, h("a", { href: "#/nodes" }, "← All nodes")),
    h("div", { class: "page-head" }, h("h1", {}, nodeName), deleteButton),
    confirmBox, messages, summary,
    h("h2", {}, "Jobs"), jobs,
    h("div", { class: "page-head" }, h("h2", {}, "Live log "), tailState,
      h("label", { for: "follow-log", class: "inline" }, follow, " follow")),
    lines,
    h("div", { class: "page-head" }, h("h2", {}, "Metrics"),
      h("label", { for: "metric-range", class: "inline" }, "Show ", range)),
    metrics);
  return {
    page,
    cleanup() {
      tail.stop();
      timers.forEach(clearInterval);
    },
  };
}
