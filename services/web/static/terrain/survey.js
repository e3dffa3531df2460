// The survey form, generated from the questionnaire (GET /questionnaire: its version and
// its JSON Schema), and the same checks as the API: required fields, bounds, lengths,
// lists of choices, how many entries. Labels are French; a field this page does not know
// yet (a newer questionnaire) keeps the schema's title.

import { el } from "../common/layout.js";

const LABELS = {
  headcount: ["Effectif actuel du site", "en salariés"],
  projects: ["Projets d'investissement"],
  red_flags: ["Signaux d'alerte"],
  contact_name: ["Nom de la personne rencontrée", "jamais publié"],
  contact_phone: ["Téléphone de la personne rencontrée", "jamais publié"],
  comments: ["Commentaires", "jamais publiés"],
  kind: ["Type"],
  description: ["Description du projet", "3 caractères au moins"],
  capex_eur: ["Investissement prévu", "en euros"],
  jobs_to_create: ["Emplois à créer"],
  horizon_months: ["Horizon", "en mois"],
  maturity: ["Maturité du projet"],
  known_to_public_actors: ["Le projet est-il déjà connu des acteurs publics ?"],
  obstacles: ["Freins rencontrés", "plusieurs choix possibles"],
  funding_need_eur: ["Besoin de financement", "en euros"],
  consent_to_share: ["L'entreprise accepte que ce projet soit transmis aux financeurs"],
  jobs_at_risk: ["Emplois menacés"],
};

const ENTRY_WORDS = {
  projects: ["Projet", "Ajouter un projet", "Retirer ce projet"],
  red_flags: ["Signal", "Ajouter un signal d'alerte", "Retirer ce signal"],
};

const CHOICES = {
  capacity_extension: "Extension de capacité",
  new_line: "Nouvelle ligne de production",
  modernisation_automation: "Modernisation, automatisation",
  decarbonation_energy: "Décarbonation, énergie",
  rnd_innovation: "Recherche, innovation",
  site_takeover: "Reprise de site",
  new_site: "Nouveau site",
  skills_training: "Compétences, formation",
  other: "Autre",
  idea: "Idée",
  study: "À l'étude",
  ready: "Prêt à démarrer",
  started: "Démarré",
  land: "Foncier",
  hiring_skills: "Recrutement, compétences",
  financing: "Financement",
  energy_grid: "Raccordement énergie",
  permits: "Autorisations",
  layoffs: "Licenciements",
  relocation: "Délocalisation",
  closure: "Fermeture",
};

const HIDDEN = new Set(["lead_id", "questionnaire_version"]);
const NUMBER = new Intl.NumberFormat("fr-FR");

function labelOf(name, spec) {
  const [label, hint] = LABELS[name] || [spec.title || name];
  return { label, hint };
}

// The schema of a property without its "or null": {spec, nullable}.
function unwrap(root, spec) {
  let nullable = false;
  let s = spec;
  if (s.anyOf) {
    const others = s.anyOf.filter((x) => x.type !== "null");
    nullable = others.length < s.anyOf.length;
    s = { ...s, ...others[0], anyOf: undefined };
  }
  if (s.$ref) s = { ...resolve(root, s.$ref), title: s.title };
  if (s.items && s.items.$ref) s = { ...s, items: resolve(root, s.items.$ref) };
  return { spec: s, nullable };
}

function resolve(root, ref) {
  const path = ref.replace(/^#\//, "").split("/");
  return path.reduce((node, key) => node[key], root);
}

const idOf = (path) => `q-${path.replace(/\./g, "-")}`;

// --- the form -------------------------------------------------------------------------

export function surveyForm(questionnaire, { onSubmit, idPrefix = "questionnaire" }) {
  const root = questionnaire.schema;
  const errorsBox = el("div", { id: `${idPrefix}-erreurs`, tabindex: "-1" });
  const body = el("div", {});
  for (const [name, raw] of Object.entries(root.properties)) {
    if (HIDDEN.has(name)) continue;
    body.append(field(root, name, raw, name, (root.required || []).includes(name)));
  }
  const form = el(
    "form",
    { id: idPrefix, novalidate: true, "data-version": questionnaire.version },
    el(
      "p",
      { class: "fr-hint-text" },
      `Questionnaire version ${questionnaire.version}. Les champs marqués d'un astérisque (*)` +
        " sont obligatoires.",
    ),
    errorsBox,
    body,
    el(
      "div",
      { class: "fr-btns-group fr-mt-3w" },
      el("button", { class: "fr-btn", type: "submit" }, "Envoyer le questionnaire"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = readForm(root, form, questionnaire.version);
    const errors = validate(root, value);
    showErrors(form, errors);
    if (errors.length) return;
    onSubmit(value);
  });
  return form;
}

function field(root, name, raw, path, required) {
  const { spec, nullable } = unwrap(root, raw);
  const { label, hint } = labelOf(name, spec);
  const id = idOf(path);
  const star = required && spec.type !== "array" ? " *" : "";
  const hintNode = (extra) => {
    const parts = [hint, extra].filter(Boolean).join(" ; ");
    return parts ? el("span", { class: "fr-hint-text" }, parts) : null;
  };
  const message = el("p", { class: "fr-error-text", id: `${id}-msg`, hidden: true });
  const attrs = {
    id,
    name: path,
    "data-path": path,
    "aria-describedby": `${id}-msg`,
    required: required || undefined,
  };

  if (spec.type === "array" && spec.items && spec.items.type === "object") {
    return repeating(root, name, spec, path);
  }
  if (spec.type === "array" && spec.items && spec.items.enum) {
    return el(
      "fieldset",
      { class: "fr-fieldset", id, "data-path": path, "data-kind": "multi", "aria-describedby": `${id}-msg` },
      el("legend", { class: "fr-fieldset__legend fr-text--regular" }, label, hintNode()),
      spec.items.enum.map((v) =>
        el(
          "div",
          { class: "fr-fieldset__element" },
          el(
            "div",
            { class: "fr-checkbox-group" },
            el("input", { type: "checkbox", id: `${id}-${v}`, value: v, name: path }),
            el("label", { class: "fr-label", for: `${id}-${v}` }, CHOICES[v] || v),
          ),
        ),
      ),
      el("div", { class: "fr-messages-group" }, message),
    );
  }
  if (spec.type === "boolean") {
    if (required) {
      return el(
        "fieldset",
        {
          class: "fr-fieldset",
          id,
          "data-path": path,
          "data-kind": "yesno",
          "aria-describedby": `${id}-msg`,
        },
        el("legend", { class: "fr-fieldset__legend fr-text--regular" }, `${label} *`, hintNode()),
        [
          ["true", "Oui"],
          ["false", "Non"],
        ].map(([v, words]) =>
          el(
            "div",
            { class: "fr-fieldset__element fr-fieldset__element--inline" },
            el(
              "div",
              { class: "fr-radio-group" },
              el("input", { type: "radio", id: `${id}-${v}`, name: path, value: v }),
              el("label", { class: "fr-label", for: `${id}-${v}` }, words),
            ),
          ),
        ),
        el("div", { class: "fr-messages-group" }, message),
      );
    }
    return el(
      "div",
      { class: "fr-fieldset__element rb-field", "data-field": path },
      el(
        "div",
        { class: "fr-checkbox-group" },
        el("input", { ...attrs, type: "checkbox", "data-kind": "check", required: undefined }),
        el("label", { class: "fr-label", for: id }, label, hintNode()),
        el("div", { class: "fr-messages-group" }, message),
      ),
    );
  }
  if (spec.enum) {
    return el(
      "div",
      { class: "fr-select-group rb-field", "data-field": path },
      el("label", { class: "fr-label", for: id }, `${label}${star}`, hintNode()),
      el(
        "select",
        { ...attrs, class: "fr-select", "data-kind": "enum" },
        el("option", { value: "", selected: true, disabled: required || undefined }, "Choisir"),
        spec.enum.map((v) => el("option", { value: v }, CHOICES[v] || v)),
      ),
      message,
    );
  }
  const numeric = spec.type === "integer" || spec.type === "number";
  const bounds = [];
  if (numeric && spec.minimum !== undefined && spec.maximum !== undefined) {
    bounds.push(`de ${NUMBER.format(spec.minimum)} à ${NUMBER.format(spec.maximum)}`);
  }
  if (!numeric && spec.maxLength) bounds.push(`${NUMBER.format(spec.maxLength)} caractères au plus`);
  const long = !numeric && spec.maxLength && spec.maxLength > 200;
  const input = long
    ? el("textarea", { ...attrs, class: "fr-input", rows: 3, "data-kind": "text" })
    : el("input", {
        ...attrs,
        class: "fr-input",
        type: numeric ? "text" : name.includes("phone") ? "tel" : "text",
        inputmode: numeric ? "numeric" : undefined,
        autocomplete: name.includes("phone") ? "tel" : name.includes("name") ? "name" : "off",
        "data-kind": numeric ? "integer" : "text",
      });
  void nullable;
  return el(
    "div",
    { class: "fr-input-group rb-field", "data-field": path },
    el("label", { class: "fr-label", for: id }, `${label}${star}`, hintNode(bounds.join(", "))),
    input,
    message,
  );
}

function repeating(root, name, spec, path) {
  const [entryWord, addWords, removeWords] = ENTRY_WORDS[name] || ["Élément", "Ajouter", "Retirer"];
  const { label } = labelOf(name, spec);
  const list = el("div", { class: "rb-entries", "data-list": path });
  const max = spec.maxItems || Infinity;
  const id = idOf(path);
  const message = el("p", { class: "fr-error-text", id: `${id}-msg`, hidden: true });
  const add = el(
    "button",
    { class: "fr-btn fr-btn--secondary fr-icon-add-line fr-btn--icon-left", type: "button", id: `${id}-ajouter` },
    addWords,
  );
  const renumber = () => {
    [...list.children].forEach((entry, n) => {
      entry.querySelector("legend").firstChild.textContent = `${entryWord} ${n + 1}`;
    });
    add.disabled = list.children.length >= max;
  };
  let serial = 0;
  add.addEventListener("click", () => {
    const n = serial++;
    const entryPath = `${path}.e${n}`; // the API names it by its index: see targetOf
    const entry = el(
      "fieldset",
      { class: "fr-fieldset rb-entry", "data-entry": entryPath },
      el("legend", { class: "fr-fieldset__legend" }, `${entryWord}`),
      Object.entries(spec.items.properties)
        .filter(([child]) => !HIDDEN.has(child))
        .map(([child, raw]) =>
          field(root, child, raw, `${entryPath}.${child}`, (spec.items.required || []).includes(child)),
        ),
    );
    const drop = el(
      "button",
      { class: "fr-btn fr-btn--tertiary fr-btn--sm", type: "button" },
      removeWords,
    );
    drop.addEventListener("click", () => {
      entry.remove();
      renumber();
      add.focus();
    });
    entry.append(el("div", { class: "fr-fieldset__element" }, drop));
    list.append(entry);
    renumber();
    const first = entry.querySelector("select, input, textarea");
    if (first) first.focus();
  });
  return el(
    "section",
    { class: "rb-repeat fr-mt-3w", id, "data-path": path, "aria-describedby": `${id}-msg` },
    el("h4", { class: "fr-h6" }, label, spec.maxItems ? ` (${spec.maxItems} au plus)` : ""),
    list,
    message,
    add,
  );
}

// --- reading and checking ------------------------------------------------------------------

// The survey as the API takes it; what cannot be read as its type stays a string, so that
// the checks say what is wrong with it.
export function readForm(root, form, version) {
  const out = { questionnaire_version: version };
  Object.assign(out, readObject(root, root, form, ""));
  return out;
}

function readObject(root, schema, form, prefix) {
  const out = {};
  for (const [name, raw] of Object.entries(schema.properties)) {
    if (HIDDEN.has(name)) continue;
    const path = prefix ? `${prefix}.${name}` : name;
    const { spec } = unwrap(root, raw);
    if (spec.type === "array" && spec.items && spec.items.type === "object") {
      const list = form.querySelector(`[data-list="${path}"]`);
      out[name] = [...(list ? list.children : [])].map((entry) =>
        readObject(root, spec.items, form, entry.dataset.entry),
      );
      continue;
    }
    if (spec.type === "array") {
      out[name] = [...form.querySelectorAll(`input[type=checkbox][name="${path}"]:checked`)].map(
        (i) => i.value,
      );
      continue;
    }
    if (spec.type === "boolean") {
      const check = form.querySelector(`input[type=checkbox][name="${path}"]`);
      if (check) out[name] = check.checked;
      else {
        const chosen = form.querySelector(`input[type=radio][name="${path}"]:checked`);
        if (chosen) out[name] = chosen.value === "true";
      }
      continue;
    }
    const node = form.querySelector(`[name="${path}"]`);
    if (!node) continue;
    const text = node.value.trim();
    if (text === "") continue; // omitted: the API's default (null) applies
    if (spec.type === "integer") {
      const digits = text.replace(/[\s\u202f\u00a0]/g, "");
      out[name] = /^-?\d+$/.test(digits) ? Number(digits) : text;
    } else out[name] = node.value;
  }
  return out;
}

// [{field, message}] with the API's dotted field names (projects.0.description).
export function validate(root, value) {
  const errors = [];
  checkObject(root, root, value, "", errors);
  return errors;
}

function checkObject(root, schema, value, prefix, errors) {
  const required = schema.required || [];
  for (const [name, raw] of Object.entries(schema.properties)) {
    const path = prefix ? `${prefix}.${name}` : name;
    const { spec, nullable } = unwrap(root, raw);
    const v = value[name];
    if (v === undefined || v === null) {
      if (required.includes(name)) errors.push({ field: path, message: "Ce champ est obligatoire." });
      else if (v === null && !nullable) errors.push({ field: path, message: "Ce champ est obligatoire." });
      continue;
    }
    if (spec.const !== undefined && v !== spec.const) {
      errors.push({ field: path, message: `La version attendue est ${spec.const}.` });
    }
    if (spec.type === "array") {
      if (spec.maxItems !== undefined && v.length > spec.maxItems) {
        errors.push({ field: path, message: `${spec.maxItems} au plus.` });
      }
      v.forEach((item, n) => {
        if (spec.items.type === "object") checkObject(root, spec.items, item, `${path}.${n}`, errors);
        else if (spec.items.enum && !spec.items.enum.includes(item)) {
          errors.push({ field: path, message: "Choisissez dans la liste." });
        }
      });
      continue;
    }
    if (spec.enum && !spec.enum.includes(v)) {
      errors.push({ field: path, message: "Choisissez dans la liste." });
      continue;
    }
    if (spec.type === "integer") {
      if (typeof v !== "number" || !Number.isInteger(v)) {
        errors.push({ field: path, message: "Saisissez un nombre entier, sans virgule." });
      } else if (spec.minimum !== undefined && v < spec.minimum) {
        errors.push({ field: path, message: `Le nombre doit être au moins ${NUMBER.format(spec.minimum)}.` });
      } else if (spec.maximum !== undefined && v > spec.maximum) {
        errors.push({ field: path, message: `Le nombre doit être au plus ${NUMBER.format(spec.maximum)}.` });
      }
      continue;
    }
    if (spec.type === "string" && typeof v === "string") {
      if (spec.minLength !== undefined && v.length < spec.minLength) {
        errors.push({ field: path, message: `Écrivez au moins ${spec.minLength} caractères.` });
      } else if (spec.maxLength !== undefined && v.length > spec.maxLength) {
        errors.push({ field: path, message: `${NUMBER.format(spec.maxLength)} caractères au plus.` });
      }
    }
  }
}

// The API's messages (pydantic's, in English) in French, for its 422 answers.
export function apiMessageInFrench(message) {
  const rules = [
    [/^Field required/, () => "Ce champ est obligatoire."],
    [/greater than or equal to ([\d.]+)/, (m) => `Le nombre doit être au moins ${m[1]}.`],
    [/less than or equal to ([\d.]+)/, (m) => `Le nombre doit être au plus ${m[1]}.`],
    [/at least (\d+) characters?/, (m) => `Écrivez au moins ${m[1]} caractères.`],
    [/at most (\d+) characters?/, (m) => `${m[1]} caractères au plus.`],
    [/valid integer/, () => "Saisissez un nombre entier, sans virgule."],
    [/valid boolean/, () => "Répondez par oui ou non."],
    [/^Input should be '/, () => "Choisissez dans la liste."],
    [/at most (\d+) items?/, (m) => `${m[1]} au plus.`],
    [/Extra inputs/, () => "Ce champ n'est pas attendu par le questionnaire."],
    [/reason is required/, () => "Un motif est obligatoire pour cette issue."],
  ];
  for (const [pattern, say] of rules) {
    const m = message.match(pattern);
    if (m) return say(m);
  }
  return message;
}

// Each error beside its field, and a summary at the top of the form whose links lead to
// the fields; focus goes to the summary. Field names are the API's (projects.0.kind): the
// n-th entry on screen is the n-th of the list.
export function showErrors(form, errors) {
  for (const node of form.querySelectorAll(".fr-error-text")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const node of form.querySelectorAll(".fr-input-group--error, .fr-select-group--error, .fr-fieldset--error")) {
    node.classList.remove("fr-input-group--error", "fr-select-group--error", "fr-fieldset--error");
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  const box = form.querySelector('[id$="-erreurs"]');
  box.replaceChildren();
  if (!errors.length) return;
  const links = [];
  for (const error of errors) {
    const target = targetOf(form, error.field);
    const words = apiMessageInFrench(error.message);
    if (!target) {
      links.push(el("li", {}, words));
      continue;
    }
    const msg = form.querySelector(`#${CSS.escape(target.id)}-msg`);
    if (msg) {
      msg.hidden = false;
      msg.textContent = words;
    }
    const group = target.closest(".fr-input-group, .fr-select-group") || (target.matches("fieldset") ? target : null);
    if (group) {
      group.classList.add(
        group.classList.contains("fr-select-group")
          ? "fr-select-group--error"
          : group.matches("fieldset")
            ? "fr-fieldset--error"
            : "fr-input-group--error",
      );
    }
    if (target.matches("input, select, textarea")) target.setAttribute("aria-invalid", "true");
    const name = labelText(target);
    links.push(
      el(
        "li",
        {},
        el(
          "a",
          {
            href: `#${target.id}`,
            "data-for": target.id,
            onclick: (event) => {
              event.preventDefault(); // the page's own hash is its view
              const focusable = target.matches("input, select, textarea")
                ? target
                : target.querySelector("input, select, textarea, button");
              if (focusable) focusable.focus();
            },
          },
          `${name} : ${words}`,
        ),
      ),
    );
  }
  box.append(
    el(
      "div",
      { class: "fr-alert fr-alert--error fr-alert--sm fr-mb-3w", role: "alert" },
      el("h4", { class: "fr-alert__title" }, errors.length === 1 ? "Une réponse est à corriger" : `${errors.length} réponses sont à corriger`),
      el("ul", {}, links),
    ),
  );
  box.focus();
}

function targetOf(form, field) {
  // projects.0.description → the first entry's description field
  const parts = field.split(".");
  let path = "";
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (/^\d+$/.test(part) && path) {
      const list = form.querySelector(`[data-list="${path}"]`);
      const entry = list ? list.children[Number(part)] : null;
      if (!entry) return form.querySelector(`[data-path="${path}"]`);
      path = entry.dataset.entry;
    } else path = path ? `${path}.${part}` : part;
  }
  return form.querySelector(`[data-path="${CSS.escape(path)}"]`);
}

function labelText(target) {
  if (target.matches("fieldset, section")) {
    const legend = target.querySelector("legend, h4");
    return legend ? legend.firstChild.textContent.replace(/ \*$/, "") : "Réponse";
  }
  const label = target.form && target.labels && target.labels[0];
  const entry = target.closest(".rb-entry");
  const prefix = entry ? `${entry.querySelector("legend").firstChild.textContent}, ` : "";
  return label ? prefix + label.firstChild.textContent.replace(/ \*$/, "") : "Réponse";
}
