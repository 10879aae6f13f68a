import { setTimeout as sleep } from 'node:timers/promises';
import { ownCpuMicros, processCpuMicros, redisCpuMicros } from './cpu.ts';
import {
  freshDatabase,
  freshQueue,
  harnessRedis,
  Scope,
  type Service,
  startBaseline,
  startReceiver,
} from './fixtures.ts';
import { type LoadResult, saturate } from './load.ts';
import { median } from './stats.ts';

const INGEST_TARGETS = ['verify-only', 'verify-add', 'receiver', 'inline-upsert'] as const;
export type IngestTarget = (typeof INGEST_TARGETS)[number];

const PAUSE_BETWEEN_RUNS_MS = 1_000;

interface IngestOptions {
  connections: number;
  rounds: number;
  roundSeconds: number;
  warmupSeconds: number;
  progress: (message: string) => void;
}

const PROCESSES = ['service', 'redis', 'loadGenerator'] as const;
/** CPU time spent per delivery accepted, in microseconds, by each process that did work. */
type CpuPerDelivery = Record<(typeof PROCESSES)[number], number>;
const eachProcess = (figure: (key: keyof CpuPerDelivery) => number) =>
  Object.fromEntries(PROCESSES.map((key) => [key, figure(key)])) as CpuPerDelivery;

export interface IngestSummary {
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuMicrosPerDelivery: CpuPerDelivery;
}

export interface IngestResult {
  /** Per target, the median of its rounds. */
  median: Record<IngestTarget, IngestSummary>;
  rounds: {
    round: number;
    target: IngestTarget;
    result: LoadResult;
    cpuMicrosPerDelivery: CpuPerDelivery;
  }[];
  receiverPeakRssMiB: number;
  /**
   * The deliveries the receiver was seen to accept (warm-up included) and the jobs in its queue:
   * equal but for up to `connections` requests per run still in flight when the load stopped.
   */
  receiverAccepted: number;
  receiverJobsQueued: number;
  receiverRuns: number;
}

/**
 * The receiver and the baselines, each its own child with its own database or queue, all
 * started up front and then loaded one at a time: a warm-up each, then rounds in which the
 * order rotates, so no target always runs after the same neighbour.
 */
export function measureIngest(options: IngestOptions): Promise<IngestResult> {
  return Scope.run(async (scope) => {
    const [receiverDatabase, inlineDatabase] = await Promise.all([
      freshDatabase(scope),
      freshDatabase(scope),
    ]);
    const queue = freshQueue(scope);
    const services: Record<IngestTarget, Service> = {
      'verify-only': await startBaseline(scope, 'verify-only'),
      'verify-add': await startBaseline(scope, 'verify-add', { queue: freshQueue(scope) }),
      receiver: await startReceiver(scope, receiverDatabase, queue),
      'inline-upsert': await startBaseline(scope, 'inline-upsert', { database: inlineDatabase }),
    };
    let receiverAccepted = 0;
    let receiverRuns = 0;
    const cpuNow = async (target: IngestTarget): Promise<CpuPerDelivery> => ({
      service: await processCpuMicros(services[target].pid),
      redis: await redisCpuMicros(harnessRedis()),
      loadGenerator: ownCpuMicros(),
    });
    const load = async (target: IngestTarget, seconds: number) => {
      const before = await cpuNow(target);
      const result = await saturate(services[target].url, {
        connections: options.connections,
        seconds,
      });
      const after = await cpuNow(target);
      if (target === 'receiver') {
        receiverAccepted += result.accepted;
        receiverRuns++;
      }
      const cpuMicrosPerDelivery = eachProcess(
        (key) => (after[key] - before[key]) / Math.max(result.accepted, 1),
      );
      return { result, cpuMicrosPerDelivery };
    };

    for (const target of INGEST_TARGETS) await load(target, options.warmupSeconds);
    options.progress(`ingest: warmed up (${options.warmupSeconds} s each)`);

    const rounds: IngestResult['rounds'] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const shift = (round - 1) % INGEST_TARGETS.length;
      for (const target of [...INGEST_TARGETS.slice(shift), ...INGEST_TARGETS.slice(0, shift)]) {
        await sleep(PAUSE_BETWEEN_RUNS_MS);
        const { result, cpuMicrosPerDelivery } = await load(target, options.roundSeconds);
        rounds.push({ round, target, result, cpuMicrosPerDelivery });
        options.progress(
          `ingest round ${round}/${options.rounds}: ${target.padEnd(13)} ` +
            `${Math.round(result.deliveriesPerSecond)} deliveries/s, ` +
            `p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms` +
            (result.rejected + result.errors > 0
              ? ` (${result.rejected} non-2xx, ${result.errors} errors)`
              : ''),
        );
      }
    }

    const { peakRssMiB } = await services.receiver.stop();
    const { waiting: receiverJobsQueued = 0 } = await queue.getJobCounts('waiting');
    const summarize = (target: IngestTarget): IngestSummary => {
      const runs = rounds.filter((run) => run.target === target);
      return {
        deliveriesPerSecond: median(runs.map((run) => run.result.deliveriesPerSecond)),
        p50Ms: median(runs.map((run) => run.result.p50Ms)),
        p99Ms: median(runs.map((run) => run.result.p99Ms)),
        cpuMicrosPerDelivery: eachProcess((key) =>
          median(runs.map((run) => run.cpuMicrosPerDelivery[key])),
        ),
      };
    };
    return {
      median: Object.fromEntries(
        INGEST_TARGETS.map((target) => [target, summarize(target)]),
      ) as Record<IngestTarget, IngestSummary>,
      rounds,
      receiverPeakRssMiB: peakRssMiB,
      receiverAccepted,
      receiverJobsQueued,
      receiverRuns,
    };
  });
}
