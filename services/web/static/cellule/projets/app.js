// The crisis cell's projects: the pipeline by stage (GET /projects/stats), the project
// table with its filters in the URL (GET /projects), each project's detail and timeline
// in a modal, the look-alikes to review, the alerts the APIs give, the cell's commands
// (declare an exogenous project, qualify, change stage, record jobs, abandon, merge,
// not a duplicate) and the CSV export. Fed only by the detection, funding and campaigns
// APIs through the web service's relay.

import { Prefetched, api, newIdempotencyKey, requireSession } from "../../common/api.js";
import { alert, clear, el, fmt, frame, painted, ready } from "../../common/layout.js";
import { saveCsv, toCsv } from "./csv.js";
import {
  KIND_LABEL,
  KINDS,
  MATURITIES,
  MATURITY_LABEL,
  MOVABLE_STAGES,
  ORIGIN_LABEL,
  SOURCE_LABEL,
  STAGES,
  eventLabel,
  priorityReason,
  refusal,
  stageLabel,
} from "./labels.js";

// The first page of each list is asked for beside the session, not after it.
const early = new Prefetched();
early.start("stats", () => api("detection", "/projects/stats"));
early.start("projects", () => api("detection", "/projects", { query: listQuery({}, filtersOfUrl()) }));
early.start("review", () => api("detection", "/projects", { query: { under_review: true, limit: 200 } }));

const current = await requireSession(["crisis_cell", "admin"]);
const main = frame(current, "/cellule/");

const state = {
  filters: filtersOfUrl(),
  projects: [],
  next: null,
  stats: null,
  matches: new Map(), // project id → GET …/matches (?limit=1 for the table) | {missing: true} | {error: "…"}
  detailId: null,
};

// --- small builders -------------------------------------------------------------------

// A DSFR fieldset's children are wrapped in fr-fieldset__element.
function fieldset(legend, ...children) {
  return el(
    "fieldset",
    { class: "fr-fieldset" },
    el("legend", { class: "fr-fieldset__legend" }, legend),
    children.map((c) => el("div", { class: "fr-fieldset__element" }, c)),
  );
}

function field(id, label, input, hint) {
  return el(
    "div",
    { class: "fr-input-group" },
    el("label", { class: "fr-label", for: id }, label, hint && el("span", { class: "fr-hint-text" }, hint)),
    input,
  );
}

function input(id, attrs = {}) {
  return el("input", { class: "fr-input", id, name: attrs.name || id, ...attrs });
}

function select(id, label, options, value, attrs = {}) {
  return el(
    "div",
    { class: "fr-select-group" },
    el("label", { class: "fr-label", for: id }, label),
    el(
      "select",
      { class: "fr-select", id, name: attrs.name || id, ...attrs },
      options.map(([v, text]) => el("option", { value: v, selected: v === value }, text)),
    ),
  );
}

function checkbox(id, label, checked, hint) {
  return el(
    "div",
    { class: "fr-checkbox-group" },
    el("input", { type: "checkbox", id, name: id, checked }),
    el("label", { class: "fr-label", for: id }, label, hint && el("span", { class: "fr-hint-text" }, hint)),
  );
}

function submitButton(text, extra = "") {
  return el("button", { class: `fr-btn ${extra}`.trim(), type: "submit" }, text);
}

function badge(text, kind) {
  return el("p", { class: `fr-badge fr-badge--sm fr-badge--no-icon ${kind ? `fr-badge--${kind}` : ""}` }, text);
}

const yesNo = (b) => (b ? "Oui" : "Non");
const firmOf = (p) => p.firm_name || (p.siren ? `SIREN ${p.siren}` : "Entreprise sans nom");
const intOrNull = (v) => (v === "" || v === null || v === undefined ? null : Number(v));

function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// The API's answer to a command, in an aria-live region: its refusal in words, or what
// was done.
function say(live, kind, text, detail) {
  clear(live).append(
    el(
      "div",
      { class: `fr-alert fr-alert--${kind} fr-alert--sm`, role: kind === "error" ? "alert" : null },
      el("p", {}, text),
      detail && el("p", { class: "fr-text--xs fr-mb-0 rb-detail" }, `Réponse du service : ${detail}`),
    ),
  );
}

function sayRefusal(live, error) {
  const { text, detail } = refusal(error);
  say(live, "error", text, detail && detail !== text ? detail : null);
}

// One command form: one Idempotency-Key per submission (kept for a retry after a network
// failure, so a double click or a resend never applies a command twice), the button off
// while the request is in flight, the answer said in `live`.
function commandForm(form, live, send, done) {
  if (!live) {
    live = el("div", { class: "rb-form-message", id: form.id ? `${form.id}-message` : null, "aria-live": "polite" });
    form.append(live);
  }
  let key = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("[type=submit]");
    if (button.disabled) return;
    button.disabled = true;
    key = key || newIdempotencyKey();
    try {
      const result = await send(new FormData(form), key);
      key = null;
      await done(result);
    } catch (error) {
      if (!error || error.status !== 0) key = null;
      sayRefusal(live, error);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// --- the URL's filters ------------------------------------------------------------------

function filtersOfUrl() {
  const q = new URLSearchParams(location.search);
  const stage = STAGES.some(([s]) => s === q.get("stage")) ? q.get("stage") : "";
  const origin = ["endogenous", "exogenous"].includes(q.get("origin")) ? q.get("origin") : "";
  const hidden = ["true", "false"].includes(q.get("hidden")) ? q.get("hidden") : "";
  return { stage, origin, hidden };
}

function urlOf(filters) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  const text = q.toString();
  return text ? `${location.pathname}?${text}` : location.pathname;
}

function applyFilters(filters) {
  state.filters = filters;
  history.pushState(null, "", urlOf(filters));
  syncFilterForm();
  loadProjects().then(renderTable);
}

window.addEventListener("popstate", () => {
  state.filters = filtersOfUrl();
  syncFilterForm();
  loadProjects().then(renderTable);
});

// --- the page's skeleton ----------------------------------------------------------------

const live = el("div", { id: "message-actions", class: "fr-mb-2w", "aria-live": "polite" });
const dupLive = el("div", { id: "message-doublons", class: "fr-mb-2w", "aria-live": "polite" });
const pipeline = el("section", { id: "pipeline", class: "fr-mb-4w", "aria-labelledby": "titre-pipeline" });
const duplicates = el("section", { id: "doublons", class: "fr-mb-4w", "aria-labelledby": "titre-doublons" });
const flags = el("section", { id: "alertes", class: "fr-mb-4w", "aria-labelledby": "titre-alertes" });
const listing = el("section", { id: "liste", class: "fr-mb-4w", "aria-labelledby": "titre-liste" });
const tableBox = el("div", { id: "tableau" });

const filterForm = el(
  "form",
  { id: "filtres", class: "rb-filters", "aria-label": "Filtrer les projets" },
  select(
    "filtre-etape",
    "Étape",
    [["", "Toutes les étapes"], ...STAGES],
    state.filters.stage,
    { name: "stage" },
  ),
  select(
    "filtre-origine",
    "Origine",
    [["", "Toutes les origines"], ["endogenous", "Endogène (entreprises du territoire)"], ["exogenous", "Exogène (venues d'ailleurs)"]],
    state.filters.origin,
    { name: "origin" },
  ),
  select(
    "filtre-cache",
    "Projets cachés",
    [["", "Tous"], ["true", "Cachés (inconnus des acteurs publics)"], ["false", "Connus des acteurs publics"]],
    state.filters.hidden,
    { name: "hidden" },
  ),
  el(
    "div",
    { class: "rb-filters__buttons" },
    submitButton("Filtrer"),
    el("button", { class: "fr-btn fr-btn--tertiary", type: "button", id: "filtres-effacer" }, "Tout afficher"),
  ),
);
filterForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData(filterForm);
  applyFilters({ stage: data.get("stage"), origin: data.get("origin"), hidden: data.get("hidden") });
});
filterForm.querySelector("#filtres-effacer").addEventListener("click", () =>
  applyFilters({ stage: "", origin: "", hidden: "" }),
);

function syncFilterForm() {
  filterForm.querySelector("#filtre-etape").value = state.filters.stage;
  filterForm.querySelector("#filtre-origine").value = state.filters.origin;
  filterForm.querySelector("#filtre-cache").value = state.filters.hidden;
}

const exportButton = el(
  "button",
  { class: "fr-btn fr-btn--secondary fr-icon-download-line fr-btn--icon-left", type: "button", id: "export-csv" },
  "Exporter en CSV",
);
exportButton.addEventListener("click", exportCsv);

const declareButton = el(
  "button",
  {
    class: "fr-btn fr-icon-add-line fr-btn--icon-left",
    type: "button",
    id: "declarer-exogene",
    "aria-controls": "modale-exogene",
    "data-fr-opened": "false",
  },
  "Déclarer un projet exogène",
);

const detailModal = modal("modale-projet", "Projet");
const exoModal = modal("modale-exogene", "Déclarer un projet exogène");

clear(main).append(
  el(
    "nav",
    { class: "rb-subnav fr-mb-3w", "aria-label": "Pages de la cellule de crise" },
    el(
      "ul",
      {},
      el("li", {}, el("a", { href: "/cellule/" }, "Tableau de bord")),
      el("li", {}, el("a", { href: "/cellule/projets/", "aria-current": "page" }, "Projets")),
    ),
  ),
  el("h1", {}, "Projets de la cellule de crise"),
  el(
    "p",
    { class: "fr-text--sm" },
    current.territories.length
      ? `Territoire${current.territories.length > 1 ? "s" : ""} : ${current.territories.join(", ")}`
      : "Tous les territoires (administration)",
  ),
  pipeline,
  listing,
  duplicates,
  flags,
  detailModal.node,
  exoModal.node,
);

// --- the DSFR modal ---------------------------------------------------------------------

function modal(id, title) {
  const heading = el("h2", { id: `${id}-titre`, class: "fr-modal__title" }, title);
  const content = el("div", { class: "fr-modal__content" }, heading);
  const node = el(
    "dialog",
    { id, class: "fr-modal", "aria-labelledby": `${id}-titre`, role: "dialog" },
    el(
      "div",
      { class: "fr-container fr-container--fluid fr-container-md" },
      el(
        "div",
        { class: "fr-grid-row fr-grid-row--center" },
        el(
          "div",
          { class: "fr-col-12 fr-col-md-11 fr-col-lg-10" },
          el(
            "div",
            { class: "fr-modal__body" },
            el(
              "div",
              { class: "fr-modal__header" },
              el("button", { class: "fr-btn--close fr-btn", type: "button", title: "Fermer la fenêtre", "aria-controls": id }, "Fermer"),
            ),
            content,
          ),
        ),
      ),
    ),
  );
  const body = el("div", {});
  content.append(body);
  return { node, heading, body };
}

// The modals open by the design system's buttons (`aria-controls` + `data-fr-opened`):
// it keeps the focus inside, closes on Échap and gives the focus back to the button.

// --- loading ------------------------------------------------------------------------------

function listQuery(extra = {}, f = state.filters) {
  return { stage: f.stage, origin: f.origin, hidden: f.hidden, limit: 200, ...extra };
}

async function loadStats() {
  state.stats = await early.take("stats", () => api("detection", "/projects/stats"));
}

async function loadProjects() {
  try {
    const page = await early.take("projects", () => api("detection", "/projects", { query: listQuery() }));
    state.projects = page.items;
    state.next = page.next_cursor;
    state.listError = null;
  } catch (error) {
    state.projects = [];
    state.next = null;
    state.listError = error;
  }
}

async function loadMore() {
  const page = await api("detection", "/projects", { query: listQuery({ cursor: state.next }) });
  state.projects = state.projects.concat(page.items);
  state.next = page.next_cursor;
}

// `painted` is called once the pipeline and the table are on screen (first useful paint).
async function refreshAll(painted = () => {}) {
  const lists = Promise.all([loadStats().catch(() => (state.stats = null)), loadProjects()]).then(() => {
    renderPipeline();
    renderTable();
    painted();
  });
  await Promise.all([lists, renderDuplicates()]);
}

// --- the pipeline -------------------------------------------------------------------------

function renderPipeline() {
  clear(pipeline).append(el("h2", { id: "titre-pipeline" }, "Projets par étape"));
  const stats = state.stats;
  if (!stats) {
    pipeline.append(alert("error", null, "Les chiffres des projets sont indisponibles pour l'instant."));
    return;
  }
  pipeline.append(
    el(
      "ol",
      { class: "rb-pipeline", "aria-label": "Nombre de projets à chaque étape" },
      STAGES.map(([stage, label]) =>
        el(
          "li",
          { class: stage === "abandoned" ? "rb-pipeline__off" : null },
          el(
            "a",
            {
              href: urlOf({ ...state.filters, stage }),
              dataset: { stage },
              "aria-current": state.filters.stage === stage ? "true" : null,
              onclick: (event) => {
                event.preventDefault();
                applyFilters({ ...state.filters, stage });
              },
            },
            el("span", { class: "rb-figure", id: `etape-${stage}` }, fmt.number(stats.by_stage[stage] || 0)),
            el("span", { class: "rb-pipeline__label" }, label),
          ),
        ),
      ),
    ),
    el(
      "p",
      { class: "fr-text--sm fr-mt-2w", id: "totaux" },
      `${fmt.number(stats.projects)} projet${stats.projects > 1 ? "s" : ""} en cours` +
        ` (hors abandonnés), dont ${fmt.number(stats.hidden)} caché${stats.hidden > 1 ? "s" : ""}` +
        (stats.hidden_share === null ? "" : ` (${fmt.percent(stats.hidden_share)})`) +
        ` · ${fmt.number(stats.jobs_planned)} emplois prévus · ${fmt.number(stats.jobs_created)} emplois créés` +
        ` · ${fmt.number(stats.under_review)} doublon${stats.under_review > 1 ? "s" : ""} possible${stats.under_review > 1 ? "s" : ""} à examiner` +
        ` (${fmt.number(stats.jobs_under_review)} emplois).`,
    ),
  );
}

// --- the table ----------------------------------------------------------------------------

const COLUMNS = [
  "Projet",
  "Origine",
  "Étape",
  "Caché",
  "Priorité",
  "Emplois prévus",
  "Emplois créés",
  "Consentement",
  "Financements",
];

function renderListing() {
  clear(listing).append(
    el("h2", { id: "titre-liste" }, "Liste des projets"),
    filterForm,
    el("ul", { class: "fr-btns-group fr-btns-group--inline-md fr-btns-group--icon-left fr-mt-1w" },
      el("li", {}, declareButton),
      el("li", {}, exportButton),
    ),
    live,
    tableBox,
  );
}

function sorted(projects) {
  // Highest support priority first; ties in the API's order (detection date).
  return projects.map((p, i) => [p, i]).sort((a, b) => b[0].priority - a[0].priority || a[1] - b[1]).map(([p]) => p);
}

function renderTable() {
  clear(tableBox);
  if (state.listError) {
    tableBox.append(alert("error", null, refusal(state.listError).text));
    return;
  }
  const rows = sorted(state.projects);
  const filtered = Object.values(state.filters).some(Boolean);
  if (!rows.length) {
    tableBox.append(
      el(
        "p",
        { class: "fr-text--lg rb-empty", id: "aucun-projet" },
        filtered ? "Aucun projet ne correspond à ces filtres." : "Aucun projet détecté pour l'instant.",
      ),
    );
    return;
  }
  const n = rows.length;
  tableBox.append(
    el(
      "div",
      { class: "fr-table fr-table--no-caption-top rb-table" },
      el(
        "div",
        { class: "fr-table__wrapper" },
        el(
          "div",
          { class: "fr-table__container" },
          el(
            "div",
            { class: "fr-table__content" },
            el(
              "table",
              { id: "table-projets" },
              el(
                "caption",
                {},
                `Projets${filtered ? " (filtrés)" : ""} : ${fmt.number(n)} affiché${n > 1 ? "s" : ""},` +
                  " par priorité d'accompagnement décroissante",
              ),
              el("thead", {}, el("tr", {}, COLUMNS.map((c) => el("th", { scope: "col" }, c)))),
              el("tbody", {}, rows.map(row)),
            ),
          ),
        ),
      ),
    ),
  );
  if (state.next) {
    const more = el("button", { class: "fr-btn fr-btn--secondary fr-mt-2w", type: "button", id: "plus" }, "Afficher plus de projets");
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        await loadMore();
        renderTable();
      } catch (error) {
        sayRefusal(live, error);
        more.disabled = false;
      }
    });
    tableBox.append(more);
  }
  fetchMatches(rows.map((p) => p.id));
}

function row(p) {
  const open = el(
    "button",
    {
      class: "rb-firm rb-open",
      type: "button",
      "aria-controls": "modale-projet",
      "data-fr-opened": "false",
      title: `Voir le détail et les actions : ${firmOf(p)}`,
    },
    firmOf(p),
  );
  open.addEventListener("click", () => openDetail(p.id));
  return el(
    "tr",
    { dataset: { projectId: p.id, stage: p.stage, origin: p.origin } },
    el(
      "th",
      { scope: "row" },
      open,
      el("br"),
      el("span", { class: "fr-text--xs" }, `${KIND_LABEL[p.kind] || p.kind} · détecté le ${fmt.date(p.detected_on)}`),
      p.possible_duplicate_of && el("br"),
      p.possible_duplicate_of && badge("Doublon possible", "warning"),
    ),
    el("td", { class: "rb-origin" }, badge(ORIGIN_LABEL[p.origin] || p.origin, p.origin === "exogenous" ? "purple-glycine" : "blue-ecume")),
    el("td", { class: "rb-stage" }, stageLabel(p.stage)),
    el("td", { class: "rb-hidden" }, p.hidden ? badge("Caché", "new") : "Non"),
    el("td", { class: "rb-num" }, fmt.number(p.priority)),
    el("td", { class: "rb-num rb-jobs-planned" }, fmt.number(p.jobs_planned)),
    el("td", { class: "rb-num rb-jobs-created" }, fmt.number(p.jobs_created)),
    el("td", {}, yesNo(p.consent_to_share)),
    el("td", { class: "rb-matches", dataset: { matches: p.id } }, matchesText(p.id)),
  );
}

// --- funding matched: GET /funding/projects/{id}/matches, one project at a time (the
// funding API has no list of matches for the crisis cell), a few in parallel, after the
// table is on screen. The table needs the count and the best one only (`limit=1`); a
// project's detail asks for every eligible scheme.

function matchesText(id) {
  const m = state.matches.get(id);
  if (!m) return el("span", { class: "fr-text--xs" }, "…");
  if (m.missing) return el("span", { class: "fr-text--xs" }, "Pas encore étudié");
  if (m.error) return el("span", { class: "fr-text--xs" }, "Indisponible");
  if (!m.eligible_total) return "Aucun dispositif";
  const best = m.eligible[0];
  return el(
    "span",
    {},
    `${m.eligible_total} dispositif${m.eligible_total > 1 ? "s" : ""}`,
    el("br"),
    el("span", { class: "fr-text--xs" }, `meilleur : ${best.scheme_name || best.scheme_id}`),
  );
}

let matchQueue = [];
let matchWorkers = 0;
function fetchMatches(ids) {
  matchQueue = ids.filter((id) => !state.matches.has(id) || state.matches.get(id).missing);
  while (matchWorkers < 4 && matchQueue.length) {
    matchWorkers += 1;
    (async () => {
      while (matchQueue.length) {
        const id = matchQueue.shift();
        await loadMatches(id);
        const cell = tableBox.querySelector(`td[data-matches="${id}"]`);
        if (cell) clear(cell).append(matchesText(id));
      }
      matchWorkers -= 1;
    })();
  }
}

async function loadMatches(id, { all = false } = {}) {
  try {
    state.matches.set(id, await api("funding", `/projects/${id}/matches${all ? "" : "?limit=1"}`));
  } catch (error) {
    state.matches.set(id, error.status === 404 ? { missing: true } : { error: error.message });
  }
  return state.matches.get(id);
}

// --- a project's detail -------------------------------------------------------------------

async function openDetail(id) {
  state.detailId = id;
  detailModal.heading.textContent = "Projet";
  clear(detailModal.body).append(el("p", { class: "fr-text--sm" }, "Chargement du projet…"));
  await renderDetail(id);
}

async function renderDetail(id, message) {
  const [project, timeline, matches] = await Promise.all([
    api("detection", `/projects/${id}`).catch((e) => e),
    api("detection", `/projects/${id}/timeline`).catch((e) => e),
    loadMatches(id, { all: true }),
  ]);
  if (state.detailId !== id) return;
  if (project instanceof Error) {
    clear(detailModal.body).append(alert("error", null, refusal(project).text));
    return;
  }
  const p = project;
  detailModal.heading.textContent = `${firmOf(p)} — ${KIND_LABEL[p.kind] || p.kind}`;
  const modalLive = el("div", { id: "modale-message", class: "fr-mb-2w", "aria-live": "polite", tabindex: "-1" });
  clear(detailModal.body).append(
    modalLive,
    el("p", { class: "fr-mb-1w" }, p.description),
    facts(p),
    el("h3", { class: "fr-h6 fr-mt-3w" }, "Priorité d'accompagnement : ", fmt.number(p.priority)),
    el("ul", { class: "fr-text--sm" }, p.priority_reasons.map((r) => el("li", {}, priorityReason(r)))),
    el("h3", { class: "fr-h6 fr-mt-3w" }, "Financements possibles"),
    matchesDetail(matches),
    el("h3", { class: "fr-h6 fr-mt-3w" }, "Actions de la cellule"),
    actions(p),
    el("h3", { class: "fr-h6 fr-mt-3w" }, "Historique"),
    timelineList(timeline),
  );
  if (message) {
    say(modalLive, "success", message);
    modalLive.focus(); // the form used may be gone (a qualified project has no "Qualifier")
  }
}

function facts(p) {
  const items = [
    ["Origine", ORIGIN_LABEL[p.origin] || p.origin],
    ["Étape", stageLabel(p.stage)],
    ["Caché (inconnu des acteurs publics à sa détection)", yesNo(p.hidden)],
    ["Emplois prévus", fmt.number(p.jobs_planned)],
    ["Emplois créés", `${fmt.number(p.jobs_created)}${p.jobs_complete ? " (recrutements terminés)" : ""}`],
    ["Investissement", fmt.euros(p.capex_eur)],
    ["Besoin de financement", fmt.euros(p.funding_need_eur)],
    ["Maturité", p.maturity ? MATURITY_LABEL[p.maturity] || p.maturity : "—"],
    ["Foncier", p.land_needs_ha === null ? "—" : `${fmt.number(p.land_needs_ha)} ha`],
    ["Consentement au partage avec les financeurs", yesNo(p.consent_to_share)],
    ["Détecté le", fmt.date(p.detected_on)],
    ["SIREN", p.siren || "—"],
    ["Site (SIRET)", p.site_id || "—"],
    ["Territoire", p.territory_id],
  ];
  if (p.abandoned_reason) items.push(["Motif de l'abandon", p.abandoned_reason]);
  if (p.possible_duplicate_of) items.push(["Doublon possible", p.duplicate_reason || p.possible_duplicate_of]);
  if (p.merged_into) items.push(["Fusionné dans le projet", p.merged_into]);
  return el("dl", { class: "rb-facts" }, items.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function matchesDetail(m) {
  if (!m || m.missing) {
    return el("p", { class: "fr-text--sm" }, "Le service des financements n'a pas encore étudié ce projet.");
  }
  if (m.error) return el("p", { class: "fr-text--sm" }, `Financements indisponibles : ${m.error}`);
  if (!m.eligible_total) {
    return el("p", { class: "fr-text--sm" }, `Aucun dispositif éligible (${fmt.number(m.rejected_total)} écartés).`);
  }
  return el(
    "div",
    {},
    el("ol", { class: "fr-text--sm" },
      m.eligible.map((e) =>
        el("li", {}, `${e.scheme_name || e.scheme_id} — critères remplis à ${fmt.number(Math.round(e.score))} %`,
          e.planned_amount_eur ? ` · ${fmt.euros(e.planned_amount_eur)} au plan de financement` : ""),
      ),
    ),
    el("p", { class: "fr-text--xs" }, `${fmt.number(m.rejected_total)} autres dispositifs écartés.`),
  );
}

function timelineList(items) {
  if (items instanceof Error) return alert("error", null, refusal(items).text);
  if (!items.length) return el("p", { class: "fr-text--sm" }, "Aucun événement enregistré.");
  return el(
    "ol",
    { class: "rb-timeline fr-text--sm", id: "historique" },
    items.map((i) =>
      el(
        "li",
        {},
        el("time", { datetime: i.at }, new Date(i.at).toLocaleString("fr-FR", { dateStyle: "medium", timeStyle: "short" })),
        " — ",
        i.kind === "event"
          ? el("span", {}, el("strong", {}, eventLabel(i.event_type)), ` (étape : ${stageLabel(i.stage)})`)
          : el("span", {}, el("strong", {}, SOURCE_LABEL[i.source] || i.source), ` : ${i.reference}`,
              detailText(i.detail)),
      ),
    ),
  );
}

function detailText(detail) {
  const parts = Object.entries(detail || {})
    .filter(([, v]) => v !== null && typeof v !== "object")
    .map(([k, v]) => `${k} = ${v}`);
  return parts.length ? el("span", { class: "fr-text--xs" }, ` (${parts.join(", ")})`) : "";
}

// --- the cell's commands on one project ----------------------------------------------------

function post(path, body, key) {
  return api("detection", path, { method: "POST", body, idempotencyKey: key });
}

async function afterCommand(id, message) {
  say(live, "success", message);
  await refreshAll();
  await renderDetail(id, message);
}

function actions(p) {
  const id = p.id;
  const base = `/projects/${id}`;
  const forms = [];
  if (p.stage === "detected") {
    forms.push(
      commandForm(
        el(
          "form",
          { id: "form-qualifier", class: "rb-action" },
          fieldset("Qualifier le projet",
            el("p", { class: "fr-text--xs fr-mb-1w" }, "Corrigez les chiffres si besoin ; laissés vides, ceux du projet sont gardés."),
            field("qualifier-emplois", "Emplois prévus", input("qualifier-emplois", { type: "number", min: 0, max: 100000, name: "jobs_planned", placeholder: String(p.jobs_planned) })),
            field("qualifier-capex", "Investissement (€)", input("qualifier-capex", { type: "number", min: 0, name: "capex_eur", placeholder: p.capex_eur === null ? "" : String(p.capex_eur) })),
            submitButton("Qualifier"),
          ),
        ),
        null,
        (data, key) => post(`${base}/qualify`, { jobs_planned: intOrNull(data.get("jobs_planned")), capex_eur: intOrNull(data.get("capex_eur")) }, key),
        (out) => afterCommand(id, `Projet « ${firmOf(out)} » qualifié.`),
      ),
    );
  }
  if (p.stage !== "abandoned" && !p.merged_into) {
    forms.push(
      commandForm(
        el(
          "form",
          { id: "form-etape", class: "rb-action" },
          fieldset("Changer d'étape",
            select("etape-cible", "Nouvelle étape", MOVABLE_STAGES.map((s) => [s, stageLabel(s)]), MOVABLE_STAGES.find((s) => s !== p.stage), { name: "stage" }),
            field("etape-motif", "Motif (facultatif)", input("etape-motif", { name: "reason", maxlength: 500 })),
            submitButton("Changer d'étape"),
          ),
        ),
        null,
        (data, key) => post(`${base}/stage`, { stage: data.get("stage"), reason: data.get("reason") || null }, key),
        (out) => afterCommand(id, `Projet « ${firmOf(out)} » passé à l'étape « ${stageLabel(out.stage)} ».`),
      ),
      commandForm(
        el(
          "form",
          { id: "form-emplois", class: "rb-action" },
          fieldset("Déclarer les emplois créés",
            field("emplois-total", "Emplois créés au total à ce jour", input("emplois-total", { type: "number", min: 0, max: 100000, required: true, name: "jobs_created_total", value: p.jobs_created || "" }), "Le total, pas l'ajout"),
            field("emplois-date", "Date", input("emplois-date", { type: "date", required: true, name: "created_on", value: today(), max: today() })),
            checkbox("emplois-complet", "Recrutements terminés", p.jobs_complete),
            submitButton("Déclarer les emplois"),
          ),
        ),
        null,
        (data, key) => post(`${base}/jobs`, { jobs_created_total: Number(data.get("jobs_created_total")), created_on: data.get("created_on"), complete: data.get("emplois-complet") === "on" }, key),
        (out) => afterCommand(id, `${fmt.number(out.jobs_created)} emplois créés enregistrés pour « ${firmOf(out)} ».`),
      ),
      commandForm(
        el(
          "form",
          { id: "form-abandon", class: "rb-action" },
          fieldset("Abandonner le projet",
            field("abandon-motif", "Motif de l'abandon", input("abandon-motif", { name: "reason", required: true, minlength: 3, maxlength: 500 })),
            submitButton("Abandonner", "fr-btn--secondary"),
          ),
        ),
        null,
        (data, key) => post(`${base}/abandon`, { reason: data.get("reason") }, key),
        (out) => afterCommand(id, `Projet « ${firmOf(out)} » abandonné.`),
      ),
    );
  }
  if (!forms.length) return el("p", { class: "fr-text--sm" }, "Ce projet est terminé : aucune action possible.");
  return el("div", { class: "rb-actions" }, forms);
}

// --- look-alikes to review -------------------------------------------------------------------

// The list is built whole before it replaces the one on screen, and a refresh that fails
// leaves the last list in place under the error: the cell never loses sight of the pairs
// still to review because one call failed.
async function renderDuplicates() {
  const title = el("h2", { id: "titre-doublons" }, "Doublons possibles à examiner");
  let flagged, originals;
  try {
    const review = () => api("detection", "/projects", { query: { under_review: true, limit: 200 } });
    flagged = (await early.take("review", review)).items;
    originals = new Map(
      await Promise.all(
        [...new Set(flagged.map((p) => p.possible_duplicate_of))].map(async (id) => [
          id,
          await api("detection", `/projects/${id}`).catch(() => null),
        ]),
      ),
    );
  } catch (error) {
    const shown = duplicates.querySelector("#liste-doublons");
    const stale = shown ? " La liste ci-dessous est celle du dernier affichage." : "";
    clear(duplicates).append(
      ...[title, dupLive, alert("error", null, `${refusal(error).text}${stale}`), shown].filter(Boolean),
    );
    return;
  }
  const content = [
    title,
    dupLive,
    flagged.length
      ? el("p", { class: "fr-text--sm" }, "Un projet signalé ressemble à un projet déjà connu (même entreprise, même type de projet, même territoire). Fusionnez-les s'il s'agit du même projet, sinon indiquez qu'il n'est pas un doublon.")
      : el("p", { class: "fr-text--sm rb-empty", id: "aucun-doublon" }, "Aucun doublon possible à examiner."),
    flagged.length ? el("ul", { class: "rb-duplicates", id: "liste-doublons" }, flagged.map((p) => duplicateItem(p, originals.get(p.possible_duplicate_of)))) : null,
  ];
  clear(duplicates).append(...content.filter(Boolean));
}

function summary(p) {
  return `${firmOf(p)} — ${KIND_LABEL[p.kind] || p.kind}, ${fmt.number(p.jobs_planned)} emplois prévus, étape « ${stageLabel(p.stage)} », détecté le ${fmt.date(p.detected_on)}`;
}

function duplicateItem(p, original) {
  const itemLive = el("div", { "aria-live": "polite" });
  const note = `note-${p.id}`;
  const merge = commandForm(
    el("form", { class: "rb-inline-form" }, submitButton("Fusionner", "fr-btn--sm")),
    itemLive,
    (_, key) => post(`/projects/${p.id}/merge`, {}, key),
    async (out) => {
      say(dupLive, "success", `Projets fusionnés : « ${firmOf(p)} » est désormais compté dans le projet qui reste (${summary(out)}).`);
      await refreshAll();
    },
  );
  const dismiss = commandForm(
    el(
      "form",
      { class: "rb-inline-form" },
      field(note, "Pourquoi sont-ils différents ? (facultatif)", input(note, { name: "note", maxlength: 500 })),
      submitButton("Pas un doublon", "fr-btn--sm fr-btn--secondary"),
    ),
    itemLive,
    (data, key) => post(`/projects/${p.id}/not-a-duplicate`, { note: data.get("note") || null }, key),
    async (out) => {
      say(dupLive, "success", `« ${firmOf(out)} » n'est plus signalé comme doublon.`);
      await refreshAll();
    },
  );
  return el(
    "li",
    { class: "rb-duplicate", dataset: { projectId: p.id } },
    el("p", { class: "fr-mb-1w" }, el("strong", {}, "Signalé : "), summary(p)),
    el("p", { class: "fr-mb-1w" }, el("strong", {}, "Ressemble à : "), original ? summary(original) : "un projet qui n'est plus visible"),
    p.duplicate_reason && el("p", { class: "fr-text--xs fr-mb-1w" }, `Raison donnée par la détection : ${p.duplicate_reason}`),
    el("div", { class: "rb-duplicate__actions" }, merge, dismiss),
    itemLive,
  );
}

// --- alerts: what the surveys flagged ------------------------------------------------------
// The warnings firms gave during the visits (layoffs, relocation, closure), from each site's
// latest survey (`GET /campaigns/{id}/red-flags`): the firm and what is at risk, never the
// person who said it.

const FLAG_KINDS = {
  layoffs: "Licenciements annoncés",
  relocation: "Délocalisation envisagée",
  closure: "Fermeture envisagée",
};

async function renderFlags() {
  clear(flags).append(el("h2", { id: "titre-alertes" }, "Signaux d'alerte"));
  let campaigns;
  try {
    campaigns = await api("campaigns", "/campaigns");
  } catch (error) {
    flags.append(alert("error", null, refusal(error).text));
    return;
  }
  if (!campaigns.length) {
    flags.append(el("p", { class: "fr-text--sm rb-empty" }, "Aucune campagne pour l'instant : aucun signal d'alerte."));
    return;
  }
  const lists = await Promise.all(
    campaigns.map((c) => api("campaigns", `/campaigns/${c.id}/red-flags`).catch((error) => error)),
  );
  const rows = [];
  lists.forEach((list, i) => {
    if (!Array.isArray(list)) {
      flags.append(alert("error", null, refusal(list).text));
      return;
    }
    for (const flag of list) rows.push({ flag, campaign: campaigns[i] });
  });
  if (!rows.length) {
    flags.append(el("p", { class: "fr-text--sm rb-empty", id: "aucune-alerte" }, "Aucun signal d'alerte remonté par les visites."));
    return;
  }
  flags.append(
    el(
      "div",
      { class: "fr-table fr-table--sm" },
      el(
        "table",
        { id: "liste-alertes" },
        el("caption", {}, `Signaux d'alerte remontés par les visites (${fmt.number(rows.length)})`),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["Entreprise", "Commune", "Signal", "Échéance", "Emplois menacés", "Signalé le"].map((h) =>
              el("th", { scope: "col" }, h),
            ),
          ),
        ),
        el(
          "tbody",
          {},
          rows.map(({ flag }) =>
            el(
              "tr",
              { "data-site-id": flag.site_id, "data-kind": flag.kind },
              el("td", {}, flag.name || `Établissement ${flag.site_id}`),
              el("td", {}, flag.commune_insee || "—"),
              el("td", {}, FLAG_KINDS[flag.kind] || flag.kind),
              el("td", {}, flag.horizon_months === null || flag.horizon_months === undefined ? "non précisée" : `${fmt.number(flag.horizon_months)} mois`),
              el("td", {}, flag.jobs_at_risk === null || flag.jobs_at_risk === undefined ? "non précisé" : fmt.number(flag.jobs_at_risk)),
              el("td", {}, fmt.date(flag.reported_at)),
            ),
          ),
        ),
      ),
    ),
  );
}

// --- declaring an exogenous project ---------------------------------------------------------

let shocks = [];
function renderExoForm() {
  const territories = current.territories;
  const exoLive = el("div", { id: "exogene-message", class: "fr-mt-2w", "aria-live": "polite" });
  const shockOptions = [
    ["", "Aucune fermeture en particulier"],
    ...shocks.map((s) => [s.shock_id, `Fermeture du site ${s.site_id} (${s.territory_id}), annoncée le ${fmt.date(s.announced_on)} — ${fmt.number(s.jobs_lost)} emplois perdus`]),
  ];
  const form = el(
    "form",
    { id: "form-exogene" },
    el("p", { class: "fr-text--sm" }, "Une entreprise venue d'ailleurs cherche à s'implanter (exemple : l'usine de rechapage de pneus de Blackstar). Les champs marqués * sont obligatoires."),
    field("exo-entreprise", "Nom de l'entreprise *", input("exo-entreprise", { name: "firm_name", required: true, minlength: 2, maxlength: 200, autocomplete: "organization" })),
    el("div", { class: "fr-grid-row fr-grid-row--gutters" },
      el("div", { class: "fr-col-12 fr-col-md-6" }, field("exo-siren", "SIREN", input("exo-siren", { name: "siren", inputmode: "numeric", pattern: "[0-9]{9}" }), "9 chiffres, s'il est connu")),
      el("div", { class: "fr-col-12 fr-col-md-6" }, field("exo-naf", "Code NAF", input("exo-naf", { name: "naf_code", pattern: "[0-9]{2}\\.[0-9]{2}[A-Z]" }), "Par exemple 22.11Z")),
    ),
    territories.length
      ? select("exo-territoire", "Territoire *", territories.map((t) => [t, t]), territories[0], { name: "territory_id" })
      : field("exo-territoire", "Territoire *", input("exo-territoire", { name: "territory_id", required: true }), "Par exemple ti-3205"),
    select("exo-fermeture", "Fermeture que le projet compense", shockOptions, shockOptions[1] ? shockOptions[1][0] : "", { name: "shock_id" }),
    select("exo-type", "Type de projet *", KINDS, "new_site", { name: "kind" }),
    field("exo-description", "Description *", el("textarea", { class: "fr-input", id: "exo-description", name: "description", required: true, minlength: 3, maxlength: 2000, rows: 3 })),
    el("div", { class: "fr-grid-row fr-grid-row--gutters" },
      el("div", { class: "fr-col-12 fr-col-md-6" }, field("exo-emplois", "Emplois prévus *", input("exo-emplois", { name: "jobs_planned", type: "number", min: 0, max: 100000, required: true }))),
      el("div", { class: "fr-col-12 fr-col-md-6" }, field("exo-capex", "Investissement (€)", input("exo-capex", { name: "capex_eur", type: "number", min: 0 }))),
      el("div", { class: "fr-col-12 fr-col-md-6" }, field("exo-besoin", "Besoin de financement (€)", input("exo-besoin", { name: "funding_need_eur", type: "number", min: 0 }))),
      el("div", { class: "fr-col-12 fr-col-md-6" }, field("exo-foncier", "Foncier recherché (ha)", input("exo-foncier", { name: "land_needs_ha", type: "number", min: 0, step: "0.1" }))),
    ),
    select("exo-maturite", "Maturité", [["", "Inconnue"], ...MATURITIES], "", { name: "maturity" }),
    checkbox("exo-connu", "Déjà connu des acteurs publics", true, "Décochez si le projet est « dans les tiroirs » : personne d'autre ne l'accompagne encore"),
    checkbox("exo-consentement", "L'entreprise accepte le partage avec les financeurs", false),
    submitButton("Déclarer le projet", "fr-mt-2w"),
    exoLive,
  );
  commandForm(
    form,
    exoLive,
    (data, key) =>
      post(
        "/projects/exogenous",
        {
          territory_id: data.get("territory_id"),
          shock_id: data.get("shock_id") || null,
          firm_name: data.get("firm_name"),
          siren: data.get("siren") || null,
          naf_code: data.get("naf_code") || null,
          kind: data.get("kind"),
          description: data.get("description"),
          jobs_planned: Number(data.get("jobs_planned")),
          capex_eur: intOrNull(data.get("capex_eur")),
          funding_need_eur: intOrNull(data.get("funding_need_eur")),
          land_needs_ha: data.get("land_needs_ha") === "" ? null : Number(data.get("land_needs_ha")),
          maturity: data.get("maturity") || null,
          known_to_public_actors: data.get("exo-connu") === "on",
          consent_to_share: data.get("exo-consentement") === "on",
        },
        key,
      ),
    async (out) => {
      form.reset();
      const flag = out.possible_duplicate_of ? " Il ressemble à un projet déjà connu : voyez « Doublons possibles à examiner »." : "";
      clear(exoLive);
      // Closed: the focus goes back to « Déclarer un projet exogène », above the message.
      if (globalThis.dsfr) globalThis.dsfr(exoModal.node).modal.conceal();
      say(live, "success", `Projet exogène « ${firmOf(out)} » déclaré (étape « Détecté »).${flag}`);
      await refreshAll();
    },
  );
  clear(exoModal.body).append(form);
}

// --- CSV export ------------------------------------------------------------------------------

async function exportCsv() {
  exportButton.disabled = true;
  try {
    // Every page of the current filter, not only those on screen.
    let page = await api("detection", "/projects", { query: { ...listQuery(), limit: 500 } });
    let items = page.items;
    while (page.next_cursor) {
      page = await api("detection", "/projects", { query: { ...listQuery(), limit: 500, cursor: page.next_cursor } });
      items = items.concat(page.items);
    }
    const decimal = (x) => String(x).replace(".", ",");
    const header = [
      "Identifiant", "Entreprise", "SIREN", "Territoire", "Origine", "Type", "Étape", "Caché",
      "Priorité", "Emplois prévus", "Emplois créés", "Consentement", "Investissement (€)",
      "Besoin de financement (€)", "Détecté le", "Doublon possible de", "Dispositifs éligibles",
      "Meilleur dispositif",
    ];
    const rows = sorted(items).map((p) => {
      const m = state.matches.get(p.id);
      const eligible = m && m.eligible ? m.eligible : null;
      return [
        p.id, p.firm_name, p.siren, p.territory_id, ORIGIN_LABEL[p.origin] || p.origin,
        KIND_LABEL[p.kind] || p.kind, stageLabel(p.stage), yesNo(p.hidden), decimal(p.priority),
        p.jobs_planned, p.jobs_created, yesNo(p.consent_to_share), p.capex_eur, p.funding_need_eur,
        p.detected_on, p.possible_duplicate_of, eligible ? m.eligible_total : "",
        eligible && eligible.length ? eligible[0].scheme_name || eligible[0].scheme_id : "",
      ];
    });
    saveCsv(`projets-${today()}.csv`, toCsv(header, rows));
    say(live, "success", `Export CSV : ${fmt.number(rows.length)} projet${rows.length > 1 ? "s" : ""}.`);
  } catch (error) {
    sayRefusal(live, error);
  } finally {
    exportButton.disabled = false;
  }
}

// --- first paint, then what can wait ----------------------------------------------------------

renderListing();
await refreshAll(() => painted(main)).catch(() => null);
ready(main); // painted or not (the lists failed and say so)

api("detection", "/shocks")
  .then((list) => (shocks = list))
  .catch(() => (shocks = []))
  .then(renderExoForm);
renderFlags();
