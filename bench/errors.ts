// The one typed error of the benchmark. Messages name what failed, never
// prompt or completion text.
export type BenchErrorCode =
  | 'bad_args'
  | 'mode_unavailable'
  | 'mode_failed'
  | 'bad_output'
  | 'child_failed';

export class BenchError extends Error {
  readonly code: BenchErrorCode;
  constructor(code: BenchErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BenchError';
    this.code = code;
  }
}
