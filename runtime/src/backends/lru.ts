/**
 * A small least-recently-used pool of releasable resources (one ORT session per input size). A
 * caller who sends many sizes would otherwise grow the pool without limit; an evicted resource is
 * released once the runs that are using it have finished, so eviction never frees a session
 * under a running call.
 */

/** Something that holds memory until released (an ORT session). */
export interface Releasable {
  release(): Promise<void>;
}

interface Entry<T> {
  value: Promise<T>;
  users: number;
  evicted: boolean;
  released: boolean;
}

/** LRU pool of at most `max` resources, keyed by string. */
export class LruPool<T extends Releasable> {
  readonly max: number;
  #entries = new Map<string, Entry<T>>();

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`pool size must be an integer >= 1, got ${max}`);
    }
    this.max = max;
  }

  /** Keys held now, least recently used first. */
  keys(): string[] {
    return [...this.#entries.keys()];
  }

  /**
   * Run `fn` on the resource of `key`, creating it with `create` when absent. A failed creation is
   * forgotten so that the next call tries again.
   */
  async use<R>(key: string, create: () => Promise<T>, fn: (r: T) => Promise<R>): Promise<R> {
    const e = this.#acquire(key, create);
    try {
      return await fn(await e.value);
    } finally {
      e.users--;
      if (e.evicted && e.users === 0) await release(e);
    }
  }

  /** Release every resource now (callers must not be running). */
  async clear(): Promise<void> {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    for (const e of all) {
      e.evicted = true;
      await release(e);
    }
  }

  #acquire(key: string, create: () => Promise<T>): Entry<T> {
    let e = this.#entries.get(key);
    if (e) {
      this.#entries.delete(key); // re-insert: Map order is the recency order
    } else {
      const value = create();
      const fresh: Entry<T> = { value, users: 0, evicted: false, released: false };
      value.catch(() => {
        if (this.#entries.get(key) === fresh) this.#entries.delete(key);
      });
      e = fresh;
    }
    this.#entries.set(key, e);
    e.users++;
    while (this.#entries.size > this.max) {
      const [oldKey, old] = this.#entries.entries().next().value!;
      this.#entries.delete(oldKey);
      old.evicted = true;
      if (old.users === 0) void release(old);
    }
    return e;
  }
}

async function release<T extends Releasable>(e: Entry<T>): Promise<void> {
  if (e.released) return;
  e.released = true;
  try {
    await (await e.value).release();
  } catch { /* creation failed: nothing to free */ }
}
