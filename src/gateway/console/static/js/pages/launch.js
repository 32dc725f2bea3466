// Launch: a predef cloud, a predef (its Chef role) and a run list, and how many instances.
import { get, post } from "../api.js";
import { errorNotice, field, h, notice, replace } from "../ui.js";

const RUN_LIST_ENTRY = /^(role|recipe)\[[A-Za-z0-9_.:@-]+\]$/;

export function runListOf(predefRole, text) {
  const entries = text.split(/[\s,]+/).filter(Boolean);
  if (predefRole && !entries.includes(`role[${predefRole}]`)) entries.unshift(`role[${predefRole}]`);
  return entries;
}

export function launchPage({ go }) {
  const messages = h("div", { class: "messages", "aria-live": "polite" });
  const name = h("input", { name: "node_name", required: true, placeholder: "web.example.com",
    pattern: "[a-z0-9][a-z0-9.-]*", autocapitalize: "off", spellcheck: "false" });
  const cloud = h("select", { name: "predefcloud", required: true });
  const predef = h("select", { name: "predef" }, h("option", { value: "" }, "(none: run list only)"));
  const runList = h("input", { name: "run_list", placeholder: "role[web], recipe[nginx]" });
  const count = h("input", { name: "noofinstances", type: "number", min: 1, max: 50, value: 1, required: true });
  const form = h("form", { class: "card" },
    field("Node name", name, "With more than one instance, a number is added to the first label: web1.…, web2.…"),
    field("Predef cloud", cloud),
    field("Predef", predef, "Its Chef role is put first in the run list."),
    field("Run list", runList, "Chef entries separated by commas or spaces, e.g. role[web], recipe[hello]"),
    field("Number of instances", count),
    h("button", { type: "submit", class: "primary" }, "Launch"));

  Promise.all([get("/v1/predefclouds"), get("/v1/predefs")]).then(([clouds, predefs]) => {
    if (!clouds.results.length) {
      replace(messages, notice("error", "You have no predef cloud yet.",
        "Add one on the Clouds page (the local cloud runs nodes on the herk host)."));
    }
    replace(cloud, clouds.results.map((c) => h("option", { value: c.name }, `${c.name} (${c.spec.type_name})`)));
    for (const p of predefs.results) predef.append(h("option", { value: p.provider_role }, p.name));
  }).catch((error) => replace(messages, errorNotice(error)));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const entries = runListOf(predef.value, runList.value);
    const bad = entries.find((entry) => !RUN_LIST_ENTRY.test(entry));
    if (bad) {
      replace(messages, notice("error", `"${bad}" is not a run list entry.`, "Write role[name] or recipe[name]."));
      return;
    }
    try {
      const body = { node_name: name.value.trim(), predefcloud: cloud.value, run_list: entries };
      // one instance keeps its name as typed; the gateway numbers names only when fanning out
      if (Number(count.value) > 1) body.noofinstances = Number(count.value);
      const answer = await post("/v1/nodes/content", body);
      const launched = (Array.isArray(answer) ? answer : [answer]).map((m) => m.msg).join(" ");
      replace(messages, notice("ok", "Launch accepted.", launched));
      setTimeout(() => location.hash === "#/launch" && go("#/nodes"), 1500);
    } catch (error) {
      replace(messages, errorNotice(error));
    }
  });
  return h("section", { class: "page" }, h("h1", {}, "Launch nodes"), messages, form);
}
