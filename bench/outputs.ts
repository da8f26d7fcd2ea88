// The cross-mode output check: every mode runs the same greedy request, so
// every mode must produce the same text. A mode that is fast because it does
// different work would otherwise win on a lie. Pure.
import type { ModeName } from './types.js';

/**
 * Decoders disagree only on whether the first piece keeps its leading space
 * (a continuation decoded alone drops it); everything after must be identical.
 */
export function normalizeCompletion(text: string): string {
  return text.replace(/^\s+/, '');
}

/** Compares every mode's text with the reference (the engine's when present, else the first). */
export function compareOutputs(texts: ReadonlyMap<ModeName, string>): { identical: boolean; reference?: ModeName; differing: ModeName[] } {
  const modes = [...texts.keys()];
  if (modes.length === 0) return { identical: true, differing: [] };
  const reference = texts.has('engine') ? 'engine' : modes[0];
  const want = normalizeCompletion(texts.get(reference) as string);
  const differing = modes.filter((m) => normalizeCompletion(texts.get(m) as string) !== want);
  return { identical: differing.length === 0, reference, differing };
}
