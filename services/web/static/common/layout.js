// What every page shares: a DOM builder (text is always set as text, never as HTML),
// the French State's header and footer (DSFR markup), alerts, and French formats.

import { logout } from "./api.js";

// el("p", {class: "fr-text--sm"}, "texte", el("strong", {}, "gras"))
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

const PAGES = [
  { href: "/cellule/", label: "Cellule de crise", roles: ["crisis_cell", "admin"] },
  { href: "/terrain/", label: "Terrain", roles: ["consultant", "admin"] },
  { href: "/financeur/", label: "Financeur", roles: ["funder", "admin"] },
];

// The DSFR header: the Marianne block, the service's name, the pages this person may
// open, who is signed in and the logout button. On a phone the design system's script
// copies the tools into the menu dialog (`fr-header__menu-links`), so the logout button
// is found by its data attribute (one listener for both copies), never by id.
export function header(current, activeHref) {
  const who = current
    ? `${current.role_labels.join(", ")} · ${current.subject}${scopeText(current)}`
    : "";
  const toolLinks = el(
    "ul",
    { class: "fr-btns-group" },
    current && el("li", {}, el("p", { class: "fr-btn fr-icon-account-line rb-who" }, who)),
    current &&
      el(
        "li",
        {},
        el(
          "button",
          { class: "fr-btn fr-icon-logout-box-r-line", type: "button", "data-rebond-logout": "" },
          "Se déconnecter",
        ),
      ),
  );
  const links = PAGES.filter((p) => current && current.roles.some((r) => p.roles.includes(r)));
  const nav =
    links.length > 1
      ? el(
          "nav",
          { class: "fr-nav", role: "navigation", "aria-label": "Menu principal" },
          el(
            "ul",
            { class: "fr-nav__list" },
            links.map((p) =>
              el(
                "li",
                { class: "fr-nav__item" },
                el(
                  "a",
                  {
                    class: "fr-nav__link",
                    href: p.href,
                    "aria-current": p.href === activeHref ? "page" : null,
                  },
                  p.label,
                ),
              ),
            ),
          ),
        )
      : null;
  return el(
    "header",
    { role: "banner", class: "fr-header" },
    el(
      "div",
      { class: "fr-header__body" },
      el(
        "div",
        { class: "fr-container" },
        el(
          "div",
          { class: "fr-header__body-row" },
          el(
            "div",
            { class: "fr-header__brand fr-enlarge-link" },
            el(
              "div",
              { class: "fr-header__brand-top" },
              el(
                "div",
                { class: "fr-header__logo" },
                el("p", { class: "fr-logo" }, "République", el("br"), "Française"),
              ),
              current &&
                el(
                  "div",
                  { class: "fr-header__navbar" },
                  el(
                    "button",
                    {
                      class: "fr-btn--menu fr-btn",
                      "data-fr-opened": "false",
                      "aria-controls": "menu-principal",
                      "aria-haspopup": "menu",
                      id: "bouton-menu",
                      title: "Menu",
                      type: "button",
                    },
                    "Menu",
                  ),
                ),
            ),
            el(
              "div",
              { class: "fr-header__service" },
              el(
                "a",
                { href: "/", title: "Accueil — Rebond" },
                el("p", { class: "fr-header__service-title" }, "Rebond"),
              ),
              el(
                "p",
                { class: "fr-header__service-tagline" },
                "Rebond industriel : fermetures, campagnes, projets, financements",
              ),
            ),
          ),
          el(
            "div",
            { class: "fr-header__tools" },
            el("div", { class: "fr-header__tools-links" }, toolLinks),
          ),
        ),
      ),
    ),
    el(
        "div",
        { class: "fr-header__menu fr-modal", id: "menu-principal", "aria-labelledby": "bouton-menu" },
        el(
          "div",
          { class: "fr-container" },
          el(
            "button",
            { class: "fr-btn--close fr-btn", "aria-controls": "menu-principal", title: "Fermer", type: "button" },
            "Fermer",
          ),
          el("div", { class: "fr-header__menu-links" }),
          nav,
        ),
      ),
  );
}

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target.closest("[data-rebond-logout]") : null;
  if (target) logout();
});

function scopeText(current) {
  if (current.territories.length) return ` · ${current.territories.join(", ")}`;
  if (current.regions.length) return ` · région ${current.regions.join(", ")}`;
  return "";
}

export function footer() {
  return el(
    "footer",
    { class: "fr-footer", role: "contentinfo" },
    el(
      "div",
      { class: "fr-container" },
      el(
        "div",
        { class: "fr-footer__body" },
        el(
          "div",
          { class: "fr-footer__brand" },
          el("p", { class: "fr-logo" }, "République", el("br"), "Française"),
        ),
        el(
          "div",
          { class: "fr-footer__content" },
          el(
            "p",
            { class: "fr-footer__content-desc" },
            "Rebond — logiciel libre (AGPL-3.0) de suivi du rebond industriel. Données :" +
              " Sirene (Insee), Code officiel géographique, Territoires d'industrie (ANCT).",
          ),
        ),
      ),
    ),
  );
}

// Mount the shared frame around the page's own <main id="contenu">.
export function frame(current, activeHref) {
  const main = document.getElementById("contenu");
  document.body.prepend(
    el(
      "div",
      { class: "fr-skiplinks" },
      el(
        "nav",
        { class: "fr-container", role: "navigation", "aria-label": "Accès rapide" },
        el(
          "ul",
          { class: "fr-skiplinks__list" },
          el("li", {}, el("a", { class: "fr-link", href: "#contenu" }, "Contenu")),
        ),
      ),
    ),
    header(current, activeHref),
  );
  main.after(footer());
  // A page that never gets to its first useful paint (an error, a refusal) still gets
  // the design system's behaviour, a little later.
  setTimeout(loadDesignSystem, DESIGN_SYSTEM_FALLBACK_MS);
  return main;
}

// --- the first useful paint, then the design system's script ---------------------------
// The design system's script (its components' behaviour: collapses, modals, the phone
// menu) took this machine's browser 300-500 ms of main thread on a full dashboard, most
// of it reacting to the page's own DOM being built. So it is loaded once the page's
// content is on screen, never before: `painted(main)` marks the first useful paint
// (`rebond:useful`, what the browser tests time), then loads the script, and only when
// the script has started (its widgets work) says `aria-busy="false"`. Until then the
// markup is there and readable; only DSFR's widgets wait (docs/web.md).
const DESIGN_SYSTEM = "/dsfr/rebond.module.min.js";
const DESIGN_SYSTEM_FALLBACK_MS = 2_000;
let designSystem = null;

export function loadDesignSystem() {
  if (!designSystem) {
    designSystem = new Promise((resolve) => {
      const script = document.createElement("script");
      script.type = "module";
      script.src = DESIGN_SYSTEM;
      // The script starts its components on the next animation frame: one more frame and
      // they are in place (or half a second, if this tab gets no frames: hidden).
      const started = () => {
        requestAnimationFrame(() => requestAnimationFrame(resolve));
        setTimeout(resolve, 500);
      };
      script.addEventListener("load", started);
      script.addEventListener("error", resolve); // offline with nothing cached: plain markup
      document.head.append(script);
    });
  }
  return designSystem;
}

export function painted(main) {
  if (!performance.getEntriesByName("rebond:useful").length) performance.mark("rebond:useful");
  ready(main);
}

// The page is ready for use (its widgets work): `aria-busy` goes back to false.
export function ready(main) {
  return loadDesignSystem().then(() => main.setAttribute("aria-busy", "false"));
}

// kind: "info" | "success" | "warning" | "error"
export function alert(kind, title, text) {
  return el(
    "div",
    { class: `fr-alert fr-alert--${kind} fr-alert--sm`, role: kind === "error" ? "alert" : "status" },
    title && el("h3", { class: "fr-alert__title" }, title),
    text && el("p", {}, text),
  );
}

export function showError(container, error) {
  const message = error && error.message ? error.message : String(error);
  container.append(alert("error", null, message));
}

const NUMBER = new Intl.NumberFormat("fr-FR");
const PERCENT = new Intl.NumberFormat("fr-FR", { style: "percent", maximumFractionDigits: 0 });
const EUROS = new Intl.NumberFormat("fr-FR", {
  style: "currency",
  currency: "EUR",
  maximumFractionDigits: 0,
});
const DATE = new Intl.DateTimeFormat("fr-FR", { day: "numeric", month: "long", year: "numeric" });

export const fmt = {
  number: (n) => (n === null || n === undefined ? "—" : NUMBER.format(n)),
  percent: (x) => (x === null || x === undefined ? "—" : PERCENT.format(x)),
  euros: (n) => (n === null || n === undefined ? "—" : EUROS.format(n)),
  date: (iso) => {
    if (!iso) return "—";
    const d = new Date(iso.length === 10 ? `${iso}T12:00:00` : iso);
    return Number.isNaN(d.getTime()) ? iso : DATE.format(d);
  },
};
