// Intel TDX (DCAP) attestation, pure TypeScript + WebCrypto (browser-safe). Every failure is an
// AttestationError (enclave/errors.ts) whose code names what failed (tdx_quote_*, tdx_pck_chain_*,
// tdx_pck_crl_*, tdx_root_crl_*, tdx_tcb_info_*, tdx_qe_identity_*, tdx_qe_report_*, tdx_tcb_<status>,
// tdx_module_mismatch, tdx_td_debug, tdx_<pin>_mismatch, policy_invalid, policy_unknown_key, ...).
//
// Exported API
//   verify.ts     verifyTdxQuote(quote: Uint8Array, { at: Date, collateral?: TdxCollateral, policy?: TdxPolicy |
//                 Record<string, unknown>, intelRoot?: PEM/DER | Certificate }) -> Promise<TdxVerified>
//                 TdxCollateral = { tcbInfo, tcbInfoIssuerChain, qeIdentity, qeIdentityIssuerChain, pckCrl,
//                 pckCrlIssuerChain, rootCrl } (each Uint8Array | string; CRLs DER/PEM/hex; chains PEM);
//                 quoteFields(quote) -> hex fields.
//   quote.ts      parseQuote(bytes) -> TdxQuote & { trailing } (bytes after the quote's end, ignored) (v4; v5 with TD10/TD15 bodies); INTEL_QE_VENDOR_ID.
//   pck.ts        parsePckExtensions(cert) -> { ppid, compSvn[16], pceSvn, cpuSvn, pceId, fmspc, sgxType }.
//   collateral.ts parseTcbInfo(body) / parseQeIdentity(body) -> { value, signedBytes, signature };
//                 verifyCollateral(signed, { at, intelRoot, issuerChain, rootCrl, stem }); TcbStatus.
//   tcb.ts        evaluateQeIdentity(qeIdentity, qeReport); evaluateTdxTcb(tcbInfo, pckExt, body, qeResult);
//                 checkTdxModule; checkRelaunch (QVL's algorithm, levels in Intel's order).
//   policy.ts     parseTdxPolicy(json | object) -> TdxPolicy (strict; CONTRACT keys); checkTdDefaults(body, policy);
//                 checkTdxPins(fields, policy); DEFAULT_ACCEPTED_TCB_STATUSES.
export * from './quote.js';
export * from './pck.js';
export * from './collateral.js';
export * from './tcb.js';
export * from './policy.js';
export * from './verify.js';
