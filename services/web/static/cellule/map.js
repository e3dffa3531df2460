// The campaign map: the territory's commune outlines (registry GeoJSON) as SVG paths,
// the campaign's targets as circles coloured by visit status (status from the campaign's
// plan, position from the registry's sites), a legend; and the same data as a table
// (#campaign-list) for keyboard and screen-reader users.

import { clear, el, fmt, svg } from "../common/layout.js";
import { table } from "./util.js";

// The plan says planned / completed / uncovered / removed; a visit's outcome, when the
// API gives one, says more (reached, declined, unreachable, site closed).
export const STATUS = {
  planned: { label: "Visite planifiée", css: "rb-status-planned" },
  completed: { label: "Visitée (issue non communiquée)", css: "rb-status-completed" },
  reached: { label: "Rencontrée", css: "rb-status-reached" },
  declined: { label: "A décliné", css: "rb-status-declined" },
  unreachable: { label: "Injoignable", css: "rb-status-unreachable" },
  closed: { label: "Site fermé", css: "rb-status-closed" },
  uncovered: { label: "Hors plan (budget ou calendrier)", css: "rb-status-uncovered" },
  removed: { label: "Retirée de la campagne", css: "rb-status-removed" },
};
const OUTCOMES = { reached: "reached", declined: "declined", unreachable: "unreachable", site_closed: "closed" };

export function statusOf(target, site) {
  if (target.outcome && OUTCOMES[target.outcome]) return OUTCOMES[target.outcome];
  if (target.status === "removed") return "removed";
  if (site && site.status === "closed") return "closed";
  return STATUS[target.status] ? target.status : "uncovered";
}

function rings(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return geometry.coordinates;
  if (geometry.type === "MultiPolygon") return geometry.coordinates.flat();
  return [];
}

// Equirectangular projection scaled by cos(mid latitude), fitted to a 1000-wide box.
function projection(features, extra) {
  let minX = Infinity;
  let maxX = -Infinity;
  let minY = Infinity;
  let maxY = -Infinity;
  const see = (lon, lat) => {
    if (lon < minX) minX = lon;
    if (lon > maxX) maxX = lon;
    if (lat < minY) minY = lat;
    if (lat > maxY) maxY = lat;
  };
  for (const f of features) for (const ring of rings(f.geometry)) for (const [lon, lat] of ring) see(lon, lat);
  for (const [lon, lat] of extra) see(lon, lat);
  if (!Number.isFinite(minX)) return null;
  const k = Math.cos(((minY + maxY) / 2) * (Math.PI / 180));
  const pad = 12;
  const width = 1000;
  const scale = (width - 2 * pad) / Math.max((maxX - minX) * k, 1e-6);
  const height = Math.round((maxY - minY) * scale + 2 * pad);
  return {
    width,
    height,
    at: (lon, lat) => [pad + (lon - minX) * k * scale, pad + (maxY - lat) * scale],
  };
}

function pathOf(geometry, at) {
  return rings(geometry)
    .map(
      (ring) =>
        ring
          .map(([lon, lat], i) => {
            const [px, py] = at(lon, lat);
            return `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`;
          })
          .join("") + "Z",
    )
    .join("");
}

// rows: [{target, site, status, commune}] ; closing: the closing site (or null).
export function renderMap(box, { geojson, rows, closing }) {
  const features = (geojson && geojson.features) || [];
  const placed = rows.filter((r) => r.site && r.site.lon != null && r.site.lat != null);
  const proj = projection(features, placed.map((r) => [r.site.lon, r.site.lat]));
  clear(box);
  if (!proj) {
    box.append(el("p", {}, "Pas de contour de commune ni de site à placer : la carte est vide. La liste donne les cibles."));
    return;
  }
  const counts = {};
  for (const r of rows) counts[r.status] = (counts[r.status] || 0) + 1;
  const summary = Object.entries(STATUS)
    .filter(([k]) => counts[k])
    .map(([k, s]) => `${fmt.number(counts[k])} ${s.label.toLowerCase()}`)
    .join(", ");
  const missing = rows.length - placed.length;
  const closingAt =
    closing && closing.lon != null && closing.lat != null ? proj.at(closing.lon, closing.lat) : null;
  const drawing = svg(
    "svg",
    {
      viewBox: `0 0 ${proj.width} ${proj.height}`,
      role: "img",
      "aria-labelledby": "campaign-map-title campaign-map-desc",
      focusable: "false",
    },
    svg("title", { id: "campaign-map-title" }, `Carte de la campagne : ${fmt.number(features.length)} communes, ${fmt.number(placed.length)} sites placés`),
    svg(
      "desc",
      { id: "campaign-map-desc" },
      `${summary}.${missing ? ` ${fmt.number(missing)} site(s) sans coordonnées ne sont pas placés.` : ""} La vue Liste donne le même contenu en tableau.`,
    ),
    svg(
      "g",
      { class: "rb-communes" },
      features.map((f) =>
        svg(
          "path",
          { class: "commune", d: pathOf(f.geometry, proj.at), "data-commune": f.properties && f.properties.code },
          svg("title", {}, (f.properties && f.properties.nom) || ""),
        ),
      ),
    ),
    svg(
      "g",
      { class: "rb-sites" },
      placed.map((r) => {
        const [cx, cy] = proj.at(r.site.lon, r.site.lat);
        return svg(
          "circle",
          {
            cx: cx.toFixed(1),
            cy: cy.toFixed(1),
            r: 7,
            class: `rb-site ${STATUS[r.status].css}`,
            "data-site-id": r.target.site_id,
            "data-status": r.status,
          },
          svg("title", {}, `${r.target.name || r.target.site_id} — ${r.commune} — ${STATUS[r.status].label}`),
        );
      }),
    ),
    closingAt &&
      svg(
        "path",
        {
          class: "rb-closing-site",
          d: `M${closingAt[0]},${closingAt[1] - 13}L${closingAt[0] + 12},${closingAt[1] + 9}L${closingAt[0] - 12},${closingAt[1] + 9}Z`,
          "data-closing-site": closing.siret,
        },
        svg("title", {}, `Site qui ferme : ${closing.name || closing.siret}`),
      ),
  );
  box.append(drawing);
}

export function renderLegend(box, rows, closing) {
  const counts = {};
  for (const r of rows) counts[r.status] = (counts[r.status] || 0) + 1;
  clear(box).append(
    el(
      "ul",
      { class: "rb-legend fr-text--sm", "aria-label": "Légende de la carte" },
      Object.entries(STATUS)
        .filter(([k]) => counts[k] || ["planned", "completed", "uncovered"].includes(k))
        .map(([k, s]) =>
          el("li", {}, el("span", { class: `rb-swatch ${s.css}`, "aria-hidden": "true" }), `${s.label} (${fmt.number(counts[k] || 0)})`),
        ),
      closing && el("li", {}, el("span", { class: "rb-swatch-closing", "aria-hidden": "true" }), "Site qui ferme"),
    ),
  );
}

export function renderList(box, rows) {
  clear(box).append(
    table({
      caption: `Sites de la campagne et état de leur visite (${fmt.number(rows.length)} cibles)`,
      head: ["Site", "Commune", "État", "Placé sur la carte"],
      rows: rows.map((r) => [
        { value: r.target.name || r.target.site_id, header: true, attrs: { "data-site-id": r.target.site_id } },
        r.commune,
        el("span", {}, el("span", { class: `rb-swatch ${STATUS[r.status].css}`, "aria-hidden": "true" }), " ", STATUS[r.status].label),
        r.site && r.site.lon != null && r.site.lat != null ? "oui" : "non (sans coordonnées)",
      ]),
      attrs: { id: "campaign-list-table" },
      size: "fr-table--sm fr-table--multiline",
      empty: "Aucune cible dans cette campagne.",
    }),
  );
}
