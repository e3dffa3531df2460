// The funder's desk: the consented projects of my regions matched to my schemes, a
// project's matches (every criterion with its reason) and financing plan, and the
// applications and decisions I record on it. Fed only by the funding API.

import { Prefetched, api, newIdempotencyKey, requireSession } from "../common/api.js";
import { alert, clear, el, fmt, frame, painted } from "../common/layout.js";
import {
  AID_TYPES,
  APPLICATION_STATUS,
  CRITERIA,
  CRITERION_STATUS,
  FIRM_SIZE_SOURCES,
  FIRM_SIZES,
  KINDS,
  STAGES,
  label,
} from "./labels.js";
import { refusal } from "./refusals.js";
import { Applications } from "./store.js";

// The projects and the catalogue are asked for beside the session, not after it.
const early = new Prefetched();
early.start("projects", () => api("funding", "/funder/projects"));
early.start("schemes", () => api("funding", "/schemes"));

const current = await requireSession(["funder", "admin"]);
const main = frame(current, "/financeur/");
const isAdmin = current.roles.includes("admin");
const org = current.org || null;
const regions = current.regions || [];
const applications = new Applications(current.subject);

const state = {
  projects: null, // GET /funder/projects
  schemes: new Map(), // id → scheme (GET /schemes)
  filter: "", // a scheme id
};

function usefulPaint() {
  painted(main);
}

const mine = (schemeId) => {
  if (isAdmin) return true;
  const scheme = state.schemes.get(schemeId);
  return Boolean(org && scheme && scheme.funders.includes(org));
};
const schemeName = (id) => (state.schemes.get(id) ? state.schemes.get(id).name : id);
const kindLabel = (kind) => label(KINDS, kind);
const stageLabel = (stage) => label(STAGES, stage);

function badge(kind, text, attrs = {}) {
  return el("p", { class: `fr-badge fr-badge--sm ${kind}`, ...attrs }, text);
}

function table(caption, headers, rows, attrs = {}, { hideCaption = false } = {}) {
  return el(
    "div",
    { class: `fr-table fr-table--no-scroll rb-table${hideCaption ? " fr-table--no-caption" : ""}` },
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
            attrs,
            el("caption", {}, caption),
            el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
            el("tbody", {}, rows),
          ),
        ),
      ),
    ),
  );
}

// ------------------------------------------------------------------------- loading

async function loadCatalogue() {
  if (state.schemes.size) return;
  const schemes = await early.take("schemes", () => api("funding", "/schemes"));
  state.schemes = new Map(schemes.map((s) => [s.id, s]));
}

async function loadProjects() {
  const [projects] = await Promise.all([
    early.take("projects", () => api("funding", "/funder/projects")),
    loadCatalogue(),
  ]);
  state.projects = projects;
}

// ------------------------------------------------------------------------- the list

function scopeSentence() {
  const where = regions.length ? `de la région ${regions.join(", ")}` : "de votre périmètre";
  if (isAdmin) return `Administrateur : les projets partagés ${where} et tous les dispositifs.`;
  if (!org) {
    return "Votre session ne précise pas votre organisation : aucun dispositif ne vous est rattaché.";
  }
  return `Les projets que les entreprises ${where} ont accepté de partager, quand ils correspondent à un dispositif de ${org}.`;
}

function bestMatch(project) {
  if (state.filter) return project.matches.find((m) => m.scheme_id === state.filter);
  return project.matches[0];
}

function projectRow(project) {
  const best = bestMatch(project);
  return el(
    "tr",
    { dataset: { projectId: project.project_id } },
    el(
      "th",
      { scope: "row" },
      el(
        "a",
        { class: "fr-link", href: `#projet=${project.project_id}` },
        kindLabel(project.kind),
      ),
      el("br"),
      el("span", { class: "fr-text--xs rb-muted" }, `n° ${project.project_id.slice(0, 8)}`),
    ),
    el("td", {}, project.firm_name || "Non communiquée"),
    el("td", { class: "rb-num" }, fmt.euros(project.capex_eur)),
    el("td", { class: "rb-num" }, fmt.number(project.jobs_planned)),
    el("td", { class: "rb-num" }, fmt.euros(project.funding_need_eur)),
    el("td", {}, stageLabel(project.stage)),
    el(
      "td",
      { dataset: { bestScheme: best ? best.scheme_id : "" } },
      best
        ? [
            el("span", {}, schemeName(best.scheme_id)),
            el("br"),
            el(
              "span",
              { class: "fr-text--xs" },
              `rang ${best.rank ?? "—"} parmi tous les dispositifs · ${fmt.euros(best.planned_amount_eur)} au plan`,
            ),
          ]
        : "—",
    ),
  );
}

function renderProjectTable(container) {
  clear(container);
  const shown = state.projects.filter(
    (p) => !state.filter || p.matches.some((m) => m.scheme_id === state.filter),
  );
  if (!state.projects.length) {
    container.append(
      el(
        "p",
        { id: "projets-vide", class: "fr-text--lead" },
        "Aucun projet partagé avec vous pour l'instant",
      ),
      el(
        "p",
        {},
        "Un projet apparaît ici quand l'entreprise accepte de le partager, que la cellule de" +
          " crise l'a qualifié et qu'il correspond à l'un de vos dispositifs.",
      ),
    );
    return;
  }
  container.append(
    el(
      "p",
      { id: "projets-compte", role: "status" },
      `${fmt.number(shown.length)} projet${shown.length > 1 ? "s" : ""}` +
        (state.filter ? ` correspondant à « ${schemeName(state.filter)} »` : ""),
    ),
  );
  if (!shown.length) {
    container.append(
      el("p", { id: "projets-vide" }, "Aucun projet partagé ne correspond à ce dispositif."),
    );
    return;
  }
  container.append(
    table(
      "Projets partagés avec vous et leur meilleure correspondance parmi vos dispositifs",
      [
        "Projet",
        "Entreprise",
        "Investissement",
        "Emplois prévus",
        "Besoin de financement",
        "Étape",
        "Meilleure correspondance",
      ],
      shown.map(projectRow),
      { id: "projets-table" },
      { hideCaption: true },
    ),
  );
}

function schemeFilter(onChange) {
  const used = new Set(state.projects.flatMap((p) => p.matches.map((m) => m.scheme_id)));
  const options = [...state.schemes.values()]
    .filter((s) => mine(s.id) || used.has(s.id))
    .sort((a, b) => a.name.localeCompare(b.name, "fr"));
  const select = el(
    "select",
    { class: "fr-select", id: "filtre-dispositif", name: "dispositif" },
    el("option", { value: "" }, "Tous mes dispositifs"),
    options.map((s) =>
      el(
        "option",
        { value: s.id, selected: s.id === state.filter },
        `${s.name}${used.has(s.id) ? "" : " (aucun projet)"}`,
      ),
    ),
  );
  select.addEventListener("change", () => {
    state.filter = select.value;
    onChange();
  });
  return el(
    "div",
    { class: "fr-select-group rb-filter" },
    el("label", { class: "fr-label", for: "filtre-dispositif" }, "Filtrer par dispositif"),
    select,
  );
}

function feedSection() {
  return el(
    "section",
    { id: "flux", class: "fr-mt-6w", "aria-labelledby": "flux-titre" },
    el("h2", { id: "flux-titre" }, "Suivre les mêmes événements depuis vos systèmes"),
    el(
      "p",
      {},
      "Cette page lit l'API publique du service de financement. Vos propres systèmes peuvent" +
        " suivre les mêmes événements (propositions de correspondance, demandes, attributions," +
        " refus, versements) par HTTP, avec un jeton de financeur et le même périmètre" +
        " (régions, organisation) : le flux ",
      el("code", {}, "GET /funder/feed"),
      " du service de financement, au format server-sent events (",
      el("code", {}, "text/event-stream"),
      "), en cours de mise en service. Depuis ce site, il sera relayé à l'adresse ",
      el("code", {}, "/api/funding/funder/feed"),
      ". Le contrat de chaque événement est décrit dans le document AsyncAPI du service : ",
      el("a", { class: "fr-link", href: "/api/funding/asyncapi.json" }, "asyncapi.json"),
      ".",
    ),
  );
}

async function showList(view) {
  main.setAttribute("aria-busy", "true");
  if (!state.projects) {
    try {
      await loadProjects();
    } catch (error) {
      clear(view).append(alert("error", "Liste indisponible", refusal(error).text));
      usefulPaint();
      return;
    }
  }
  const results = el("div", { id: "projets" });
  clear(view).append(
    el(
      "section",
      { "aria-labelledby": "projets-titre" },
      el("h2", { id: "projets-titre" }, "Projets partagés avec vous"),
      el("p", { id: "perimetre" }, scopeSentence()),
      state.projects.length ? schemeFilter(() => renderProjectTable(results)) : null,
      results,
    ),
    feedSection(),
  );
  renderProjectTable(results);
  usefulPaint();
}

// ----------------------------------------------------------------------- the detail

function criteriaTable(schemeId, criteria, rejected) {
  return table(
    `Critères du dispositif « ${schemeName(schemeId)} »`,
    ["Critère", "Résultat", "Motif"],
    criteria.map((c) => {
      const status = CRITERION_STATUS[c.status] || { text: c.status, badge: "fr-badge--info" };
      return el(
        "tr",
        { dataset: { criterion: c.criterion, status: c.status } },
        el("th", { scope: "row" }, label(CRITERIA, c.criterion)),
        el("td", {}, badge(status.badge, status.text, { "data-status-badge": c.status })),
        el("td", { class: "rb-reason" }, c.reason),
      );
    }),
    { dataset: { criteriaOf: schemeId, rejected: rejected ? "true" : "false" } },
    { hideCaption: true },
  );
}

function matchCard(match) {
  const passed = match.criteria.filter((c) => c.status === "pass").length;
  return el(
    "section",
    {
      class: "rb-match fr-mb-4w",
      dataset: { schemeId: match.scheme_id, rank: match.rank ?? "" },
      "aria-labelledby": `match-${match.scheme_id}`,
    },
    el(
      "h4",
      { id: `match-${match.scheme_id}`, class: "fr-h6 fr-mb-1w" },
      `${match.rank ? `${match.rank}. ` : ""}${match.scheme_name || schemeName(match.scheme_id)}`,
    ),
    el(
      "ul",
      { class: "fr-badges-group" },
      mine(match.scheme_id) && el("li", {}, badge("fr-badge--new", "Votre dispositif")),
      el("li", {}, badge("fr-badge--info", `Score : ${fmt.number(match.score)} %`)),
    ),
    el(
      "p",
      { class: "fr-text--sm fr-mb-1w" },
      `${passed} critère${passed > 1 ? "s" : ""} rempli${passed > 1 ? "s" : ""} sur ${match.criteria.length}` +
        ` · montant prévu au plan de financement : ${fmt.euros(match.planned_amount_eur)}`,
    ),
    criteriaTable(match.scheme_id, match.criteria, false),
  );
}

function firmSizeText(matches) {
  if (!matches.firm_size) return "Taille de l'entreprise inconnue (le plafond des grandes entreprises s'applique)";
  const source = matches.firm_size_source
    ? ` (${label(FIRM_SIZE_SOURCES, matches.firm_size_source)})`
    : "";
  return `${label(FIRM_SIZES, matches.firm_size)}${source}`;
}

function planSection(plan, matches) {
  const section = el(
    "section",
    { id: "plan", class: "fr-mt-6w", "aria-labelledby": "plan-titre" },
    el("h3", { id: "plan-titre" }, "Plan de financement proposé"),
  );
  const p = plan.plan;
  if (!p) {
    section.append(
      el("p", { id: "plan-vide" }, "Pas encore de plan : le projet n'est pas encore apparié."),
    );
    return section;
  }
  const figure = (key, term, value) =>
    el(
      "div",
      { class: "rb-figure-line" },
      el("dt", {}, term),
      el("dd", { dataset: { plan: key } }, value),
    );
  section.append(
    el(
      "dl",
      { class: "rb-plan-figures" },
      figure("base_eur", "Assiette éligible (investissement)", fmt.euros(p.base_eur)),
      figure("need_eur", "Besoin de financement", fmt.euros(p.need_eur)),
      figure(
        "cap",
        "Plafond d'intensité d'aide",
        `${fmt.number(p.cap_pct)} % de l'assiette, soit ${fmt.euros(p.cap_eur)} d'équivalent subvention`,
      ),
      figure("firm_size", "Taille de l'entreprise retenue", firmSizeText(matches)),
      figure("total_eur", "Total des aides prévues", fmt.euros(p.total_eur)),
      figure("grant_equivalent_eur", "Équivalent subvention total", fmt.euros(p.grant_equivalent_eur)),
      figure("covered_pct_of_need", "Part du besoin couverte", `${fmt.number(p.covered_pct_of_need)} %`),
      figure("remaining_need_eur", "Reste à financer", fmt.euros(p.remaining_need_eur)),
    ),
    p.lines.length
      ? table(
          "Montants par source de financement",
          ["Dispositif", "Type d'aide", "Montant", "Part de l'assiette", "Équivalent subvention"],
          p.lines.map((line) =>
            el(
              "tr",
              { dataset: { planScheme: line.scheme_id } },
              el("th", { scope: "row" }, schemeName(line.scheme_id)),
              el("td", {}, label(AID_TYPES, line.aid_type)),
              el("td", { class: "rb-num", dataset: { amount: line.amount_eur } }, fmt.euros(line.amount_eur)),
              el("td", { class: "rb-num" }, `${fmt.number(line.rate_pct_of_base)} %`),
              el("td", { class: "rb-num" }, fmt.euros(line.grant_equivalent_eur)),
            ),
          ),
          { id: "plan-lignes" },
        )
      : el("p", { id: "plan-sans-ligne" }, "Aucune aide ne peut être prévue dans ce plan."),
    el("h4", { class: "fr-h6" }, "Notes du calcul (plafond, dispositifs écartés)"),
    el(
      "ul",
      { id: "plan-notes" },
      p.notes.map((note) => el("li", {}, note)),
    ),
  );
  return section;
}

function applicationsTable(projectId) {
  const list = applications.of(projectId);
  if (!list.length) {
    return el(
      "p",
      { id: "demandes-vide" },
      "Aucune demande enregistrée pour ce projet.",
    );
  }
  return table(
    "Demandes enregistrées pour ce projet, avec leurs décisions",
    ["Dispositif", "État", "Demandé", "Accordé", "Versé", "Décision", "N° de demande"],
    list.map((a) => {
      const status = APPLICATION_STATUS[a.status] || { text: a.status, badge: "fr-badge--info" };
      return el(
        "tr",
        { dataset: { applicationId: a.id, status: a.status } },
        el("th", { scope: "row" }, schemeName(a.scheme_id)),
        el("td", {}, badge(status.badge, status.text)),
        el("td", { class: "rb-num", dataset: { field: "requested" } }, fmt.euros(a.amount_requested_eur)),
        el("td", { class: "rb-num", dataset: { field: "granted" } }, fmt.euros(a.amount_granted_eur)),
        el("td", { class: "rb-num", dataset: { field: "paid" } }, fmt.euros(a.amount_paid_eur)),
        el(
          "td",
          {},
          a.decided_on ? fmt.date(a.decided_on) : "—",
          a.refusal_reason ? [el("br"), `Motif : ${a.refusal_reason}`] : null,
        ),
        el("td", { class: "fr-text--xs" }, a.id),
      );
    }),
    { id: "demandes-table" },
  );
}

function today() {
  const d = new Date();
  const pad = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// "150 000", "150000 €" → 150000; anything else → null
function parseEuros(text) {
  const clean = String(text || "").replace(/[\s\u00a0\u202f€]/g, "");
  return /^\d{1,13}$/.test(clean) ? Number(clean) : null;
}

function inputGroup(id, text, hint, input) {
  return el(
    "div",
    { class: "fr-fieldset__element" },
    el(
      "div",
      { class: "fr-input-group", id: `${id}-groupe` },
      el("label", { class: "fr-label", for: id }, text, hint && el("span", { class: "fr-hint-text" }, hint)),
      input,
    ),
  );
}

function eurosInput(id) {
  return el("input", {
    class: "fr-input",
    id,
    name: id,
    type: "text",
    inputmode: "numeric",
    autocomplete: "off",
    required: true,
  });
}

// One submission: one Idempotency-Key, kept only while the answer is unknown (no
// network), so that sending again replays rather than records twice.
function submitter(form, live, send) {
  let pendingKey = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    let request;
    try {
      request = send.prepare();
    } catch (problem) {
      clear(live).append(alert("error", "Formulaire incomplet", problem.message));
      return;
    }
    pendingKey = pendingKey || newIdempotencyKey();
    button.disabled = true;
    clear(live).append(alert("info", null, "Enregistrement en cours…"));
    try {
      const answer = await api("funding", request.path, {
        method: "POST",
        body: request.body,
        idempotencyKey: pendingKey,
      });
      pendingKey = null;
      await send.done(answer, request);
    } catch (error) {
      if (error.status !== 0) pendingKey = null;
      const said = refusal(error);
      clear(live).append(
        el(
          "div",
          { class: "fr-alert fr-alert--error fr-alert--sm", role: "alert", id: "refus-action" },
          el("h4", { class: "fr-alert__title" }, "Action refusée"),
          el("p", {}, said.text),
          said.detail ? el("p", { class: "fr-text--xs" }, `Motif donné par le service : ${said.detail}`) : null,
        ),
      );
    } finally {
      button.disabled = false;
    }
  });
}

class Refused extends Error {}

function applicationForm(projectId, eligible, live, after) {
  const usable = eligible.filter((m) => mine(m.scheme_id));
  const form = el("form", { id: "form-demande", class: "fr-mb-4w", novalidate: true });
  if (!usable.length) {
    form.append(el("p", {}, "Aucun de vos dispositifs ne correspond à ce projet : pas de demande possible."));
    return form;
  }
  const select = el(
    "select",
    { class: "fr-select", id: "demande-dispositif", name: "demande-dispositif", required: true },
    usable.map((m) => el("option", { value: m.scheme_id }, m.scheme_name || schemeName(m.scheme_id))),
  );
  const amount = eurosInput("demande-montant");
  form.append(
    el(
      "fieldset",
      { class: "fr-fieldset" },
      el("legend", { class: "fr-fieldset__legend" }, "Enregistrer une demande d'aide"),
      el(
        "div",
        { class: "fr-fieldset__element" },
        el(
          "div",
          { class: "fr-select-group" },
          el("label", { class: "fr-label", for: "demande-dispositif" }, "Dispositif"),
          select,
        ),
      ),
      inputGroup("demande-montant", "Montant demandé (en euros)", "Nombre entier d'euros, par exemple 150 000", amount),
      el(
        "div",
        { class: "fr-fieldset__element" },
        el("button", { class: "fr-btn", type: "submit" }, "Enregistrer la demande"),
      ),
    ),
  );
  submitter(form, live, {
    prepare() {
      const eur = parseEuros(amount.value);
      if (!eur) throw new Refused("Indiquez le montant demandé en euros, un nombre entier supérieur à 0.");
      return {
        path: "/applications",
        body: { project_id: projectId, scheme_id: select.value, amount_requested_eur: eur },
      };
    },
    async done(answer) {
      applications.put(answer);
      amount.value = "";
      clear(live).append(
        alert(
          "success",
          "Demande enregistrée",
          `${fmt.euros(answer.amount_requested_eur)} demandés au dispositif « ${schemeName(answer.scheme_id)} » (demande n° ${answer.id}).`,
        ),
      );
      await after(answer, "in_funding");
    },
  });
  return form;
}

const DECISIONS = {
  award: { label: "Attribution de l'aide", path: "award", button: "Enregistrer l'attribution" },
  refusal: { label: "Refus", path: "refusal", button: "Enregistrer le refus" },
  payment: { label: "Versement", path: "payments", button: "Enregistrer le versement" },
};

function decisionForm(projectId, live, after) {
  const form = el("form", { id: "form-decision", novalidate: true });
  const list = applications.of(projectId);
  const select = el(
    "select",
    { class: "fr-select", id: "decision-demande", name: "decision-demande" },
    list.map((a) =>
      el(
        "option",
        { value: a.id },
        `${schemeName(a.scheme_id)} — ${label({ submitted: "déposée", granted: "accordée", refused: "refusée" }, a.status)}, ${fmt.euros(a.amount_requested_eur)} demandés (n° ${a.id.slice(0, 8)})`,
      ),
    ),
    el("option", { value: "" }, "Une autre demande (saisir son numéro)"),
  );
  const number = el("input", {
    class: "fr-input",
    id: "decision-numero",
    name: "decision-numero",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
  });
  const numberGroup = inputGroup("decision-numero", "Numéro de la demande", "Tel que le service l'a donné à l'enregistrement", number);
  const radios = Object.entries(DECISIONS).map(([value, d], i) =>
    el(
      "div",
      { class: "fr-fieldset__element fr-fieldset__element--inline" },
      el(
        "div",
        { class: "fr-radio-group" },
        el("input", {
          type: "radio",
          id: `decision-type-${value}`,
          name: "decision-type",
          value,
          checked: i === 0,
        }),
        el("label", { class: "fr-label", for: `decision-type-${value}` }, d.label),
      ),
    ),
  );
  const amount = eurosInput("decision-montant");
  const amountGroup = inputGroup("decision-montant", "Montant (en euros)", "Nombre entier d'euros", amount);
  const date = el("input", { class: "fr-input", id: "decision-date", name: "decision-date", type: "date", value: today(), required: true });
  const dateLabel = el("span", {}, "Date de la décision");
  const dateGroup = el(
    "div",
    { class: "fr-fieldset__element" },
    el("div", { class: "fr-input-group" }, el("label", { class: "fr-label", for: "decision-date" }, dateLabel), date),
  );
  const reason = el("textarea", { class: "fr-input", id: "decision-motif", name: "decision-motif", rows: 3, maxlength: 500 });
  const reasonGroup = inputGroup("decision-motif", "Motif du refus", "De 3 à 500 caractères ; il sera communiqué aux autres services", reason);
  const button = el("button", { class: "fr-btn", type: "submit" }, DECISIONS.award.button);
  const kind = () => form.querySelector("input[name=decision-type]:checked").value;
  const sync = () => {
    const k = kind();
    amountGroup.hidden = k === "refusal";
    reasonGroup.hidden = k !== "refusal";
    dateLabel.textContent = k === "payment" ? "Date du versement" : "Date de la décision";
    button.textContent = DECISIONS[k].button;
    numberGroup.hidden = select.value !== "";
  };
  form.append(
    el(
      "fieldset",
      { class: "fr-fieldset" },
      el("legend", { class: "fr-fieldset__legend" }, "Enregistrer une décision ou un versement"),
      el(
        "div",
        { class: "fr-fieldset__element" },
        el(
          "div",
          { class: "fr-select-group" },
          el("label", { class: "fr-label", for: "decision-demande" }, "Demande"),
          select,
        ),
      ),
      numberGroup,
      el(
        "fieldset",
        { class: "fr-fieldset fr-mx-0", id: "decision-type", "aria-labelledby": "decision-type-legende" },
        el("legend", { class: "fr-fieldset__legend--regular fr-fieldset__legend", id: "decision-type-legende" }, "Nature"),
        radios,
      ),
      amountGroup,
      dateGroup,
      reasonGroup,
      el("div", { class: "fr-fieldset__element" }, button),
    ),
  );
  form.addEventListener("change", sync);
  sync();
  submitter(form, live, {
    prepare() {
      const id = (select.value || number.value).trim();
      if (!/^[0-9a-f-]{36}$/i.test(id)) throw new Refused("Choisissez la demande, ou saisissez son numéro complet.");
      const k = kind();
      if (!date.value) throw new Refused("Indiquez la date.");
      let body;
      if (k === "refusal") {
        if (reason.value.trim().length < 3) throw new Refused("Indiquez le motif du refus (au moins 3 caractères).");
        body = { reason: reason.value.trim(), decided_on: date.value };
      } else {
        const eur = parseEuros(amount.value);
        if (!eur) throw new Refused("Indiquez le montant en euros, un nombre entier supérieur à 0.");
        body = k === "award" ? { amount_eur: eur, decided_on: date.value } : { amount_eur: eur, paid_on: date.value };
      }
      return { path: `/applications/${id}/${DECISIONS[k].path}`, body, kind: k };
    },
    async done(answer, request) {
      applications.put(answer);
      amount.value = "";
      reason.value = "";
      const scheme = `« ${schemeName(answer.scheme_id)} »`;
      const said = {
        award: [
          "Attribution enregistrée",
          `${fmt.euros(answer.amount_granted_eur)} accordés par le dispositif ${scheme}, décision du ${fmt.date(answer.decided_on)}.`,
        ],
        refusal: ["Refus enregistré", `Demande au dispositif ${scheme} refusée le ${fmt.date(answer.decided_on)}.`],
        payment: [
          "Versement enregistré",
          `${fmt.euros(request.body.amount_eur)} versés : ${fmt.euros(answer.amount_paid_eur)} versés au total sur ${fmt.euros(answer.amount_granted_eur)} accordés.`,
        ],
      }[request.kind];
      clear(live).append(alert("success", said[0], said[1]));
      const expected = { award: "funded", refusal: "qualified", payment: null }[request.kind];
      await after(answer, expected);
    },
  });
  return form;
}

function summaryList(project, matches) {
  const item = (key, term, value, code) =>
    el(
      "div",
      { class: "rb-figure-line" },
      el("dt", {}, term),
      el("dd", { id: key, dataset: code ? { stage: code } : {} }, value),
    );
  return el(
    "dl",
    { class: "rb-plan-figures", id: "resume-projet" },
    item("etape-projet", "Étape", stageLabel(matches.stage), matches.stage),
    project && item("resume-entreprise", "Entreprise", project.firm_name || "Non communiquée"),
    project && item("resume-investissement", "Investissement", fmt.euros(project.capex_eur)),
    project && item("resume-emplois", "Emplois prévus", fmt.number(project.jobs_planned)),
    project && item("resume-besoin", "Besoin de financement", fmt.euros(project.funding_need_eur)),
    item("resume-taille", "Taille de l'entreprise", firmSizeText(matches)),
    item("resume-region", "Région", matches.region_code || "—"),
  );
}

async function showDetail(view, projectId) {
  main.setAttribute("aria-busy", "true");
  let matches;
  let plan;
  // The list gives the title and the summary's figures: not waited for (first paint),
  // filled in when it comes.
  const listed = state.projects ? null : loadProjects().catch(() => null);
  try {
    let known;
    // Why the funder's own schemes do not fit is computed on request only (an admin
    // sees no rejections here): `rejected=true&funder=<org>`.
    const why = !isAdmin && org ? `?rejected=true&funder=${encodeURIComponent(org)}` : "";
    [matches, plan, , known] = await Promise.all([
      api("funding", `/projects/${projectId}/matches${why}`),
      api("funding", `/projects/${projectId}/plan`),
      loadCatalogue(),
      api("funding", `/projects/${projectId}/applications`),
    ]);
    applications.replace(projectId, known);
  } catch (error) {
    clear(view).append(
      backLink(),
      el("h2", { id: "titre-projet", tabindex: "-1" }, "Projet indisponible"),
      el(
        "div",
        { id: "refus-projet", class: "fr-alert fr-alert--error fr-alert--sm", role: "alert" },
        el("p", {}, refusal(error).text),
      ),
    );
    usefulPaint();
    view.querySelector("#titre-projet").focus();
    return;
  }
  const project = (state.projects || []).find((p) => p.project_id === projectId);
  const titleOf = (p) =>
    p
      ? `${kindLabel(p.kind)} — ${p.firm_name || "entreprise non communiquée"}`
      : `Projet n° ${projectId.slice(0, 8)}`;
  const title = titleOf(project);
  const live = el("div", { id: "resultat-action", class: "fr-mb-3w", "aria-live": "polite", "aria-atomic": "true" });
  const demandes = el("div", { id: "demandes-liste" });
  const decisionSlot = el("div", { id: "decision-slot" });
  const stage = () => view.querySelector("#etape-projet");

  async function after(answer, expectedStage) {
    state.projects = null; // the list's stages are stale now
    clear(demandes).append(applicationsTable(projectId));
    clear(decisionSlot).append(decisionForm(projectId, live, after));
    const select = view.querySelector("#decision-demande");
    if (select) {
      select.value = answer.id;
      // after an award, the next thing recorded is usually a payment
      if (answer.status === "granted") view.querySelector("#decision-type-payment").checked = true;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }
    if (expectedStage) refreshStage(expectedStage); // not awaited: the form is free again
  }

  // Detection moves the project on the decision's event and funding hears it back: the
  // stage shown follows for a few seconds (the latest action's poll only).
  let polling = 0;
  async function refreshStage(expectedStage) {
    const ticket = ++polling;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && ticket === polling && stage()) {
      try {
        const fresh = await api("funding", `/projects/${projectId}/plan`);
        if (ticket !== polling || !stage()) return;
        stage().textContent = stageLabel(fresh.stage);
        stage().dataset.stage = fresh.stage;
        if (fresh.stage === expectedStage) return;
      } catch (_) {
        return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  const rejectedMine = (matches.rejected || []).filter((m) => !isAdmin && mine(m.scheme_id));
  clear(view).append(
    backLink(),
    el("h2", { id: "titre-projet", tabindex: "-1", dataset: { projectId } }, title),
    summaryList(project, matches),
    el(
      "section",
      { id: "correspondances", class: "fr-mt-4w", "aria-labelledby": "correspondances-titre" },
      el("h3", { id: "correspondances-titre" }, "Correspondances avec les dispositifs"),
      matches.eligible.length
        ? el(
            "p",
            {},
            `${matches.eligible.length} dispositif${matches.eligible.length > 1 ? "s" : ""} éligible${matches.eligible.length > 1 ? "s" : ""}, du mieux classé au moins bien classé. Les motifs sont ceux du service de financement.`,
          )
        : el("p", { id: "correspondances-vide" }, "Aucun dispositif éligible pour l'instant."),
      matches.eligible.map(matchCard),
      rejectedMine.length
        ? el(
            "details",
            { id: "ecartes", class: "fr-mt-2w" },
            el(
              "summary",
              { class: "fr-text--lg fr-text--bold" },
              `Vos dispositifs qui ne correspondent pas (${rejectedMine.length}), avec leurs motifs`,
            ),
            rejectedMine.map((m) =>
              el(
                "section",
                { class: "rb-match fr-mb-4w", dataset: { rejectedScheme: m.scheme_id }, "aria-labelledby": `ecarte-${m.scheme_id}` },
                el("h4", { id: `ecarte-${m.scheme_id}`, class: "fr-h6" }, m.scheme_name || schemeName(m.scheme_id)),
                criteriaTable(m.scheme_id, m.criteria, true),
              ),
            ),
          )
        : null,
    ),
    planSection(plan, matches),
    el(
      "section",
      { id: "demandes", class: "fr-mt-6w", "aria-labelledby": "demandes-titre" },
      el("h3", { id: "demandes-titre" }, "Demandes et décisions"),
      el(
        "p",
        { class: "fr-text--sm" },
        "Les demandes enregistrées depuis ce poste, avec la dernière réponse du service à chacune.",
      ),
      demandes,
      live,
      el(
        "div",
        { class: "fr-grid-row fr-grid-row--gutters" },
        el("div", { class: "fr-col-12 fr-col-lg-6" }, applicationForm(projectId, matches.eligible, live, after)),
        el("div", { class: "fr-col-12 fr-col-lg-6" }, decisionSlot),
      ),
    ),
  );
  demandes.append(applicationsTable(projectId));
  decisionSlot.append(decisionForm(projectId, live, after));
  usefulPaint();
  if (listed && !project) {
    listed.then(() => {
      const found = (state.projects || []).find((p) => p.project_id === projectId);
      const heading = view.querySelector(`#titre-projet[data-project-id="${projectId}"]`);
      const summary = view.querySelector("#resume-projet");
      if (!found || !heading || !summary) return;
      heading.textContent = titleOf(found);
      const stageNow = summary.querySelector("#etape-projet");
      const fresh = summaryList(found, { ...matches, stage: stageNow.dataset.stage });
      summary.replaceWith(fresh);
    });
  }
  view.querySelector("#titre-projet").focus();
}

function backLink() {
  return el(
    "p",
    {},
    el("a", { class: "fr-link fr-icon-arrow-left-line fr-link--icon-left", href: "#" }, "Tous les projets partagés"),
  );
}

// --------------------------------------------------------------------------- routing

clear(main).append(
  el("h1", {}, "Espace financeur"),
  el("div", { id: "vue" }),
);
const view = main.querySelector("#vue");

function route() {
  const m = /^#projet=([0-9a-f-]{36})$/i.exec(location.hash);
  if (m) showDetail(view, m[1].toLowerCase());
  else showList(view);
}

window.addEventListener("hashchange", route);
route();
