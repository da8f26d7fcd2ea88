// A busy neighbour: one thread that spins (plain integer arithmetic, no memory traffic to speak
// of) until it is stopped. The bench runs the runtime's bare decode step beside it to show what
// one busy core does to another on this machine. Where cores are independent the step barely
// moves (the 2-vCPU development VM, when nothing else runs: 1.02x); where "cores" are SMT
// siblings or a hypervisor's shared time it slows, and then every microsecond the serving path
// spends on "the other core" (HTTP, sealing, the client) is taken from the engine. The same
// probe run while other work shared the machine read 2x: the line is only as clean as the
// machine, and says so.
import { Worker } from 'node:worker_threads';

const SPIN = `
const { workerData } = require('node:worker_threads');
const flag = new Int32Array(workerData);
let x = 0;
while (Atomics.load(flag, 0) === 0) {
  for (let i = 0; i < 100000; i++) x = (x * 31 + i) | 0;
}
`;

export interface Neighbour {
  stop(): Promise<void>;
}

/** Starts the spinning thread; resolves once it is running. */
export async function startNeighbour(): Promise<Neighbour> {
  const shared = new SharedArrayBuffer(4);
  const flag = new Int32Array(shared);
  const worker = new Worker(SPIN, { eval: true, workerData: shared });
  await new Promise<void>((resolve, reject) => {
    worker.once('online', () => resolve());
    worker.once('error', reject);
  });
  return {
    async stop() {
      Atomics.store(flag, 0, 1);
      await new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        // A thread that does not see the flag within a second is ended anyway.
        setTimeout(() => void worker.terminate(), 1000).unref();
      });
    },
  };
}
