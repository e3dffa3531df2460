// The funding API's refusals in French words. The API's `detail` is an English sentence
// (its `code` is stable): the known ones are said again in French with their figures;
// an unknown one falls back to the shared French status words, the API's sentence kept
// beside as "Motif donné par le service".

import { fmt } from "../common/layout.js";

const n = (text) => fmt.euros(Number(text));
const day = (iso) => fmt.date(iso);

const STATUS_FR = { granted: "accordée", refused: "refusée", submitted: "déposée" };

// [pattern of the API's detail, its French sentence]
const SENTENCES = [
  [
    /^(\d+) € is above the scheme's maximum of (\d+) €$/,
    (m) => `Le montant de ${n(m[1])} dépasse le plafond du dispositif (${n(m[2])}).`,
  ],
  [
    /^application \S+ is already (\w+)$/,
    (m) =>
      `Cette demande est déjà ${STATUS_FR[m[1]] || m[1]} : une seule décision d'attribution ou de refus par demande.`,
  ],
  [
    /^application \S+ has no award to pay$/,
    () => "Cette demande n'a pas d'aide accordée : enregistrez l'attribution avant un versement.",
  ],
  [
    /^paying (\d+) € would exceed the award of (\d+) € \((\d+) € already paid\)$/,
    (m) =>
      `Verser ${n(m[1])} dépasserait l'aide accordée de ${n(m[2])} (${n(m[3])} déjà versés).`,
  ],
  [
    /^project \S+ does not match scheme (\S+): see its matches$/,
    (m) => `Ce projet ne correspond pas au dispositif ${m[1]} : voyez ses critères ci-dessus.`,
  ],
  [
    /^the firm did not consent to share project/,
    () => "L'entreprise n'a pas accepté de partager ce projet avec les financeurs.",
  ],
  [
    /^scheme (\S+) is financed by (.+)$/,
    (m) =>
      `Le dispositif ${m[1]} est financé par ${m[2]} : votre organisation ne peut pas agir dessus.`,
  ],
  [
    /^no project \S+ you may see$/,
    () => "Ce projet n'existe pas ou n'est pas partagé avec votre région.",
  ],
  [/^no application (\S+)$/, (m) => `Aucune demande n° ${m[1]} que vous puissiez voir.`],
  [/^no scheme (\S+)$/, (m) => `Aucun dispositif ${m[1]}.`],
  [
    /^(decided_on|paid_on) (\d{4}-\d{2}-\d{2}) is more than a year after today \((\d{4}-\d{2}-\d{2})\)$/,
    (m) =>
      `La date ${m[1] === "paid_on" ? "du versement" : "de la décision"} (${day(m[2])}) est plus d'un an après aujourd'hui (${day(m[3])}).`,
  ],
];

const FIELDS = {
  project_id: "Projet",
  scheme_id: "Dispositif",
  amount_requested_eur: "Montant demandé",
  amount_eur: "Montant",
  decided_on: "Date de la décision",
  paid_on: "Date du versement",
  reason: "Motif du refus",
};

const FIELD_MESSAGES = [
  [/greater than 0/, () => "doit être supérieur à 0 €"],
  [/greater than or equal to (\S+)/, (m) => `doit être au moins ${m[1]}`],
  [/less than or equal to (\S+)/, (m) => `doit être au plus ${m[1]}`],
  [/at least (\d+) character/, (m) => `doit compter au moins ${m[1]} caractères`],
  [/at most (\d+) character/, (m) => `doit compter au plus ${m[1]} caractères`],
  [/valid date/, () => "n'est pas une date valide"],
  [/valid integer/, () => "doit être un nombre entier d'euros"],
  [/Field required/, () => "est obligatoire"],
  [/valid UUID/, () => "n'est pas un identifiant valide"],
];

function fieldSentence({ field, message }) {
  const name = FIELDS[field] || field;
  for (const [pattern, say] of FIELD_MESSAGES) {
    const m = pattern.exec(message || "");
    if (m) return `${name} : ${say(m)}`;
  }
  return `${name} : valeur non acceptée`;
}

const BY_STATUS = {
  0: "Pas de réseau : rien n'a été enregistré, réessayez une fois connecté.",
  403: "Refusé : cette action n'est pas dans votre périmètre.",
  404: "Introuvable.",
  409: "Refusé : cette décision n'est pas possible en l'état de la demande.",
  422: "Refusé : certaines valeurs ne sont pas acceptées.",
};

// {text: the French sentence, detail: the API's own words when they were not translated}
export function refusal(error) {
  const detail = (error && error.detail) || "";
  for (const [pattern, say] of SENTENCES) {
    const m = pattern.exec(detail);
    if (m) return { text: say(m), detail: "" };
  }
  if (error && error.fields && error.fields.length) {
    return { text: `Refusé : ${error.fields.map(fieldSentence).join(" ; ")}.`, detail: "" };
  }
  const status = error ? error.status : undefined;
  if (status in BY_STATUS) return { text: BY_STATUS[status], detail };
  const words = error && error.message ? error.message.split(" (")[0] : "Erreur";
  return { text: `${words}.`, detail };
}
