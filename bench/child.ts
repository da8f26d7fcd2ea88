// Starts a server as a child process on a loopback port, so its memory can be
// read honestly (its own RSS, not the benchmark's) and its CPU is not the
// client's. The child announces `http://127.0.0.1:PORT` on stdout or stderr.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { BenchError } from './errors.js';

export interface ChildServer {
  readonly pid: number;
  readonly url: string;
  /** CPU time (user + system) the child has used so far, in ms (Linux /proc); undefined elsewhere. */
  cpuMs(): Promise<number | undefined>;
  /** The same for its main thread alone (HTTP, sealing; the engine has its own thread): Linux only. */
  mainThreadCpuMs(): Promise<number | undefined>;
  /** Resident set size now and at its peak, in MB (Linux /proc); undefined elsewhere. */
  rss(): Promise<{ rssMb: number; peakMb: number } | undefined>;
  close(): Promise<void>;
}

const URL_RE = /https?:\/\/127\.0\.0\.1:(\d{1,5})/;

/** Children still running: killed when this process exits, however it exits, so no server outlives the bench. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Parses VmRSS and VmHWM (kB) out of /proc/PID/status text. Pure. */
export function parseProcStatus(text: string): { rssMb: number; peakMb: number } | undefined {
  const kb = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const rss = kb('VmRSS');
  const hwm = kb('VmHWM');
  if (rss === undefined) return undefined;
  return { rssMb: rss / 1024, peakMb: (hwm ?? rss) / 1024 };
}

/** Linux exports /proc times in USER_HZ, fixed at 100 per second for user space. */
const USER_HZ = 100;

/**
 * user + system CPU milliseconds from /proc/PID/stat text. Pure. The command
 * name (field 2) is in parentheses and may hold spaces, so fields are counted
 * after the last ')': utime and stime are fields 14 and 15.
 */
export function parseProcStatCpuMs(text: string): number | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 1).trim().split(/\s+/);
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || fields[11] === undefined || fields[12] === undefined) return undefined;
  return ((utime + stime) * 1000) / USER_HZ;
}

export async function startChildServer(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<ChildServer> {
  const child: ChildProcess = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  track(child);
  const tail: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new BenchError('child_failed', `server child did not announce its address in ${opts.timeoutMs ?? 60_000} ms`));
    }, opts.timeoutMs ?? 60_000);
    const onData = (buf: Buffer): void => {
      const text = buf.toString('utf8');
      tail.push(text);
      if (tail.length > 20) tail.shift();
      const m = URL_RE.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // The child's own output (banner, errors) helps the operator; it carries no request content.
      reject(new BenchError('child_failed', `server child exited (${code ?? signal}) before it listened: ${tail.join('').slice(-400).trim()}`));
    });
  });
  // Keep draining output so a chatty child never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  const pid = child.pid as number;
  return {
    pid,
    url,
    async cpuMs() {
      try {
        return parseProcStatCpuMs(await readFile(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return undefined;
      }
    },
    async mainThreadCpuMs() {
      try {
        // A process's main thread is the task whose id is the process id.
        return parseProcStatCpuMs(await readFile(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
      } catch {
        return undefined;
      }
    },
    async rss() {
      try {
        return parseProcStatus(await readFile(`/proc/${pid}/status`, 'utf8'));
      } catch {
        return undefined;
      }
    },
    close() {
      return new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => { clearTimeout(kill); resolve(); });
        child.kill('SIGTERM');
      });
    },
  };
}
