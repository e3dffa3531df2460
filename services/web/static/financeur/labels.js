// French words for the funding API's codes (kinds, stages, criteria, aid types, sizes).
// A code the page does not know is shown as it is, never hidden.

export const KINDS = {
  capacity_extension: "Extension de capacité",
  new_line: "Nouvelle ligne de production",
  modernisation_automation: "Modernisation, automatisation",
  decarbonation_energy: "Décarbonation, énergie",
  rnd_innovation: "R&D, innovation",
  site_takeover: "Reprise de site",
  new_site: "Nouveau site",
  skills_training: "Compétences, formation",
  other: "Autre",
};

export const STAGES = {
  detected: "Détecté",
  qualified: "Qualifié",
  in_funding: "En financement",
  funded: "Financé",
  launched: "Lancé",
  jobs_created: "Emplois créés",
  abandoned: "Abandonné",
  merged: "Fusionné",
};

export const CRITERIA = {
  perimeter: "Territoire couvert",
  dates: "Dates d'ouverture",
  beneficiary: "Bénéficiaires",
  naf: "Secteur d'activité (NAF)",
  kind: "Nature du projet",
  capex: "Montant d'investissement",
  amount: "Montant de l'aide",
};

// Text on the badge, never colour alone.
export const CRITERION_STATUS = {
  pass: { text: "Rempli", badge: "fr-badge--success" },
  fail: { text: "Non rempli", badge: "fr-badge--error" },
  unknown: { text: "À vérifier", badge: "fr-badge--warning" },
};

export const AID_TYPES = {
  grant: "Subvention",
  loan: "Prêt",
  recoverable_advance: "Avance remboursable",
  guarantee: "Garantie",
  equity: "Fonds propres",
  engineering_support: "Appui en ingénierie",
  other: "Autre",
};

export const FIRM_SIZES = {
  micro: "Microentreprise",
  sme: "PME",
  midcap: "ETI",
  large: "Grande entreprise",
};

export const FIRM_SIZE_SOURCES = {
  company_category: "d'après la catégorie d'entreprise de l'Insee",
  headcount_band: "estimée d'après la tranche d'effectif du site",
};

export const APPLICATION_STATUS = {
  submitted: { text: "Déposée", badge: "fr-badge--info" },
  granted: { text: "Accordée", badge: "fr-badge--success" },
  refused: { text: "Refusée", badge: "fr-badge--error" },
};

export const label = (table, code) => (code in table ? table[code] : code || "—");
