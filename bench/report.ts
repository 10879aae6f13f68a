import { cpus } from 'node:os';
import type { BackfillBenchResult, BackfillRun } from './backfill.ts';
import type { DrainResult } from './drain.ts';
import type { IngestResult, IngestSummary, IngestTarget } from './ingest.ts';
import type { LatencyResult } from './latency.ts';
import { formatChangeCpu, type LoneChangeResult } from './lone-change.ts';
import { PGBENCH_CLIENTS, type PgbenchResult } from './pgbench.ts';

/** The targets each figure is held to. */
export const TARGETS = {
  ingestVsVerifyOnly: 0.9,
  /** Against verify + one BullMQ add keyed by svix-id: the ceiling for a receiver that queues durably. */
  ingestVsVerifyAdd: 0.95,
  /** "Well above the inline pattern", read as at least twice its rate. */
  ingestVsInline: 2,
  drainVsPgbench: 1.5,
  receiptToRowP99Ms: 25,
  /** At the quieter rate, where most deliveries commit on their own. */
  quietReceiptToRowP99Ms: 15,
  /** A change committed on its own, nothing else running: the worker's CPU for it. */
  loneChangeCpuMicros: 1_000,
  /** The import against the ceiling the same run measures. */
  backfillVsCeiling: 0.8,
  receiverPeakRssMiB: 150,
  workerPeakRssMiB: 200,
  /** Users per second into PostgreSQL from a local API server. */
  backfillUsersPerSecond: 20_000,
  wallSeconds: 300,
};

export interface Measurements {
  connections: number;
  latencyRatePerSecond: number;
  quietLatencyRatePerSecond: number;
  ingest: IngestResult;
  pgbench: PgbenchResult;
  drain: { oneWorker: DrainResult; twoWorkers: DrainResult; oneWorkerUnbatched: DrainResult };
  /** A BullMQ worker that does nothing with its jobs: the queue's own ceiling for one worker. */
  drainBaseline: DrainResult;
  latency: LatencyResult;
  quietLatency: LatencyResult;
  loneChange: LoneChangeResult;
  backfill: BackfillBenchResult;
  wallSeconds: number;
}

const COLUMNS = ['metric', 'value', 'baseline', 'ratio', 'target', 'result'] as const;
/** A line of the table; `result` is pass, FAIL, or empty for a figure shown for context. */
type Row = Record<(typeof COLUMNS)[number], string>;
const CONTEXT_ONLY = { ratio: '', target: '', result: '' };

/** Peak RSS of each process under test: the receiver, and the worker with default settings. */
export function peakRss(m: Measurements): { receiverMiB: number; workerMiB: number } {
  return {
    receiverMiB: Math.max(
      m.ingest.receiverPeakRssMiB,
      m.latency.receiverPeakRssMiB,
      m.quietLatency.receiverPeakRssMiB,
    ),
    workerMiB: Math.max(
      ...m.drain.oneWorker.peakRssMiB,
      ...m.drain.twoWorkers.peakRssMiB,
      m.latency.workerPeakRssMiB,
      m.quietLatency.workerPeakRssMiB,
    ),
  };
}

export function tableRows(m: Measurements): Row[] {
  const { receiver } = m.ingest.median;
  const { oneWorker, twoWorkers, oneWorkerUnbatched } = m.drain;
  const ingestFigure = (summary: IngestSummary) =>
    `${perSecond(summary.deliveriesPerSecond)}, p50 ${ms(summary.p50Ms)}, p99 ${ms(summary.p99Ms)}`;
  /** The receiver against one of the ingest baselines. */
  const ingestRow = (baseline: IngestTarget, label: string, minimum: number, short = label) => {
    const other = m.ingest.median[baseline];
    return ratioRow(
      `ingest: receiver vs ${label}`,
      ingestFigure(receiver),
      `${short} ${ingestFigure(other)}`,
      receiver.deliveriesPerSecond / other.deliveriesPerSecond,
      minimum,
    );
  };
  const pgbench = `pgbench 1 tx/event, ${PGBENCH_CLIENTS} clients: ${perSecond(m.pgbench.tps)}`;
  const rss = peakRss(m);
  return [
    ingestRow('verify-only', 'verify-only', TARGETS.ingestVsVerifyOnly),
    ingestRow('verify-add', 'verify+add', TARGETS.ingestVsVerifyAdd),
    ingestRow('inline-upsert', 'inline upsert', TARGETS.ingestVsInline, 'inline'),
    ratioRow(
      `drain: 1 worker, ${oneWorker.jobs} jobs`,
      perSecond(oneWorker.eventsPerSecond),
      pgbench,
      oneWorker.eventsPerSecond / m.pgbench.tps,
      TARGETS.drainVsPgbench,
    ),
    ratioRow(
      'drain: 1 worker vs BullMQ alone',
      perSecond(oneWorker.eventsPerSecond),
      `a worker that does nothing: ${perSecond(m.drainBaseline.eventsPerSecond)}`,
      oneWorker.eventsPerSecond / m.drainBaseline.eventsPerSecond,
    ),
    ratioRow(
      `drain: 2 workers, ${twoWorkers.jobs} jobs`,
      perSecond(twoWorkers.eventsPerSecond),
      `1 worker: ${perSecond(oneWorker.eventsPerSecond)}`,
      twoWorkers.eventsPerSecond / oneWorker.eventsPerSecond,
    ),
    ratioRow(
      `drain: unbatched, ${oneWorkerUnbatched.jobs} jobs`,
      perSecond(oneWorkerUnbatched.eventsPerSecond),
      pgbench,
      oneWorkerUnbatched.eventsPerSecond / m.pgbench.tps,
    ),
    latencyRow(m.latency, m.latencyRatePerSecond, TARGETS.receiptToRowP99Ms),
    latencyRow(m.quietLatency, m.quietLatencyRatePerSecond, TARGETS.quietReceiptToRowP99Ms),
    limitRow(
      'lone change: worker CPU',
      Math.max(...Object.values(m.loneChange.cpuMicros)),
      TARGETS.loneChangeCpuMicros,
      'µs',
      formatChangeCpu(m.loneChange.cpuMicros),
    ),
    {
      metric: 'lone change: the batch writer',
      value: formatChangeCpu(m.loneChange.batchWriterMicros),
      baseline: 'the same changes without the unit of work',
      ...CONTEXT_ONLY,
    },
    {
      metric: 'lone change: an empty transaction',
      value: `${Math.round(m.loneChange.emptyTransactionMicros)} µs`,
      baseline: 'begin and commit through MikroORM',
      ...CONTEXT_ONLY,
    },
    {
      metric: `backfill: ${m.backfill.users.toLocaleString('en-US')} users, local API`,
      value: `${perSecond(m.backfill.firstRun.usersPerSecond)} (re-run ${perSecond(m.backfill.rerun.usersPerSecond)})`,
      baseline: `dry run, nothing written: ${perSecond(m.backfill.dryRun.usersPerSecond)}`,
      ratio: `${(m.backfill.firstRun.usersPerSecond / m.backfill.dryRun.usersPerSecond).toFixed(2)}×`,
      target: `≥ ${perSecond(TARGETS.backfillUsersPerSecond)}`,
      result:
        m.backfill.firstRun.usersPerSecond >= TARGETS.backfillUsersPerSecond ? 'pass' : 'FAIL',
    },
    ratioRow(
      'backfill: import vs ceiling',
      perSecond(m.backfill.firstRun.usersPerSecond),
      `writes free: all cores ÷ CPU per user (below), ${perSecond(m.backfill.ceilingUsersPerSecond)}`,
      m.backfill.firstRun.usersPerSecond / m.backfill.ceilingUsersPerSecond,
      TARGETS.backfillVsCeiling,
    ),
    limitRow('peak RSS: receiver', rss.receiverMiB, TARGETS.receiverPeakRssMiB, 'MiB'),
    limitRow('peak RSS: worker', rss.workerMiB, TARGETS.workerPeakRssMiB, 'MiB'),
    limitRow('wall time (harness)', m.wallSeconds, TARGETS.wallSeconds, 's'),
  ];
}

/** That every figure counts what it claims to: nothing lost, nothing refused, nothing extra. */
export function consistencyChecks(m: Measurements, extraDrains: DrainResult[] = []) {
  const { ingest, pgbench, backfill } = m;
  const strayJobs = ingest.receiverJobsQueued - ingest.receiverAccepted;
  return [
    {
      check: 'every delivery the receiver accepted is a job in its queue',
      ok: strayJobs >= 0 && strayJobs <= m.connections * ingest.receiverRuns,
      detail:
        `${ingest.receiverAccepted} answered 2xx, ${ingest.receiverJobsQueued} jobs; the difference ` +
        `is requests in flight when a load run stopped, at most ${m.connections} a run`,
    },
    {
      check: 'no ingest request failed or was refused',
      ok: ingest.rounds.every((run) => run.result.rejected + run.result.errors === 0),
      detail: ingest.rounds
        .map((run) => `${run.target}: ${run.result.rejected} non-2xx, ${run.result.errors} errors`)
        .join('; '),
    },
    ...[...Object.values(m.drain), ...extraDrains].map((drain) => ({
      check: `drain with ${drain.workers} worker(s): one user per job, no job failed`,
      ok: drain.rows === drain.jobs && drain.failed === 0,
      detail: `${drain.jobs} jobs, ${drain.rows} users, ${drain.failed} failed`,
    })),
    {
      check: 'backfill: every run read every user, and each user was stored once',
      ok:
        [backfill.dryRun, backfill.firstRun, backfill.rerun].every(
          (run) => run.users === backfill.users,
        ) && backfill.rows === backfill.users,
      detail:
        `${backfill.users} users served; read ${backfill.dryRun.users}, ${backfill.firstRun.users}, ` +
        `${backfill.rerun.users}; ${backfill.rows} users stored`,
    },
    {
      check: 'pgbench wrote one user per transaction',
      ok: pgbench.rows === pgbench.transactions,
      detail: `${pgbench.transactions} transactions, ${pgbench.rows} users`,
    },
    latencyCheck(m.latency, m.latencyRatePerSecond),
    latencyCheck(m.quietLatency, m.quietLatencyRatePerSecond),
  ];
}

function latencyRow(latency: LatencyResult, ratePerSecond: number, maximumMs: number): Row {
  const { p99Ms, p50Ms, maxMs, machineBusyPercent } = latency;
  const shown = `${ms(p99Ms)} (p50 ${ms(p50Ms)}, max ${ms(maxMs)}); CPU ${Math.round(machineBusyPercent)}% busy`;
  return limitRow(`receipt-to-row p99 at ${ratePerSecond}/s`, p99Ms, maximumMs, 'ms', shown);
}

function latencyCheck(latency: LatencyResult, ratePerSecond: number) {
  const { sender } = latency;
  return {
    check: `latency: sent at ${ratePerSecond}/s, all accepted, measured and written`,
    ok:
      Math.abs(sender.ratePerSecond / ratePerSecond - 1) < 0.05 &&
      sender.accepted === sender.sent &&
      latency.measured === sender.accepted &&
      latency.rows === latency.acceptedInAll &&
      latency.failed === 0,
    detail:
      `${sender.sent} sent at ${sender.ratePerSecond.toFixed(1)}/s, ${sender.accepted} accepted ` +
      `(refused: ${JSON.stringify(sender.refused)}), ` +
      `${latency.measured} measured; ${latency.rows} users for ${latency.acceptedInAll} ` +
      `accepted with the warm-up; ${latency.failed} failed`,
  };
}

export function formatTable(rows: readonly Row[]): string {
  const header = Object.fromEntries(COLUMNS.map((column) => [column, column])) as Row;
  const all = [header, ...rows];
  const widths = COLUMNS.map((column) => Math.max(...all.map((row) => row[column].length)));
  const line = (row: Row) =>
    COLUMNS.map((column, index) => row[column].padEnd(widths[index] as number))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function ratioRow(
  metric: string,
  value: string,
  baseline: string,
  ratio: number,
  minimum?: number,
): Row {
  return {
    metric,
    value,
    baseline,
    ratio: Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '-',
    target: minimum === undefined ? '' : `≥ ${minimum.toFixed(2)}×`,
    result: minimum === undefined ? '' : ratio >= minimum ? 'pass' : 'FAIL',
  };
}

function limitRow(
  metric: string,
  value: number,
  maximum: number,
  unit: string,
  shown = `${Math.round(value)} ${unit}`,
): Row {
  return {
    metric,
    value: shown,
    baseline: '',
    ratio: '',
    target: `≤ ${maximum} ${unit}`,
    result: value <= maximum ? 'pass' : 'FAIL',
  };
}

function perSecond(value: number): string {
  return Number.isFinite(value) ? `${Math.round(value).toLocaleString('en-US')}/s` : '-';
}

function ms(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return `${value >= 100 ? Math.round(value) : Math.round(value * 10) / 10} ms`;
}

/**
 * Where each ingest target's CPU went, per delivery: on two shared cores the ratio between two
 * targets' rates follows the ratio of their total CPU per delivery.
 */
export function formatCpuPerDelivery(ingest: IngestResult): string {
  const lines = Object.entries(ingest.median).map(([target, summary]) => {
    const { service, redis, loadGenerator } = summary.cpuMicrosPerDelivery;
    const parts = [`server ${Math.round(service)}`];
    if (redis >= 1) parts.push(`Redis ${Math.round(redis)}`);
    parts.push(`load generator ${Math.round(loadGenerator)}`);
    return `  ${target.padEnd(13)} ${parts.join(', ')} (total ${Math.round(service + redis + loadGenerator)})`;
  });
  return ['ingest CPU per delivery, µs (PostgreSQL not counted):', ...lines].join('\n');
}

/**
 * Where the backfill's CPU goes, per user: its own, the stand-in API's and PostgreSQL's, in the
 * dry run and the import; with the ceiling those set on this machine even if the writes cost
 * the command nothing, and the bound the import's own CPU sets even with every core kept busy.
 */
export function formatBackfillCpu(backfill: BackfillBenchResult): string {
  const run = (label: string, cpu: BackfillRun['cpuMicrosPerUser']) =>
    `  ${label.padEnd(8)} ${cpuSplit({ backfill: cpu.backfill, API: cpu.api, PostgreSQL: cpu.postgres })}`;
  const { dryRun, firstRun } = backfill;
  const postgres = firstRun.cpuMicrosPerUser.postgres;
  const reading = dryRun.cpuMicrosPerUser.backfill + dryRun.cpuMicrosPerUser.api;
  const imported = Object.values(firstRun.cpuMicrosPerUser).reduce((sum, micros) => sum + micros);
  const allCoresBusy = (cpus().length * 1e6) / imported;
  return [
    'backfill CPU per user, µs:',
    run('dry run', dryRun.cpuMicrosPerUser),
    run('import', firstRun.cpuMicrosPerUser),
    `  ceiling with writes free: ${cpus().length} cores ÷ (reading ${Math.round(reading)} + PostgreSQL ${Math.round(postgres)}) = ${perSecond(backfill.ceilingUsersPerSecond)}`,
    `  the import's own bound, every core busy: ${cpus().length} cores ÷ ${Math.round(imported)} = ${perSecond(allCoresBusy)} (${(allCoresBusy / backfill.ceilingUsersPerSecond).toFixed(2)}× the ceiling; the import reached ${(firstRun.usersPerSecond / allCoresBusy).toFixed(2)}× of it)`,
  ].join('\n');
}

/**
 * Where the CPU went per delivery at the steady rate: the p99 is queueing for the cores, so the
 * total, times the rate, says how busy they were.
 */
export function formatLatencyCpu(latency: LatencyResult, ratePerSecond: number): string {
  const { sender, receiver, redis, worker, postgres } = latency.cpuMicrosPerDelivery;
  const split = cpuSplit({ sender, receiver, Redis: redis, worker, PostgreSQL: postgres });
  return [
    `receipt-to-row CPU per delivery at ${ratePerSecond}/s, µs:`,
    `  ${split}; the cores were ${Math.round(latency.machineBusyPercent)}% busy`,
  ].join('\n');
}

/** "name µs, … (total µs)" for CPU figures by process. */
function cpuSplit(figures: Record<string, number>): string {
  const parts = Object.entries(figures).map(([name, micros]) => `${name} ${Math.round(micros)}`);
  const total = Object.values(figures).reduce((sum, micros) => sum + micros, 0);
  return `${parts.join(', ')} (total ${Math.round(total)})`;
}
