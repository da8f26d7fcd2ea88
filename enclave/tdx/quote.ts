// Intel TDX DCAP quote layout (Intel TDX DCAP Quoting Library API, appendix "Quote Format"), v4 and
// v5, strictly: every length field must agree with the structure it frames; unknown versions, key
// types, TEE types, body types and certification data types are refused. The quote ends where its
// signature data length says: bytes after that are neither read nor signed, and are returned apart
// (`trailing`) rather than refused, as Intel's Quote Verification Library and go-tdx-guest do; real
// quote files carry them (buffers padded by the capture tool). Parsing only: no signature is
// checked here (see verify.ts).
import { AttestationError } from '../errors.js';

export const TDX_TEE_TYPE = 0x81;
export const ATT_KEY_TYPE_ECDSA_P256 = 2;
export const HEADER_SIZE = 48;
export const TD10_BODY_SIZE = 584;
export const TD15_BODY_SIZE = 648;
export const SGX_REPORT_SIZE = 384;
export const CERT_TYPE_PCK_CHAIN = 5;
export const CERT_TYPE_QE_REPORT = 6;
/** Intel's QE vendor id, 939A7233-F79C-4CA9-940A-0DB3957F0607. */
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';

export interface QuoteHeader {
  version: 4 | 5;
  attestationKeyType: number;
  teeType: number;
  /** Bytes 8..11: reserved in TDX quotes (QE/PCE SVN in SGX). Kept for display. */
  reserved: Uint8Array;
  qeVendorId: Uint8Array;
  userData: Uint8Array;
}

export interface TdReportBody {
  type: 'TD10' | 'TD15';
  teeTcbSvn: Uint8Array;
  mrSeam: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
  tdAttributes: Uint8Array;
  xfam: Uint8Array;
  mrTd: Uint8Array;
  mrConfigId: Uint8Array;
  mrOwner: Uint8Array;
  mrOwnerConfig: Uint8Array;
  rtmr: [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  reportData: Uint8Array;
  /** TD15 only. */
  teeTcbSvn2?: Uint8Array;
  mrServiceTd?: Uint8Array;
}

/** SGX REPORT body of the Quoting Enclave (384 bytes). */
export interface QeReport {
  raw: Uint8Array;
  cpuSvn: Uint8Array;
  /** MISCSELECT as its 4 bytes in report order (little-endian u32). */
  miscSelect: Uint8Array;
  attributes: Uint8Array;
  mrEnclave: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  isvSvn: number;
  reportData: Uint8Array;
}

export interface TdxQuote {
  raw: Uint8Array;
  header: QuoteHeader;
  body: TdReportBody;
  /** The bytes the attestation key signs: header (+ v5 body descriptor) + body. */
  signedData: Uint8Array;
  /** ECDSA P-256 r||s. */
  signature: Uint8Array;
  /** ECDSA P-256 public key x||y. */
  attestationKey: Uint8Array;
  qeReport: QeReport;
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  /** The PEM text of the PCK certificate chain (leaf first), as carried in certification data type 5. */
  pckChainPem: string;
}

function fail(code: string, message: string): never {
  throw new AttestationError(code, message);
}

/** Little-endian cursor that refuses to read past its end. */
class Cursor {
  pos = 0;
  constructor(private readonly b: Uint8Array, private readonly what: string) {}
  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.b.length) fail('tdx_quote_truncated', `${this.what} is truncated`);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u16(): number {
    const v = this.take(2);
    return v[0] | (v[1] << 8);
  }
  u32(): number {
    const v = this.take(4);
    return (v[0] | (v[1] << 8) | (v[2] << 16) | (v[3] << 24)) >>> 0;
  }
  get remaining(): number {
    return this.b.length - this.pos;
  }
  end(): void {
    if (this.pos !== this.b.length) fail('tdx_quote_malformed', `unexpected bytes after ${this.what}`);
  }
}

function parseHeader(c: Cursor): QuoteHeader {
  const version = c.u16();
  if (version !== 4 && version !== 5) fail('tdx_quote_version', `quote version is ${version}, expected 4 or 5`);
  const attestationKeyType = c.u16();
  if (attestationKeyType !== ATT_KEY_TYPE_ECDSA_P256) fail('tdx_quote_malformed', `attestation key type is ${attestationKeyType}, expected ${ATT_KEY_TYPE_ECDSA_P256} (ECDSA P-256)`);
  const teeType = c.u32();
  if (teeType !== TDX_TEE_TYPE) fail('tdx_quote_malformed', `TEE type is 0x${teeType.toString(16)}, expected 0x${TDX_TEE_TYPE.toString(16)} (TDX)`);
  const reserved = c.take(4);
  const qeVendorId = c.take(16);
  const userData = c.take(20);
  return { version, attestationKeyType, teeType, reserved, qeVendorId, userData };
}

function parseBody(bytes: Uint8Array, type: 'TD10' | 'TD15'): TdReportBody {
  const c = new Cursor(bytes, 'TD report body');
  const body: TdReportBody = {
    type,
    teeTcbSvn: c.take(16),
    mrSeam: c.take(48),
    mrSignerSeam: c.take(48),
    seamAttributes: c.take(8),
    tdAttributes: c.take(8),
    xfam: c.take(8),
    mrTd: c.take(48),
    mrConfigId: c.take(48),
    mrOwner: c.take(48),
    mrOwnerConfig: c.take(48),
    rtmr: [c.take(48), c.take(48), c.take(48), c.take(48)],
    reportData: c.take(64),
  };
  if (type === 'TD15') {
    body.teeTcbSvn2 = c.take(16);
    body.mrServiceTd = c.take(48);
  }
  c.end();
  return body;
}

export function parseQeReport(raw: Uint8Array): QeReport {
  if (raw.length !== SGX_REPORT_SIZE) fail('tdx_quote_malformed', 'QE report has the wrong size');
  const c = new Cursor(raw, 'QE report');
  const cpuSvn = c.take(16);
  const miscSelect = c.take(4);
  c.take(28);
  const attributes = c.take(16);
  const mrEnclave = c.take(32);
  c.take(32);
  const mrSigner = c.take(32);
  c.take(96);
  const isvProdId = c.u16();
  const isvSvn = c.u16();
  c.take(60);
  const reportData = c.take(64);
  c.end();
  return { raw, cpuSvn, miscSelect, attributes, mrEnclave, mrSigner, isvProdId, isvSvn, reportData };
}

/** PCK chain PEM: printable text, and after the last certificate only whitespace or NUL padding. */
function decodeChainText(bytes: Uint8Array): string {
  for (const b of bytes) {
    if (b !== 0 && b !== 0x0a && b !== 0x0d && b !== 0x09 && (b < 0x20 || b > 0x7e)) {
      fail('tdx_quote_malformed', 'PCK certificate chain is not PEM text');
    }
  }
  const text = new TextDecoder().decode(bytes);
  const lastEnd = text.lastIndexOf('-----END CERTIFICATE-----');
  if (lastEnd < 0) fail('tdx_quote_malformed', 'PCK certificate chain has no certificate');
  if (text.slice(0, lastEnd).includes('\0')) fail('tdx_quote_malformed', 'NUL inside the PCK certificate chain');
  if (!/^[\s\0]*$/.test(text.slice(lastEnd + 25))) fail('tdx_quote_malformed', 'unexpected data after the PCK certificate chain');
  if (!/^\s*-----BEGIN CERTIFICATE-----/.test(text)) fail('tdx_quote_malformed', 'unexpected data before the PCK certificate chain');
  // No signature covers the chain's text, only each certificate's DER: nothing but whitespace may
  // stand between its certificates, or changed bytes there would go unnoticed.
  const between = text.slice(0, lastEnd + 25).replace(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g, '');
  if (!/^\s*$/.test(between)) fail('tdx_quote_malformed', 'unexpected data between the PCK certificates');
  return text.slice(0, lastEnd + 25);
}

function parseCertificationData(c: Cursor): { qeReport: QeReport; qeReportSignature: Uint8Array; qeAuthData: Uint8Array; pckChainPem: string } {
  const type = c.u16();
  const size = c.u32();
  if (type !== CERT_TYPE_QE_REPORT) fail('tdx_quote_malformed', `unsupported certification data type ${type}`);
  if (size !== c.remaining) fail('tdx_quote_malformed', 'certification data size disagrees with signature data length');
  const d = new Cursor(c.take(size), 'QE report certification data');
  const qeReport = parseQeReport(d.take(SGX_REPORT_SIZE));
  const qeReportSignature = d.take(64);
  const authSize = d.u16();
  const qeAuthData = d.take(authSize);
  const innerType = d.u16();
  const innerSize = d.u32();
  if (innerType !== CERT_TYPE_PCK_CHAIN) fail('tdx_quote_malformed', `unsupported inner certification data type ${innerType}`);
  if (innerSize !== d.remaining) fail('tdx_quote_malformed', 'PCK chain size disagrees with certification data size');
  const pckChainPem = decodeChainText(d.take(innerSize));
  d.end();
  return { qeReport, qeReportSignature, qeAuthData, pckChainPem };
}

/** A parsed quote and whatever followed its declared end. */
export type ParsedQuote = TdxQuote & { trailing: Uint8Array };

/** Parses a TDX quote v4 or v5. Throws AttestationError `tdx_quote_*` on any deviation. */
export function parseQuote(raw: Uint8Array): ParsedQuote {
  if (!(raw instanceof Uint8Array)) fail('tdx_quote_malformed', 'quote must be bytes');
  const c = new Cursor(raw, 'quote');
  const header = parseHeader(c);
  let body: TdReportBody;
  if (header.version === 4) {
    body = parseBody(c.take(TD10_BODY_SIZE), 'TD10');
  } else {
    const bodyType = c.u16();
    const bodySize = c.u32();
    if (bodyType === 2 && bodySize === TD10_BODY_SIZE) body = parseBody(c.take(bodySize), 'TD10');
    else if (bodyType === 3 && bodySize === TD15_BODY_SIZE) body = parseBody(c.take(bodySize), 'TD15');
    else return fail('tdx_quote_malformed', `v5 body type ${bodyType} with size ${bodySize}; expected type 2 with size ${TD10_BODY_SIZE} or type 3 with size ${TD15_BODY_SIZE}`);
  }
  const signedData = raw.subarray(0, c.pos);
  const sigLen = c.u32();
  const sigData = new Cursor(c.take(sigLen), 'signature data');
  const end = c.pos;
  const signature = sigData.take(64);
  const attestationKey = sigData.take(64);
  const cert = parseCertificationData(sigData);
  sigData.end();
  return { raw: raw.subarray(0, end), header, body, signedData, signature, attestationKey, ...cert, trailing: raw.slice(end) };
}
