// The crisis cell's dashboard: the territory's closure shocks (the latest by default, the
// choice in the URL as ?choc=<id>), a form to declare one, and for the chosen shock its
// job-compensation ledger, the campaign's map and list, its progress, its plan and the
// cell's actions on it. Fed only by the public APIs through the web service's relay.

import { api, download, newIdempotencyKey, requireSession } from "../common/api.js";
import { alert, clear, el, fmt, frame, painted } from "../common/layout.js";
import { renderActions, renderPlan, renderProgress } from "./campaign.js";
import { renderLedger } from "./ledger.js";
import { renderLegend, renderList, renderMap, statusOf } from "./map.js";
import { clock, field, section, showRefusal } from "./util.js";

const REFRESH_MS = 15_000;
const RETRY_MS = 2_000;

// Started before anything else, in parallel with the session: the shocks (the token's
// territories), the campaigns, and the ledger of the shock the URL names.
const quiet = (p) => {
  p.catch(() => null);
  return p;
};
const params = new URLSearchParams(location.search);
const shocksFirst = quiet(api("registry", "/closure-shocks"));
const campaignsFirst = quiet(api("campaigns", "/campaigns"));
const ledgerFirst = params.get("choc")
  ? { id: params.get("choc"), answer: quiet(api("detection", `/shocks/${encodeURIComponent(params.get("choc"))}/ledger`)) }
  : null;

const current = await requireSession(["crisis_cell", "admin"]);
const main = frame(current, "/cellule/");
const ownTerritory = current.territories[0] || null;

// --- what is fetched once per page load (sites' positions, outlines) -------------------
const memo = new Map();
function once(key, load) {
  if (!memo.has(key)) {
    const p = load();
    p.catch(() => memo.delete(key)); // a failure is retried next time
    memo.set(key, p);
  }
  return memo.get(key);
}
async function allSites(territory) {
  const items = [];
  let cursor = null;
  do {
    const page = await api("registry", "/sites", { query: { territory, limit: 500, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}
const sitesOf = (t) => once(`sites:${t}`, () => allSites(t));
const outlinesOf = (t) => once(`geo:${t}`, () => api("registry", `/territories/${encodeURIComponent(t)}/communes.geojson`));

// The map's data, behind them.
if (ownTerritory) {
  sitesOf(ownTerritory).catch(() => null);
  outlinesOf(ownTerritory).catch(() => null);
}

// --- the page's frame -------------------------------------------------------------------
const subnav = el(
  "nav",
  { class: "rb-subnav fr-mb-4w", "aria-label": "Pages de la cellule de crise" },
  el(
    "ul",
    {},
    el("li", {}, el("a", { href: "/cellule/", "aria-current": "page" }, "Tableau de bord")),
    el("li", {}, el("a", { href: "/cellule/projets/" }, "Projets")),
  ),
);
const choice = el("div", { id: "shock-choice" });
const declareBox = el("div", { id: "declare" });
const dashboard = el("div", { id: "dashboard" });
const pageMessage = el("div", { id: "page-message", "aria-live": "polite" });
clear(main).append(
  el("h1", {}, "Cellule de crise : tableau de bord"),
  subnav,
  pageMessage,
  choice,
  declareBox,
  dashboard,
);

let usefulMarked = false;
function useful() {
  if (usefulMarked) return;
  usefulMarked = true;
  painted(main);
}

// --- shocks: the selector ---------------------------------------------------------------
let shocks = [];
let names = new Map(); // siret → site name, once the sites are known

function latestFirst(list) {
  return [...list].sort(
    (a, b) => b.announced_on.localeCompare(a.announced_on) || b.declared_at.localeCompare(a.declared_at),
  );
}

function shockLabel(s) {
  const name = names.get(s.site_id);
  return `${name || `SIRET ${s.site_id}`} — annoncée le ${fmt.date(s.announced_on)} — ${fmt.number(s.jobs_lost)} emplois perdus`;
}

function renderChoice(selectedId) {
  if (!shocks.length) {
    clear(choice);
    return;
  }
  const select = el(
    "select",
    { class: "fr-select", id: "choc", name: "choc" },
    shocks.map((s) => el("option", { value: s.id, selected: s.id === selectedId }, shockLabel(s))),
  );
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    url.searchParams.set("choc", select.value);
    history.pushState({ choc: select.value }, "", url);
    showShock(select.value);
  });
  clear(choice).append(
    el(
      "div",
      { class: "fr-select-group fr-mb-2w" },
      el("label", { class: "fr-label", for: "choc" }, "Fermeture suivie", el("span", { class: "fr-hint-text" }, `${fmt.number(shocks.length)} fermeture(s) déclarée(s) sur vos territoires, la plus récente d'abord`)),
      select,
    ),
  );
}

function refreshNames(territory) {
  sitesOf(territory)
    .then((sites) => {
      for (const s of sites) if (s.name) names.set(s.siret, s.name);
      const select = document.getElementById("choc");
      if (select) for (const o of select.options) {
        const s = shocks.find((x) => x.id === o.value);
        if (s) o.textContent = shockLabel(s);
      }
      const list = document.getElementById("sites-connus");
      if (list && !list.childElementCount) {
        for (const s of sites) list.append(el("option", { value: s.siret }, s.name || s.siret));
      }
    })
    .catch(() => null);
}

// --- declaring a closure ------------------------------------------------------------------
function declareForm(open) {
  const siret = el("input", { class: "fr-input", id: "declare-siret", name: "site_id", inputmode: "numeric", autocomplete: "off", list: "sites-connus", required: true });
  const day = el("input", { class: "fr-input", id: "declare-date", name: "announced_on", type: "date", required: true, max: new Date().toISOString().slice(0, 10) });
  const jobs = el("input", { class: "fr-input", id: "declare-jobs", name: "jobs_lost", type: "number", min: "1", step: "1", inputmode: "numeric", required: true });
  const groups = {
    site_id: field("declare-siret", "SIRET du site qui ferme", siret, "14 chiffres, par exemple 361 200 389 00019"),
    announced_on: field("declare-date", "Date de l'annonce", day, "La date où la fermeture a été annoncée"),
    jobs_lost: field("declare-jobs", "Emplois perdus", jobs, "Nombre entier, au moins 1"),
  };
  const result = el("div", { id: "declare-result", "aria-live": "polite", class: "fr-mt-2w" });
  let key = null;
  const form = el(
    "form",
    { id: "form-declare", novalidate: true },
    el("datalist", { id: "sites-connus" }),
    el("div", { class: "fr-grid-row fr-grid-row--gutters" }, Object.values(groups).map((g) => el("div", { class: "fr-col-12 fr-col-md-4" }, g))),
    el("button", { class: "fr-btn", type: "submit" }, "Déclarer la fermeture"),
    result,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const g of Object.values(groups)) g.setError(null);
    clear(result);
    const digits = siret.value.replace(/\s+/g, "");
    const n = Number(jobs.value);
    let first = null;
    const wrong = (name, input, text) => {
      groups[name].setError(text);
      first = first || input;
    };
    if (!/^\d{14}$/.test(digits)) wrong("site_id", siret, "Le SIRET compte 14 chiffres.");
    if (!day.value) wrong("announced_on", day, "Indiquez la date de l'annonce.");
    if (!Number.isInteger(n) || n < 1) wrong("jobs_lost", jobs, "Indiquez un nombre entier d'emplois, au moins 1.");
    if (first) {
      result.append(alert("error", null, "La déclaration est incomplète : voyez les champs signalés."));
      first.focus();
      return;
    }
    key = key || newIdempotencyKey();
    try {
      const shock = await api("registry", "/closure-shocks", {
        method: "POST",
        body: { site_id: digits, announced_on: day.value, jobs_lost: n },
        idempotencyKey: key,
      });
      key = null;
      clear(pageMessage).append(
        alert("success", "Fermeture déclarée", `La fermeture du site ${shock.site_id} (${fmt.number(shock.jobs_lost)} emplois) est enregistrée ; la campagne de porte-à-porte se prépare.`),
      );
      form.reset();
      await loadShocks(shock.id);
      const url = new URL(location.href);
      url.searchParams.set("choc", shock.id);
      history.pushState({ choc: shock.id }, "", url);
    } catch (error) {
      if (!error.offline) key = null;
      showRefusal(result, error, groups, "La fermeture n'a pas été déclarée");
    }
  });
  if (open) return form;
  return el(
    "div",
    { class: "fr-accordions-group fr-mb-4w" },
    el(
      "section",
      { class: "fr-accordion" },
      el(
        "h2",
        { class: "fr-accordion__title" },
        el("button", { class: "fr-accordion__btn", type: "button", "aria-expanded": "false", "aria-controls": "declare-panel" }, "Déclarer une fermeture"),
      ),
      el("div", { class: "fr-collapse", id: "declare-panel" }, form),
    ),
  );
}

// --- one shock's dashboard --------------------------------------------------------------
let generation = 0;
let timer = null;
let state = null; // {shock, territory, campaign, …} of the shown shock

const communeNameOf = (code) => (state && state.communes.get(code)) || code;

async function loadShocks(selectId) {
  shocks = latestFirst(await api("registry", "/closure-shocks"));
  start(selectId);
}

function start(wanted) {
  clear(declareBox);
  if (!shocks.length) {
    renderChoice(null);
    clear(dashboard).append(
      section(
        "aucune-fermeture",
        "Aucune fermeture déclarée sur ce territoire",
        el("p", {}, "Quand un site industriel annonce sa fermeture, déclarez-la ici : la campagne de porte-à-porte sur les sites du territoire démarre aussitôt, et le bilan des emplois se construit au fil des projets."),
        declareForm(true),
      ),
    );
    if (ownTerritory) refreshNames(ownTerritory);
    useful();
    return;
  }
  let selected = shocks.find((s) => s.id === wanted);
  if (wanted && !selected) {
    clear(pageMessage).append(alert("warning", null, "La fermeture demandée n'est pas sur vos territoires (ou n'existe pas) : voici la plus récente."));
  }
  selected = selected || shocks[0];
  renderChoice(selected.id);
  showShock(selected.id);
  declareBox.append(declareForm(false));
  refreshNames(selected.territory_ids[0] || ownTerritory);
}

function skeleton() {
  const box = (id) => el("div", { id }, el("p", { class: "fr-text--sm" }, "Chargement…"));
  const stamp = el("p", { class: "fr-text--xs fr-mb-0", id: "ledger-updated" });
  const announce = el("p", { class: "fr-sr-only", id: "refresh-result", "aria-live": "polite" });
  const mapBox = el("div", { id: "campaign-map", class: "rb-map" }, el("p", { class: "fr-text--sm" }, "Chargement de la carte…"));
  const listBox = el("div", { id: "campaign-list", hidden: true }, el("p", { class: "fr-text--sm" }, "Chargement de la liste…"));
  const legendBox = el("div", { id: "campaign-legend" });
  const view = el(
    "fieldset",
    { class: "fr-segmented fr-segmented--sm fr-mb-2w", id: "campaign-view" },
    el("legend", { class: "fr-segmented__legend fr-segmented__legend--inline" }, "Affichage"),
    el(
      "div",
      { class: "fr-segmented__elements" },
      ["carte", "liste"].map((v) =>
        el(
          "div",
          { class: "fr-segmented__element" },
          el("input", { type: "radio", name: "vue", id: `vue-${v}`, value: v, checked: v === "carte" }),
          el("label", { class: "fr-label", for: `vue-${v}` }, v === "carte" ? "Carte" : "Liste"),
        ),
      ),
    ),
  );
  view.addEventListener("change", (event) => {
    const list = event.target.value === "liste";
    mapBox.hidden = list;
    legendBox.hidden = list;
    listBox.hidden = !list;
  });
  const refresh = el("button", { class: "fr-btn fr-btn--sm fr-icon-refresh-line fr-btn--icon-left", type: "button", id: "refresh" }, "Actualiser");
  refresh.addEventListener("click", () => refreshAll(true));
  const csv = el("button", { class: "fr-btn fr-btn--sm fr-btn--secondary fr-icon-download-line fr-btn--icon-left", type: "button", id: "ledger-csv" }, "Exporter le bilan (CSV)");
  csv.addEventListener("click", async () => {
    try {
      await download("detection", `/shocks/${state.shock.id}/ledger.csv`, `bilan-emplois-${state.shock.id}.csv`);
    } catch (error) {
      showRefusal(announce, error);
      announce.classList.remove("fr-sr-only");
    }
  });
  clear(dashboard).append(
    section(
      "bilan",
      "Compensation des emplois",
      el("div", { class: "rb-toolbar fr-mb-2w" }, refresh, csv, stamp),
      announce,
      box("ledger"),
    ),
    section("campagne", "Campagne de porte-à-porte", box("campaign-summary"), view, legendBox, mapBox, listBox),
    section("avancement", "Avancement de la campagne", box("progress")),
    section("plan", "Plan de visites", box("plan-box")),
    section("pilotage", "Piloter la campagne", el("div", { id: "action-result", role: "status", "aria-live": "polite", class: "fr-mb-2w" }), box("actions")),
  );
}

const byId = (id) => document.getElementById(id);
const stale = (g) => g !== generation;

async function showShock(shockId) {
  generation += 1;
  const g = generation;
  clearTimeout(timer);
  const shock = shocks.find((s) => s.id === shockId);
  const territory = shock.territory_ids[0] || ownTerritory;
  state = { shock, territory, campaign: null, communes: new Map(), plan: null };
  skeleton();
  outlinesOf(territory)
    .then((geo) => {
      if (stale(g)) return;
      for (const f of geo.features || []) state.communes.set(f.properties.code, f.properties.nom);
    })
    .catch(() => null);
  const ledgerDone = loadLedger(g);
  const campaignDone = loadCampaign(g, campaignsFirst);
  await Promise.allSettled([ledgerDone, campaignDone]);
  if (stale(g)) return;
  useful();
  schedule(g);
}

function schedule(g) {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    if (stale(g)) return;
    if (document.visibilityState === "visible") await refreshAll(false);
    schedule(g);
  }, REFRESH_MS);
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state && state.campaign) refreshAll(false);
});

// The ledger; while detection does not know the shock yet (it learns it from an event),
// says so and tries again shortly.
async function loadLedger(g) {
  const box = byId("ledger");
  let prefetched = null;
  if (ledgerFirst && ledgerFirst.id === state.shock.id) {
    prefetched = ledgerFirst.answer; // used once: later reads are fresh
    ledgerFirst.id = null;
  }
  try {
    const ledger = await (prefetched || api("detection", `/shocks/${state.shock.id}/ledger`));
    if (stale(g)) return;
    // Redrawn only when it changed: an open accordion stays open between refreshes.
    const json = JSON.stringify(ledger);
    if (json !== state.ledgerJson || !byId("ledger-table")) {
      const wasOpen = byId("ledger-series") && document.querySelector("[aria-controls=ledger-series]")?.getAttribute("aria-expanded") === "true";
      renderLedger(box, ledger, wasOpen);
      state.ledgerJson = json;
    }
    byId("ledger-updated").textContent = `Chiffres du ${fmt.date(new Date().toISOString())} à ${clock()}`;
  } catch (error) {
    if (stale(g)) return;
    if (error.status === 404) {
      clear(box).append(alert("info", "Le bilan se prépare", "Le service de détection n'a pas encore pris en compte cette fermeture : nouvel essai dans un instant."));
      setTimeout(() => !stale(g) && loadLedger(g), RETRY_MS);
    } else {
      clear(box);
      showRefusal(box, error, {}, "Le bilan des emplois n'a pas pu être lu");
    }
  }
}

async function loadCampaign(g, first) {
  const summary = byId("campaign-summary");
  let list;
  try {
    list = await (first || api("campaigns", "/campaigns"));
  } catch (error) {
    if (stale(g)) return;
    clear(summary);
    showRefusal(summary, error, {}, "La campagne n'a pas pu être lue");
    return;
  }
  if (stale(g)) return;
  const campaign = list.find((c) => c.shock_id === state.shock.id);
  if (!campaign) {
    clear(summary).append(alert("info", "La campagne se prépare", "Aucune campagne n'est encore lancée pour cette fermeture : elle démarre quelques secondes après la déclaration. Nouvel essai dans un instant."));
    for (const id of ["campaign-map", "campaign-list", "progress", "plan-box", "actions"]) clear(byId(id));
    setTimeout(() => !stale(g) && loadCampaign(g, null), RETRY_MS);
    return;
  }
  state.campaign = campaign;
  renderSummary(campaign);
  renderActions(byId("actions"), campaign, () => refreshAll(false, true), byId("action-result"));
  // The rest of the campaign: in parallel, each drawn when it arrives.
  loadProgress(g);
  loadPlanAndMap(g);
}

function renderSummary(c) {
  const status = c.status === "active" ? "en cours" : "close";
  clear(byId("campaign-summary")).append(
    el(
      "p",
      {},
      `Campagne ${status} du ${fmt.date(c.starts_on)} au ${fmt.date(c.ends_on)} : ${fmt.number(c.targets)} sites ciblés, ${fmt.number(c.planned)} visites planifiées, ${fmt.number(c.completed)} faites, ${fmt.number(c.uncovered)} hors plan. Équipe : ${c.roster.join(", ") || "personne"}. Budget ${fmt.number(c.budget_days)} jours-consultant, ${fmt.number(c.cost_per_visit_days)} jour par visite, ${fmt.number(c.daily_cap)} visites par jour au plus.`,
    ),
  );
}

async function loadProgress(g) {
  const box = byId("progress");
  try {
    const progress = await api("campaigns", `/campaigns/${state.campaign.id}/progress`);
    if (stale(g)) return;
    const json = JSON.stringify([progress, state.campaign.days_planned]);
    if (json === state.progressJson && byId("progress-consultants")) return;
    state.progressJson = json;
    renderProgress(box, progress, state.campaign, communeNameOf, state.campaign.id);
  } catch (error) {
    if (stale(g)) return;
    clear(box);
    showRefusal(box, error, {}, "L'avancement n'a pas pu être lu");
  }
}

async function loadPlanAndMap(g) {
  const campaignId = state.campaign.id;
  const [plan, sites, geo] = await Promise.allSettled([
    api("campaigns", `/campaigns/${campaignId}/plan`),
    sitesOf(state.territory),
    outlinesOf(state.territory),
  ]);
  if (stale(g)) return;
  const mapBox = byId("campaign-map");
  const listBox = byId("campaign-list");
  if (plan.status === "rejected") {
    for (const box of [mapBox, listBox, byId("plan-box")]) {
      clear(box);
      showRefusal(box, plan.reason, {}, "Le plan de visites n'a pas pu être lu");
    }
    return;
  }
  if (geo.status === "fulfilled") {
    for (const f of geo.value.features || []) state.communes.set(f.properties.code, f.properties.nom);
  }
  state.plan = plan.value;
  const siteById = new Map(sites.status === "fulfilled" ? sites.value.map((s) => [s.siret, s]) : []);
  const rows = plan.value.targets.map((t) => {
    const site = siteById.get(t.site_id) || null;
    return { target: t, site, status: statusOf(t, site), commune: communeNameOf(t.commune_insee) };
  });
  const closing = siteById.get(state.campaign.closing_site_id) || null;
  renderList(listBox, rows);
  if (geo.status === "rejected" || sites.status === "rejected") {
    clear(mapBox);
    showRefusal(mapBox, (geo.reason || sites.reason), {}, "La carte n'a pas pu être dessinée (la vue Liste reste disponible)");
  } else {
    renderMap(mapBox, { geojson: geo.value, rows, closing });
  }
  renderLegend(byId("campaign-legend"), rows, closing);
  renderPlan(byId("plan-box"), plan.value, communeNameOf);
}

let refreshing = null; // the refresh under way
let again = null; // what to do once it ends
async function refreshAll(announce, withPlan = false) {
  if (!state) return;
  if (refreshing) {
    again = { announce: announce || (again && again.announce), withPlan: withPlan || (again && again.withPlan) };
    return;
  }
  refreshing = true;
  const g = generation;
  try {
    const jobs = [loadLedger(g)];
    if (state.campaign) {
      jobs.push(
        api("campaigns", `/campaigns/${state.campaign.id}`).then((c) => {
          if (stale(g)) return;
          const terms = (x) => JSON.stringify([x.status, x.budget_days, x.cost_per_visit_days, x.daily_cap, x.ends_on, x.roster]);
          const changedTerms = terms(c) !== terms(state.campaign);
          state.campaign = c;
          renderSummary(c);
          if (changedTerms) renderActions(byId("actions"), c, () => refreshAll(false, true), byId("action-result"));
        }),
        loadProgress(g),
      );
      if (announce || withPlan) jobs.push(loadPlanAndMap(g));
    }
    const results = await Promise.allSettled(jobs);
    if (announce && !stale(g)) {
      const failed = results.some((r) => r.status === "rejected");
      byId("refresh-result").textContent = failed
        ? "Une partie des chiffres n'a pas pu être actualisée."
        : `Chiffres actualisés à ${clock()}.`;
    }
  } finally {
    refreshing = null;
    if (again) {
      const next = again;
      again = null;
      refreshAll(next.announce, next.withPlan);
    }
  }
}

window.addEventListener("popstate", () => {
  const id = new URLSearchParams(location.search).get("choc");
  if (id && shocks.some((s) => s.id === id)) {
    const select = byId("choc");
    if (select) select.value = id;
    showShock(id);
  }
});

// --- go -----------------------------------------------------------------------------------
try {
  shocks = latestFirst(await shocksFirst);
  start(params.get("choc"));
} catch (error) {
  clear(dashboard);
  showRefusal(dashboard, error, {}, "Les fermetures n'ont pas pu être lues");
  useful();
}
