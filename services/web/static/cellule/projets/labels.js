// The detection API's words in French: stages, origins, kinds, timeline entries, and its
// refusals turned into sentences for the crisis cell (the API's own reason is kept beside).

// The stages in the order of services/detection/domain/stages.py (Stage).
export const STAGES = [
  ["detected", "Détecté"],
  ["qualified", "Qualifié"],
  ["in_funding", "En financement"],
  ["funded", "Financé"],
  ["launched", "Lancé"],
  ["jobs_created", "Emplois créés"],
  ["abandoned", "Abandonné"],
];
export const STAGE_LABEL = Object.fromEntries(STAGES);
// What POST /projects/{id}/stage accepts (StageIn): the other stages have their command.
export const MOVABLE_STAGES = ["qualified", "in_funding", "funded", "launched"];

export const ORIGIN_LABEL = { endogenous: "Endogène", exogenous: "Exogène" };

// shared.events.campaigns.ProjectKind
export const KINDS = [
  ["new_site", "Nouveau site"],
  ["capacity_extension", "Extension de capacité"],
  ["new_line", "Nouvelle ligne de production"],
  ["modernisation_automation", "Modernisation, automatisation"],
  ["decarbonation_energy", "Décarbonation, énergie"],
  ["rnd_innovation", "R&D, innovation"],
  ["site_takeover", "Reprise de site"],
  ["skills_training", "Compétences, formation"],
  ["other", "Autre"],
];
export const KIND_LABEL = Object.fromEntries(KINDS);

export const MATURITIES = [
  ["idea", "Idée"],
  ["study", "À l'étude"],
  ["ready", "Prêt à démarrer"],
  ["started", "Démarré"],
];
export const MATURITY_LABEL = Object.fromEntries(MATURITIES);

export const SOURCE_LABEL = {
  survey: "Enquête de terrain",
  crisis_cell: "Cellule de crise",
  funding: "Financeurs",
};

const EVENT_LABEL = {
  project_detected: "Projet détecté",
  project_updated: "Projet mis à jour",
  project_qualified: "Projet qualifié",
  project_stage_changed: "Changement d'étape",
  jobs_created: "Emplois créés déclarés",
  project_abandoned: "Projet abandonné",
  project_merged: "Projets fusionnés",
};

// "rebond.detection.project_qualified.v1" → "Projet qualifié"
export function eventLabel(eventType) {
  const name = String(eventType || "").split(".").slice(-2, -1)[0] || eventType;
  return EVENT_LABEL[name] || name;
}

export const stageLabel = (s) => STAGE_LABEL[s] || s;

const FIELD_LABEL = {
  territory_id: "territoire",
  shock_id: "fermeture compensée",
  firm_name: "nom de l'entreprise",
  siren: "SIREN (9 chiffres)",
  naf_code: "code NAF (ex. 22.11Z)",
  kind: "type de projet",
  description: "description",
  jobs_planned: "emplois prévus",
  capex_eur: "investissement",
  funding_need_eur: "besoin de financement",
  land_needs_ha: "foncier",
  maturity: "maturité",
  jobs_created_total: "emplois créés au total",
  created_on: "date",
  reason: "motif",
  note: "note",
  stage: "étape",
};

const HINTS = [
  [/abandoned project is final/, "un projet abandonné l'est définitivement ; s'il renaît, déclarez-le comme un nouveau projet"],
  [/has created jobs/, "il a créé des emplois : on ne peut plus qu'en déclarer davantage"],
  [/it is already/, "il y est déjà"],
  [/goes back to detected/, "aucun projet ne revient au stade « Détecté »"],
  [/qualify it first/, "qualifiez-le d'abord"],
  [/funded or launched before/, "il doit être financé ou lancé avant de créer des emplois"],
  [/record the funding decision first/, "enregistrez d'abord la décision de financement (« Financé », ou retour à « Qualifié » si la demande est refusée)"],
  [/does not go back/, "un projet ne revient pas en arrière, sauf à « Qualifié » après un refus de financement"],
];

// The API's refusal as {text, detail}: `text` a French sentence, `detail` the API's own
// reason (English, kept for whoever needs the exact words).
export function refusal(error) {
  const detail = (error && error.detail) || "";
  const code = (error && error.code) || "";
  const fallback = (error && error.message) || String(error);
  let text = null;
  if (code === "illegal_transition") {
    const m = detail.match(/in stage (\w+) cannot move to (\w+): (.*) \(allowed: (.*)\)$/);
    if (m) {
      const hint = HINTS.find(([re]) => re.test(m[3]));
      const allowed = m[4] === "none" ? [] : m[4].split(", ").map(stageLabel);
      text =
        `Refusé : ce projet est au stade « ${stageLabel(m[1])} », il ne peut pas passer à` +
        ` « ${stageLabel(m[2])} »${hint ? ` : ${hint[1]}` : ""}.` +
        (allowed.length
          ? ` Étapes possibles : ${allowed.join(", ")}.`
          : " Aucune autre étape n'est possible.");
    }
  } else if (code === "already_qualified") {
    text =
      "Refusé : ce projet a déjà passé la qualification. Après un refus de financement," +
      " ramenez-le à « Qualifié » avec « Changer d'étape ».";
  } else if (code === "invalid_project_change") {
    text = projectChange(detail);
  } else if (code === "conflict" && /merged into/.test(detail)) {
    text = "Refusé : ce projet a déjà été fusionné dans un autre projet.";
  } else if (code === "conflict" && /merge .* into it instead/.test(detail)) {
    text = "Refusé : l'autre projet est terminé ; fusionnez plutôt dans l'autre sens.";
  } else if (code === "unknown_shock") {
    text = "Refusé : cette fermeture n'est pas (encore) connue du service de détection.";
  } else if (code === "shock_of_another_territory") {
    text =
      "Refusé : cette fermeture appartient à un autre territoire ; son bilan ne compte que" +
      " les projets de son territoire.";
  } else if (code === "out_of_scope") {
    text = "Refusé : ce territoire n'est pas dans votre périmètre.";
  } else if (code === "not_found") {
    text = /duplicate of no project/.test(detail)
      ? "Refusé : ce projet n'est signalé comme doublon d'aucun projet."
      : "Introuvable : ce projet n'est pas (ou plus) dans vos territoires ; il a peut-être été fusionné.";
  } else if (code === "invalid_input" && error.fields && error.fields.length) {
    const names = error.fields.map((f) => FIELD_LABEL[f.field] || f.field);
    text = `Certaines valeurs ne sont pas acceptées : ${[...new Set(names)].join(", ")}.`;
  }
  return { text: text || fallback, detail };
}

function projectChange(detail) {
  const down = detail.match(/already has (\d+), the report says (\d+)/);
  if (down) {
    return (
      `Refusé : le nombre d'emplois créés ne peut pas diminuer (ce projet en compte déjà` +
      ` ${down[1]}, vous en déclarez ${down[2]}).`
    );
  }
  const table = [
    [/is detected: use qualify/, "Refusé : ce projet est au stade « Détecté » ; qualifiez-le d'abord."],
    [/in the future/, "Refusé : des emplois ne peuvent pas être créés à une date future."],
    [/at least one job/, "Refusé : déclarez au moins un emploi créé."],
    [/merged into itself/, "Refusé : un projet ne peut pas être fusionné avec lui-même."],
    [/different territories/, "Refusé : ces projets sont dans des territoires différents."],
    [/nothing can be merged/, "Refusé : le projet qui resterait est abandonné ; rien ne peut y être fusionné."],
    [/say why/, "Refusé : indiquez pourquoi le projet est abandonné."],
    [/cannot be negative/, "Refusé : un montant ne peut pas être négatif."],
  ];
  const found = table.find(([re]) => re.test(detail));
  return found ? found[1] : null;
}

// The support priority's reasons (services/detection/domain/priority.py) in French; a
// reason this page does not know is shown as the API wrote it.
const PRIORITY_REASONS = [
  [/^(\d+) jobs? planned: (.*)$/, (m) => `${m[1]} emploi${m[1] === "1" ? "" : "s"} prévu${m[1] === "1" ? "" : "s"} : ${m[2]}`],
  [/^investment unknown: (.*)$/, (m) => `investissement inconnu : ${m[1]}`],
  [/^investment of ([\d.,]+) M€: (.*)$/, (m) => `investissement de ${m[1].replace(/,/g, " ").replace(".", ",")} M€ : ${m[2]}`],
  [/^maturity unknown: (.*)$/, (m) => `maturité inconnue : ${m[1]}`],
  [/^maturity (\w+): (.*)$/, (m) => `maturité « ${MATURITY_LABEL[m[1]] || m[1]} » : ${m[2]}`],
  [/^no obstacle public support can lift: (.*)$/, (m) => `aucun frein que l'aide publique peut lever : ${m[1]}`],
  [/^obstacles public support can lift \((.*)\): (.*)$/, (m) => `freins que l'aide publique peut lever (${m[1].split(", ").map((o) => OBSTACLE_LABEL[o] || o).join(", ")}) : ${m[2]}`],
  [/^unknown to public actors when detected: (.*)$/, (m) => `inconnu des acteurs publics à sa détection : ${m[1]}`],
  [/^already known to public actors: (.*)$/, (m) => `déjà connu des acteurs publics : ${m[1]}`],
];

export const OBSTACLE_LABEL = {
  land: "foncier",
  hiring_skills: "recrutement, compétences",
  financing: "financement",
  energy_grid: "raccordement énergie",
  permits: "autorisations",
  other: "autre",
};

export function priorityReason(reason) {
  for (const [re, say] of PRIORITY_REASONS) {
    const m = String(reason).match(re);
    if (m) return say(m);
  }
  return reason;
}
