// The consultant's field app (phone first): today's and the week's visits in route order,
// each site's card, the visit's outcome and its survey (generated from the questionnaire,
// checked as the API checks it). Works offline: the service worker keeps the shell and
// the last answers; reports made offline wait in IndexedDB with their idempotency key and
// leave through POST /sync when the network comes back.

import { api, requireSession } from "../common/api.js";
import { alert, el, frame, painted, svg } from "../common/layout.js";
import * as queue from "./queue.js";
import { OUTCOME_WORDS, flush } from "./sync.js";
import { showErrors, surveyForm } from "./survey.js";

// An expired session must not cost the reports waiting on this phone.
document.body.dataset.keepOn401 = "true";

const main = document.getElementById("contenu");
const LOGIN = `/connexion/?next=${encodeURIComponent("/terrain/")}`;
const SUBJECT_KEY = "rebond-terrain-subject";

// --- dates (the phone's calendar: the consultant is in France) -----------------------------

const pad = (n) => String(n).padStart(2, "0");
const isoOf = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const dateOf = (iso) => new Date(`${iso}T12:00:00`);
const addDays = (iso, n) => {
  const d = dateOf(iso);
  d.setDate(d.getDate() + n);
  return isoOf(d);
};
const mondayOf = (iso) => addDays(iso, -((dateOf(iso).getDay() + 6) % 7));
const DAY = new Intl.DateTimeFormat("fr-FR", { weekday: "long", day: "numeric", month: "long" });
const DAY_YEAR = new Intl.DateTimeFormat("fr-FR", {
  weekday: "long",
  day: "numeric",
  month: "long",
  year: "numeric",
});
const SHORT = new Intl.DateTimeFormat("fr-FR", { day: "numeric", month: "long", year: "numeric" });
const COORD = new Intl.NumberFormat("fr-FR", { minimumFractionDigits: 4, maximumFractionDigits: 4 });
const dayWords = (iso) => DAY.format(dateOf(iso));
const capital = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const weekWords = (monday) =>
  `Semaine du ${DAY.format(dateOf(monday)).replace(/^\S+ /, "")} au ${SHORT.format(dateOf(addDays(monday, 6)))}`;

// INSEE headcount bands (the site card says it too, once it has come)
const BANDS = {
  NN: "Pas de salarié déclaré",
  "00": "0 salarié",
  "01": "1 ou 2 salariés",
  "02": "3 à 5 salariés",
  "03": "6 à 9 salariés",
  11: "10 à 19 salariés",
  12: "20 à 49 salariés",
  21: "50 à 99 salariés",
  22: "100 à 199 salariés",
  31: "200 à 249 salariés",
  32: "250 à 499 salariés",
  41: "500 à 999 salariés",
  42: "1 000 à 1 999 salariés",
  51: "2 000 à 4 999 salariés",
  52: "5 000 à 9 999 salariés",
  53: "10 000 salariés et plus",
};

const STATUS = {
  planned: ["À faire", "fr-badge--info", "planned"],
  reached: ["Rencontré", "fr-badge--success", "reached"],
  declined: ["Refus", "fr-badge--warning", "declined"],
  unreachable: ["Injoignable", "fr-badge--error", "unreachable"],
  site_closed: ["Site fermé", "", "closed"],
  pending: ["En attente d'envoi", "fr-badge--new", "planned"],
};

// --- state --------------------------------------------------------------------------------

const state = {
  subject: null,
  today: isoOf(new Date()),
  campaigns: [],
  range: null, // {start, end}: the active campaigns' days
  week: null, // its Monday
  weekNote: "",
  visits: [],
  fromCache: false,
  todayVisits: null, // when the week shown is not this one
  cards: new Map(),
  questionnaire: null,
  pending: [],
  results: [],
  stop: null, // why reports wait: offline | session | unavailable
  loadError: null,
};

const shell = {};

// --- start --------------------------------------------------------------------------------

async function start() {
  frame(current, "/terrain/");
  if (current) {
    if (localStorage.getItem(SUBJECT_KEY) !== current.subject) forgetData();
    localStorage.setItem(SUBJECT_KEY, current.subject);
  }
  if (sessionRefused) state.stop = "session";
  buildShell();
  state.pending = await queue.all(state.subject);
  renderBanner();
  const questionnaire = loadQuestionnaire();
  if (!sessionRefused) {
    try {
      await chooseWeek();
      await loadWeek();
    } catch (error) {
      state.loadError = error;
    }
  }
  render();
  painted(main);

  window.addEventListener("hashchange", onHash);
  window.addEventListener("online", () => {
    renderBanner();
    syncNow({ auto: true });
  });
  window.addEventListener("offline", () => {
    state.stop = state.pending.length ? "offline" : state.stop;
    renderBanner();
  });
  document.addEventListener("click", (event) => {
    const t = event.target instanceof Element ? event.target.closest("[data-rebond-logout]") : null;
    if (t) {
      localStorage.removeItem(SUBJECT_KEY);
      forgetData();
    }
  });
  const cards = loadCards();
  if (navigator.onLine && state.pending.length && !sessionRefused) syncNow({ auto: true });
  offlineReady(Promise.allSettled([questionnaire, cards]));
}

// --- the service worker ------------------------------------------------------------------

async function offlineReady(loaded) {
  if (!("serviceWorker" in navigator)) return;
  const controlled = Boolean(navigator.serviceWorker.controller);
  try {
    await navigator.serviceWorker.register("/terrain/sw.js", { scope: "/terrain/" });
    const registration = await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((resolve) =>
        navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true }),
      );
    }
    await loaded;
    if (!controlled) {
      // What this first visit fetched before the worker was there: kept for offline.
      const urls = [location.pathname, ...performance.getEntriesByType("resource").map((e) => e.name)];
      await ask(registration.active, { type: "warm", urls });
    }
    document.body.dataset.offlineReady = "true";
    shell.ready.textContent = "Cette page fonctionne aussi hors ligne.";
  } catch (_) {
    shell.ready.textContent = "";
  }
}

function ask(worker, message) {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => resolve(event.data);
    worker.postMessage(message, [channel.port2]);
    setTimeout(resolve, 10_000);
  });
}

function forgetData() {
  const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (worker) worker.postMessage({ type: "forget" });
}

// --- data ---------------------------------------------------------------------------------

async function loadQuestionnaire() {
  try {
    state.questionnaire = await api("campaigns", "/questionnaire");
  } catch (_) {
    state.questionnaire = null;
  }
  if (viewOf().visit) render({ keepFocus: true });
}

async function visitsBetween(from, days) {
  const items = [];
  let cursor;
  let fromCache = false;
  do {
    const response = await api("campaigns", "/me/visits", {
      query: { from, days, limit: 200, done: true, cursor },
      raw: true,
    });
    fromCache = fromCache || response.headers.get("X-Rebond-From-Cache") === "1";
    const page = await response.json();
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return { items, fromCache };
}

// Asked at once, beside the session: the campaigns, and the week the page will most
// likely show (the one in the address, else this week).
const early = {};
function askEarly() {
  const quiet = (promise) => {
    promise.catch(() => null); // read (and its failure handled) by whoever needs it
    return promise;
  };
  early.campaigns = quiet(api("campaigns", "/campaigns"));
  early.week = mondayOf(viewOf().week || state.today);
  early.visits = quiet(visitsBetween(early.week, 7));
}

async function chooseWeek() {
  const campaigns = await (early.campaigns || api("campaigns", "/campaigns"));
  state.campaigns = campaigns.filter((c) => c.status === "active");
  if (state.campaigns.length) {
    state.range = {
      start: state.campaigns.map((c) => c.starts_on).sort()[0],
      end: state.campaigns.map((c) => c.ends_on).sort().at(-1),
    };
  }
  const asked = viewOf().week;
  if (asked) {
    state.week = mondayOf(asked);
    return;
  }
  const thisWeek = mondayOf(state.today);
  if (!state.range) {
    state.week = thisWeek;
    state.weekNote = "Aucune campagne n'est en cours dans vos territoires.";
    return;
  }
  if (state.range.start <= addDays(thisWeek, 6) && state.range.end >= thisWeek) {
    state.week = thisWeek;
    return;
  }
  // The campaign does not cover this week: its first week with visits of mine.
  let from = state.range.start;
  while (from <= state.range.end) {
    const { items } = await visitsBetween(from, 31);
    if (items.length) {
      state.week = mondayOf(items[0].day);
      state.weekNote =
        "La campagne ne couvre pas cette semaine : voici sa première semaine où des visites vous sont confiées.";
      return;
    }
    from = addDays(from, 31);
  }
  state.week = mondayOf(state.range.start);
  state.weekNote = "Aucune visite ne vous est confiée dans cette campagne.";
}

async function loadWeek() {
  const guessed = early.visits && early.week === state.week ? early.visits : null;
  early.visits = null; // once: a later load of the same week asks again
  const { items, fromCache } = await (guessed || visitsBetween(state.week, 7));
  state.visits = items;
  state.fromCache = fromCache;
  state.loadError = null;
  state.todayVisits = null;
  const todayInWeek = state.today >= state.week && state.today <= addDays(state.week, 6);
  const campaignToday = state.range && state.range.start <= state.today && state.today <= state.range.end;
  if (!todayInWeek && campaignToday) {
    try {
      state.todayVisits = (await visitsBetween(state.today, 1)).items;
    } catch (_) {
      state.todayVisits = [];
    }
  }
}

// The site cards (NAF label, size band, commune name), a few at a time, after the first
// paint; the list says what the visit already knows until its card comes.
async function loadCards() {
  const sites = [...new Set([...state.visits, ...(state.todayVisits || [])].map((v) => v.site_id))].filter(
    (s) => !state.cards.has(s),
  );
  const worker = async () => {
    while (sites.length) {
      const siret = sites.shift();
      try {
        state.cards.set(siret, await api("registry", `/sites/${encodeURIComponent(siret)}`));
        fillCard(siret);
      } catch (_) {
        /* the visit's own facts stay */
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

// --- the page's fixed parts ----------------------------------------------------------------

function buildShell() {
  shell.banner = el("div", { id: "etat-reseau", role: "status", "aria-live": "polite" });
  shell.count = el("p", { id: "compteur-attente", class: "fr-mb-0", "data-count": "0" });
  shell.syncButton = el(
    "button",
    {
      id: "synchroniser",
      class: "fr-btn fr-btn--secondary fr-icon-refresh-line fr-btn--icon-left",
      type: "button",
    },
    "Synchroniser",
  );
  shell.syncButton.addEventListener("click", () => syncNow({ auto: false }));
  shell.results = el("div", { id: "resultats-synchro", tabindex: "-1", "aria-live": "polite" });
  shell.ready = el("p", { id: "hors-ligne-pret", class: "fr-hint-text fr-mb-0" });
  shell.view = el("div", { id: "vue" });
  main.replaceChildren(
    el("h1", { class: "fr-h3" }, "Mes visites"),
    shell.banner,
    el("div", { class: "rb-sync fr-mb-3w" }, shell.count, shell.syncButton, shell.ready),
    shell.results,
    shell.view,
  );
}

function renderBanner() {
  const n = state.pending.length;
  const words = n === 0 ? "Aucun rapport en attente" : n === 1 ? "1 rapport en attente d'envoi" : `${n} rapports en attente d'envoi`;
  shell.count.textContent = words;
  shell.count.dataset.count = String(n);
  shell.syncButton.disabled = n === 0;
  const offline = !navigator.onLine;
  shell.banner.dataset.state = offline ? "offline" : state.stop || "online";
  shell.banner.dataset.pending = String(n);
  const waiting = n === 1 ? "1 rapport attend" : `${n} rapports attendent`;
  let box = null;
  if (offline) {
    box = alert(
      "warning",
      "Hors ligne",
      n
        ? `${waiting} sur ce téléphone : ${n === 1 ? "il partira" : "ils partiront"} au retour du réseau.`
        : "Vos visites restent consultables ; vos rapports seront gardés sur ce téléphone.",
    );
  } else if (state.stop === "session" && n) {
    box = el(
      "div",
      { class: "fr-alert fr-alert--warning fr-alert--sm" },
      el(
        "p",
        {},
        n === 1
          ? "Reconnectez-vous pour envoyer votre rapport en attente. "
          : `Reconnectez-vous pour envoyer vos ${n} rapports en attente. `,
        el("a", { href: LOGIN, class: "fr-link", id: "lien-reconnexion" }, "Se reconnecter"),
      ),
    );
  } else if (state.stop === "session") {
    box = el(
      "div",
      { class: "fr-alert fr-alert--warning fr-alert--sm" },
      el("p", {}, "Votre session a expiré. ", el("a", { href: LOGIN, class: "fr-link" }, "Se reconnecter")),
    );
  } else if (state.stop === "unavailable" && n) {
    box = alert(
      "warning",
      null,
      `Le service ne répond pas : ${waiting} sur ce téléphone. Réessayez avec « Synchroniser ».`,
    );
  }
  if (box) box.removeAttribute("role"); // the banner itself is the live region
  shell.banner.replaceChildren(...(box ? [box] : []));
}

function renderResults() {
  if (!state.results.length) {
    shell.results.replaceChildren();
    return;
  }
  shell.results.replaceChildren(
    el(
      "div",
      { class: "fr-mb-3w" },
      el("h2", { class: "fr-h6 fr-mb-1w" }, "Derniers envois"),
      el(
        "ul",
        { class: "rb-results" },
        state.results.map((r) =>
          el(
            "li",
            {
              "data-client-id": r.report.client_id,
              "data-status": r.status,
              class: `rb-result rb-result--${r.final ? r.status : "waiting"}`,
            },
            el("strong", {}, r.text),
            " — ",
            reportWords(r.report),
          ),
        ),
      ),
    ),
  );
}

function reportWords(report) {
  const what =
    report.type === "outcome"
      ? `issue « ${OUTCOME_WORDS[report.outcome.outcome] || report.outcome.outcome} »`
      : "questionnaire";
  return `${report.label} : ${what}`;
}

// --- views --------------------------------------------------------------------------------

function viewOf() {
  const params = new URLSearchParams(location.hash.slice(1));
  const week = params.get("semaine");
  return {
    week: week && /^\d{4}-\d{2}-\d{2}$/.test(week) ? week : null,
    visit: params.get("visite"),
    known: params.has("semaine") || params.has("visite") || location.hash === "",
  };
}

const hashFor = (week, visit) => `#semaine=${week}${visit ? `&visite=${visit}` : ""}`;

async function onHash() {
  const view = viewOf();
  if (!view.known) return; // a skip link, an anchor: not a view
  if (view.week && mondayOf(view.week) !== state.week) {
    state.week = mondayOf(view.week);
    state.weekNote = "";
    main.setAttribute("aria-busy", "true");
    try {
      await loadWeek();
    } catch (error) {
      state.visits = [];
      state.loadError = error;
    }
    main.setAttribute("aria-busy", "false");
    render({ focus: true });
    loadCards();
    return;
  }
  render({ focus: true });
}

function render({ focus = false, keepFocus = false } = {}) {
  const view = viewOf();
  const visit = view.visit ? findVisit(view.visit) : null;
  const active = document.activeElement;
  const activeId = active && active.id;
  if (view.visit) renderVisit(visit, view.visit);
  else renderList();
  if (keepFocus && activeId && document.getElementById(activeId)) {
    document.getElementById(activeId).focus();
  } else if (focus) {
    const target = shell.view.querySelector("[data-focus]");
    if (target) target.focus();
  }
}

function findVisit(id) {
  return (
    state.visits.find((v) => v.id === id) || (state.todayVisits || []).find((v) => v.id === id) || null
  );
}

function statusOf(visit) {
  if (state.pending.some((r) => r.visit_id === visit.id)) return "pending";
  if (visit.status === "completed" && visit.outcome) return visit.outcome;
  return "planned";
}

function badge(visit) {
  const [words, kind] = STATUS[statusOf(visit)] || STATUS.planned;
  return el("p", { class: `fr-badge fr-badge--sm fr-badge--no-icon ${kind}`, "data-badge": "" }, words);
}

function renderList() {
  const sections = [];
  if (state.loadError && !state.visits.length) {
    sections.push(
      alert(
        "error",
        "Vos visites n'ont pas pu être chargées",
        state.loadError.offline
          ? "Pas de réseau, et cette semaine n'a pas encore été ouverte sur ce téléphone."
          : state.loadError.message,
      ),
    );
  }
  sections.push(todaySection(), weekSection());
  shell.view.replaceChildren(...sections);
}

function todaySection() {
  const inWeek = state.today >= state.week && state.today <= addDays(state.week, 6);
  const visits = inWeek ? state.visits.filter((v) => v.day === state.today) : state.todayVisits || [];
  const numbers = numbering();
  return el(
    "section",
    { id: "aujourdhui", class: "fr-mb-4w", "aria-labelledby": "titre-aujourdhui" },
    el("h2", { id: "titre-aujourdhui", class: "fr-h4" }, `Aujourd'hui, ${dayWords(state.today)}`),
    visits.length
      ? el(
          "ol",
          { class: "rb-today" },
          visits.map((v) =>
            el(
              "li",
              { "data-visit-id": v.id },
              el(
                "a",
                { href: hashFor(inWeek ? state.week : mondayOf(state.today), v.id), class: "fr-link" },
                `${numbers.get(v.id) ? `${numbers.get(v.id)}. ` : ""}${v.name || v.site_id}`,
              ),
              " ",
              badge(v),
            ),
          ),
        )
      : el("p", { id: "aucune-visite-aujourdhui" }, "Aucune visite aujourd'hui"),
  );
}

function numbering() {
  return new Map(state.visits.map((v, n) => [v.id, n + 1]));
}

function weekSection() {
  const first = state.range ? mondayOf(state.range.start) : null;
  const last = state.range ? mondayOf(state.range.end) : null;
  const prev = addDays(state.week, -7);
  const next = addDays(state.week, 7);
  const navButton = (week, words, icon, enabled, id) =>
    enabled
      ? el("a", { class: `fr-btn fr-btn--tertiary fr-btn--icon-${icon === "left" ? "left" : "right"} fr-icon-arrow-${icon}-s-line`, href: hashFor(week), id }, words)
      : el("button", { class: `fr-btn fr-btn--tertiary fr-btn--icon-${icon === "left" ? "left" : "right"} fr-icon-arrow-${icon}-s-line`, type: "button", disabled: true, id }, words);
  const nav = el(
    "nav",
    { class: "rb-weeknav", "aria-label": "Semaines de la campagne" },
    navButton(prev, "Semaine précédente", "left", first !== null && prev >= first, "semaine-precedente"),
    navButton(next, "Semaine suivante", "right", last !== null && next <= last, "semaine-suivante"),
  );
  const numbers = numbering();
  const days = [];
  for (let i = 0; i < 7; i++) {
    const day = addDays(state.week, i);
    const visits = state.visits.filter((v) => v.day === day);
    if (!visits.length) continue;
    const isToday = day === state.today;
    days.push(
      el(
        "section",
        { class: "rb-day fr-mb-3w", "data-day": day, "aria-labelledby": `jour-${day}` },
        el(
          "h3",
          { class: "fr-h5", id: `jour-${day}`, "aria-current": isToday ? "date" : null },
          capital(dayWords(day)),
          isToday ? " (aujourd'hui)" : "",
        ),
        el(
          "ol",
          { class: "rb-visites", start: numbers.get(visits[0].id) },
          visits.map((v) => visitCard(v, numbers.get(v.id))),
        ),
      ),
    );
  }
  const done = state.visits.filter((v) => v.status === "completed").length;
  const summary = state.visits.length
    ? `${state.visits.length} visite${state.visits.length > 1 ? "s" : ""} : ${done} faite${done > 1 ? "s" : ""}, ${state.visits.length - done} à faire.`
    : "Aucune visite cette semaine.";
  return el(
    "section",
    {
      id: "semaine",
      "aria-labelledby": "titre-semaine",
      "data-from": state.week,
      "data-days": "7",
    },
    el("h2", { id: "titre-semaine", class: "fr-h4", tabindex: "-1", "data-focus": "" }, weekWords(state.week)),
    state.weekNote ? el("p", { id: "note-semaine", class: "fr-text--sm" }, state.weekNote) : null,
    state.fromCache
      ? el("p", { class: "fr-text--sm rb-cache" }, "Hors ligne : les visites telles que ce téléphone les a vues à la dernière connexion.")
      : null,
    nav,
    el("p", { id: "resume-semaine" }, summary),
    state.visits.length ? weekMap() : null,
    days,
  );
}

function visitCard(visit, n) {
  const card = state.cards.get(visit.site_id);
  return el(
    "li",
    { class: "rb-visite", "data-visit-id": visit.id, "data-site-id": visit.site_id, "data-status": statusOf(visit) },
    el("h4", { class: "fr-h6 fr-mb-1w" }, `${n}. ${visit.name || `Établissement ${visit.site_id}`}`),
    badge(visit),
    siteFacts(visit, card),
    el(
      "a",
      { class: "fr-btn fr-btn--sm fr-mt-1w rb-open", href: hashFor(state.week, visit.id) },
      visit.status === "completed" ? "Voir la visite" : "Rendre compte de la visite",
      el("span", { class: "fr-sr-only" }, ` : ${visit.name || visit.site_id}`),
    ),
  );
}

function siteFacts(visit, card) {
  const commune = card && card.commune ? `${card.commune.name} (${visit.commune})` : `Commune ${visit.commune}`;
  const naf = card && card.naf_label ? `${visit.naf} — ${card.naf_label}` : visit.naf;
  const band = (card && card.headcount_label) || BANDS[visit.band] || (visit.band ? `Tranche ${visit.band}` : "Non renseigné");
  const position =
    visit.lat !== undefined && visit.lon !== undefined
      ? `${COORD.format(visit.lat)}° N, ${COORD.format(visit.lon)}° E`
      : "Non renseignée";
  return el(
    "dl",
    { class: "rb-facts", "data-facts": visit.site_id },
    el("dt", {}, "Commune"),
    el("dd", {}, commune),
    el("dt", {}, "Activité"),
    el("dd", {}, naf),
    el("dt", {}, "Effectif"),
    el("dd", {}, band),
    el("dt", {}, "Position"),
    el("dd", {}, position),
  );
}

function fillCard(siret) {
  const card = state.cards.get(siret);
  for (const node of document.querySelectorAll(`[data-facts="${CSS.escape(siret)}"]`)) {
    const visit = findVisitBySite(siret);
    if (visit) node.replaceWith(siteFacts(visit, card));
  }
}

function findVisitBySite(siret) {
  return [...state.visits, ...(state.todayVisits || [])].find((v) => v.site_id === siret);
}

// A small dot map of the week's sites (no tiles): their coordinates, numbered in route
// order; the list below says the same in words.
function weekMap() {
  const placed = state.visits.filter((v) => typeof v.lat === "number" && typeof v.lon === "number");
  if (!placed.length) return null;
  const W = 320;
  const H = 180;
  const M = 16;
  const k = Math.cos((50.5 * Math.PI) / 180);
  const xs = placed.map((v) => v.lon * k);
  const ys = placed.map((v) => v.lat);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const span = Math.max(x1 - x0, (y1 - y0) * (W / H), 0.005);
  const scale = (W - 2 * M) / span;
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const at = (v) => [W / 2 + (v.lon * k - cx) * scale, H / 2 - (v.lat - cy) * scale];
  const numbers = numbering();
  return el(
    "figure",
    { class: "rb-map rb-weekmap fr-mb-3w", role: "group", "aria-labelledby": "legende-carte" },
    svg(
      "svg",
      { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "titre-carte" },
      svg("title", { id: "titre-carte" }, `Position des ${placed.length} sites de la semaine, numérotés dans l'ordre de la tournée`),
      placed.map((v) => {
        const [x, y] = at(v);
        const status = STATUS[statusOf(v)] || STATUS.planned;
        return svg(
          "g",
          {},
          svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 6, class: `rb-status-${status[2]}`, stroke: "#161616", "stroke-width": 1 }),
          svg("text", { x: (x + 8).toFixed(1), y: (y + 4).toFixed(1), class: "rb-map-label" }, String(numbers.get(v.id))),
        );
      }),
    ),
    el(
      "figcaption",
      { id: "legende-carte", class: "fr-text--xs" },
      "Carte des sites de la semaine (coordonnées, sans fond de carte) ; chaque visite ci-dessous donne sa position.",
    ),
  );
}

// --- one visit: its card, its outcome, its survey -----------------------------------------

function renderVisit(visit, id) {
  const back = el(
    "a",
    { class: "fr-link fr-icon-arrow-left-line fr-link--icon-left", href: hashFor(state.week), id: "retour-liste" },
    "Retour aux visites de la semaine",
  );
  if (!visit) {
    shell.view.replaceChildren(
      back,
      el("h2", { class: "fr-h4 fr-mt-2w", tabindex: "-1", "data-focus": "" }, "Visite introuvable"),
      el("p", {}, `La visite ${id} n'est pas dans la semaine affichée.`),
    );
    return;
  }
  const status = statusOf(visit);
  const result = el("div", { id: "resultat-visite", tabindex: "-1", role: "status" });
  const parts = [
    back,
    el(
      "h2",
      { class: "fr-h4 fr-mt-2w fr-mb-1w", id: "visite-titre", tabindex: "-1", "data-focus": "" },
      visit.name || `Établissement ${visit.site_id}`,
    ),
    badge(visit),
    el("p", { class: "fr-text--sm fr-mb-1w" }, `${capital(dayWords(visit.day))} · visite ${visit.order} du jour · SIRET ${visit.site_id}`),
    siteFacts(visit, state.cards.get(visit.site_id)),
    result,
    outcomeSection(visit, status),
    surveySection(visit, status),
  ];
  shell.view.replaceChildren(...parts.filter(Boolean));
  shell.view.dataset.visitId = visit.id;
}

function outcomeSection(visit, status) {
  const section = el("section", { id: "issue", class: "fr-mt-3w", "aria-labelledby": "titre-issue" });
  section.append(el("h3", { id: "titre-issue", class: "fr-h5" }, "Issue de la visite"));
  if (status === "pending") {
    section.append(el("p", {}, "Un rapport de cette visite attend d'être envoyé."));
    return section;
  }
  if (status !== "planned") {
    section.append(el("p", {}, `Visite terminée : ${STATUS[status][0].toLowerCase()}.`));
    return section;
  }
  const confirm = el("div", { id: "confirmation-issue", class: "rb-confirm fr-mt-2w", hidden: true });
  const choose = (outcome) => {
    const needsReason = outcome === "declined" || outcome === "unreachable";
    const reasonId = "motif-issue";
    const msg = el("p", { class: "fr-error-text", id: `${reasonId}-msg`, hidden: true });
    const reason = el("textarea", {
      class: "fr-input",
      id: reasonId,
      rows: 2,
      maxlength: 1000,
      required: needsReason || undefined,
      "aria-describedby": `${reasonId}-msg`,
    });
    const group = el(
      "div",
      { class: "fr-input-group" },
      el(
        "label",
        { class: "fr-label", for: reasonId },
        needsReason ? "Motif *" : "Motif (facultatif)",
        el("span", { class: "fr-hint-text" }, "1 000 caractères au plus"),
      ),
      reason,
      msg,
    );
    const save = el(
      "button",
      { class: "fr-btn", type: "submit", id: "enregistrer-issue" },
      `Enregistrer : ${OUTCOME_WORDS[outcome]}`,
    );
    const cancel = el("button", { class: "fr-btn fr-btn--secondary", type: "button" }, "Annuler");
    cancel.addEventListener("click", () => {
      confirm.hidden = true;
      confirm.replaceChildren();
      section.querySelector(`[data-outcome="${outcome}"]`).focus();
    });
    const form = el(
      "form",
      { novalidate: true, "data-outcome-form": outcome },
      group,
      el("div", { class: "fr-btns-group fr-btns-group--inline-sm" }, save, cancel),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = reason.value.trim();
      const problem =
        needsReason && !text
          ? "Indiquez un motif : il est obligatoire pour cette issue."
          : reason.value.length > 1000
            ? "1 000 caractères au plus."
            : "";
      group.classList.toggle("fr-input-group--error", Boolean(problem));
      msg.hidden = !problem;
      msg.textContent = problem;
      if (problem) {
        reason.setAttribute("aria-invalid", "true");
        reason.focus();
        return;
      }
      reason.removeAttribute("aria-invalid");
      const body = { outcome, visited_on: isoOf(new Date()) };
      if (text) body.reason = text;
      report("outcome", visit, body);
    });
    confirm.replaceChildren(
      el("p", { class: "fr-mb-1w" }, el("strong", {}, `Issue choisie : ${OUTCOME_WORDS[outcome]}`)),
      form,
    );
    confirm.hidden = false;
    (needsReason ? reason : save).focus();
  };
  section.append(
    el("p", { class: "fr-text--sm" }, "Choisissez ce qui s'est passé, puis confirmez."),
    el(
      "div",
      { class: "rb-outcomes" },
      Object.entries(OUTCOME_WORDS).map(([outcome, words]) =>
        el(
          "button",
          {
            class: "fr-btn fr-btn--secondary rb-outcome",
            type: "button",
            "data-outcome": outcome,
            onclick: () => choose(outcome),
          },
          words,
        ),
      ),
    ),
    confirm,
  );
  return section;
}

function surveySection(visit, status) {
  const allowed = status === "planned" || status === "reached";
  const section = el("section", { id: "questionnaire-visite", class: "fr-mt-4w", "aria-labelledby": "titre-questionnaire" });
  section.append(el("h3", { id: "titre-questionnaire", class: "fr-h5" }, "Questionnaire"));
  if (!allowed) {
    section.append(
      el(
        "p",
        {},
        status === "pending"
          ? "Un rapport de cette visite attend d'être envoyé : le questionnaire pourra être complété ensuite."
          : "Pas de questionnaire : l'entreprise n'a pas été rencontrée.",
      ),
    );
    return section;
  }
  if (!state.questionnaire) {
    section.append(
      el(
        "p",
        {},
        navigator.onLine
          ? "Chargement du questionnaire…"
          : "Le questionnaire n'est pas encore sur ce téléphone : ouvrez cette page une fois avec le réseau.",
      ),
    );
    return section;
  }
  section.append(
    el(
      "p",
      { class: "fr-text--sm" },
      status === "reached"
        ? "Vous pouvez compléter ou corriger le questionnaire déjà envoyé : il sera remplacé."
        : "Envoyer le questionnaire enregistre aussi la visite comme « rencontré ».",
    ),
    surveyForm(state.questionnaire, {
      idPrefix: "questionnaire",
      onSubmit: (body) => report("survey", visit, body),
    }),
  );
  return section;
}

// --- reports ------------------------------------------------------------------------------

async function report(kind, visit, body) {
  const made = queue.newReport({ subject: state.subject, kind, visit, body });
  await queue.put(made);
  state.pending = await queue.all(state.subject);
  renderBanner();
  if (navigator.onLine && state.stop !== "session") {
    await syncNow({ auto: false, made });
  } else {
    render();
    say(
      "info",
      "Enregistré sur ce téléphone",
      state.stop === "session"
        ? "Le rapport partira quand vous vous serez reconnecté."
        : "Le rapport partira au retour du réseau.",
    );
  }
}

function say(kind, title, text) {
  const box = document.getElementById("resultat-visite");
  const target = box || shell.results;
  const node = alert(kind, title, text);
  node.removeAttribute("role"); // the container is the live region
  if (box) {
    box.replaceChildren(node);
    box.focus();
  } else {
    target.prepend(node);
  }
}

async function syncNow({ auto, made = null }) {
  if (!state.subject) return;
  if (!navigator.onLine) {
    state.stop = "offline";
    renderBanner();
    if (!auto) {
      shell.results.replaceChildren(alert("warning", null, "Hors ligne : vos rapports attendront le retour du réseau."));
      shell.results.focus();
    }
    return;
  }
  shell.syncButton.disabled = true;
  shell.syncButton.setAttribute("aria-busy", "true");
  let outcome;
  try {
    outcome = await flush(state.subject);
  } finally {
    shell.syncButton.removeAttribute("aria-busy");
  }
  state.stop = outcome.stop;
  state.pending = outcome.kept;
  for (const r of outcome.results) applyResult(r);
  state.results = [...outcome.results, ...state.results].slice(0, 20);
  renderBanner();
  renderResults();
  const mine = made && outcome.results.find((r) => r.report.client_id === made.client_id);
  const onVisit = viewOf().visit;
  const form = document.getElementById("questionnaire");
  const fieldErrors = Boolean(mine && mine.fields && mine.fields.length && form && made.type === "survey");
  if (!fieldErrors) render(); // a refused survey keeps its answers on screen, to be corrected
  if (mine && onVisit) {
    if (fieldErrors) {
      showErrors(form, mine.fields);
      say("error", mine.text, "Corrigez les réponses signalées, puis envoyez à nouveau.");
      // the summary above the fields keeps the focus: it lists what to change
      form.querySelector('[id$="-erreurs"]').focus();
    } else {
      const kind = mine.status === "accepted" || mine.status === "duplicate" ? "success" : "error";
      say(kind, mine.text, reportWords(mine.report));
    }
  } else if (made && onVisit) {
    const why =
      outcome.stop === "session"
        ? "Votre session a expiré : reconnectez-vous pour l'envoyer."
        : outcome.stop === "offline"
          ? "Pas de réseau : il partira à son retour."
          : "Le service ne répond pas : réessayez avec « Synchroniser ».";
    say("warning", "Enregistré sur ce téléphone", why);
  } else if (!auto) {
    if (!outcome.results.length) {
      shell.results.prepend(
        alert(
          outcome.stop ? "warning" : "info",
          null,
          outcome.stop === "session"
            ? "Reconnectez-vous pour envoyer vos rapports en attente."
            : outcome.stop
              ? "Rien n'a pu être envoyé pour le moment."
              : "Aucun rapport à envoyer.",
        ),
      );
    }
    shell.results.focus();
  }
  if (outcome.results.some((r) => r.status === "accepted" || r.status === "duplicate")) refreshWeek();
}

// The visit as the answer leaves it, before the list is read again.
function applyResult(r) {
  if (!(r.status === "accepted" || r.status === "duplicate")) return;
  for (const visit of [...state.visits, ...(state.todayVisits || [])]) {
    if (visit.id !== r.report.visit_id) continue;
    visit.status = "completed";
    visit.outcome = r.report.type === "outcome" ? r.report.outcome.outcome : "reached";
  }
}

async function refreshWeek() {
  try {
    const { items, fromCache } = await visitsBetween(state.week, 7);
    if (fromCache) return;
    state.visits = items;
    const onVisit = viewOf().visit;
    if (!onVisit) render({ keepFocus: true });
  } catch (_) {
    /* the local picture stays */
  }
}

// --- go (last: every declaration above is initialised) ---------------------------------

let current = null;
let sessionRefused = false;
askEarly();
try {
  current = await requireSession(["consultant", "admin"]);
} catch (error) {
  if (error.status === 401) sessionRefused = true;
  else throw error;
}
state.subject = current ? current.subject : localStorage.getItem(SUBJECT_KEY);

if (sessionRefused && !(await queue.count(state.subject)) && navigator.onLine) {
  location.assign(LOGIN); // nobody signed in and nothing waiting here: the login page
} else {
  await start();
}
