// One line saying what the numbers were measured on.
import os from 'node:os';
import process from 'node:process';

export function describeMachine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  const gib = (os.totalmem() / 2 ** 30).toFixed(1);
  return `${os.type()} ${os.release()} ${os.arch()}, ${cpus.length} x ${model}, ${gib} GiB RAM, Node ${process.version}`;
}
