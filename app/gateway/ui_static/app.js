// The dashboard's shell: routing between views (#/keys, #/watch, #/leases, #/cluster), sign-in.

import { login, session, setSession } from "./api.js";
import { ClusterView } from "./cluster.js";
import { KeysView } from "./keys.js";
import { LeasesView } from "./leases.js";
import { WatchView } from "./watch.js";

const views = {
  keys: new KeysView(document.getElementById("view-keys")),
  watch: new WatchView(document.getElementById("view-watch")),
  leases: new LeasesView(document.getElementById("view-leases")),
  cluster: new ClusterView(document.getElementById("view-cluster")),
};
let current = null;

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const name = views[path] ? path : "keys";
  return { name, params: Object.fromEntries(new URLSearchParams(query)) };
}

function route() {
  const { name, params } = parseHash();
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === name);
  if (current && current !== views[name]) {
    current.hide();
    current.el.hidden = true;
  }
  current = views[name];
  current.el.hidden = false;
  current.show(params);
}

function showUser() {
  document.getElementById("user-box").hidden = !session.user;
  document.getElementById("user-name").textContent = session.user ? `Signed in as ${session.user}` : "";
}

function askLogin(message) {
  const overlay = document.getElementById("login");
  if (!overlay.hidden) return;
  const err = document.getElementById("login-error");
  err.hidden = !message;
  err.textContent = message || "";
  overlay.hidden = false;
  document.getElementById("login-name").focus();
}

window.addEventListener("auth-required", (e) => {
  const expired = session.token ? "Your session ended; please sign in again." : "";
  setSession(null, null);
  showUser();
  askLogin(expired || (e.detail && /invalid/.test(e.detail.message) ? e.detail.message : ""));
});

document.getElementById("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = document.getElementById("login-error");
  try {
    await login(document.getElementById("login-name").value, document.getElementById("login-password").value);
  } catch (exc) {
    err.hidden = false;
    err.textContent = exc.message.replace(/^etcdserver: /, "");
    return;
  }
  document.getElementById("login").hidden = true;
  document.getElementById("login-password").value = "";
  showUser();
  for (const v of Object.values(views)) v.reset && v.reset();
  route();
});

document.getElementById("logout").addEventListener("click", () => {
  setSession(null, null);
  showUser();
  for (const v of Object.values(views)) v.reset && v.reset();
  askLogin("");
});

window.addEventListener("hashchange", route);
showUser();
route();
