// The field app's service worker (scope /terrain/): the app shell is kept at install, and
// every GET the app makes goes to the network first and falls back on the last answer
// kept here, so that the page, the week's visits, the site cards and the questionnaire
// open without network. Reports made offline wait in IndexedDB (queue.js), not here.

const VERSION = "terrain-2026-12-03.4";
const SHELL = `rebond-terrain-shell-${VERSION}`;
const DATA = "rebond-terrain-data"; // the consultant's data, emptied at logout

const SHELL_URLS = [
  "/terrain/",
  "/terrain/app.js",
  "/terrain/queue.js",
  "/terrain/sync.js",
  "/terrain/survey.js",
  "/terrain/terrain.css",
  "/terrain/manifest.webmanifest",
  "/common/api.js",
  "/common/layout.js",
  "/common/rebond.css",
  "/dsfr/rebond.min.css",
  "/dsfr/rebond.module.min.js",
  "/dsfr/favicon/favicon.svg",
  "/dsfr/favicon/android-chrome-192x192.png",
  "/dsfr/favicon/apple-touch-icon.png",
  "/dsfr/fonts/Marianne-Regular.woff2",
  "/dsfr/fonts/Marianne-Medium.woff2",
  "/dsfr/fonts/Marianne-Bold.woff2",
  "/dsfr/icons/system/menu-fill.svg",
  "/dsfr/icons/system/close-line.svg",
  "/dsfr/icons/system/fr--info-fill.svg",
  "/dsfr/icons/system/fr--success-fill.svg",
  "/dsfr/icons/system/fr--warning-fill.svg",
  "/dsfr/icons/system/fr--error-fill.svg",
  "/dsfr/icons/system/add-line.svg",
  "/dsfr/icons/system/refresh-line.svg",
  "/dsfr/icons/arrows/arrow-left-s-line.svg",
  "/dsfr/icons/arrows/arrow-right-s-line.svg",
  "/dsfr/icons/user/account-circle-line.svg",
  "/dsfr/icons/arrows/arrow-left-line.svg",
  "/dsfr/icons/device/wifi-off-line.svg",
  "/dsfr/icons/system/logout-box-r-line.svg",
];

// What may be asked again to fill the cache (GET only, answers that are the caller's).
const DATA_PATHS = [
  "/api/campaigns/me/visits",
  "/api/campaigns/questionnaire",
  "/api/campaigns/campaigns",
  "/api/registry/sites/",
  "/api/registry/territories/",
  "/auth/session",
];

const isData = (url) => DATA_PATHS.some((p) => url.pathname.startsWith(p));
const isShell = (url) =>
  url.pathname.startsWith("/terrain/") ||
  url.pathname.startsWith("/common/") ||
  url.pathname.startsWith("/dsfr/");

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(SHELL)
      .then((cache) =>
        // One by one: a missing icon must not cost the whole shell.
        Promise.all(SHELL_URLS.map((u) => cache.add(new Request(u, { cache: "reload" })).catch(() => null))),
      )
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(
          keys
            .filter((k) => k.startsWith("rebond-terrain-shell-") && k !== SHELL)
            .map((k) => caches.delete(k)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    if (url.pathname.startsWith("/terrain/")) event.respondWith(page(event, request));
    return;
  }
  if (isData(url)) event.respondWith(networkFirst(event, request, DATA));
  else if (url.pathname.startsWith("/dsfr/")) event.respondWith(cacheFirst(event, request));
  else if (isShell(url)) event.respondWith(networkFirst(event, request, SHELL));
});

// Kept in the background: the page gets its answer as soon as it comes.
function keep(event, name, key, response) {
  event.waitUntil(caches.open(name).then((cache) => cache.put(key, response)));
}

async function page(event, request) {
  try {
    const response = await fetch(request);
    if (response.ok) keep(event, SHELL, "/terrain/", response.clone());
    return response;
  } catch (_) {
    const cached = await caches.match("/terrain/", { ignoreVary: true });
    return cached || offlineAnswer();
  }
}

async function networkFirst(event, request, name) {
  try {
    const response = await fetch(request);
    if (response.ok) {
      keep(event, name, request, response.clone());
      return response;
    }
    if (response.status >= 500) {
      // The service is down: the last answer is better than none.
      const cached = await fromCache(request);
      if (cached) return cached;
    }
    return response;
  } catch (_) {
    const cached = await fromCache(request);
    return cached || offlineAnswer();
  }
}

async function cacheFirst(event, request) {
  const cached = await caches.match(request, { ignoreVary: true });
  if (cached) return cached;
  return networkFirst(event, request, SHELL);
}

// The answer kept, marked so that the page can say it shows what it last saw.
async function fromCache(request) {
  const cached = await caches.match(request, { ignoreVary: true });
  if (!cached) return null;
  const headers = new Headers(cached.headers);
  headers.set("X-Rebond-From-Cache", "1");
  return new Response(await cached.blob(), {
    status: cached.status,
    statusText: cached.statusText,
    headers,
  });
}

function offlineAnswer() {
  // What a fetch without network answers: the page reads it as "no network".
  return Response.error();
}

// From the page: {type: "warm", urls} — keep the answers it got before this worker
// controlled it (its first visit); {type: "forget"} — the consultant logs out.
self.addEventListener("message", (event) => {
  const data = event.data || {};
  const port = event.ports && event.ports[0];
  const reply = (value) => port && port.postMessage(value);
  if (data.type === "warm") {
    event.waitUntil(warm(data.urls || []).then(reply, () => reply({ kept: 0 })));
  } else if (data.type === "forget") {
    event.waitUntil(caches.delete(DATA).then(() => reply({ forgotten: true })));
  }
});

async function warm(urls) {
  let kept = 0;
  const shell = await caches.open(SHELL);
  const data = await caches.open(DATA);
  await Promise.all(
    urls.map(async (raw) => {
      const url = new URL(raw, self.location.origin);
      if (url.origin !== self.location.origin) return;
      const cache = isData(url) ? data : isShell(url) ? shell : null;
      if (!cache) return;
      if (cache === shell && (await shell.match(url.href, { ignoreVary: true }))) return;
      try {
        const response = await fetch(url.href, { credentials: "same-origin" });
        if (response.ok) {
          await cache.put(url.href, response);
          kept += 1;
        }
      } catch (_) {
        /* offline already: nothing more to keep */
      }
    }),
  );
  return { kept };
}
