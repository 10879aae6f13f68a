import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const OUTPUT_LINES_KEPT = 50;

/** A process under test: a Node child serving HTTP (its health route) on a loopback port. */
export interface Service {
  name: string;
  pid: number;
  port: number;
  /** SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_MS; once. */
  stop(): Promise<StopReport>;
  /** Throws, with its last output, if the process has exited. */
  assertRunning(): void;
}

export interface StopReport {
  /** VmHWM, the process's peak resident set size, read just before the SIGTERM. */
  peakRssMiB: number;
  exitCode: number | null;
}

const running = new Set<ChildProcess>();

// A harness that dies by an exception must not leave servers behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Kills every child still running, at once (the harness is being interrupted). */
export function killAllServices(): void {
  for (const child of running) child.kill('SIGKILL');
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts `node <script>` (this very Node binary, so TypeScript runs as it does under npm) and
 * resolves once GET /api/v1/health on `port` answers 200, which for the receiver and the worker
 * means that PostgreSQL and Redis are connected.
 */
export async function startService(
  name: string,
  script: string,
  options: { port: number; env: Record<string, string>; cwd: string; nodeArgs?: string[] },
): Promise<Service> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not start ${script}`);
  running.add(child);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  void exited.then(() => running.delete(child));

  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      output.push(...chunk.split('\n').filter(Boolean));
      output.splice(0, Math.max(0, output.length - OUTPUT_LINES_KEPT));
    });
  }
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;
  const failure = (reason: string) =>
    new Error(`${name} (pid ${pid}) ${reason}; its last output:\n  ${output.join('\n  ')}`);

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (hasExited()) throw failure(`exited (${child.exitCode ?? child.signalCode})`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw failure(`was not healthy within ${READY_TIMEOUT_MS / 1000} s`);
    }
    const healthy = await fetch(`http://127.0.0.1:${options.port}/api/v1/health`).then(
      (response) => response.ok,
      () => false,
    );
    if (healthy) break;
    await sleep(100);
  }

  let stopped: Promise<StopReport> | undefined;
  const stop = async (): Promise<StopReport> => {
    if (hasExited()) throw failure(`had exited (${child.exitCode ?? child.signalCode})`);
    const peakRssMiB = await peakRss(pid);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const exitCode = await exited;
    clearTimeout(timer);
    return { peakRssMiB, exitCode };
  };
  return {
    name,
    pid,
    port: options.port,
    stop: () => (stopped ??= stop()),
    assertRunning() {
      if (hasExited()) throw failure(`exited (${child.exitCode ?? child.signalCode})`);
    },
  };
}

/** Peak resident set size of a live process, in MiB, from /proc/<pid>/status. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (!kib) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kib) / 1024;
}
