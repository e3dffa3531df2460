// The job-compensation ledger of a shock: the figures table (#ledger-table), the rate
// and its split in words (#compensation-rate), and the monthly chart drawn in SVG with
// its table alternative (#ledger-series-table). Every number is the API's
// (GET /api/detection/shocks/{id}/ledger), never recomputed here.

import { clear, el, fmt, svg } from "../common/layout.js";
import { accordion, monthLabel, table } from "./util.js";

export const STAGES = [
  ["detected", "Détectés", "emplois prévus par les projets détectés"],
  ["qualified", "Qualifiés", "emplois prévus par les projets qualifiés"],
  ["funded", "Financés", "emplois prévus par les projets financés"],
  ["created", "Créés", "emplois effectivement créés"],
];
const ORIGINS = [
  ["total", "Total"],
  ["endogenous", "Endogènes"],
  ["exogenous", "Exogènes"],
];

// Chart series: what is drawn, how (colour and dash pattern: never colour alone).
const LINES = [
  { key: "detected", label: "Emplois détectés (prévus)", color: "#6a6af4", dash: "2 5", width: 2.5 },
  { key: "qualified", label: "Emplois qualifiés (prévus)", color: "#000091", dash: "10 5", width: 2.5 },
  { key: "funded", label: "Emplois financés (prévus)", color: "#716043", dash: "", width: 2.5 },
];
const AREAS = [
  { key: "endogenous", label: "Emplois créés par des projets endogènes", color: "#18753c" },
  { key: "exogenous", label: "Emplois créés par des projets exogènes", color: "#a558a0" },
];
const LOST = { label: "Emplois perdus", color: "#ce0500", dash: "6 3" };

export function compensationWords(ledger) {
  const created = ledger.total.created;
  const lost = ledger.jobs_lost;
  const rate = ledger.compensation_rate;
  const head = `${fmt.number(created)} emploi${created > 1 ? "s" : ""} créé${created > 1 ? "s" : ""} sur ${fmt.number(lost)} perdus (${fmt.percent(rate)})`;
  if (!created) return `${head} : aucun emploi créé pour l'instant.`;
  return `${head} : ${fmt.number(ledger.endogenous.created)} par des projets endogènes, ${fmt.number(ledger.exogenous.created)} par des projets exogènes.`;
}

function figuresTable(ledger) {
  const lost = [
    { value: "Perdus", header: true },
    {
      value: fmt.number(ledger.jobs_lost),
      attrs: { class: "rb-num", "data-ledger-stage": "lost", "data-ledger-origin": "total" },
    },
    { value: "—", attrs: { class: "rb-num", title: "sans objet" } },
    { value: "—", attrs: { class: "rb-num", title: "sans objet" } },
  ];
  const rows = [lost].concat(
    STAGES.map(([stage, label]) => [
      { value: label, header: true },
      ...ORIGINS.map(([origin]) => ({
        value: fmt.number(ledger[origin][stage]),
        attrs: { class: "rb-num", "data-ledger-stage": stage, "data-ledger-origin": origin },
      })),
    ]),
  );
  return table({
    caption: "Emplois perdus et emplois des projets, par étape et par origine",
    head: ["Étape", "Total", "Endogènes", "Exogènes"],
    rows,
    attrs: { id: "ledger-table" },
  });
}

function seriesTable(ledger) {
  return table({
    caption: "Emplois cumulés mois par mois (données du graphique)",
    head: ["Mois", "Détectés", "Qualifiés", "Financés", "Créés (endogènes)", "Créés (exogènes)", "Créés (total)"],
    rows: ledger.series.map((p) => [
      { value: monthLabel(p.month, true), header: true },
      fmt.number(p.total.detected),
      fmt.number(p.total.qualified),
      fmt.number(p.total.funded),
      fmt.number(p.endogenous.created),
      fmt.number(p.exogenous.created),
      fmt.number(p.total.created),
    ]),
    attrs: { id: "ledger-series-table" },
  });
}

function niceMax(v) {
  if (v <= 10) return 10;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function chart(ledger) {
  const W = 800;
  const H = 340;
  const L = 64;
  const R = 20;
  const T = 20;
  const B = 44;
  const series = ledger.series.length ? ledger.series : [];
  // One month only: drawn as a flat segment across the month.
  const points = series.length === 1 ? [series[0], series[0]] : series;
  const n = Math.max(points.length - 1, 1);
  const top = niceMax(Math.max(ledger.jobs_lost, ...series.map((p) => p.total.detected)) * 1.08);
  const x = (i) => L + (i / n) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const line = (values) => values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");

  const grid = [];
  for (let k = 0; k <= 5; k += 1) {
    const v = (top * k) / 5;
    grid.push(
      svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "rb-chart-grid" }),
      svg("text", { x: L - 8, y: y(v) + 4, "text-anchor": "end", class: "rb-chart-label" }, fmt.number(Math.round(v))),
    );
  }
  const step = Math.max(1, Math.ceil(series.length / 8));
  const ticks = series.map((p, i) =>
    i % step === 0 || (i === series.length - 1 && i % step >= step / 2)
      ? svg(
          "text",
          {
            x: series.length === 1 ? (L + W - R) / 2 : x(i),
            y: H - B + 20,
            "text-anchor": "middle",
            class: "rb-chart-label",
          },
          monthLabel(p.month),
        )
      : null,
  );
  // Created jobs: endogenous at the bottom, exogenous stacked on it.
  const endo = points.map((p) => p.endogenous.created);
  const both = points.map((p) => p.endogenous.created + p.exogenous.created);
  const area = (low, high) =>
    `${line(high)}L${x(points.length - 1).toFixed(1)},${y(low[low.length - 1]).toFixed(1)}` +
    low
      .map((v, i) => [i, v])
      .reverse()
      .map(([i, v]) => `L${x(i).toFixed(1)},${y(v).toFixed(1)}`)
      .join("") +
    "Z";
  const zeros = points.map(() => 0);
  return svg(
    "svg",
    {
      viewBox: `0 0 ${W} ${H}`,
      role: "img",
      "aria-labelledby": "ledger-chart-title ledger-chart-desc",
      focusable: "false",
    },
    svg("title", { id: "ledger-chart-title" }, "Compensation des emplois perdus, mois par mois"),
    svg(
      "desc",
      { id: "ledger-chart-desc" },
      `${compensationWords(ledger)} Les mêmes chiffres sont dans le tableau « Emplois cumulés mois par mois ».`,
    ),
    grid,
    svg("path", { d: area(zeros, endo), fill: AREAS[0].color, "fill-opacity": 0.75, "data-series": "created-endogenous" }),
    svg("path", { d: area(endo, both), fill: AREAS[1].color, "fill-opacity": 0.75, "data-series": "created-exogenous" }),
    LINES.map((s) =>
      svg("path", {
        d: line(points.map((p) => p.total[s.key])),
        fill: "none",
        stroke: s.color,
        "stroke-width": s.width,
        "stroke-dasharray": s.dash || null,
        "data-series": s.key,
      }),
    ),
    svg("line", {
      x1: L,
      x2: W - R,
      y1: y(ledger.jobs_lost),
      y2: y(ledger.jobs_lost),
      stroke: LOST.color,
      "stroke-width": 2.5,
      "stroke-dasharray": LOST.dash,
      "data-series": "lost",
    }),
    svg(
      "text",
      { x: W - R, y: y(ledger.jobs_lost) - 8, "text-anchor": "end", class: "rb-chart-label rb-chart-lost" },
      `${fmt.number(ledger.jobs_lost)} emplois perdus`,
    ),
    svg("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), class: "rb-chart-axis" }),
    ticks,
  );
}

function legend() {
  const sample = (attrs) =>
    svg("svg", { width: 28, height: 12, viewBox: "0 0 28 12", "aria-hidden": "true", focusable: "false" }, svg(attrs.tag || "line", attrs.a));
  return el(
    "ul",
    { class: "rb-legend fr-text--sm", "aria-label": "Légende du graphique" },
    el("li", {}, sample({ a: { x1: 0, x2: 28, y1: 6, y2: 6, stroke: LOST.color, "stroke-width": 2.5, "stroke-dasharray": LOST.dash } }), LOST.label),
    LINES.map((s) =>
      el("li", {}, sample({ a: { x1: 0, x2: 28, y1: 6, y2: 6, stroke: s.color, "stroke-width": 2.5, "stroke-dasharray": s.dash || null } }), s.label),
    ),
    AREAS.map((s) =>
      el("li", {}, sample({ tag: "rect", a: { x: 0, y: 0, width: 28, height: 12, fill: s.color, "fill-opacity": 0.75 } }), s.label),
    ),
  );
}

// Fill `box` with the ledger (replacing what was there).
export function renderLedger(box, ledger, seriesOpen = false) {
  const review = ledger.total.projects_under_review
    ? el(
        "p",
        { class: "fr-text--sm" },
        `Dont ${fmt.number(ledger.total.jobs_under_review)} emplois prévus par ${fmt.number(ledger.total.projects_under_review)} projet(s) en examen (doublons possibles, comptés en attendant la décision).`,
      )
    : null;
  const abandoned = ledger.total.abandoned
    ? el(
        "p",
        { class: "fr-text--sm" },
        `${fmt.number(ledger.total.abandoned)} projet(s) abandonné(s) (${fmt.number(ledger.total.jobs_abandoned)} emplois prévus), comptés nulle part.`,
      )
    : null;
  clear(box).append(
    el(
      "div",
      { class: "fr-grid-row fr-grid-row--gutters" },
      el(
        "div",
        { class: "fr-col-12 fr-col-lg-4" },
        el(
          "div",
          { class: "rb-rate-box" },
          el("p", { class: "fr-mb-1v" }, "Taux de compensation"),
          el("p", { class: "rb-figure fr-mb-1w", id: "compensation-rate" }, fmt.percent(ledger.compensation_rate)),
          el("p", { id: "compensation-text" }, compensationWords(ledger)),
          review,
          abandoned,
        ),
        figuresTable(ledger),
      ),
      el(
        "div",
        { class: "fr-col-12 fr-col-lg-8" },
        el("figure", { class: "rb-chart fr-m-0", id: "ledger-chart" }, chart(ledger), el("figcaption", {}, legend())),
        el(
          "div",
          { class: "fr-accordions-group" },
          accordion("ledger-series", "Données du graphique, mois par mois", seriesOpen, seriesTable(ledger)),
        ),
      ),
    ),
  );
}
