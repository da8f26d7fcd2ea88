// One typed error for the server. `code` is stable and machine-readable; messages are fixed
// strings written here, never built from request content, keys or plaintext.
export type ServerErrorCode =
  | 'bad_config'
  | 'too_large'
  | 'bad_body'
  | 'too_many_sessions'
  | 'session_live'
  | 'session_request_limit'
  | 'closed'
  | 'overloaded'
  | 'queue_timeout'
  | 'session_busy'
  | 'buffer_full'
  | 'inner_stream_failed';

export class ServerError extends Error {
  readonly code: ServerErrorCode;
  constructor(code: ServerErrorCode, message?: string) {
    super(message ?? code);
    this.name = 'ServerError';
    this.code = code;
  }
}

export function isServerError(e: unknown, code?: ServerErrorCode): e is ServerError {
  return e instanceof ServerError && (code === undefined || e.code === code);
}
