// The public APIs as the pages call them: same origin, under /api/<api>/…, the session
// cookie carried by the browser (the web service adds the bearer token). Every failure
// becomes an ApiError whose `message` is a sentence in French for the person using the
// page, with the API's own reason (`detail`) kept beside it.

export const APIS = ["registry", "campaigns", "detection", "funding"];

export class ApiError extends Error {
  constructor(status, message, problem = null) {
    super(message);
    this.name = "ApiError";
    this.status = status; // 0: no network
    this.problem = problem; // the API's problem details, when it sent some
    this.detail = problem && typeof problem.detail === "string" ? problem.detail : "";
    this.code = problem && problem.code ? problem.code : "";
    this.fields = problem && Array.isArray(problem.errors) ? problem.errors : [];
  }
  get offline() {
    return this.status === 0;
  }
}

const STATUS_WORDS = {
  400: "La demande est incorrecte",
  401: "Votre session a expiré : reconnectez-vous",
  403: "Vous n'avez pas accès à cette information",
  404: "Introuvable",
  409: "Conflit : l'information a changé entre-temps",
  412: "L'information a changé depuis votre lecture : rechargez la page",
  413: "Le fichier envoyé est trop volumineux",
  415: "Format non accepté",
  422: "Certaines valeurs ne sont pas acceptées",
  428: "Rechargez la page avant de modifier",
  429: "Trop de demandes : patientez un instant",
  503: "Le service est momentanément indisponible : réessayez dans un instant",
};

export function sentenceFor(status, problem) {
  const words = STATUS_WORDS[status] || (status >= 500 ? "Erreur du service" : "Demande refusée");
  const detail = problem && typeof problem.detail === "string" ? problem.detail : "";
  return detail && status !== 401 ? `${words} (${detail})` : words;
}

// A UUID v4 (the APIs' idempotency keys and sync ids are UUIDs). randomUUID exists only
// in secure contexts (https, localhost): elsewhere the same from getRandomValues.
export function newIdempotencyKey() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// api("campaigns", "/me/visits", {query: {from: "2024-01-01"}})
// api("detection", "/projects/exogenous", {method: "POST", body: {...}})
export async function api(name, path, options = {}) {
  const { method = "GET", body, query, headers = {}, idempotencyKey, raw = false } = options;
  let url = `/api/${name}${path.startsWith("/") ? path : `/${path}`}`;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  const sent = { Accept: "application/json", ...headers };
  const init = { method, headers: sent, credentials: "same-origin" };
  if (body !== undefined) {
    sent["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (idempotencyKey) sent["Idempotency-Key"] = idempotencyKey;
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, "Pas de réseau : vérifiez votre connexion", null);
  }
  if (raw) {
    if (!response.ok) throw await errorOf(response);
    return response;
  }
  if (response.status === 204) return null;
  if (!response.ok) throw await errorOf(response);
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

async function errorOf(response) {
  let problem = null;
  try {
    problem = await response.json();
  } catch (_) {
    problem = null;
  }
  if (response.status === 401) redirectToLogin();
  return new ApiError(response.status, sentenceFor(response.status, problem), problem);
}

let redirecting = false;
function redirectToLogin() {
  // Offline pages (the field app) decide for themselves: they keep their queue.
  if (redirecting || document.body.dataset.keepOn401 === "true") return;
  redirecting = true;
  const next = location.pathname + location.search;
  location.assign(`/connexion/?next=${encodeURIComponent(next)}`);
}

export async function session() {
  const response = await fetch("/auth/session", { credentials: "same-origin" });
  if (!response.ok) return null;
  return response.json();
}

// The session, or a redirect to the login page when nobody is signed in or the role
// does not fit this page.
export async function requireSession(roles) {
  let current = null;
  try {
    current = await session();
  } catch (_) {
    current = null; // offline: the caller may carry on with what it has cached
    return null;
  }
  if (!current) {
    redirectToLogin();
    throw new ApiError(401, sentenceFor(401, null));
  }
  if (roles && !current.roles.some((r) => roles.includes(r))) {
    location.assign(current.home);
    throw new ApiError(403, sentenceFor(403, null));
  }
  return current;
}

export async function logout() {
  await fetch("/auth/logout", { method: "POST", credentials: "same-origin" });
  location.assign("/connexion/");
}

// A CSV export: fetched with the session, handed to the browser as a download.
export async function download(name, path, filename, query) {
  const response = await api(name, path, { query, raw: true, headers: { Accept: "text/csv" } });
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// Answers asked for at once, beside the session rather than after it: the first load of
// each takes its answer (`take`), later loads ask again. A failure stays for that first
// load to report.
export class Prefetched {
  constructor() {
    this.answers = new Map();
  }

  start(key, load) {
    const answer = load();
    answer.catch(() => null);
    this.answers.set(key, answer);
  }

  take(key, load) {
    const answer = this.answers.get(key);
    this.answers.delete(key);
    return answer || load();
  }
}
