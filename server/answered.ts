// Which requests Node answered itself while the app was still handling them (a request timeout
// fires while the body arrives: Node's clientError path writes the 408 and closes the socket).
// The app's own answer then never reaches the client, so its log line must carry Node's.
export interface NodeAnswer {
  status: number;
  /** Bytes of the answer written to the socket. */
  bytesOut: number;
}

const answered = new WeakMap<object, NodeAnswer>();

/** Records that the client got `answer` from Node for the request whose response is `res`. */
export function markAnswered(res: object, answer: NodeAnswer): void {
  answered.set(res, answer);
}

/** What Node answered for `res`, if it did. */
export function nodeAnswer(res: object | undefined): NodeAnswer | undefined {
  return res === undefined ? undefined : answered.get(res);
}
