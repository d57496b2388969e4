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

/**
 * One macrotask turn. Mostly a posted message (a fresh MessageChannel, closed after use so it never
 * keeps the process alive): chained setTimeout(0) is clamped to 4 ms once nested, a message runs at
 * once. Every 4th turn is a timer, because a run of message turns can starve due timers.
 */
const viaMessage = (): Promise<void> =>
  new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(null);
  });
const viaTimer = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
const tick = (): Promise<void> =>
  typeof MessageChannel === "function" && yields % 4 !== 0 ? viaMessage() : viaTimer();

/** Yield to the event loop when the current slice of work is used up. */
export function maybeYield(): Promise<void> | undefined {
  const now = performance.now();
  if (now - last < slice) return undefined;
  yields++;
  return tick().then(() => {
    last = performance.now();
  });
}
