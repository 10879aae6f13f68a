import { countRows } from '../test/support/database.ts';
import {
  busyPercent,
  machineCpuTicks,
  ownCpuMicros,
  postgresCpuMicros,
  processCpuMicros,
  redisCpuMicros,
} from './cpu.ts';
import { waitUntilDrained } from './drain.ts';
import {
  freshDatabase,
  freshQueue,
  harnessRedis,
  Scope,
  startReceiver,
  startWorker,
} from './fixtures.ts';
import { type SteadyResult, sendSteadily } from './load.ts';
import { percentile } from './stats.ts';

export const RECEIPT_TO_ROW =
  "from the receiver's receivedAt (signature verified, before the Redis add) to the job's " +
  'finishedOn (set by the worker after the transaction that wrote the user committed)';

export interface LatencyResult {
  sender: SteadyResult;
  /** Deliveries of the measured period whose job completed, and their receipt-to-row times. */
  measured: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The two parts of receipt-to-row: waiting (receivedAt to processedOn), then processing. */
  queuedP50Ms: number;
  queuedP99Ms: number;
  processingP50Ms: number;
  processingP99Ms: number;
  failed: number;
  /** How busy the machine's cores were while the measured deliveries were sent, in percent. */
  machineBusyPercent: number;
  /** CPU each process spent per delivery over the same period, in microseconds. */
  cpuMicrosPerDelivery: {
    sender: number;
    receiver: number;
    redis: number;
    worker: number;
    postgres: number;
  };
  /** Users written, warm-up included: equal to the deliveries accepted. */
  rows: number;
  acceptedInAll: number;
  receiverPeakRssMiB: number;
  workerPeakRssMiB: number;
}

/**
 * A receiver and one worker (default batching) on their own database and queue; a warm-up,
 * then a steady rate of deliveries. Receipt-to-row is measured on every job of the measured
 * period, from timestamps the two processes recorded themselves.
 */
export function measureLatency(options: {
  ratePerSecond: number;
  seconds: number;
  warmupSeconds: number;
}): Promise<LatencyResult> {
  return Scope.run(async (scope) => {
    const database = await freshDatabase(scope);
    const queue = freshQueue(scope);
    const receiver = await startReceiver(scope, database, queue);
    const worker = await startWorker(scope, database, queue);

    const send = (seconds: number) =>
      sendSteadily(receiver.url, { ratePerSecond: options.ratePerSecond, seconds });
    const warmup = await send(options.warmupSeconds);
    await waitUntilDrained(queue, [receiver, worker]);
    const measuredSince = Date.now();
    const readCpu = async () => ({
      machine: await machineCpuTicks(),
      sender: ownCpuMicros(),
      receiver: await processCpuMicros(receiver.pid),
      redis: await redisCpuMicros(harnessRedis()),
      worker: await processCpuMicros(worker.pid),
      postgres: await postgresCpuMicros(),
    });
    const cpuBefore = await readCpu();
    const sender = await send(options.seconds);
    const cpuAfter = await readCpu();
    const perDelivery = (key: Exclude<keyof typeof cpuAfter, 'machine'>) =>
      (cpuAfter[key] - cpuBefore[key]) / Math.max(1, sender.accepted);
    await waitUntilDrained(queue, [receiver, worker]);

    // Completed jobs carry both processedOn (taken by the worker) and finishedOn.
    const jobs = (await queue.getJobs(['completed'], 0, -1)).filter(
      (job) => job.data.receivedAt >= measuredSince,
    );
    const receiptToRow = jobs.map((job) => (job.finishedOn as number) - job.data.receivedAt);
    const queued = jobs.map((job) => (job.processedOn as number) - job.data.receivedAt);
    const processing = jobs.map((job) => (job.finishedOn as number) - (job.processedOn as number));
    const { failed = 0 } = await queue.getJobCounts('failed');
    const rows = await countRows(database, 'users');
    const [receiverStop, workerStop] = [await receiver.stop(), await worker.stop()];
    return {
      sender,
      measured: receiptToRow.length,
      p50Ms: percentile(receiptToRow, 50),
      p99Ms: percentile(receiptToRow, 99),
      maxMs: receiptToRow.length > 0 ? Math.max(...receiptToRow) : Number.NaN,
      queuedP50Ms: percentile(queued, 50),
      queuedP99Ms: percentile(queued, 99),
      processingP50Ms: percentile(processing, 50),
      processingP99Ms: percentile(processing, 99),
      failed,
      machineBusyPercent: busyPercent(cpuBefore.machine, cpuAfter.machine),
      cpuMicrosPerDelivery: {
        sender: perDelivery('sender'),
        receiver: perDelivery('receiver'),
        redis: perDelivery('redis'),
        worker: perDelivery('worker'),
        postgres: perDelivery('postgres'),
      },
      rows,
      acceptedInAll: warmup.accepted + sender.accepted,
      receiverPeakRssMiB: receiverStop.peakRssMiB,
      workerPeakRssMiB: workerStop.peakRssMiB,
    };
  });
}
