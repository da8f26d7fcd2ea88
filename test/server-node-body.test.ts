// The request body read straight from Node's IncomingMessage (server/node-body.ts): bytes in
// order, nothing read ahead of the reader, a cut body an error (never a short body), and a
// cancel that only stops reading.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { bodyFromIncoming, isIncomingBody } from '../server/node-body.js';
import { isServerError } from '../server/errors.js';

describe('bodyFromIncoming', () => {
  let server: http.Server;
  let port: number;
  let onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void = () => {};
  before(async () => {
    server = http.createServer((req, res) => onRequest(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** Sends raw HTTP/1.1 bytes, in pieces; returns the socket. */
  function send(pieces: string[], gapMs = 5): net.Socket {
    const s = net.connect(port, '127.0.0.1');
    let i = 0;
    const next = () => {
      if (i < pieces.length) {
        s.write(pieces[i++]!);
        setTimeout(next, gapMs);
      }
    };
    s.on('connect', next);
    s.on('error', () => {});
    return s;
  }

  async function readAll(body: ReadableStream<Uint8Array>): Promise<string> {
    const reader = body.getReader();
    let out = '';
    for (;;) {
      const r = await reader.read();
      if (r.done) return out;
      out += Buffer.from(r.value).toString();
    }
  }

  test('a chunked body arrives whole and in order, however the client cut it', async () => {
    const got = new Promise<string>((resolve, reject) => {
      onRequest = (req, res) => {
        assert.ok(isIncomingBody(req));
        readAll(bodyFromIncoming(req)).then(resolve, reject).finally(() => res.end());
      };
    });
    const s = send(['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', '5\r\nhello\r\n', '1\r\n \r\n', '5\r\nworld\r\n', '0\r\n\r\n']);
    assert.equal(await got, 'hello world');
    s.destroy();
  });

  test('a body cut off by the client errors the stream, never ends it cleanly', async () => {
    const got = new Promise<unknown>((resolve) => {
      onRequest = (req) => {
        readAll(bodyFromIncoming(req)).then(() => resolve('ended'), (e: unknown) => resolve(e));
      };
    });
    const s = send(['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n', 'only part of it']);
    setTimeout(() => s.destroy(), 50);
    const outcome = await got;
    assert.ok(isServerError(outcome, 'bad_body') || (outcome instanceof Error && outcome.message !== 'ended'), String(outcome));
    assert.notEqual(outcome, 'ended');
  });

  test('nothing is read ahead of the reader: the message stays paused until pulled', async () => {
    const seen = new Promise<{ pausedBeforeRead: boolean; first: string }>((resolve) => {
      onRequest = async (req, res) => {
        const body = bodyFromIncoming(req);
        await new Promise((r) => setTimeout(r, 50)); // bytes arrive meanwhile; nobody reads
        const pausedBeforeRead = req.isPaused();
        const reader = body.getReader();
        const first = Buffer.from((await reader.read()).value!).toString();
        await reader.cancel();
        res.end();
        resolve({ pausedBeforeRead, first });
      };
    });
    const s = send(['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n', 'abc', 'def']);
    const r = await seen;
    assert.equal(r.pausedBeforeRead, true);
    assert.ok(r.first.startsWith('abc'));
    s.destroy();
  });

  test('a body with nothing in it ends at once; a non-message is not taken for one', async () => {
    const got = new Promise<string>((resolve, reject) => {
      onRequest = (req, res) => {
        readAll(bodyFromIncoming(req)).then(resolve, reject).finally(() => res.end());
      };
    });
    const s = send(['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n']);
    assert.equal(await got, '');
    s.destroy();
    for (const x of [null, undefined, {}, { on() {}, off() {}, pause() {}, resume() {} }, 'text']) assert.equal(isIncomingBody(x), false);
  });
});
