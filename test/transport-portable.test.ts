/**
 * transport/ runs in browsers: no Node imports or globals in its source, an esbuild browser bundle builds,
 * and in headless Chromium (Debian's chromium driven by playwright-core) the bundle passes the published
 * vectors and interoperates with this Node process in both directions. The browser part is skipped,
 * saying so, only where no chromium binary exists.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generateKeyConfig, keyLookup, decapsulateRequest, encodeKeyConfig } from '../transport/ohttp.js';
import { ChunkedRequestReader } from '../transport/chunked-ohttp.js';
import { bytesToHex as hex, hexToBytes as h, utf8, concat } from '../transport/bytes.js';

const SRC = new URL('../transport/', import.meta.url);
const VECTORS = new URL('./fixtures/vectors/', import.meta.url);
const read = (f: string) => JSON.parse(readFileSync(new URL(f, VECTORS), 'utf8'));

test('transport/ source uses no node: imports, require, Buffer or process', () => {
  const files = readdirSync(SRC).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 8);
  for (const f of files) {
    const src = readFileSync(new URL(f, SRC), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '');
    assert.doesNotMatch(src, /from ['"]node:|import\(['"]node:|require\(|\bBuffer\b|\bprocess\./, f);
    for (const m of src.matchAll(/from '([^']+)'/g)) assert.match(m[1], /^(\.\/|@noble\/(curves|hashes|ciphers)\/)/, `${f} imports ${m[1]}`);
  }
});

async function bundle(): Promise<string> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    stdin: { contents: "export * from './index.ts';", resolveDir: fileURLToPath(SRC), loader: 'ts' },
    bundle: true, write: false, format: 'iife', globalName: 'transport', platform: 'browser', target: 'es2022', logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

test('an esbuild browser bundle of transport/ builds', async () => {
  const code = await bundle();
  assert.ok(code.length > 10_000);
  assert.doesNotMatch(code, /require\(["']node:/);
});

const CANDIDATES = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const CHROMIUM = CANDIDATES.find((p) => existsSync(p));
const skip = CHROMIUM ? false : `no chromium binary at ${CANDIDATES.join(' or ')}: install Debian's chromium to run the browser test`;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let browser: any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let page: any;

before(async () => {
  if (skip) return;
  const { chromium } = await import('playwright-core');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: isRoot ? ['--no-sandbox'] : [] });
  page = await browser.newPage();
  await page.setContent('<!doctype html><title>transport</title>');
  await page.addScriptTag({ content: await bundle() });
});
after(async () => {
  await browser?.close();
});

test('in Chromium: every HPKE vector, the RFC 9458 example, the chunked example and the RFC 9292 examples', { skip }, async () => {
  const result = await page.evaluate(([hpke, oh, ch, bh]: [any[], any, any, any]) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const t = (globalThis as any).transport;
    const h = t.hexToBytes, hex = t.bytesToHex;
    const out: string[] = [];
    for (const v of hpke) {
      const suite = new t.CipherSuite({ aeadId: v.aead_id });
      const eph = t.deriveKeyPair(h(v.ikmE));
      const r = t.deriveKeyPair(h(v.ikmR));
      const s = v.ikmS ? t.deriveKeyPair(h(v.ikmS)) : undefined;
      const psk = v.psk ? h(v.psk) : undefined, pskId = v.psk_id ? h(v.psk_id) : undefined;
      const snd = suite.setupSender(r.publicKey, { mode: v.mode, info: h(v.info), psk, pskId, senderPrivateKey: s?.privateKey, ephemeral: eph });
      const rcv = suite.setupRecipient(h(v.enc), r.privateKey, { mode: v.mode, info: h(v.info), psk, pskId, senderPublicKey: s?.publicKey });
      let ok = hex(snd.enc) === v.enc;
      for (const e of v.encryptions) {
        while (snd.context.seq < e.sequence_number) rcv.open(new Uint8Array(0), snd.context.seal(new Uint8Array(0), new Uint8Array(0)));
        ok &&= hex(snd.context.seal(h(e.aad), h(e.pt))) === e.ct && hex(rcv.open(h(e.aad), h(e.ct))) === e.pt;
      }
      for (const x of v.exports) ok &&= hex(rcv.export(h(x.exporter_context), x.L)) === x.exported_value;
      out.push(`hpke ${v.aead_id}/${v.mode} ${ok}`);
    }
    const cfg = t.decodeKeyConfig(h(oh.key_config));
    const c = t.encapsulateRequest(cfg, h(oh.request_bhttp), { kdfId: 1, aeadId: 1 }, { ephemeral: { privateKey: h(oh.client_ephemeral_secret_key), publicKey: h(oh.client_ephemeral_public_key) } });
    out.push(`ohttp ${hex(c.bytes) === oh.encapsulated_request && hex(c.openResponse(h(oh.encapsulated_response))) === oh.response_bhttp}`);
    const cc = t.encapsulateChunkedRequest(t.decodeKeyConfig(h(ch.key_config)), { kdfId: 1, aeadId: 1 }, { ephemeral: { privateKey: h(ch.client_ephemeral_secret_key), publicKey: h(ch.client_ephemeral_public_key) } });
    const rb = h(ch.request_bhttp);
    const wire = hex(cc.header) + hex(cc.sealChunk(rb.subarray(0, 12))) + hex(cc.sealChunk(rb.subarray(12))) + hex(cc.sealFinal());
    const rr = cc.responseReader();
    const pts = rr.push(h(ch.encapsulated_response)).map(hex).join('') + hex(rr.end());
    out.push(`chunked ${wire === ch.encapsulated_request && pts === ch.response_bhttp}`);
    const req = t.decodeRequest(h(bh.known_length_request.hex));
    const res = t.decodeResponse(h(bh.indeterminate_length_response_with_interim.hex));
    out.push(`bhttp ${hex(t.encodeRequest(req)) === bh.known_length_request.hex && hex(t.encodeResponse(res, { indeterminate: true })) === bh.indeterminate_length_response_with_interim.hex}`);
    return out;
  }, [read('rfc9180-hpke-x25519.json'), read('rfc9458-ohttp-example.json'), read('chunked-ohttp-example.json'), read('rfc9292-bhttp-examples.json')]);
  assert.equal(result.length, 11);
  for (const line of result) assert.match(line, / true$/, line);
});

test('in Chromium: the browser encrypts to this process and opens what it seals back, plain and chunked', { skip }, async () => {
  for (const aeadId of [1, 2, 3]) {
    const key = generateKeyConfig(11);
    // Plain OHTTP: the page encapsulates; we decapsulate and answer; the page opens.
    const sent: string = await page.evaluate(([cfg, a]: [string, number]) => {
      const t = (globalThis as any).transport;
      const c = t.encapsulateRequest(t.decodeKeyConfig(t.hexToBytes(cfg)), new TextEncoder().encode('from the browser'), { kdfId: 1, aeadId: a });
      (globalThis as any).pending = c;
      return t.bytesToHex(c.bytes);
    }, [hex(encodeKeyConfig(key.config)), aeadId]);
    const got = decapsulateRequest(keyLookup([key]), h(sent));
    assert.deepEqual(got.request, utf8('from the browser'));
    const reply = hex(got.sealResponse(utf8('from node')));
    const opened: string = await page.evaluate((r: string) => new TextDecoder().decode((globalThis as any).pending.openResponse((globalThis as any).transport.hexToBytes(r))), reply);
    assert.equal(opened, 'from node');

    // Chunked: the page streams a request; we stream an answer whose chunks the page opens through web streams.
    const chunked: string = await page.evaluate(async ([cfg, a]: [string, number]) => {
      const t = (globalThis as any).transport;
      const c = t.encapsulateChunkedRequest(t.decodeKeyConfig(t.hexToBytes(cfg)), { kdfId: 1, aeadId: a });
      (globalThis as any).pendingChunked = c;
      const parts: Uint8Array[] = [];
      const reader = c.requestStream(new TextEncoder().encode('streamed request')).getReader();
      for (;;) { const { done, value } = await reader.read(); if (done) break; parts.push(value); }
      return t.bytesToHex(t.concat(...parts));
    }, [hex(encodeKeyConfig(key.config)), aeadId]);
    const r = new ChunkedRequestReader(keyLookup([key]));
    const pt = concat(...r.push(h(chunked)), r.end());
    assert.deepEqual(pt, utf8('streamed request'));
    const sealer = r.responseSealer();
    const answer = hex(concat(sealer.header, sealer.sealChunk(utf8('data: a\n\n')), sealer.sealChunk(utf8('data: b\n\n')), sealer.sealFinal()));
    const events: string[] = await page.evaluate(async (w: string) => {
      const t = (globalThis as any).transport;
      const bytes = t.hexToBytes(w);
      const body = new ReadableStream({ start(ctl) { ctl.enqueue(bytes.subarray(0, 20)); ctl.enqueue(bytes.subarray(20)); ctl.close(); } });
      const reader = (globalThis as any).pendingChunked.openResponse(body).getReader();
      const got: string[] = [];
      for (;;) { const { done, value } = await reader.read(); if (done) break; got.push(new TextDecoder().decode(value)); }
      // And a cut copy is reported as truncated in the browser too.
      const cut = new ReadableStream({ start(ctl) { ctl.enqueue(bytes.subarray(0, bytes.length - 1)); ctl.close(); } });
      const c2 = (globalThis as any).pendingChunked.openResponse(cut).getReader();
      try { for (;;) { const { done } = await c2.read(); if (done) break; } got.push('NOT TRUNCATED'); } catch (e: any) { got.push(`error ${e.name} ${e.code}`); }
      return got;
    }, answer);
    assert.deepEqual(events, ['data: a\n\n', 'data: b\n\n', 'error TransportError truncated']);
  }
});
