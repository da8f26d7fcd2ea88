// A cap on open connections. Connection N+1 is answered at once with a 503 problem document
// (Retry-After, `connection: close`) and closed, before any of its bytes reach the HTTP parser:
// it costs the server one small write and a socket for at most REFUSE_LINGER_MS, never a parser,
// a request or a buffer. Under a flood of refusals (more than MAX_REFUSING at once), further
// connections are closed without an answer.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { rawProblemResponse } from './problem.js';

/** How long a refused socket may stay open for its client to read the 503 (ms). */
export const REFUSE_LINGER_MS = 1000;
/** Refused sockets lingering at once; beyond this a new one is closed without an answer. */
export const MAX_REFUSING = 256;

export interface ConnectionCap {
  /** Connections handed to the HTTP server and not yet closed. */
  readonly open: number;
  /** Connections refused since start. */
  readonly refused: number;
}

/**
 * Puts `server`'s own connection handling behind a count: Node's HTTP server parses a socket in
 * its 'connection' listener, so that listener is taken out and called only for sockets under the
 * cap. Call before the server listens.
 */
export function capConnections(server: Server, max: number): ConnectionCap {
  const http = server.listeners('connection') as Array<(this: Server, socket: Socket) => void>;
  server.removeAllListeners('connection');
  let open = 0;
  let refusing = 0;
  let refused = 0;
  server.on('connection', (socket: Socket) => {
    if (open < max) {
      open++;
      socket.once('close', () => open--);
      for (const l of http) l.call(server, socket);
      return;
    }
    refused++;
    socket.on('error', () => {});
    if (refusing >= MAX_REFUSING) {
      socket.destroy();
      return;
    }
    refusing++;
    socket.once('close', () => refusing--);
    // Whatever the client sends is read and dropped, so the close that follows is an orderly
    // one (unread data would turn it into a reset that can discard the 503 before it is read).
    socket.resume();
    socket.end(rawProblemResponse('too_many_connections', 1));
    setTimeout(() => socket.destroy(), REFUSE_LINGER_MS).unref();
  });
  return {
    get open() {
      return open;
    },
    get refused() {
      return refused;
    },
  };
}
