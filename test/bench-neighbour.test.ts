// The bench's busy neighbour: a thread that really burns a core while it runs, and stops.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startNeighbour } from '../bench/neighbour.js';

/** CPU this process used over `ms` of wall time, in ms. */
async function cpuOver(ms: number): Promise<number> {
  const before = process.cpuUsage();
  await sleep(ms);
  const d = process.cpuUsage(before);
  return (d.user + d.system) / 1000;
}

test('the neighbour spins a core while it runs and nothing after stop()', async () => {
  const idle = await cpuOver(300);
  const n = await startNeighbour();
  let busy: number;
  try {
    busy = await cpuOver(300);
  } finally {
    await n.stop();
  }
  const after = await cpuOver(300);
  // Most of 300 ms of one core while it spins (the main thread only sleeps); little before and after.
  assert.ok(busy > 200, `spinning: ${busy.toFixed(0)} ms of CPU in 300 ms`);
  assert.ok(after < busy / 3, `stopped: ${after.toFixed(0)} ms after, ${busy.toFixed(0)} ms while spinning`);
  assert.ok(idle < busy / 3, `before: ${idle.toFixed(0)} ms`);
});
