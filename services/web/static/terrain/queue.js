// The reports made on this phone and not yet answered by the API, in IndexedDB: one
// record per report, keyed by its idempotency key (`client_id`, made when the report
// was made, never at send time), so that a report sent twice is answered "duplicate".

const DB_NAME = "rebond-terrain";
const STORE = "reports";

let opening = null;

function db() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => {
        const store = request.result.createObjectStore(STORE, { keyPath: "client_id" });
        store.createIndex("made_at", "made_at");
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opening;
}

async function run(mode, work) {
  const base = await db();
  return new Promise((resolve, reject) => {
    const tx = base.transaction(STORE, mode);
    const store = tx.objectStore(STORE);
    let result;
    const request = work(store);
    if (request) request.onsuccess = () => (result = request.result);
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

// A UUID v4 (the sync route wants one); crypto.randomUUID when the browser has it.
export function uuid4() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// A report as the sync route takes it, plus what the page shows about it.
// kind: "outcome" | "survey"; body: OutcomeIn | SurveyIn.
export function newReport({ subject, kind, visit, body }) {
  const now = new Date().toISOString();
  return {
    client_id: uuid4(),
    subject,
    type: kind,
    visit_id: visit.id,
    recorded_at: now,
    [kind]: body,
    made_at: now,
    label: visit.name || visit.site_id,
    attempts: 0,
    last: null, // {status, text}: what the last attempt said, when it was not final
  };
}

export function syncItem(report) {
  const item = {
    client_id: report.client_id,
    type: report.type,
    visit_id: report.visit_id,
    recorded_at: report.recorded_at,
  };
  item[report.type] = report[report.type];
  return item;
}

export function put(report) {
  return run("readwrite", (store) => store.put(report));
}

export function remove(clientId) {
  return run("readwrite", (store) => store.delete(clientId));
}

export async function all(subject) {
  const rows = (await run("readonly", (store) => store.index("made_at").getAll())) || [];
  return subject ? rows.filter((r) => r.subject === subject) : rows;
}

export async function count(subject) {
  return (await all(subject)).length;
}
