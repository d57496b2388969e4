/**
 * Cooperative yielding for long decodes: a decode loop calls {@link maybeYield} often; it returns
 * at once unless about {@link SLICE_MS} of work has passed since the last yield, then gives the event
 * loop a macrotask turn so other requests (and `/healthz`) are served between slices.
 */

/** Longest stretch of decoding between two yields, in milliseconds. */
export const SLICE_MS = 10;

let slice = SLICE_MS;
let last = performance.now();
let yields = 0;

/** Tests: set the slice length (0 = yield at every check) and read how many yields happened. */
export function yieldStats(sliceMs?: number): { yields: number } {
  if (sliceMs !== undefined) slice = sliceMs;
  return { yields };
}

const tick: () => Promise<void> = typeof setTimeout === "function"
  ? () => new Promise((resolve) => setTimeout(resolve, 0))
  : () => Promise.resolve();

/** Yield to the event loop when the current slice of work is used up. */
export function maybeYield(): Promise<void> | undefined {
  const now = performance.now();
  if (now - last < slice) return undefined;
  yields++;
  return tick().then(() => {
    last = performance.now();
  });
}
