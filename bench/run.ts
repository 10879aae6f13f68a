/**
 * npm run bench: ingest, drain, receipt-to-row latency, memory, scaling and the backfill, each
 * against a baseline measured in the same run on this machine. Prints progress, then one table,
 * and writes bench/results/latest.json. Exits 0 whether or not the targets are met, 1 if the
 * harness itself failed. Knobs: BENCH_QUICK=1 (a short run), BENCH_JOBS, BENCH_ROUNDS,
 * BENCH_ROUND_SECONDS, BENCH_CONNECTIONS, BENCH_LATENCY_RATE, BENCH_LATENCY_SECONDS,
 * BENCH_BACKFILL_USERS, and BENCH_PROFILE=1 for one more drain under --cpu-prof (profile in
 * bench/results/, summary printed).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { killAllChildren } from '../test/support/processes.ts';
import { measureBackfill } from './backfill.ts';
import { type DrainOptions, type DrainResult, measureDrain } from './drain.ts';
import { closeHarnessRedis, RESULTS_DIR, Scope } from './fixtures.ts';
import { measureIngest } from './ingest.ts';
import { measureLatency, RECEIPT_TO_ROW } from './latency.ts';
import { formatChangeCpu, measureLoneChange } from './lone-change.ts';
import { measurePgbench, PGBENCH_CLIENTS } from './pgbench.ts';
import { formatProfile, type ProfileSummary, summarizeProfile } from './profile.ts';
import {
  consistencyChecks,
  formatBackfillCpu,
  formatCpuPerDelivery,
  formatLatencyCpu,
  formatTable,
  type Measurements,
  peakRss,
  TARGETS,
  tableRows,
} from './report.ts';

const quick = process.env.BENCH_QUICK === '1';
const knob = (name: string, normal: number, short: number) => {
  const value = Number(process.env[name] ?? (quick ? short : normal));
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
};
const drainJobs = knob('BENCH_JOBS', 20_000, 2_000);
const settings = {
  quick,
  connections: knob('BENCH_CONNECTIONS', 32, 32),
  rounds: knob('BENCH_ROUNDS', 2, 1),
  roundSeconds: knob('BENCH_ROUND_SECONDS', 10, 3),
  warmupSeconds: quick ? 1 : 3,
  drainJobs,
  /** The unbatched "before" run is several times slower: a quarter as many jobs give its rate. */
  unbatchedDrainJobs: Math.ceil(drainJobs / 4),
  pgbenchSeconds: quick ? 3 : 10,
  latencyRatePerSecond: knob('BENCH_LATENCY_RATE', 300, 300),
  /** The quieter rate: most deliveries meet an idle worker and commit on their own. */
  quietLatencyRatePerSecond: 100,
  loneChanges: knob('BENCH_LONE_CHANGES', 2_000, 500),
  latencySeconds: knob('BENCH_LATENCY_SECONDS', 12, 4),
  latencyWarmupSeconds: quick ? 1 : 3,
  backfillUsers: knob('BENCH_BACKFILL_USERS', 50_000, 10_000),
  profile: process.env.BENCH_PROFILE === '1',
};

const startedAt = performance.now();
const elapsedSeconds = () => (performance.now() - startedAt) / 1_000;
const progress = (message: string) =>
  console.log(`[${elapsedSeconds().toFixed(1).padStart(5)} s] ${message}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    console.log(`bench: ${signal}, cleaning up`);
    await killAllChildren();
    await Scope.closeAll();
    closeHarnessRedis();
    process.exit(130);
  });
}

const drain = async (label: string, options: DrainOptions) => {
  const result = await measureDrain(options);
  progress(
    `drain, ${label}: ${result.jobs} jobs in ${result.seconds.toFixed(2)} s, ` +
      `${Math.round(result.eventsPerSecond)} events/s (${result.rows} rows, ${result.failed} failed, ` +
      `peak RSS ${result.peakRssMiB.map(Math.round).join(' + ')} MiB)`,
  );
  return result;
};

try {
  const [major] = process.versions.node.split('.');
  if (Number(major) < 24) throw new Error(`Node 24 or later is needed, this is ${process.version}`);
  const loadAtStart = loadavg();
  progress(
    `bench${quick ? ' (quick)' : ''}: ${cpus().length} CPUs, Node ${process.version}, load average ${loadAtStart[0]?.toFixed(2)}`,
  );

  const ingest = await measureIngest({ ...settings, progress });
  progress(`ingest: receiver peak RSS ${Math.round(ingest.receiverPeakRssMiB)} MiB`);

  progress(
    `pgbench: one transaction per event, ${PGBENCH_CLIENTS} clients, ${settings.pgbenchSeconds} s`,
  );
  const pgbench = await measurePgbench(settings.pgbenchSeconds);
  progress(`pgbench: ${Math.round(pgbench.tps)} tps (${pgbench.transactions} transactions)`);

  const drainOne = await drain('1 worker', { jobs: settings.drainJobs, workers: 1 });
  const drainTwo = await drain('2 workers', { jobs: settings.drainJobs, workers: 2 });
  const drainUnbatched = await drain('1 worker, WORKER_BATCH_SIZE=1', {
    jobs: settings.unbatchedDrainJobs,
    workers: 1,
    env: { WORKER_BATCH_SIZE: '1' },
  });
  const drainBaseline = await drain('BullMQ alone, a worker that does nothing', {
    jobs: settings.drainJobs,
    workers: 1,
    script: 'bench/baselines/noop-worker.ts',
  });

  const latencyAt = async (ratePerSecond: number) => {
    progress(
      `latency: ${ratePerSecond} deliveries/s for ${settings.latencySeconds} s through receiver and worker`,
    );
    const latency = await measureLatency({
      ratePerSecond,
      seconds: settings.latencySeconds,
      warmupSeconds: settings.latencyWarmupSeconds,
    });
    progress(
      `latency: receipt-to-row p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms over ${latency.measured} deliveries ` +
        `(queued p50 ${latency.queuedP50Ms}/p99 ${latency.queuedP99Ms} ms, processing p50 ` +
        `${latency.processingP50Ms}/p99 ${latency.processingP99Ms} ms; ` +
        `sent at ${latency.sender.ratePerSecond.toFixed(1)}/s; CPU ${Math.round(latency.machineBusyPercent)}% busy; peak RSS receiver ` +
        `${Math.round(latency.receiverPeakRssMiB)} MiB, worker ${Math.round(latency.workerPeakRssMiB)} MiB)`,
    );
    return latency;
  };
  const latency = await latencyAt(settings.latencyRatePerSecond);
  const quietLatency = await latencyAt(settings.quietLatencyRatePerSecond);

  progress(`lone change: ${settings.loneChanges} users created, updated and deleted one at a time`);
  const loneChange = await measureLoneChange(settings.loneChanges);
  progress(
    `lone change: worker CPU per change ${formatChangeCpu(loneChange.cpuMicros)}; through the batch writer ` +
      `${formatChangeCpu(loneChange.batchWriterMicros)}; an empty MikroORM transaction ${Math.round(loneChange.emptyTransactionMicros)} µs`,
  );

  progress(
    `backfill: ${settings.backfillUsers} users from a local API: a dry run, the import, a re-run`,
  );
  const backfill = await measureBackfill({ users: settings.backfillUsers });
  progress(
    `backfill: dry run ${backfill.dryRun.usersPerSecond} users/s, import ${backfill.firstRun.usersPerSecond} users/s, ` +
      `re-run ${backfill.rerun.usersPerSecond} users/s (${backfill.rows} users stored)`,
  );

  let profile: { drain: DrainResult; summary: ProfileSummary } | undefined;
  if (settings.profile) {
    const file = 'worker-drain.cpuprofile';
    const profiled = await drain('1 worker under --cpu-prof', {
      jobs: settings.drainJobs,
      workers: 1,
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${RESULTS_DIR}`, `--cpu-prof-name=${file}`],
    });
    const summary = await summarizeProfile(join(RESULTS_DIR, file), profiled.monotonicWindowUs);
    profile = { drain: profiled, summary };
  }

  const measurements: Measurements = {
    connections: settings.connections,
    latencyRatePerSecond: settings.latencyRatePerSecond,
    quietLatencyRatePerSecond: settings.quietLatencyRatePerSecond,
    ingest,
    pgbench,
    drain: { oneWorker: drainOne, twoWorkers: drainTwo, oneWorkerUnbatched: drainUnbatched },
    drainBaseline,
    latency,
    quietLatency,
    loneChange,
    backfill,
    wallSeconds: elapsedSeconds(),
  };
  const rows = tableRows(measurements);
  const checks = consistencyChecks(measurements, profile ? [profile.drain] : []);
  const results = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryMiB: Math.round(totalmem() / 2 ** 20),
      kernel: release(),
      node: process.version,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadavg(),
    },
    settings,
    targets: TARGETS,
    table: rows,
    checks,
    ...measurements,
    latency: { ...latency, measures: RECEIPT_TO_ROW },
    peakRssMiB: peakRss(measurements),
    profile,
  };
  await mkdir(RESULTS_DIR, { recursive: true });
  const resultsFile = join(RESULTS_DIR, 'latest.json');
  await writeFile(resultsFile, `${JSON.stringify(results, null, 2)}\n`);

  console.log(`\n${formatTable(rows)}\n`);
  console.log(
    `ingest: median of ${settings.rounds} round(s) of ${settings.roundSeconds} s, ${settings.connections} connections; load generator, services, PostgreSQL and Redis share this machine.`,
  );
  console.log(formatCpuPerDelivery(measurements.ingest));
  console.log(formatLatencyCpu(measurements.latency, settings.latencyRatePerSecond));
  console.log(formatLatencyCpu(measurements.quietLatency, settings.quietLatencyRatePerSecond));
  console.log(formatBackfillCpu(measurements.backfill));
  console.log(`receipt-to-row: ${RECEIPT_TO_ROW}.`);
  console.log(
    `load average ${loadAtStart[0]?.toFixed(2)} at the start, ${loadavg()[0]?.toFixed(2)} at the end, ` +
      `on ${cpus().length} CPUs: anything else running on this machine shows in these figures.`,
  );
  const failedChecks = checks.filter((check) => !check.ok);
  console.log(
    failedChecks.length === 0
      ? `checks: all ${checks.length} passed`
      : failedChecks.map((check) => `CHECK FAILED: ${check.check}: ${check.detail}`).join('\n'),
  );
  if (profile) console.log(`\n${formatProfile(profile.summary)}`);
  console.log(`\nresults: ${resultsFile}`);
} catch (error) {
  console.error('bench failed:', error);
  process.exitCode = 1;
} finally {
  await Scope.closeAll();
  closeHarnessRedis();
}
