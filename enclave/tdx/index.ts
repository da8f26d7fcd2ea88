// Intel TDX (DCAP) attestation: quote layout (quote.ts), PCK SGX extension (pck.ts), PCS collateral
// (collateral.ts), Intel's TCB evaluation (tcb.ts), TDX policy (policy.ts), and the end-to-end
// verifier (verify.ts): verifyTdxQuote(quoteBytes, { collateral, at, policy, intelRoot? }).
export * from './quote.js';
export * from './pck.js';
export * from './collateral.js';
export * from './tcb.js';
export * from './policy.js';
export * from './verify.js';
