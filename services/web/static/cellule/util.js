// The crisis cell page's small helpers: DSFR tables, form fields, French words for the
// API's refusals (shown beside the field they concern), month labels.

import { alert, clear, el } from "../common/layout.js";

// A DSFR table: caption, header cells with scope, rows of cells (a cell is a value or
// {value, attrs, header}); attrs on the <table> (id…).
export function table({ caption, head, rows, attrs = {}, size = "fr-table--sm", empty }) {
  const body = el(
    "tbody",
    {},
    rows.map((cells) =>
      el(
        "tr",
        {},
        cells.map((cell) => {
          const c = cell !== null && typeof cell === "object" && !(cell instanceof Node) ? cell : { value: cell };
          return el(c.header ? "th" : "td", { ...(c.header ? { scope: "row" } : {}), ...(c.attrs || {}) }, c.value);
        }),
      ),
    ),
  );
  if (!rows.length && empty) {
    body.append(el("tr", {}, el("td", { colspan: head.length }, empty)));
  }
  return el(
    "div",
    { class: `fr-table ${size}` },
    el(
      "div",
      { class: "fr-table__wrapper" },
      el(
        "div",
        // Focusable: the container scrolls on a narrow screen (keyboard users too).
        { class: "fr-table__container", tabindex: "0" },
        el(
          "div",
          { class: "fr-table__content" },
          el(
            "table",
            attrs,
            el("caption", {}, caption),
            el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
            body,
          ),
        ),
      ),
    ),
  );
}

// An input group: label, hint, the input, and a place for its error message.
export function field(id, label, input, hint) {
  const message = el("p", { class: "fr-error-text", id: `${id}-erreur`, hidden: true });
  const group = el(
    "div",
    { class: "fr-input-group" },
    el("label", { class: "fr-label", for: id }, label, hint && el("span", { class: "fr-hint-text" }, hint)),
    input,
    message,
  );
  group.setError = (text) => {
    group.classList.toggle("fr-input-group--error", Boolean(text));
    input.classList.toggle("fr-input--error", Boolean(text));
    message.hidden = !text;
    message.textContent = text || "";
    if (text) input.setAttribute("aria-describedby", message.id);
    else input.removeAttribute("aria-describedby");
    input.setAttribute("aria-invalid", text ? "true" : "false");
  };
  return group;
}

// What the API said about each field, in French when we know the field.
const FIELD_WORDS = {
  site_id: "SIRET",
  announced_on: "Date d'annonce",
  jobs_lost: "Emplois perdus",
  budget_days: "Budget",
  cost_per_visit_days: "Coût d'une visite",
  daily_cap: "Visites par jour",
  ends_on: "Date de fin",
  add: "Consultants à ajouter",
  remove: "Consultants à retirer",
};

// Show an ApiError in `box` (an aria-live region) and on the fields it names.
export function showRefusal(box, error, groups = {}, title = "Demande refusée") {
  clear(box);
  const fields = (error && error.fields) || [];
  for (const f of fields) {
    const name = String(f.field || "").split(".")[0];
    if (groups[name]) groups[name].setError(`Refusé par le service : ${f.message}`);
  }
  const named = fields
    .map((f) => FIELD_WORDS[String(f.field || "").split(".")[0]])
    .filter(Boolean);
  const text = error && error.message ? error.message : String(error);
  box.append(
    alert(
      "error",
      title,
      named.length ? `${text}. À corriger : ${[...new Set(named)].join(", ")}.` : text,
    ),
  );
}

const MONTH = new Intl.DateTimeFormat("fr-FR", { month: "short", year: "numeric" });
const MONTH_LONG = new Intl.DateTimeFormat("fr-FR", { month: "long", year: "numeric" });
export function monthLabel(ym, long = false) {
  const [y, m] = ym.split("-").map(Number);
  const d = new Date(y, m - 1, 15);
  return (long ? MONTH_LONG : MONTH).format(d);
}

const TIME = new Intl.DateTimeFormat("fr-FR", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
export const clock = () => TIME.format(new Date());

// A section with its heading (h2) and an id.
export function section(id, title, ...children) {
  return el(
    "section",
    { id, class: "fr-mb-6w", "aria-labelledby": `${id}-titre` },
    el("h2", { id: `${id}-titre` }, title),
    ...children,
  );
}

export function accordion(id, title, open, ...content) {
  return el(
    "section",
    { class: "fr-accordion" },
    el(
      "h3",
      { class: "fr-accordion__title" },
      el(
        "button",
        { class: "fr-accordion__btn", type: "button", "aria-expanded": open ? "true" : "false", "aria-controls": id },
        title,
      ),
    ),
    el("div", { class: "fr-collapse", id }, ...content),
  );
}
