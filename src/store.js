// Storage of persisted sessions (the `persist` option): the I/O of what the core's client asks to store
// (crates/core/src/persist.rs). One implementation for both APIs: the npm build bundles it with src/js/face.js,
// which hands `openStore` to the engine; the Rust typed API imports it as a wasm-bindgen module (src/persist.rs).
//
// Two stores, for two kinds of page death (docs/PERSISTENCE.md has the measurements):
// - localStorage, written synchronously by every batch: it survives a reload, a closed tab and a crashed renderer
//   (the browser process holds it), but a killed browser loses what it had not yet written to disk;
// - IndexedDB, one transaction at a time for every batch written meanwhile: its `complete` is the durable milestone
//   (`stored`, which lets the engine acknowledge), and it holds the whole outbox without
//   localStorage's 5 MB limit. After a commit, the messages it holds are deleted from localStorage.
// In a worker, which has no localStorage, IndexedDB alone: what a crash takes before the commit is lost (and the
// worker that could report it is gone too).
// One page owns a name at a time: a Web Lock, held until `close`. Where Web Locks are missing, the last page to open
// the name wins: every write first checks the owner generation in localStorage, and a page that finds a newer one
// stops (fenced).

const PREFIX = "durable-ws:";
const DB = "durable-ws";
const [SESSIONS, MESSAGES] = ["sessions", "messages"];

/**
 * Opens the persisted session `name`. `loaded(position, seqs, payloads)` once it is ours and read (position
 * undefined: nothing stored); `stored(id)` when every batch up to `id` is committed; `failed(message)` once if
 * storage is unusable (then nothing is called any more).
 */
export function openStore(name, loaded, stored, failed) {
  return new Store(name, loaded, stored, failed);
}

class Store {
  constructor(name, loaded, stored, failed) {
    this.name = name;
    this.key = PREFIX + name;
    this.callbacks = { loaded, stored, failed };
    this.done = false;
    this.db = null;
    this.generation = 0;
    this.rev = 0;
    /** The rev of the last clear: localStorage messages of an older one are void. */
    this.cleared = 0;
    /** Batches of the current task, written to localStorage at its end (`writeOut`). */
    this.pending = [];
    /** Batches written to localStorage and waiting for IndexedDB. */
    this.queue = [];
    this.committing = false;
    this.release = null;
    /** This page's sends while the session is read back (their keys): kept until it takes them over. */
    this.early = [];
    this.page = Math.random().toString(36).slice(2);
    /** Settles when this store is closed: the page's own lock (see enqueue) is held until then. */
    this.gone = new Promise((resolve) => (this.leave = resolve));
    /** localStorage, or a stand-in where there is none (workers). */
    this.ls = "localStorage" in globalThis ? null : memoryStorage();
    const start = () => this.load().catch((e) => this.fail(e));
    const locks = globalThis.navigator?.locks;
    if (!locks) return void start();
    locks
      .request(this.key, () => new Promise((release) => {
        this.release = release;
        if (this.done) release();
        else start();
      }))
      .catch((e) => this.fail(e));
  }

  /** Reads the session (IndexedDB, then the newer localStorage tail), moves the tail into IndexedDB, hands it over. */
  async load() {
    const ls = this.storage();
    this.generation = +(ls.getItem(this.key + ":g") ?? 0) + 1;
    ls.setItem(this.key + ":g", String(this.generation));
    this.db = await openDb();
    const tx = this.db.transaction([SESSIONS, MESSAGES], "readonly");
    const [record, keys, values] = await Promise.all([
      request(tx.objectStore(SESSIONS).get(this.name)),
      request(tx.objectStore(MESSAGES).getAllKeys(range(this.name))),
      request(tx.objectStore(MESSAGES).getAll(range(this.name))),
    ]);
    let position = record?.p, messages = new Map(keys.map((key, i) => [key[1], values[i]]));
    this.rev = record?.r ?? 0;
    const written = ls.getItem(this.key + ":p"), tail = readJson(written);
    // Unreadable records read as a position of no known format: the engine reports it (PersistError).
    const corrupt = (record !== undefined && !(typeof record?.p == "string" && record.r >= 0)) || (written != null && !tail);
    if (corrupt) this.rev = 0;
    if (tail && tail.r > this.rev) {
      if (tail.c > this.rev) messages = new Map();
      position = tail.p || undefined; // "": the session ended
      this.rev = tail.r;
      for (const [seq, payload] of this.tailMessages(tail.c)) messages.set(seq, payload);
    }
    this.cleared = tail?.c ?? 0;
    if (corrupt) position = "corrupt";
    if (this.done) return this.flush();
    const seqs = [...messages.keys()].sort((a, b) => a - b);
    const payloads = seqs.map((seq) => messages.get(seq));
    // Sends of pages that died before they held the session follow the stored outbox (a page still waiting holds
    // a lock of its own: its sends are its own to take over).
    const alive = new Set(((await globalThis.navigator?.locks?.query())?.held ?? []).map((lock) => lock.name));
    const prefix = this.key + ":q:";
    const orphans = keysOf(ls)
      .filter((k) => k.startsWith(prefix) && !alive.has(prefix + k.slice(prefix.length).split(":")[0]) && !this.early.includes(k))
      .sort();
    if (orphans.length) {
      position ??= "dws1::0:0:0";
      let last = Math.max(+position.split(":")[3] || 0, seqs[seqs.length - 1] ?? 0);
      for (const key of orphans) {
        seqs.push(++last);
        payloads.push(decode(ls.getItem(key)));
      }
    }
    // Everything read is written back as one batch: from here on, IndexedDB holds it all.
    if (position !== undefined || seqs.length) {
      const acked = position === undefined ? 0 : +(position.split(":")[3] ?? 0);
      await this.commit([{ id: -1, rev: this.rev, clear: true, position, acked, seqs, payloads }]);
    }
    this.removeTail();
    for (const key of orphans) ls.removeItem(key);
    if (this.done) return this.flush();
    // Early sends of this page that another page took over while this one waited (it found them left behind: they
    // are a prefix, taken at one moment) are that page's now.
    const adopted = this.early.filter((key) => ls.getItem(key) === null).length;
    this.callbacks.loaded(position, seqs, payloads, adopted);
    // The engine has taken this page's early sends into the session (and written them) by now.
    for (const key of this.early) ls.removeItem(key);
    this.early = [];
  }

  /** A send while the session is read back: kept in localStorage until the session takes it. */
  enqueue(payload) {
    try {
      if (!this.early.length) globalThis.navigator?.locks?.request(`${this.key}:q:${this.page}`, () => this.gone);
      const key = `${this.key}:q:${this.page}:${String(this.early.length).padStart(8, "0")}`;
      this.storage().setItem(key, encode(payload));
      this.early.push(key);
    } catch {} // a storage problem surfaces when the session is read back
  }

  /**
   * One batch (crates/core/src/persist.rs StoreBatch): written to localStorage now, to IndexedDB with the next
   * commit. `position` undefined: the session is over, everything is deleted.
   */
  write(id, clear, position, acked, seqs, payloads) {
    if (this.done) return;
    // Written at the end of the task (a microtask: before any page death can interrupt), all of the task's batches
    // at once.
    if (!this.pending.length) queueMicrotask(() => this.writeOut());
    this.pending.push({ id, clear, position, acked, seqs: Array.from(seqs), payloads });
  }

  /** Writes the task's batches to localStorage and queues them for IndexedDB. */
  writeOut() {
    const batches = this.pending;
    this.pending = [];
    if (this.done || !batches.length) return;
    try {
      const ls = this.storage();
      // The fence, where no Web Lock keeps other pages out.
      const fenced = !this.release && ls.getItem(this.key + ":g") != String(this.generation);
      if (fenced) return this.fail(new Error("another page took the session over"), true);
      for (const batch of batches) {
        batch.rev = ++this.rev;
        if (batch.clear || batch.position === undefined) {
          this.removeTail();
          this.cleared = batch.rev;
        }
        batch.cleared = this.cleared;
        batch.seqs.forEach((seq, i) => ls.setItem(`${this.key}:m:${this.cleared}:${seq}`, encode(batch.payloads[i])));
      }
      const last = batches[batches.length - 1];
      ls.setItem(this.key + ":p", JSON.stringify({ r: last.rev, c: this.cleared, p: last.position ?? "" }));
      this.queue.push(...batches);
      this.flush();
    } catch (e) {
      this.fail(e);
    }
  }

  /** Commits the queued batches in one IndexedDB transaction, then the next ones; after `close`, lets the name go. */
  flush() {
    if (this.committing) return;
    if (!this.queue.length) return void (this.done && this.release?.());
    const batches = this.queue;
    this.queue = [];
    this.committing = true;
    this.commit(batches).then(
      () => {
        this.committing = false;
        const ls = this.storage();
        for (const { seqs, cleared } of batches) for (const seq of seqs) ls.removeItem(`${this.key}:m:${cleared}:${seq}`);
        if (!this.done) this.callbacks.stored(batches[batches.length - 1].id);
        this.flush();
      },
      (e) => this.fail(e),
    );
  }

  /** One transaction with the net effect of `batches`: a clear voids what came before it, the last position stands. */
  commit(batches) {
    let clear = false;
    const puts = new Map();
    for (const batch of batches) {
      if (batch.clear || batch.position === undefined) {
        clear = true;
        puts.clear();
      }
      batch.seqs.forEach((seq, i) => puts.set(seq, batch.payloads[i]));
    }
    const { rev, position, acked } = batches[batches.length - 1];
    const tx = this.db.transaction([SESSIONS, MESSAGES], "readwrite");
    const sessions = tx.objectStore(SESSIONS), messages = tx.objectStore(MESSAGES);
    if (clear) messages.delete(range(this.name));
    if (position === undefined) sessions.delete(this.name);
    else {
      sessions.put({ r: rev, p: position }, this.name);
      if (acked > 0) messages.delete(range(this.name, acked));
    }
    for (const [seq, payload] of puts) if (position !== undefined && seq > acked) messages.put(payload, [this.name, seq]);
    return new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onabort = tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
  }

  /** The localStorage messages written after clear `cleared`, as [seq, payload]; older ones are removed. */
  tailMessages(cleared) {
    const ls = this.storage(), prefix = this.key + ":m:", found = [];
    for (const key of keysOf(ls)) {
      if (!key.startsWith(prefix)) continue;
      const [c, seq] = key.slice(prefix.length).split(":").map(Number);
      if (c === cleared) found.push([seq, decode(ls.getItem(key))]);
    }
    return found;
  }

  removeTail() {
    const ls = this.storage(), prefix = this.key + ":m:";
    for (const key of keysOf(ls)) if (key.startsWith(prefix)) ls.removeItem(key);
  }

  storage() {
    return this.ls ?? localStorage;
  }

  /** Storage cannot be used: say why once, delete what is stored (it would be stale) unless it is another page's now, let the name go. */
  fail(e, fenced) {
    if (this.done) return;
    const failed = this.callbacks.failed;
    this.done = true;
    this.queue = [];
    this.leave();
    this.release?.();
    if (!fenced) try {
      this.removeTail();
      this.storage().removeItem(this.key + ":p");
      const tx = this.db?.transaction([SESSIONS, MESSAGES], "readwrite");
      tx?.objectStore(SESSIONS).delete(this.name);
      tx?.objectStore(MESSAGES).delete(range(this.name));
    } catch {}
    failed(`${e?.name ?? "Error"}: ${e?.message ?? e}`);
  }

  /**
   * Stops calling back and releases the name once the batches written are committed (a page adopting the name must
   * not read before them); what was written stays, and the next page resumes from it.
   */
  close() {
    this.writeOut();
    this.done = true;
    this.leave();
    this.flush();
  }
}

function memoryStorage() {
  const map = new Map();
  return { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), removeItem: (k) => void map.delete(k), keys: () => [...map.keys()] };
}

const keysOf = (ls) => (typeof ls.keys == "function" ? ls.keys() : Object.keys(ls));

function openDb() {
  const open = indexedDB.open(DB, 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore(SESSIONS);
    open.result.createObjectStore(MESSAGES);
  };
  return request(open);
}

const request = (r) => new Promise((resolve, reject) => {
  r.onsuccess = () => resolve(r.result);
  r.onerror = () => reject(r.error);
});

/** The messages of session `name`, up to `last` (or all). */
const range = (name, last = Infinity) => IDBKeyRange.bound([name, 0], [name, last]);

const readJson = (text) => {
  try {
    const value = text == null ? null : JSON.parse(text);
    return value && typeof value.p == "string" && value.r > 0 && value.c >= 0 ? value : null;
  } catch {
    return null;
  }
};

/** A payload as a localStorage string: text as it is, bytes one char each. */
function encode(payload) {
  if (typeof payload == "string") return "t" + payload;
  let text = "b";
  for (let i = 0; i < payload.length; i += 8192) text += String.fromCharCode.apply(null, payload.subarray(i, i + 8192));
  return text;
}

function decode(text) {
  if (text?.[0] == "t") return text.slice(1);
  if (text?.[0] == "b") return Uint8Array.from(text.slice(1), (c) => c.charCodeAt(0));
  return null; // unreadable: the core reports the gap
}
