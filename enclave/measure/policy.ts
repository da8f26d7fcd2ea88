// The policy document clients pin (CONTRACT "Policy file"): the expected
// SEV-SNP launch measurement(s) and the accepted platform. Kept to the keys
// this calculator can vouch for; operators add the rest (minTcb, modelDigest,
// TDX registers) by hand or with their own tooling.
import { toHex } from '../encoding.js';
import { MeasureError } from './errors.js';
import { LD_SIZE } from './gctx.js';

export interface MeasurementPolicy {
  measurement: string | string[];
  platforms: string[];
  [key: string]: unknown;
}

const HEX96 = /^[0-9a-f]{96}$/;

function hexOf(d: Uint8Array): string {
  if (d.length !== LD_SIZE) throw new MeasureError('invalid_argument', 'a launch digest is 48 bytes');
  return toHex(d);
}

/** A fresh policy pinning exactly these launch digests on SEV-SNP. */
export function measurementPolicy(digests: Uint8Array[]): MeasurementPolicy {
  if (digests.length === 0) throw new MeasureError('invalid_argument', 'at least one measurement is needed');
  const hex = [...new Set(digests.map(hexOf))];
  return { measurement: hex.length === 1 ? hex[0] : hex, platforms: ['sev-snp'] };
}

/**
 * Adds digests to an existing policy object (e.g. one per vCPU count an
 * operator deploys, or the old and new image during a rollout), keeping every
 * other key as it was and adding 'sev-snp' to `platforms`.
 */
export function mergeMeasurementPolicy(existing: unknown, digests: Uint8Array[]): MeasurementPolicy {
  if (typeof existing !== 'object' || existing === null || Array.isArray(existing)) {
    throw new MeasureError('invalid_argument', 'existing policy is not a JSON object');
  }
  const prev = existing as Record<string, unknown>;
  const old = prev.measurement === undefined ? [] : Array.isArray(prev.measurement) ? prev.measurement : [prev.measurement];
  for (const m of old) {
    if (typeof m !== 'string' || !HEX96.test(m.toLowerCase())) {
      throw new MeasureError('invalid_argument', 'existing policy has a measurement that is not 96 hex digits');
    }
  }
  const platforms = prev.platforms === undefined ? [] : prev.platforms;
  if (!Array.isArray(platforms) || platforms.some((p) => typeof p !== 'string')) {
    throw new MeasureError('invalid_argument', 'existing policy platforms is not an array of strings');
  }
  const all = [...new Set([...(old as string[]).map((m) => m.toLowerCase()), ...digests.map(hexOf)])];
  if (all.length === 0) throw new MeasureError('invalid_argument', 'at least one measurement is needed');
  return {
    ...prev,
    measurement: all.length === 1 ? all[0] : all,
    platforms: [...new Set([...(platforms as string[]), 'sev-snp'])],
  };
}
