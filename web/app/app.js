// The browser peer's page (DESIGN §15): the Rust core in WebAssembly replicates one CDVCS
// from the node that served this page, verifying every hash and signature; this file keeps
// what arrived in IndexedDB (records applied only once durable), owns the websocket, and
// draws. Offline it keeps showing and searching what it holds; a service worker keeps the
// page itself, so a reload works while the node is down.
import init, { Peer } from './replikativ_web.js';

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
  });
}

async function openDb(crdt) {
  const open = indexedDB.open('replikativ ' + crdt, 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore('records', { autoIncrement: true });
    open.result.createObjectStore('meta');
  };
  return request(open);
}

async function seedOf(db) {
  const tx = db.transaction('meta', 'readwrite');
  const meta = tx.objectStore('meta');
  let seed = await request(meta.get('seed'));
  if (!seed) {
    seed = crypto.getRandomValues(new Uint8Array(32));
    meta.put(seed, 'seed');
  }
  await done(tx);
  return new Uint8Array(seed);
}

async function records(db) {
  const tx = db.transaction('records', 'readonly');
  const keys = await request(tx.objectStore('records').getAllKeys());
  const all = await request(tx.objectStore('records').getAll());
  return { keys, records: all.map((r) => new Uint8Array(r)) };
}

async function drop(db, keys) {
  const tx = db.transaction('records', 'readwrite');
  for (const k of keys) tx.objectStore('records').delete(k);
  await done(tx);
}

async function keep(db, record) {
  const tx = db.transaction('records', 'readwrite', { durability: 'strict' });
  tx.objectStore('records').add(record);
  await done(tx);
}

const state = { peer: null, db: null, ws: null, online: false, retry: 250, notes: [], listeners: [] };
window.replikativ = {
  ready: false,
  status: () => JSON.parse(state.peer.status()),
  search: (term, limit = 20) => JSON.parse(state.peer.search(term, limit)),
  newest: (n = 20) => JSON.parse(state.peer.newest(n)),
  notes: () => state.notes.slice(),
  // `f(transactions)` for each batch kept from now on: [{commit, author, op, params}].
  onTransactions: (f) => state.listeners.push(f),
};

function note(text) {
  if (!text) return;
  state.notes.push(text);
  console.warn('replikativ:', text);
  $('notes').textContent = state.notes.slice(-5).join('\n');
}

let storing = Promise.resolve();

function handle(out) {
  try {
    for (let i = 0; i < out.sends(); i++) {
      if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(out.send(i));
    }
    for (let i = 0; i < out.stores(); i++) {
      const ticket = out.ticket(i);
      const record = out.record(i);
      storing = storing
        .then(() => keep(state.db, record))
        .then(
          () => handle(state.peer.stored(ticket)),
          (e) => handle(state.peer.store_failed(ticket, String(e))),
        );
    }
    if (state.listeners.length > 0) {
      // For scripts built on this page: every transaction once it is kept, in order (made
      // into JSON only when someone listens: a catch-up of 10^4 tweets is megabytes of it).
      const applied = JSON.parse(out.transactions());
      if (applied.length > 0) for (const f of state.listeners) f(applied);
    }
    note(out.notes());
    const close = out.close();
    if (close !== undefined && state.ws) {
      note(close);
      state.ws.close();
    }
  } finally {
    out.free();
  }
  draw();
}

function connect() {
  const url = query.get('ws') || (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  ws.onopen = () => {
    state.online = true;
    state.retry = 250;
    handle(state.peer.connect(crypto.getRandomValues(new Uint8Array(32))));
  };
  ws.onmessage = (ev) => {
    if (ev.data instanceof ArrayBuffer) handle(state.peer.receive(new Uint8Array(ev.data)));
  };
  ws.onclose = () => {
    state.online = false;
    state.peer.disconnected();
    draw();
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 4000);
  };
}

function item(t) {
  const li = document.createElement('li');
  const who = document.createElement('div');
  who.className = 'who';
  who.textContent = (t.username ? '@' + t.username : 'unknown') + (t.created_at ? ' · ' + t.created_at : '');
  const text = document.createElement('div');
  text.textContent = t.text;
  li.append(who, text);
  return li;
}

let drawing = false;
function draw() {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => {
    drawing = false;
    const s = JSON.parse(state.peer.status());
    $('count').textContent = s.tweets;
    $('commits').textContent = s.commits;
    $('bytes').textContent = s.received_bytes;
    const st = $('state');
    st.textContent = !state.online ? 'offline' : s.caught_up ? 'live' : 'syncing';
    st.className = st.textContent;
    $('newest').replaceChildren(...JSON.parse(state.peer.newest(20)).map(item));
    search();
  });
}

function search() {
  const term = $('search').value.trim();
  if (!term) {
    $('found').textContent = '';
    $('results').replaceChildren();
    return;
  }
  const found = JSON.parse(state.peer.search(term, 20));
  $('found').textContent = '· ' + found.count + ' found';
  $('results').replaceChildren(...found.tweets.map(item));
}

async function main() {
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js').catch((e) => note('offline page cache unavailable: ' + e));
  }
  const wasm = await init();
  window.replikativ.heap = () => wasm.memory.buffer.byteLength;
  const config = await fetch('config.json').then((r) => r.json());
  const crdt = query.get('crdt') || config.crdt;
  $('crdt').textContent = crdt;
  state.db = await openDb(crdt);
  state.peer = new Peer(await seedOf(state.db), crdt);
  $('key').textContent = state.peer.public_key();
  const kept = await records(state.db);
  for (let i = 0; i < kept.records.length; i++) {
    try {
      state.peer.restore(i, kept.records[i]);
    } catch (e) {
      // Damaged or tampered with: dropped from here on, and fetched again from the node.
      note('kept record ' + i + ' refused (' + e.message + '); it and the later ones are fetched again');
      await drop(state.db, kept.keys.slice(i));
      break;
    }
  }
  $('search').addEventListener('input', search);
  window.replikativ.ready = true;
  draw();
  connect();
}

main().catch((e) => note('cannot start: ' + (e && e.message ? e.message : e)));
