import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { countRows } from '../test/support/database.ts';
import { deliveryJob } from '../test/support/queue.ts';
import {
  freshDatabase,
  freshQueue,
  Scope,
  type Service,
  startWorker,
  type WorkerOptions,
} from './fixtures.ts';

const ADD_BULK_CHUNK = 1_000;
const POLL_INTERVAL_MS = 50;
const DRAIN_TIMEOUT_MS = 180_000;

export interface DrainOptions extends WorkerOptions {
  jobs: number;
  workers: number;
}

export interface DrainResult {
  jobs: number;
  workers: number;
  seconds: number;
  eventsPerSecond: number;
  /** Users in the database afterwards: must equal `jobs`. */
  rows: number;
  failed: number;
  peakRssMiB: number[];
  /** The drain on the monotonic clock that V8's CPU profiles use, in microseconds. */
  monotonicWindowUs: { from: number; to: number };
}

const monotonicMicroseconds = () => Number(process.hrtime.bigint() / 1_000n);

/**
 * A queue filled with `jobs` user.created deliveries while paused (exactly the jobs the
 * receiver would add), then `workers` worker processes, and the clock runs from resuming the
 * queue, once every worker is healthy, to the last job's finishedOn (set after its transaction
 * committed). Each run has its own database and queue.
 */
export function measureDrain(options: DrainOptions): Promise<DrainResult> {
  return Scope.run(async (scope) => {
    const database = await freshDatabase(scope);
    const queue = freshQueue(scope);
    await queue.pause();
    for (let added = 0; added < options.jobs; added += ADD_BULK_CHUNK) {
      const chunk = Math.min(ADD_BULK_CHUNK, options.jobs - added);
      await queue.addBulk(Array.from({ length: chunk }, () => deliveryJob()));
    }
    const workers = await Promise.all(
      Array.from({ length: options.workers }, (_, index) =>
        startWorker(scope, database, queue, { ...options, name: `worker ${index + 1}` }),
      ),
    );

    const startedAt = Date.now();
    const from = monotonicMicroseconds();
    await queue.resume();
    await waitUntilDrained(queue, workers);
    const to = monotonicMicroseconds();
    const [last] = await queue.getJobs(['completed'], 0, 0);
    const seconds = ((last?.finishedOn ?? Date.now()) - startedAt) / 1_000;
    const { failed = 0 } = await queue.getJobCounts('failed');
    const rows = await countRows(database, 'users');
    const stopped = await Promise.all(workers.map((worker) => worker.stop()));
    return {
      jobs: options.jobs,
      workers: options.workers,
      seconds,
      eventsPerSecond: options.jobs / seconds,
      rows,
      failed,
      peakRssMiB: stopped.map((report) => report.peakRssMiB),
      monotonicWindowUs: { from, to },
    };
  });
}

/**
 * Until no job waits, runs or awaits a retry, while the `services` doing the work stay up.
 * Completed jobs are not counted: retention (COMPLETED_JOB_RETENTION) keeps only the newest.
 */
export async function waitUntilDrained(queue: Queue, services: Service[]): Promise<void> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  for (;;) {
    for (const service of services) service.assertRunning();
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (Object.values(counts).every((count) => count === 0)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `queue not drained after ${DRAIN_TIMEOUT_MS / 1_000} s: ${JSON.stringify(counts)}`,
      );
    }
    await sleep(POLL_INTERVAL_MS);
  }
}
