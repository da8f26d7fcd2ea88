// The pinned AMD roots by product. Verifiers compare the ARK they are given byte for byte to these.
// `ask` issues VCEKs (one per chip and TCB); `asvk` issues VLEKs (one per cloud provider and TCB).
import { ARK_MILAN_PEM, ASK_MILAN_PEM } from './amd-milan.js';
import { ARK_GENOA_PEM, ASK_GENOA_PEM } from './amd-genoa.js';
import { ARK_TURIN_PEM, ASK_TURIN_PEM } from './amd-turin.js';
import { ASVK_GENOA_PEM, ASVK_MILAN_PEM, ASVK_TURIN_PEM } from './amd-asvk.js';

export const AMD_ROOTS = {
  Milan: { ark: ARK_MILAN_PEM, ask: ASK_MILAN_PEM, asvk: ASVK_MILAN_PEM },
  Genoa: { ark: ARK_GENOA_PEM, ask: ASK_GENOA_PEM, asvk: ASVK_GENOA_PEM },
  Turin: { ark: ARK_TURIN_PEM, ask: ASK_TURIN_PEM, asvk: ASVK_TURIN_PEM },
} as const;
