/**
 * The engine's one typed error. Messages name files, tensors and limits, never
 * prompt text or generated text (a request's content is confidential).
 */
export type EngineErrorCode =
  | 'busy'
  | 'context_length_exceeded'
  | 'invalid_request'
  | 'cancelled'
  | 'closed'
  | 'model_invalid'
  | 'internal';

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
  }
}
