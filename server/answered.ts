// Which requests Node answered itself while the app was still handling them (a request timeout
// fires while the body arrives: Node's clientError path writes the 408 and closes the socket).
// The app's own answer then never reaches the client, so its log line must carry Node's status.
const answered = new WeakMap<object, number>();

/** Records that the client got `status` from Node for the request whose response is `res`. */
export function markAnswered(res: object, status: number): void {
  answered.set(res, status);
}

/** The status Node answered for `res`, if it did. */
export function answeredStatus(res: object | undefined): number | undefined {
  return res === undefined ? undefined : answered.get(res);
}
