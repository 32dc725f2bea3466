// For operators (accounts in the gateway's MEGAM_ADMIN_EMAILS): herk nodes, workers, queue
// depth, dead letters, drain and scale. Routes the gateway does not offer are said, not hidden.
import { ApiError, get, offers, post } from "../api.js";
import { actionButton, errorNotice, h, notice, refreshRegion, replace, statusBadge, table, when } from "../ui.js";

const REFRESH_MS = 3000;

function herkRow(herk, can, messages, refresh) {
  const path = (action) => `/v1/cluster/${encodeURIComponent(herk.name)}/${action}`;
  const workers = h("input", { type: "number", min: 1, max: 256, value: herk.workers, class: "narrow",
    "aria-label": `workers for ${herk.name}` });
  let asked = herk.workers;
  const state = !herk.alive ? "gone" : herk.draining ? "draining" : "serving";
  return h("tr", { dataset: { herk: herk.name } },
    h("td", {}, herk.name), h("td", {}, statusBadge(state)), h("td", {}, herk.workers), h("td", {}, herk.busy),
    h("td", {}, (herk.inflight || []).join(", ")), h("td", {}, `${Number(herk.seconds_since_seen).toFixed(0)} s ago`),
    h("td", { class: "actions" }, herk.alive ? [
      can.drain && !herk.draining ? actionButton("Drain", async () => { await post(path("drain"), {}); refresh(); },
        messages, { done: `${herk.name} finishes its jobs and takes no more.` }) : null,
      can.scale ? [workers, actionButton("Scale", async () => {
        asked = Number(workers.value);
        await post(path("scale"), { workers: asked });
        refresh();
      }, messages, { done: () => `${herk.name} asked to run ${asked} workers.` })] : null] : null));
}

const DONE = { requeue: "requeued", discard: "discarded" };

function deadLetterRows(letters, messages, inTurn, refresh) {
  return letters.map((letter) => {
    const act = (action) => actionButton(action === "requeue" ? "Requeue" : "Discard", async () => {
      const [answer] = await inTurn(() => post(`/v1/cluster/deadletters/${action}`, { ids: [letter.id] }));
      refresh();
      // The gateway answers 200 with the ids it acted on, which need not include this row's.
      if (!(answer.ids || []).includes(letter.id)) {
        throw new ApiError(0, `${letter.id} was not ${DONE[action]}.`,
          "The gateway did not find it among the dead letters: another operator has handled it or " +
          "was listing them at that moment. The list below is up to date.");
      }
    }, messages, { done: `${letter.id}: ${DONE[action]}.` });
    return h("tr", {}, h("td", {}, h("code", {}, letter.job_id || letter.id)), h("td", {}, letter.type || ""),
      h("td", {}, letter.node || ""), h("td", { class: "wrap" }, letter.reason), h("td", { class: "actions" },
        letter.requeueable ? act("requeue") : null, act("discard")));
  });
}

export function clusterPage() {
  // The gateway lists dead letters by holding them for a moment, so a listing and a requeue (or
  // two listings) at once would each miss what the other holds: this page's calls take turns.
  let turn = Promise.resolve();
  let waiting = 0;
  function inTurn(work) {
    waiting += 1;
    const done = turn.then(work).finally(() => { waiting -= 1; });
    turn = done.catch(() => {});
    return done;
  }
  const update = () => inTurn(refresh);
  const messages = h("div", { class: "messages", "aria-live": "polite" });
  const summary = h("div", {});
  const herks = h("div", {});
  const dead = h("div", {});
  let can = null;
  async function refresh() {
    try {
      can ||= {
        drain: await offers("POST", "/v1/cluster/{herk}/drain"),
        scale: await offers("POST", "/v1/cluster/{herk}/scale"),
        deadLetters: await offers("GET", "/v1/cluster/deadletters"),
      };
      const answer = await get("/v1/cluster");
      replace(summary, h("dl", {},
        h("dt", {}, "Herk nodes alive"), h("dd", { class: "alive" }, answer.alive ?? answer.results.filter((x) => x.alive).length),
        h("dt", {}, "Queue depth"), h("dd", { class: "queue-depth" }, answer.queue_depth ?? "not reported"),
        h("dt", {}, "Dead letters"), h("dd", { class: "dead-count" }, answer.dead_letters ?? "not reported"),
        h("dt", {}, "Updated"), h("dd", {}, when(Date.now() / 1000))));
      refreshRegion(herks, table(["Herk node", "State", "Workers", "Busy", "In flight", "Last heartbeat", ""],
        answer.results.map((herk) => herkRow(herk, can, messages, update)), "Herk nodes"));
      if (!can.deadLetters) {
        replace(dead, h("p", { class: "muted" }, "This gateway does not list dead letters."));
      } else {
        const letters = (await get("/v1/cluster/deadletters")).results;
        refreshRegion(dead, letters.length
          ? table(["Job", "Type", "Node", "Reason", ""], deadLetterRows(letters, messages, inTurn, update), "Dead letters")
          : h("p", {}, "No dead letters."));
      }
    } catch (error) {
      replace(summary, error.status === 403
        ? notice("error", "This page is for cluster operators.", `${error.message}. ${error.more}`)
        : errorNotice(error));
      replace(herks);
      replace(dead);
    }
  }
  update();
  const timer = setInterval(() => { if (!waiting) update(); }, REFRESH_MS);
  const page = h("section", { class: "page" }, h("h1", {}, "Cluster"), messages, summary, herks,
    h("h2", {}, "Dead letters"), dead);
  return { page, cleanup: () => clearInterval(timer) };
}
