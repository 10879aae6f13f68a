import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import type { Redis } from 'ioredis';

let ticksPerSecond: number | undefined;

function ticksToMicros(ticks: number): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return (ticks / ticksPerSecond) * 1e6;
}

/**
 * The fields of /proc/<pid>/stat after the command name (which is in parentheses and may hold
 * spaces), and that name; undefined when the process is gone or may not be read.
 */
async function readStat(pid: number | string) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  const close = stat.lastIndexOf(')');
  return {
    command: stat.slice(stat.indexOf('(') + 1, close),
    fields: stat.slice(close + 2).split(' '),
  };
}

/** CPU time (user + system) a process has used so far, in microseconds, from /proc/<pid>/stat. */
export async function processCpuMicros(pid: number): Promise<number> {
  const stat = await readStat(pid);
  if (!stat) throw new Error(`process ${pid} is gone`);
  return ticksToMicros(Number(stat.fields[11]) + Number(stat.fields[12]));
}

/**
 * CPU time all of PostgreSQL's processes have used so far, in microseconds: the live ones, and
 * through the postmaster's count of its reaped children, the backends that have exited. Only
 * for a server on this machine; processes this user may not read are skipped.
 */
export async function postgresCpuMicros(): Promise<number> {
  let ticks = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readStat(entry);
    if (stat?.command !== 'postgres') continue;
    // utime, stime, and the children's cutime, cstime
    ticks += [11, 12, 13, 14].reduce((sum, index) => sum + Number(stat.fields[index]), 0);
  }
  return ticksToMicros(ticks);
}

/** CPU time Redis has used so far (its INFO cpu section), in microseconds. */
export async function redisCpuMicros(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
  return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6;
}

/** The load generator's own CPU time so far, in microseconds. */
export function ownCpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** The machine's CPU time so far, busy and in all, in clock ticks, from /proc/stat. */
export async function machineCpuTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const [idle = 0, iowait = 0] = ticks.slice(3, 5);
  const busy = ticks.reduce((sum, value) => sum + value, 0) - idle - iowait;
  return { busy, total: busy + idle + iowait };
}

/** Of all CPU time between two readings, the share that was busy, in percent. */
export function busyPercent(
  from: { busy: number; total: number },
  to: { busy: number; total: number },
): number {
  return (100 * (to.busy - from.busy)) / Math.max(1, to.total - from.total);
}
