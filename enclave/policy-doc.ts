// The strict JSON readers both policy parsers use (enclave/policy.ts for common and SEV-SNP keys,
// enclave/tdx/policy.ts for TDX keys), so a document and a field are refused the same way, with the
// same code and wording, whichever parser meets them first.
import { fromHex } from './encoding.js';
import { AttestationError } from './errors.js';

/** `policy_invalid` naming the key (never its value: a policy may carry values the caller keeps private). */
export function badPolicyKey(key: string, why: string): never {
  throw new AttestationError('policy_invalid', `policy key '${key}': ${why}`);
}

/** Exactly `bytes` bytes of hex (either case). */
export function policyHex(key: string, v: unknown, bytes: number): Uint8Array {
  try {
    return fromHex(v, 'policy_invalid', bytes);
  } catch {
    return badPolicyKey(key, `expected ${bytes} bytes of hex`);
  }
}

/**
 * The policy document as an object: JSON text is decoded first; undefined or null means "no policy"
 * (undefined), for which callers use their strict defaults. Anything else is `policy_invalid`.
 */
export function policyObject(input: unknown): Record<string, unknown> | undefined {
  let doc = input;
  if (typeof input === 'string') {
    try {
      doc = JSON.parse(input);
    } catch {
      throw new AttestationError('policy_invalid', 'policy is not valid JSON');
    }
  }
  if (doc === undefined || doc === null) return undefined;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new AttestationError('policy_invalid', 'policy must be a JSON object');
  return doc as Record<string, unknown>;
}
