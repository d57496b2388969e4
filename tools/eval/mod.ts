/**
 * Face-verification evaluation: pair lists (LFW pairs.txt / CSV), embeddings on the kit's ORT
 * session, and the LFW k-fold protocol.
 */
import { type AlignMode, embedFiles, type EmbedModel, type FaceFinder } from "./embed.ts";
import type { Pair } from "./pairs.ts";
import { cosine, kFoldProtocol, type ProtocolResult } from "./protocol.ts";

export * from "./embed.ts";
export * from "./pairs.ts";
export * from "./protocol.ts";
export * from "./agreement.ts";

/** Protocol result plus what the images gave. */
export interface PairEvaluation extends ProtocolResult {
  images: number;
  /** Files in which no face was found (a centre crop was used). */
  undetected: string[];
  scores: number[];
}

/** Embed each distinct image once, score every pair by cosine and run the k-fold protocol. */
export async function evaluatePairs(
  pairs: Pair[],
  model: EmbedModel,
  opts: { align: AlignMode; detector?: FaceFinder; batch?: number; onProgress?: (done: number) => void },
): Promise<PairEvaluation> {
  const files = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  const index = new Map(files.map((f, i) => [f, i]));
  const { emb, dim, undetected } = await embedFiles(files, model, opts);
  const scores = pairs.map((p) => cosine(emb, dim, index.get(p.a)!, index.get(p.b)!));
  const r = kFoldProtocol(scores, pairs.map((p) => p.same), pairs.map((p) => p.fold));
  return { ...r, images: files.length, undetected, scores };
}
