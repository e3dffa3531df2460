// Sending the queue: every waiting report through POST /api/campaigns/sync, answered item
// by item. Final answers (accepted, duplicate, conflict, rejected, not found) take the
// report out of the queue; no network, an expired session or a service down keep it.

import { api } from "../common/api.js";
import * as queue from "./queue.js";

const BATCH = 50; // the route takes 200 items at most

// The API's reasons are written for developers, in English: the usual ones in French.
const REASONS = [
  [/already completed with outcome (\w+)/, (m) => `la visite est déjà terminée (${outcomeWord(m[1])})`],
  [/ended with outcome (\w+): no survey/, (m) => `la visite s'est terminée sans entretien (${outcomeWord(m[1])}) : pas de questionnaire`],
  [/assigned to another consultant/, () => "la visite est maintenant confiée à un autre consultant"],
  [/cancelled by a re-plan/, () => "la visite a été annulée par une nouvelle planification"],
  [/needs a reason|reason is required/, () => "un motif est nécessaire pour cette issue"],
  [/visited_on .* outside/, () => "la date de visite est en dehors des jours de la campagne"],
  [/no visit /, () => "cette visite est introuvable"],
  [/no campaign /, () => "la campagne de cette visite est introuvable dans vos territoires"],
  [/not active|is closed|campaign .* closed/, () => "la campagne n'est plus en cours"],
  [/share one lead_id/, () => "deux projets portent le même identifiant"],
];

export const OUTCOME_WORDS = {
  reached: "Rencontré",
  declined: "Refus",
  unreachable: "Injoignable",
  site_closed: "Site fermé",
};

function outcomeWord(value) {
  return (OUTCOME_WORDS[value.replace(/^Outcome\./, "").toLowerCase()] || value).toLowerCase();
}

export function reasonInFrench(detail) {
  if (!detail) return "";
  for (const [pattern, say] of REASONS) {
    const m = detail.match(pattern);
    if (m) return say(m);
  }
  return detail;
}

// What the page says of one item's answer.
export function wordsFor(status, detail) {
  const reason = reasonInFrench(detail);
  switch (status) {
    case "accepted":
      return "Envoyé";
    case "duplicate":
      return "Déjà reçu";
    case "conflict":
      return `Conflit : ${reason || "la visite a changé entre-temps"}`;
    case "not_found":
      return `Refusé : ${reason || "visite introuvable"}`;
    default:
      return `Refusé : ${reason || "la demande n'est pas acceptée"}`;
  }
}

let running = null;

// Send every waiting report of `subject`; returns {results, kept, stop} where results are
// [{report, status, text, final, result, fields}], kept the reports still waiting and stop
// the reason they wait ("offline" | "session" | "unavailable" | null).
export function flush(subject) {
  if (!running) {
    const work = () => sendAll(subject);
    const locked =
      navigator.locks && navigator.locks.request
        ? navigator.locks.request("rebond-terrain-sync", work)
        : work();
    running = locked.finally(() => {
      running = null;
    });
  }
  return running;
}

async function sendAll(subject) {
  const waiting = await queue.all(subject);
  const results = [];
  let stop = null;
  for (let i = 0; i < waiting.length && !stop; i += BATCH) {
    const batch = waiting.slice(i, i + BATCH);
    stop = await sendBatch(batch, results);
  }
  const kept = await queue.all(subject);
  return { results, kept, stop };
}

async function sendBatch(batch, results) {
  let answer;
  try {
    answer = await api("campaigns", "/sync", {
      method: "POST",
      body: { items: batch.map(queue.syncItem) },
    });
  } catch (error) {
    if (error.status === 422 && batch.length > 1) {
      // One invalid report refuses the whole batch: send them one by one to find it.
      for (const report of batch) {
        const stop = await sendBatch([report], results);
        if (stop) return stop;
      }
      return null;
    }
    if (error.status === 422 || error.status === 400 || error.status === 413) {
      const report = batch[0];
      const fields = (error.fields || []).map((f) => ({
        field: f.field.replace(/^items\.\d+\.(survey|outcome)\.?/, ""),
        message: f.message,
      }));
      await queue.remove(report.client_id);
      results.push({
        report,
        status: "rejected",
        text: "Refusé : certaines valeurs ne sont pas acceptées",
        final: true,
        fields,
      });
      return null;
    }
    const stop = error.status === 0 ? "offline" : error.status === 401 ? "session" : "unavailable";
    for (const report of batch) {
      report.attempts += 1;
      report.last = { status: stop, text: error.message };
      await queue.put(report);
    }
    return stop;
  }
  const byId = new Map(batch.map((r) => [r.client_id, r]));
  for (const item of answer.results) {
    const report = byId.get(item.client_id);
    if (!report) continue;
    await queue.remove(report.client_id);
    results.push({
      report,
      status: item.status,
      text: wordsFor(item.status, item.detail),
      final: true,
      result: item.result || null,
      fields: [],
    });
  }
  return null;
}
