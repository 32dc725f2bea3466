// Cloud settings: predef clouds (create and list), cloud tools, and what else the API offers.
import { get, offers, post } from "../api.js";
import { errorNotice, field, h, notice, replace, table, when } from "../ui.js";

const CLOUD_TYPES = ["local", "ec2", "google", "hp", "openstack"];

/** "name=value" lines as an object; credentials are sent once and never shown again. */
export function credentialsFrom(text) {
  const credentials = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`"${line.slice(0, 40)}" is not name=value`);
    credentials[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return credentials;
}

function cloudForm(messages, reload) {
  const name = h("input", { name: "cloud_name", required: true, placeholder: "home" });
  const type = h("select", { name: "type_name" }, CLOUD_TYPES.map((t) => h("option", { value: t }, t)));
  const image = h("input", { name: "image", placeholder: "ami-… (not for local)" });
  const flavor = h("input", { name: "flavor", placeholder: "t2.micro" });
  const groups = h("input", { name: "groups", placeholder: "security groups" });
  const region = h("input", { name: "region" });
  const sshKey = h("input", { name: "ssh_key", placeholder: "key pair name" });
  const sshUser = h("input", { name: "ssh_user", placeholder: "ubuntu" });
  const credentials = h("textarea", { name: "credentials", rows: 3, placeholder: "aws_access_key_id=…\naws_secret_access_key=…", autocomplete: "off", spellcheck: "false" });
  const form = h("form", { class: "card" }, h("h2", {}, "Add a predef cloud"),
    h("div", { class: "grid" }, field("Name", name), field("Cloud type", type), field("Image", image),
      field("Flavor", flavor), field("Groups", groups), field("Region", region),
      field("SSH key", sshKey), field("SSH user", sshUser)),
    field("Credentials", credentials, "One name=value per line. Stored encrypted; never shown again."),
    h("button", { type: "submit", class: "primary" }, "Save cloud"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await post("/v1/predefclouds/content", {
        name: name.value.trim(),
        spec: { type_name: type.value, image: image.value, flavor: flavor.value, groups: groups.value },
        access: { region: region.value, ssh_key: sshKey.value, ssh_user: sshUser.value },
        credentials: credentialsFrom(credentials.value),
      });
      replace(messages, notice("ok", `Cloud ${name.value.trim()} saved.`));
      form.reset(); // the credentials above all: nothing secret stays on the page
      reload();
    } catch (error) {
      replace(messages, errorNotice(error));
    }
  });
  return form;
}

/** A list of the account's documents at `path`, with a create form when the gateway offers one. */
async function documentSection({ title, path, columns, inputs, what }) {
  if (!(await offers("GET", path))) {
    return h("p", { class: "muted" }, `${title}: this gateway does not offer ${path} yet.`);
  }
  const list = h("div", {});
  const messages = h("div", { class: "messages", "aria-live": "polite" });
  async function reload() {
    const items = (await get(path)).results;
    replace(list, items.length
      ? table(columns, items.map((item) => h("tr", {}, columns.map((c) => h("td", {}, String(item[c] ?? ""))))), title)
      : h("p", {}, `No ${what} yet.`));
  }
  await reload();
  if (!(await offers("POST", `${path}/content`))) return h("div", {}, h("h2", {}, title), list);
  const controls = Object.fromEntries(inputs.map(([name, , attrs]) =>
    [name, h(attrs?.rows ? "textarea" : "input", { name, autocomplete: "off", spellcheck: "false", ...attrs })]));
  const form = h("form", { class: "card" }, h("h3", {}, `Add ${what}`),
    h("div", { class: "grid" }, inputs.map(([name, label, , hint]) => field(label, controls[name], hint))),
    h("button", { type: "submit" }, `Save ${what}`));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = Object.fromEntries(Object.entries(controls).map(([name, c]) => [name, c.value.trim()]));
    try {
      await post(`${path}/content`, body);
      form.reset();
      replace(messages, notice("ok", `Saved ${what} ${inputs[0] ? body[inputs[0][0]] : ""}.`));
      await reload();
    } catch (error) {
      replace(messages, errorNotice(error));
    }
  });
  return h("div", {}, h("h2", {}, title), messages, list, form);
}

const SSH_KEYS = {
  title: "SSH keys", what: "ssh key", path: "/v1/sshkeys",
  columns: ["name", "path", "has_private_key", "created_at"],
  inputs: [["name", "Key name", { required: true }], ["path", "Path"],
    ["public_key", "Public key", { rows: 2 }],
    ["private_key", "Private key", { rows: 2 }, "Stored encrypted; never shown again."]],
};
const TOOL_SETTINGS = {
  title: "Cloud tool settings", what: "cloud tool setting", path: "/v1/cloudtoolsettings",
  columns: ["repo_name", "repo", "vault_location", "conf_location", "created_at"],
  inputs: [["repo_name", "Chef repo name", { required: true }], ["repo", "Repository URL"],
    ["vault_location", "Vault location"], ["conf_location", "knife.rb location"]],
};

function toolRow(tool) {
  const clouds = ((tool.cloudtemplates || {}).results || []).map((template) => template.cctype).join(", ");
  return h("tr", {}, h("td", {}, tool.name), h("td", {}, clouds), h("td", {}, h("code", {}, tool.cli || "")));
}

export function cloudsPage() {
  const messages = h("div", { class: "messages", "aria-live": "polite" });
  const clouds = h("div", {});
  const tools = h("div", {});
  const extra = h("div", {});
  async function reload() {
    try {
      const list = (await get("/v1/predefclouds")).results;
      replace(clouds, list.length ? table(["Name", "Type", "Image", "Flavor", "Credentials", "Created"], list.map((c) =>
        h("tr", {}, h("td", {}, c.name), h("td", {}, c.spec.type_name), h("td", {}, c.spec.image),
          h("td", {}, c.spec.flavor), h("td", {}, c.has_credentials ? "stored" : "none"), h("td", {}, when(c.created_at)))),
      "Your predef clouds") : h("p", {}, "No predef cloud yet: add one below. The local cloud needs nothing else."));
    } catch (error) {
      replace(clouds, errorNotice(error));
    }
  }
  reload();
  get("/v1/cloudtools")
    .then((answer) => replace(tools, table(["Tool", "Clouds", "Command"], answer.results.map(toolRow), "Cloud tools")))
    .catch((error) => replace(tools, errorNotice(error)));
  Promise.all([documentSection(SSH_KEYS), documentSection(TOOL_SETTINGS)])
    .then((parts) => replace(extra, ...parts)).catch((error) => replace(extra, errorNotice(error)));
  return h("section", { class: "page" }, h("h1", {}, "Clouds"), messages, clouds, cloudForm(messages, reload),
    h("h2", {}, "Cloud tools"), tools, extra);
}
