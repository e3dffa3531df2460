// The login page: the development login (a role and its scope, tokens minted with the
// development secret) where the service offers it, the OpenID Connect login otherwise.

import { session } from "../common/api.js";
import { alert, clear, el, frame, painted } from "../common/layout.js";

const params = new URLSearchParams(location.search);
const next = params.get("next") || "";

function field(id, label, input, hint) {
  return el(
    "div",
    { class: "fr-input-group" },
    el("label", { class: "fr-label", for: id }, label, hint && el("span", { class: "fr-hint-text" }, hint)),
    input,
  );
}

async function devLogin(form, message) {
  clear(message);
  const data = Object.fromEntries(new FormData(form).entries());
  const response = await fetch("/auth/dev-login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(data),
  }).catch(() => null);
  if (!response) {
    message.append(alert("error", null, "Pas de réseau : vérifiez votre connexion"));
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    message.append(alert("error", "Connexion refusée", body.detail || `erreur ${response.status}`));
    return;
  }
  location.assign(next.startsWith("/") && !next.startsWith("//") ? next : body.home);
}

function devForm(config) {
  const message = el("div", { id: "message-connexion", "aria-live": "polite" });
  const role = el(
    "select",
    { class: "fr-select", id: "role", name: "role", required: true },
    config.roles.map((r) => el("option", { value: r.value }, r.label)),
  );
  const territory = el("input", {
    class: "fr-input",
    id: "territory",
    name: "territory",
    value: "ti-3205",
    autocomplete: "off",
  });
  const region = el("input", { class: "fr-input", id: "region", name: "region", value: "32", autocomplete: "off" });
  const org = el("input", { class: "fr-input", id: "org", name: "org", autocomplete: "off" });
  const subject = el("input", { class: "fr-input", id: "subject", name: "subject", autocomplete: "off" });
  const territoryGroup = field("territory", "Territoire d'industrie", territory, "Identifiant, par exemple ti-3205 (Béthune-Bruay)");
  const regionGroup = field("region", "Région", region, "Code Insee de la région, par exemple 32 (Hauts-de-France)");
  const orgGroup = field("org", "Organisme financeur (facultatif)", org, "Par exemple ADEME ou Région Hauts-de-France");
  const sync = () => {
    const scopeByTerritory = ["crisis_cell", "consultant"].includes(role.value);
    territoryGroup.hidden = !scopeByTerritory;
    regionGroup.hidden = role.value !== "funder";
    orgGroup.hidden = role.value !== "funder";
  };
  role.addEventListener("change", sync);
  const form = el(
    "form",
    { id: "connexion-dev", novalidate: true },
    el(
      "fieldset",
      { class: "fr-fieldset" },
      el("legend", { class: "fr-fieldset__legend" }, "Connexion de développement"),
      el(
        "p",
        { class: "fr-text--sm" },
        "Choisissez un rôle et son périmètre : un jeton de développement est signé avec le" +
          " secret de développement, comme le fait « make run ». Jamais en production.",
      ),
      el("div", { class: "fr-select-group" }, el("label", { class: "fr-label", for: "role" }, "Rôle"), role),
      territoryGroup,
      regionGroup,
      orgGroup,
      field("subject", "Identifiant (facultatif)", subject, "Par exemple consultant-1 ; par défaut dev-<rôle>"),
    ),
    el("button", { class: "fr-btn", type: "submit" }, "Se connecter"),
    message,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    devLogin(form, message);
  });
  sync();
  return form;
}

async function main() {
  const main = frame(null, "/connexion/");
  clear(main);
  main.append(el("h1", {}, "Connexion"));
  const error = params.get("erreur");
  if (error) main.append(alert("error", "Connexion impossible", error));
  const current = await session().catch(() => null);
  if (current) {
    main.append(
      alert("info", null, `Vous êtes connecté (${current.role_labels.join(", ")}).`),
      el("p", {}, el("a", { class: "fr-link", href: current.home }, "Aller à votre page")),
    );
  }
  const config = await fetch("/auth/config").then((r) => r.json());
  if (config.oidc) {
    const href = `/auth/login${next ? `?next=${encodeURIComponent(next)}` : ""}`;
    main.append(
      el("p", {}, "Connectez-vous avec le compte de votre organisation."),
      el("a", { class: "fr-btn", id: "connexion-oidc", href }, "Se connecter avec le fournisseur d'identité"),
    );
  }
  if (config.dev_login) main.append(devForm(config));
  if (!config.oidc && !config.dev_login) {
    main.append(alert("warning", null, "Aucune méthode de connexion n'est configurée ici."));
  }
  painted(main);
}

main();
