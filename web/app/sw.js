// Keeps the page's own files so that a reload works while the node is down: network first
// (a running node always serves its current build), the cached copy when the network fails.
const CACHE = 'replikativ-app-v1';
const FILES = ['./', 'index.html', 'app.js', 'replikativ_web.js', 'replikativ_web_bg.wasm', 'config.json'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  if (event.request.method !== 'GET') return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((c) => c.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true })),
  );
});
