import { readFile } from 'node:fs/promises';
import { tail } from '../test/support/processes.ts';
import { spawnNodeServer } from '../test/support/services.ts';

export { killAllChildren as killAllServices } from '../test/support/processes.ts';

const READY_TIMEOUT_MS = 30_000;

/** A process under test: a Node child serving HTTP (its health route) on a loopback port. */
export interface Service {
  name: string;
  pid: number;
  port: number;
  /** SIGTERM, then SIGKILL if it has not exited in time; once. */
  stop(): Promise<StopReport>;
  /** Throws, with its last output, if the process has exited. */
  assertRunning(): void;
}

export interface StopReport {
  /** VmHWM, the process's peak resident set size, read just before the SIGTERM. */
  peakRssMiB: number;
  exitCode: number | null;
}

/**
 * Starts `node <script>` (this very Node binary, so TypeScript runs as it does under npm) and
 * resolves once GET /api/v1/health answers 200, which for the receiver and the worker means
 * that PostgreSQL and Redis are connected.
 */
export async function startService(
  name: string,
  script: string,
  options: { portVariable: string; env: Record<string, string>; nodeArgs?: string[] },
): Promise<Service> {
  const child = await spawnNodeServer(name, script, {
    ...options,
    healthyWithinMs: READY_TIMEOUT_MS,
  });
  const assertRunning = () => {
    if (!child.isRunning()) throw new Error(`${name} exited\n${tail(child)}`);
  };
  let stopped: Promise<StopReport> | undefined;
  const stop = async (): Promise<StopReport> => {
    assertRunning();
    const peakRssMiB = await peakRss(child.pid);
    const exit = await child.stop('SIGTERM');
    return { peakRssMiB, exitCode: exit.code };
  };
  return {
    name,
    pid: child.pid,
    port: child.port,
    stop: () => (stopped ??= stop()),
    assertRunning,
  };
}

/** Peak resident set size of a live process, in MiB, from /proc/<pid>/status. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (!kib) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kib) / 1024;
}
