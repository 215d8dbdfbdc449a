// Small DOM helpers: an element builder, toasts, a confirmation dialog, error boxes.

import { session } from "./api.js";

// h("div.card#id", {attrs, on: {click}}, ...children)
export function h(spec, props, ...children) {
  if (props === null || typeof props !== "object" || props instanceof Node || Array.isArray(props)) {
    if (props !== undefined && props !== null) children.unshift(props);
    props = {};
  }
  const [, tag = "div", rest = ""] = spec.match(/^([a-z0-9]*)(.*)$/i);
  const el = document.createElement(tag || "div");
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(props)) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "text") el.textContent = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else if (v !== false && v !== null && v !== undefined) el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const el = h(`div.toast.${kind}`, { role: "status" }, message);
  box.append(el);
  setTimeout(() => el.remove(), 4000);
}

// A modal confirmation; resolves true when confirmed.
export function confirmDialog(title, body, okLabel = "Delete") {
  const modal = document.getElementById("modal");
  document.getElementById("modal-title").textContent = title;
  clear(document.getElementById("modal-body"), body);
  const ok = document.getElementById("modal-ok");
  const cancel = document.getElementById("modal-cancel");
  ok.textContent = okLabel;
  modal.hidden = false;
  ok.focus();
  return new Promise((resolve) => {
    const done = (value) => {
      modal.hidden = true;
      ok.onclick = cancel.onclick = null;
      resolve(value);
    };
    ok.onclick = () => done(true);
    cancel.onclick = () => done(false);
  });
}

// An error as the user should see it: a permission refusal is a quiet note, not a red alarm.
export function errorBox(err, what = "") {
  if (err && err.needsLogin) return h("div.notice", "Sign in to see this.");
  if (err && err.forbidden) {
    return h("div.notice.forbidden", { dataset: { testid: "forbidden" } },
      h("strong", "Not permitted. "),
      `${session.user ? `User “${session.user}”` : "This user"} may not ${what || "do this"}.`);
  }
  return h("div.notice.error", { role: "alert" }, String((err && err.message) || err));
}

export function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s}s ago` : `${Math.floor(s / 60)}m ${s % 60}s ago`;
}
