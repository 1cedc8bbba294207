// Storage of persisted sessions (the `persist` option): the I/O of what the core's client asks to store
// (crates/core/src/persist.rs). One implementation for both APIs: the npm build bundles it with src/js/face.js,
// which hands `openStore` to the engine; the Rust typed API imports it as a wasm-bindgen module (src/persist.rs).
//
// Two stores, for two kinds of page death (docs/PERSISTENCE.md has the measurements):
// - localStorage, one entry per task (the position and the task's messages, under a revision number), written at the
//   task's end: it survives a reload, a closed tab and a crashed renderer (the browser process holds it), but a
//   killed browser loses what it had not yet written to disk;
// - IndexedDB, one transaction at a time for every entry written meanwhile (their messages in one record): its
//   `complete` is the durable milestone (`stored`, which lets the engine acknowledge), and it holds the whole outbox
//   without localStorage's 5 MB limit. After a commit, its entries are deleted from localStorage.
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
    /** The rev of the last clear: what was stored before it is void. */
    this.cleared = 0;
    /** Batches of the current task, written to localStorage at its end (`writeOut`). */
    this.pending = [];
    /** Entries written to localStorage and waiting for IndexedDB. */
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
    const [record, chunks] = await Promise.all([
      request(tx.objectStore(SESSIONS).get(this.name)),
      request(tx.objectStore(MESSAGES).getAll(range(this.name))),
    ]);
    let position = record?.p, messages = new Map();
    // Unreadable records read as a position of no known format: the engine reports it (PersistError).
    let corrupt = record !== undefined && !(typeof record?.p == "string" && record.r >= 0);
    for (const chunk of chunks) {
      if (validChunk(chunk)) chunk.s.forEach((seq, i) => messages.set(seq, chunk.m[i]));
      else corrupt = true;
    }
    this.rev = corrupt ? 0 : record?.r ?? 0;
    // The newer localStorage entries, in order: each holds the position then, and the messages of its task.
    const entries = this.entries().filter((entry) => !entry || entry.r > this.rev);
    if (entries.includes(null)) corrupt = true;
    for (const { r, c, p, s, m } of corrupt ? [] : entries) {
      if (c > this.rev) messages = new Map(); // a clear since
      s.forEach((seq, i) => messages.set(seq, decode(m[i])));
      position = p || undefined; // "": the session ended
      [this.rev, this.cleared] = [r, c];
    }
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
   * One batch (crates/core/src/persist.rs StoreBatch): written to localStorage at the end of the task, to IndexedDB
   * with the next commit. `position` undefined: the session is over, everything is deleted.
   */
  write(id, clear, position, acked, seqs, payloads) {
    if (this.done) return;
    // Written at the end of the task (a microtask: before any page death can interrupt), all of the task's batches
    // at once.
    if (!this.pending.length) queueMicrotask(() => this.writeOut());
    this.pending.push({ id, clear, position, acked, seqs: Array.from(seqs), payloads });
  }

  /** Writes the task's batches to localStorage as one entry (their net effect) and queues it for IndexedDB. */
  writeOut() {
    const batches = this.pending;
    this.pending = [];
    if (this.done || !batches.length) return;
    try {
      const ls = this.storage();
      // The fence, where no Web Lock keeps other pages out.
      const fenced = !this.release && ls.getItem(this.key + ":g") != String(this.generation);
      if (fenced) return this.fail(new Error("another page took the session over"), true);
      const rev = ++this.rev, seqs = [], payloads = [];
      for (const batch of batches) {
        if (batch.clear || batch.position === undefined) {
          this.cleared = rev;
          seqs.length = payloads.length = 0;
        }
        seqs.push(...batch.seqs);
        payloads.push(...batch.payloads);
      }
      const { id, position, acked } = batches[batches.length - 1];
      const entry = { id, rev, clear: this.cleared == rev, position, acked, seqs, payloads, key: `${this.key}:l:${rev}` };
      ls.setItem(entry.key, JSON.stringify({ c: this.cleared, p: position ?? "", s: seqs, m: payloads.map(encode) }));
      this.queue.push(entry);
      this.flush();
    } catch (e) {
      this.fail(e);
    }
  }

  /** Commits the queued entries in one IndexedDB transaction, then the next ones; after `close`, lets the name go. */
  flush() {
    if (this.committing) return;
    if (!this.queue.length) return void (this.done && this.release?.());
    const entries = this.queue;
    this.queue = [];
    this.committing = true;
    this.commit(entries).then(
      () => {
        this.committing = false;
        const ls = this.storage();
        for (const { key } of entries) if (key) ls.removeItem(key);
        if (!this.done) this.callbacks.stored(entries[entries.length - 1].id);
        this.flush();
      },
      (e) => this.fail(e),
    );
  }

  /**
   * One transaction with the net effect of `entries`: a clear voids what came before it, the last position stands,
   * the messages still unconfirmed go into one record (keyed by its last number, so that a trim deletes the records
   * confirmed in full; a reader skips the confirmed ones of the others).
   */
  commit(entries) {
    let clear = false, seqs = [], payloads = [];
    for (const entry of entries) {
      if (entry.clear || entry.position === undefined) {
        clear = true;
        seqs = [];
        payloads = [];
      }
      seqs.push(...entry.seqs);
      payloads.push(...entry.payloads);
    }
    const { rev, position, acked } = entries[entries.length - 1];
    const tx = this.db.transaction([SESSIONS, MESSAGES], "readwrite");
    const sessions = tx.objectStore(SESSIONS), messages = tx.objectStore(MESSAGES);
    if (clear) messages.delete(range(this.name));
    if (position === undefined) sessions.delete(this.name);
    else {
      sessions.put({ r: rev, p: position }, this.name);
      if (acked > 0) messages.delete(range(this.name, acked));
      const first = seqs.findIndex((seq) => seq > acked);
      if (first >= 0) messages.put({ s: seqs.slice(first), m: payloads.slice(first) }, [this.name, seqs[seqs.length - 1]]);
    }
    return new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onabort = tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
  }

  /** The localStorage entries, by rev (null: unreadable). */
  entries() {
    const ls = this.storage(), prefix = this.key + ":l:";
    return keysOf(ls)
      .filter((key) => key.startsWith(prefix))
      .map((key) => readEntry(+key.slice(prefix.length), ls.getItem(key)))
      .sort((a, b) => (a?.r ?? 0) - (b?.r ?? 0));
  }

  removeTail() {
    const ls = this.storage(), prefix = this.key + ":l:";
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

/** A localStorage entry `{c, p, s, m}` (the rev of the last clear, the position, the task's messages), or null. */
function readEntry(r, text) {
  try {
    const e = JSON.parse(text);
    const valid = r > 0 && e.c >= 0 && e.c <= r && typeof e.p == "string" && Array.isArray(e.s) && Array.isArray(e.m) &&
      e.s.length == e.m.length && e.s.every(Number.isSafeInteger);
    return valid ? { r, ...e } : null;
  } catch {
    return null;
  }
}

/** An IndexedDB record of messages: `{s, m}`, their numbers and payloads. */
const validChunk = (chunk) =>
  Array.isArray(chunk?.s) && Array.isArray(chunk.m) && chunk.s.length == chunk.m.length && chunk.s.every(Number.isSafeInteger);

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
