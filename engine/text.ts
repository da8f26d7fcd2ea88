/** True when `s` has no lone UTF-16 surrogate, i.e. it can be encoded as UTF-8 exactly. */
export function isWellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}
