// The campaign's progress (GET /campaigns/{id}/progress), its visit plan with the
// priorities and their reasons (GET /campaigns/{id}/plan), and the crisis cell's
// actions on it: re-plan, roster, terms (each with an Idempotency-Key, kept while the
// same request is retried after a network failure).

import { api, download, newIdempotencyKey } from "../common/api.js";
import { alert, clear, el, fmt } from "../common/layout.js";
import { STATUS } from "./map.js";
import { accordion, field, showRefusal, table } from "./util.js";

function tile(label, value, detail, id) {
  return el(
    "div",
    { class: "fr-col-6 fr-col-md-3" },
    el(
      "div",
      { class: "rb-kpi" },
      el("p", { class: "fr-mb-1v fr-text--sm" }, label),
      el("p", { class: "rb-figure fr-mb-0", id }, value),
      detail && el("p", { class: "fr-text--xs fr-mb-0" }, detail),
    ),
  );
}

export function renderProgress(box, progress, campaign, communeName, campaignId) {
  const used = progress.days_used;
  const budget = progress.budget_days;
  const share = budget ? Math.min(used / budget, 1) : 0;
  clear(box).append(
    el(
      "div",
      { class: "fr-grid-row fr-grid-row--gutters fr-mb-2w" },
      tile("Cibles", fmt.number(progress.targets), `${fmt.number(progress.planned)} visites planifiées, ${fmt.number(progress.uncovered)} hors plan`, "progress-targets"),
      tile("Visites faites", fmt.number(progress.visited), `${fmt.number(progress.reached)} entreprises rencontrées`, "progress-visited"),
      tile("Taux de rencontre", fmt.percent(progress.reached_rate), "rencontrées / visitées", "progress-reached-rate"),
      tile(
        "Jours-consultant",
        `${fmt.number(used)} / ${fmt.number(budget)}`,
        campaign ? `${fmt.number(campaign.days_planned)} jours engagés par le plan` : null,
        "progress-days",
      ),
    ),
    el(
      "div",
      { class: "fr-mb-2w" },
      el("label", { for: "budget-bar", class: "fr-text--sm" }, `Budget consommé : ${fmt.percent(share)} (${fmt.number(used)} jours sur ${fmt.number(budget)})`),
      el("progress", { id: "budget-bar", max: budget || 1, value: Math.min(used, budget || 1), class: "rb-progress" }),
    ),
    el(
      "p",
      { class: "fr-text--sm" },
      `Projets recueillis : ${fmt.number(progress.projects)} (${fmt.number(progress.jobs_in_projects)} emplois annoncés), dont ${fmt.number(progress.projects_hidden)} inconnus des acteurs publics (${fmt.percent(progress.hidden_share)}) ; ${fmt.number(progress.red_flags)} signal(aux) d'alerte.`,
    ),
    table({
      caption: "Avancement par consultant",
      head: ["Consultant", "Planifiées", "Visitées", "Rencontrées", "Projets"],
      rows: progress.per_consultant.map((b) => [
        { value: b.key, header: true },
        fmt.number(b.planned),
        fmt.number(b.visited),
        fmt.number(b.reached),
        fmt.number(b.projects),
      ]),
      attrs: { id: "progress-consultants" },
      empty: "Aucun consultant n'a de visite.",
    }),
    el(
      "div",
      { class: "fr-accordions-group fr-mb-2w" },
      accordion(
        "progress-communes-panel",
        `Avancement par commune (${fmt.number(progress.per_commune.length)} communes)`,
        false,
        table({
          caption: "Avancement par commune",
          head: ["Commune", "Cibles", "Planifiées", "Visitées", "Rencontrées", "Projets"],
          rows: progress.per_commune.map((b) => [
            { value: communeName(b.key), header: true },
            fmt.number(b.targets),
            fmt.number(b.planned),
            fmt.number(b.visited),
            fmt.number(b.reached),
            fmt.number(b.projects),
          ]),
          attrs: { id: "progress-communes" },
        }),
      ),
    ),
    el(
      "button",
      {
        class: "fr-btn fr-btn--secondary fr-btn--sm fr-icon-download-line fr-btn--icon-left",
        type: "button",
        id: "progress-csv",
        onclick: () => download("campaigns", `/campaigns/${campaignId}/progress.csv`, `avancement-${campaignId}.csv`),
      },
      "Exporter l'avancement (CSV)",
    ),
  );
}

const PAGE = 20;

export function renderPlan(box, plan, communeName) {
  let page = 0;
  const pages = Math.max(1, Math.ceil(plan.targets.length / PAGE));
  const holder = el("div");
  const where = el("p", { class: "fr-text--sm fr-mb-0", "aria-live": "polite" });
  const prev = el("button", { class: "fr-btn fr-btn--tertiary fr-btn--sm", type: "button" }, "Page précédente");
  const next = el("button", { class: "fr-btn fr-btn--tertiary fr-btn--sm", type: "button" }, "Page suivante");
  const draw = () => {
    const slice = plan.targets.slice(page * PAGE, page * PAGE + PAGE);
    clear(holder).append(
      table({
        caption: `Plan de visites n° ${plan.plan_version} : cibles par priorité (${fmt.number(plan.targets.length)})`,
        head: ["Rang", "Site", "Commune", "Priorité et raisons", "Consultant", "Date prévue", "État"],
        rows: slice.map((t, i) => [
          fmt.number(page * PAGE + i + 1),
          { value: t.name || t.site_id, header: true },
          communeName(t.commune_insee),
          el(
            "div",
            {},
            el("strong", {}, `${fmt.number(t.priority)} points`),
            t.reasons.length ? el("ul", { class: "fr-text--xs fr-mb-0" }, t.reasons.map((r) => el("li", {}, r))) : null,
          ),
          t.consultant_id || "—",
          t.scheduled_on ? fmt.date(t.scheduled_on) : "—",
          t.uncovered_reason ? `${(STATUS[t.status] || STATUS.uncovered).label} : ${t.uncovered_reason}` : (STATUS[t.status] || STATUS.uncovered).label,
        ]),
        attrs: { id: "plan-table" },
        size: "fr-table--sm fr-table--multiline",
        empty: "Le plan n'a aucune cible.",
      }),
    );
    where.textContent = `Page ${page + 1} sur ${pages}`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  };
  prev.addEventListener("click", () => {
    page = Math.max(0, page - 1);
    draw();
  });
  next.addEventListener("click", () => {
    page = Math.min(pages - 1, page + 1);
    draw();
  });
  draw();
  clear(box).append(
    holder,
    el("div", { class: "rb-pager" }, prev, where, next),
  );
}

// A form whose submission keeps its Idempotency-Key while it is retried after a
// network failure, and takes a new one once the service has answered.
function keyed() {
  let key = null;
  return {
    get: () => key || (key = newIdempotencyKey()),
    answered: () => {
      key = null;
    },
  };
}

async function send(result, key, groups, call, done) {
  for (const g of Object.values(groups)) g.setError(null);
  clear(result).append(alert("info", null, "Envoi en cours…"));
  try {
    const answer = await call(key.get());
    key.answered();
    clear(result).append(alert("success", "C'est fait", done(answer)));
    return answer;
  } catch (error) {
    if (!error.offline) key.answered();
    showRefusal(result, error, groups, "La campagne n'a pas été modifiée");
    return null;
  }
}

function planWords(answer) {
  if (answer.planned === null || answer.planned === undefined) {
    return `Rien à changer : le plan n° ${answer.plan_version} reste en vigueur.`;
  }
  return `Plan n° ${answer.plan_version} : ${fmt.number(answer.planned)} visites planifiées, ${fmt.number(answer.uncovered)} cible(s) hors plan. Équipe : ${answer.roster.join(", ") || "personne"} ; budget ${fmt.number(answer.budget_days)} jours.`;
}

// The crisis cell's actions; `changed()` reloads the campaign's figures after a change.
// `result` is the aria-live region for the answers: it outlives a re-render.
export function renderActions(box, campaign, changed, result) {
  const id = campaign.id;
  const closed = campaign.status !== "active";

  // Re-plan
  const replanKey = keyed();
  const replan = el(
    "form",
    { id: "form-replan", novalidate: true },
    el("p", { class: "fr-text--sm" }, "Recalcule le plan depuis zéro avec les conditions et l'équipe actuelles : les visites planifiées peuvent changer de consultant et de date ; les visites faites restent."),
    el("button", { class: "fr-btn fr-btn--secondary", type: "submit", disabled: closed }, "Re-planifier"),
  );
  replan.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await send(result, replanKey, {}, (k) => api("campaigns", `/campaigns/${id}/replan`, { method: "POST", idempotencyKey: k }), planWords);
    if (answer) changed();
  });

  // Roster
  const rosterKey = keyed();
  const addInput = el("input", { class: "fr-input", id: "roster-add", name: "add", autocomplete: "off" });
  const addGroup = field("roster-add", "Consultants à ajouter", addInput, "Identifiants séparés par des virgules, par exemple consultant-4");
  const removeBoxes = campaign.roster.map((c, i) =>
    el(
      "div",
      { class: "fr-fieldset__element" },
      el(
        "div",
        { class: "fr-checkbox-group fr-checkbox-group--sm" },
        el("input", { type: "checkbox", id: `roster-remove-${i}`, name: "remove", value: c }),
        el("label", { class: "fr-label", for: `roster-remove-${i}` }, c),
      ),
    ),
  );
  const removeGroup = { setError: () => {} };
  const roster = el(
    "form",
    { id: "form-roster", novalidate: true },
    addGroup,
    el(
      "fieldset",
      { class: "fr-fieldset", id: "roster-remove" },
      el("legend", { class: "fr-fieldset__legend--regular fr-fieldset__legend" }, "Consultants à retirer de l'équipe"),
      removeBoxes.length ? removeBoxes : el("p", { class: "fr-fieldset__element" }, "L'équipe est vide."),
    ),
    el("button", { class: "fr-btn fr-btn--secondary", type: "submit", disabled: closed }, "Changer l'équipe"),
  );
  roster.addEventListener("submit", async (event) => {
    event.preventDefault();
    const add = addInput.value.split(/[,;\s]+/).map((s) => s.trim()).filter(Boolean);
    const remove = [...roster.querySelectorAll("input[name=remove]:checked")].map((i) => i.value);
    addGroup.setError(null);
    if (!add.length && !remove.length) {
      addGroup.setError("Indiquez au moins un consultant à ajouter, ou cochez-en un à retirer.");
      clear(result).append(alert("error", null, "Aucun changement demandé dans l'équipe."));
      addInput.focus();
      return;
    }
    const answer = await send(result, rosterKey, { add: addGroup, remove: removeGroup }, (k) =>
      api("campaigns", `/campaigns/${id}/consultants`, { method: "POST", body: { add, remove }, idempotencyKey: k }), planWords);
    if (answer) changed();
  });

  // Terms
  const termsKey = keyed();
  const inputs = {
    budget_days: el("input", { class: "fr-input", id: "terms-budget", type: "number", min: "0.5", max: "10000", step: "0.5", value: campaign.budget_days, inputmode: "decimal" }),
    cost_per_visit_days: el("input", { class: "fr-input", id: "terms-cost", type: "number", min: "0.05", max: "30", step: "0.05", value: campaign.cost_per_visit_days, inputmode: "decimal" }),
    daily_cap: el("input", { class: "fr-input", id: "terms-cap", type: "number", min: "1", max: "20", step: "1", value: campaign.daily_cap, inputmode: "numeric" }),
    ends_on: el("input", { class: "fr-input", id: "terms-ends", type: "date", value: campaign.ends_on }),
  };
  const groups = {
    budget_days: field("terms-budget", "Budget (jours-consultant)", inputs.budget_days, "Entre 0,5 et 10 000"),
    cost_per_visit_days: field("terms-cost", "Coût d'une visite (jours-consultant)", inputs.cost_per_visit_days, "Par exemple 0,75"),
    daily_cap: field("terms-cap", "Visites par jour et par consultant", inputs.daily_cap, "De 1 à 20"),
    ends_on: field("terms-ends", "Date de fin de la campagne", inputs.ends_on, `Au plus tôt le ${fmt.date(campaign.starts_on)}`),
  };
  const terms = el(
    "form",
    { id: "form-terms", novalidate: true },
    el("div", { class: "fr-grid-row fr-grid-row--gutters" }, Object.values(groups).map((g) => el("div", { class: "fr-col-12 fr-col-md-6" }, g))),
    el("button", { class: "fr-btn fr-btn--secondary", type: "submit", disabled: closed }, "Changer les conditions"),
  );
  terms.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const g of Object.values(groups)) g.setError(null);
    const body = {};
    let wrong = null;
    const number = (name, label, min, max, integer) => {
      const raw = inputs[name].value.trim().replace(",", ".");
      if (raw === "") return;
      const v = Number(raw);
      if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
        groups[name].setError(`${label} : un nombre ${integer ? "entier " : ""}entre ${fmt.number(min)} et ${fmt.number(max)}.`);
        wrong = wrong || inputs[name];
        return;
      }
      if (v !== campaign[name]) body[name] = v;
    };
    number("budget_days", "Le budget", 0.5, 10000, false);
    number("cost_per_visit_days", "Le coût d'une visite", 0.01, 30, false);
    number("daily_cap", "Les visites par jour", 1, 20, true);
    const ends = inputs.ends_on.value;
    if (ends && ends !== campaign.ends_on) body.ends_on = ends;
    if (wrong) {
      clear(result).append(alert("error", null, "Certaines valeurs ne conviennent pas : voyez les champs signalés."));
      wrong.focus();
      return;
    }
    if (!Object.keys(body).length) {
      clear(result).append(alert("info", null, "Aucune condition n'a changé : rien à envoyer."));
      return;
    }
    const answer = await send(result, termsKey, groups, (k) =>
      api("campaigns", `/campaigns/${id}/terms`, { method: "PATCH", body, idempotencyKey: k }), planWords);
    if (answer) changed();
  });

  const card = (title, form) =>
    el("div", { class: "fr-col-12 fr-col-lg-4" }, el("div", { class: "rb-action" }, el("h3", { class: "fr-h6" }, title), form));
  clear(box).append(
    closed ? alert("info", null, "Cette campagne est close : elle ne se modifie plus.") : "",
    el(
      "div",
      { class: "fr-grid-row fr-grid-row--gutters" },
      card("Re-planifier les visites", replan),
      card("Changer l'équipe de consultants", roster),
      card("Changer les conditions", terms),
    ),
  );
}
