// createProvider: the one way the server obtains evidence.
//   'sev-snp' | 'tdx' : hardware through Linux configfs-tsm (fails if absent or of the other kind)
//   'simulated'       : the in-memory simulator (simulated.ts)
//   'auto'            : hardware when configfs-tsm can make reports (a provider is registered, see
//                       probeTsm); otherwise the simulator only if `allowSimulation` is set, else it
//                       refuses to start (code `no_tee`).
import { AttestationError } from '../errors.js';
import { createSimulatedProvider, type SimulatedProviderOptions } from './simulated.js';
import { createConfigfsTsmProvider, probeTsm, nodeTsmOps, DEFAULT_TSM_ROOT, type ConfigfsTsmOptions } from './configfs-tsm.js';
import type { EvidenceProvider } from './types.js';

export type ProviderKind = 'auto' | 'sev-snp' | 'tdx' | 'simulated';

export interface ProviderOptions extends ConfigfsTsmOptions {
  /** 'auto' only: fall back to the simulator when no TEE is present. */
  allowSimulation?: boolean;
  /** Options for the simulator (model digest, code root, product...). */
  simulation?: SimulatedProviderOptions;
}

export async function createProvider(kind: ProviderKind, opts: ProviderOptions = {}): Promise<EvidenceProvider> {
  switch (kind) {
    case 'simulated':
      return createSimulatedProvider(opts.simulation);
    case 'sev-snp':
    case 'tdx':
      return createConfigfsTsmProvider({ ...opts, expect: kind });
    case 'auto': {
      const probed = await probeTsm(opts.root ?? DEFAULT_TSM_ROOT, opts.ops ?? nodeTsmOps);
      if (probed.tee) return createConfigfsTsmProvider(opts);
      if (opts.allowSimulation) return createSimulatedProvider(opts.simulation);
      throw new AttestationError('no_tee', `no TEE found (${probed.reason}) and simulation was not requested`);
    }
    default:
      throw new AttestationError('bad_provider', 'unknown provider kind');
  }
}

export type { EvidenceProvider, PlatformEvidence, Platform } from './types.js';
export { createSimulatedProvider, simulatedMeasurement, codeDigest, type SimulatedProvider, type SimulatedProviderOptions } from './simulated.js';
export { createConfigfsTsmProvider, probeTsm, parseSevCertTable, type ConfigfsTsmOptions, type TsmOps, type TsmProbe } from './configfs-tsm.js';
