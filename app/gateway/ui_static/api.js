// The one way the dashboard talks to the server: etcd's v3 JSON API, the /ui/api reads, the token.

const TOKEN = "etcdpy.token";
const USER = "etcdpy.user";

export const session = {
  token: sessionStorage.getItem(TOKEN),
  user: sessionStorage.getItem(USER),
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
  // The caller must sign in (again): no token while auth is on, or a token the server forgot.
  get needsLogin() {
    return /user name is empty|invalid auth token/.test(this.message) || this.code === 16;
  }
  // Signed in, but this user's roles do not allow it.
  get forbidden() {
    return this.code === 7 || /permission denied/.test(this.message);
  }
}

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  if (session.token) h["Authorization"] = session.token;
  return h;
}

async function answer(resp) {
  const text = await resp.text();
  let body = null;
  try {
    body = text ? JSON.parse(text.split("\n")[0]) : {};
  } catch {
    body = { message: text.trim() };
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, body);
    if (err.needsLogin) window.dispatchEvent(new CustomEvent("auth-required", { detail: err }));
    throw err;
  }
  return body;
}

// POST an etcd v3 call (`/v3/kv/range`, …) and return its JSON answer.
export async function v3(path, body = {}) {
  const resp = await fetch(`/v3/${path}`, { method: "POST", headers: headers(true), body: JSON.stringify(body) });
  return answer(resp);
}

// GET one of the dashboard's own reads (`/ui/api/tree`, …).
export async function uiGet(path, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null));
  const resp = await fetch(`/ui/api/${path}?${q}`, { headers: headers(false) });
  return answer(resp);
}

export async function getText(url) {
  const resp = await fetch(url, { headers: headers(false) });
  if (!resp.ok) throw new ApiError(resp.status, { message: (await resp.text()).trim() });
  return resp.text();
}

export function setSession(user, token) {
  session.user = user;
  session.token = token;
  if (token) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(USER, user);
    // EventSource cannot send headers: /watch/sse reads the token from this cookie.
    document.cookie = `token=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
  } else {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
    document.cookie = "token=; path=/; SameSite=Strict; max-age=0";
  }
}

export async function login(name, password) {
  setSession(null, null);
  const out = await v3("auth/authenticate", { name, password });
  setSession(name, out.token);
  return out.token;
}

// ---------------------------------------------------------------- bytes, base64, text

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

export function b64FromBytes(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
export function bytesFromB64(b64) {
  const bin = atob(b64 || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
export const b64 = (text) => b64FromBytes(encoder.encode(text));
export const text = (b64value) => decoder.decode(bytesFromB64(b64value));

// etcd's GetPrefixRangeEnd over base64 keys: the first key after every key with this prefix.
export function prefixEnd(b64key) {
  const bytes = bytesFromB64(b64key);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = bytes.slice(0, i + 1);
      end[i] += 1;
      return b64FromBytes(end);
    }
  }
  return "AA==";
}

export const num = (v) => Number(v || 0);
export function formatBytes(n) {
  n = Number(n || 0);
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let i = -1;
  do {
    n /= 1024;
    i++;
  } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}
// Lease and member IDs are 64-bit: keep them as decimal strings, show them as hex like etcdctl.
export function hexId(dec) {
  try {
    return BigInt.asUintN(64, BigInt(dec)).toString(16);
  } catch {
    return String(dec);
  }
}
