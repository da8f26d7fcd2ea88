/**
 * Stop sequences over a stream of text deltas. Text is released only once it
 * cannot be the start of a stop sequence; when a stop sequence is completed,
 * the text before it is released and the stop string itself never is.
 */
export class StopMatcher {
  private held = '';
  private readonly maxLen: number;

  constructor(private readonly stops: readonly string[]) {
    this.maxLen = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Adds text; returns what may be released now and whether a stop sequence ended the output. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    const buf = this.held + text;
    // The stop that completes first in the text wins (ties: the longer one,
    // which starts earlier), so the result does not depend on how the text
    // was split into deltas.
    let first = -1;
    let firstEnd = Infinity;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i < 0) continue;
      const end = i + s.length;
      if (end < firstEnd || (end === firstEnd && i < first)) {
        first = i;
        firstEnd = end;
      }
    }
    if (first >= 0) {
      this.held = '';
      return { text: buf.slice(0, first), stopped: true };
    }
    const keep = this.partialSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** At the end of generation: the held text was not a stop sequence after all. */
  flush(): string {
    const t = this.held;
    this.held = '';
    return t;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop sequence. */
  private partialSuffix(buf: string): number {
    for (let k = Math.min(this.maxLen - 1, buf.length); k > 0; k--) {
      const tail = buf.slice(buf.length - k);
      for (const s of this.stops) if (s.startsWith(tail)) return k;
    }
    return 0;
  }
}
