// The console's shell: navigation, a hash router, and sign-in guarding every page but one.
import { clearSession, currentSession } from "./api.js";
import { signInPage } from "./pages/account.js";
import { cloudsPage } from "./pages/clouds.js";
import { clusterPage } from "./pages/cluster.js";
import { launchPage } from "./pages/launch.js";
import { nodePage } from "./pages/node.js";
import { nodesPage } from "./pages/nodes.js";
import { searchPage } from "./pages/search.js";
import { h, replace } from "./ui.js";

const ROUTES = [
  [/^#\/signin$/, signInPage, "Sign in"],
  [/^#\/nodes$/, nodesPage, "Nodes"],
  [/^#\/launch$/, launchPage, "Launch"],
  [/^#\/node\/([^/]+)$/, nodePage, "Node"],
  [/^#\/search$/, searchPage, "Search"],
  [/^#\/clouds$/, cloudsPage, "Clouds"],
  [/^#\/cluster$/, clusterPage, "Cluster"],
];
const NAV = [["#/nodes", "Nodes"], ["#/launch", "Launch"], ["#/search", "Search logs"], ["#/clouds", "Clouds"], ["#/cluster", "Cluster"]];

window.megamConsole = { tail: null };
let cleanup = null;
let rendered = false;

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function navigation(session) {
  const nav = document.getElementById("nav");
  if (!session) {
    replace(nav);
    return;
  }
  replace(nav, h("ul", {}, NAV.map(([href, label]) => h("li", {},
    h("a", { href, "aria-current": location.hash.startsWith(href) ? "page" : null }, label)))),
  h("span", { class: "who" }, session.email),
  h("button", { type: "button", onclick: () => { clearSession(); go("#/signin"); } }, "Sign out"));
}

function render() {
  cleanup?.();
  cleanup = null;
  window.megamConsole.tail = null;
  const session = currentSession();
  let hash = location.hash || "#/nodes";
  if (!session) hash = "#/signin";
  if (hash !== location.hash) history.replaceState(null, "", hash);
  const [pattern, page, title] = ROUTES.find(([regex]) => regex.test(hash)) || ROUTES[1];
  const params = (hash.match(pattern) || []).slice(1);
  navigation(currentSession() && page !== signInPage ? session : null);
  const made = page({ params, go });
  const element = made instanceof Node ? made : made.page;
  cleanup = made instanceof Node ? null : made.cleanup;
  const main = document.getElementById("main");
  replace(main, element);
  document.title = `${params[0] ? decodeURIComponent(params[0]) : title} · Megam`;
  // after a navigation, focus moves to the new page (as a page load would put it at the top)
  if (rendered) main.focus({ preventScroll: true });
  rendered = true;
}

// the skip link must not change the hash: the hash is the router's
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});
window.addEventListener("hashchange", render);
render();
