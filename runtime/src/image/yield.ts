/**
 * Cooperative yielding for long decodes: a decode loop calls {@link maybeYield} often; it returns
 * at once unless about {@link SLICE_MS} of work has passed since the last yield, then gives the event
 * loop a macrotask turn so other requests (and `/healthz`) are served between slices.
 */

/** Longest stretch of decoding between two yields, in milliseconds. */
export const SLICE_MS = 10;

let last = performance.now();

const tick: () => Promise<void> = typeof setTimeout === "function"
  ? () => new Promise((resolve) => setTimeout(resolve, 0))
  : () => Promise.resolve();

/** Yield to the event loop when the current slice of work is used up. */
export function maybeYield(): Promise<void> | undefined {
  const now = performance.now();
  if (now - last < SLICE_MS) return undefined;
  return tick().then(() => {
    last = performance.now();
  });
}
