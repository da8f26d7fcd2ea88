// PKI for attestation: strict DER, X.509, CRLs and chain validation over WebCrypto (browser-safe,
// no node:crypto). Every failure is an AttestationError (enclave/errors.ts) with a string code.
//
// Exported API
//   der.ts    parseDer(bytes) -> DerNode {tag, raw, value}; readTlv; DerReader (next/optional/peekTag/end);
//             children; readIntegerBytes / readUnsignedInteger / readSmallInteger / readBoolean / readNull /
//             readOid / readBitString / readOctetAlignedBitString / readOctetString / readTime /
//             readDisplayString; TAG; contextTag(n, constructed?); encodeTlv.         code: der_malformed
//   x509.ts   parseCertificate(der) -> Certificate {raw, tbs, version, serial, serialHex, signatureAlgorithm,
//             issuer/subject: Name {raw, text, attributes}, notBefore, notAfter, publicKey: PublicKeyInfo
//             ({type:'ec', curve:'P-256'|'P-384', key} | {type:'rsa'|'rsa-pss', key, pss?}), extensions:
//             Map<oid, {oid, critical, value}>, basicConstraints?, keyUsage?, signature};
//             parsePem(text, label?) -> Uint8Array[]; parseCertificates(DER bytes | PEM bytes/text) -> Certificate[];
//             parseAlgorithmIdentifier, parseName, parseSpki, parseSignedEnvelope, parseExtensionList, OID, toHex.
//   crl.ts    parseCrl(der) -> Crl {raw, tbs, issuer, thisUpdate, nextUpdate?, revoked: Set<serialHex>,
//             extensions, signatureAlgorithm, signature}; parseCrlInput(DER | PEM | hex text).
//   verify.ts verifySignature(publicKey, alg, sigAsInX509, data) -> Promise<boolean> (ECDSA SHA-256/384/512,
//             RSA PKCS#1 v1.5, RSASSA-PSS incl. AMD's SHA-384/MGF1-SHA-384/salt 48);
//             verifyEcdsaP1363(point, curve, hash, r||s, data) -> Promise<boolean>;
//             verifyCertSignature(cert, issuer); ecdsaDerToP1363(der, size); bytesEqual (constant time);
//             verifyChain(leaf..[root], {at, trustedRoot, crls?, requireCrls?, allowedCriticalExtensions?,
//             codePrefix?}) -> Promise<Certificate[]> (full chain ending with the pinned root).
//             Codes (prefix default 'pki'): pki_signature_invalid, pki_expired, pki_not_yet_valid,
//             pki_issuer_mismatch, pki_not_ca, pki_path_length, pki_key_usage, pki_untrusted_root,
//             pki_unknown_critical_extension, pki_revoked, pki_crl_signature_invalid, pki_crl_expired,
//             pki_crl_not_yet_valid, pki_crl_issuer_unknown, pki_crl_missing, pki_chain_empty.
export * from './der.js';
export * from './x509.js';
export * from './crl.js';
export * from './verify.js';
