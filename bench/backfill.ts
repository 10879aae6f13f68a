import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { PROJECT_ROOT } from '../test/support/cli.ts';
import { countRows } from '../test/support/database.ts';
import { postgresCpuMicros, processCpuMicros } from './cpu.ts';
import { freshDatabase, Scope, startClerkApi } from './fixtures.ts';

export interface BackfillRun {
  /** As the command reports it: users read over its own time, start-up excluded. */
  users: number;
  seconds: number;
  usersPerSecond: number;
  summary: string;
  /**
   * CPU per user read, start-up excluded: the command's own, the stand-in API's, and
   * PostgreSQL's (every backend, for the statements MikroORM sent).
   */
  cpuMicrosPerUser: { backfill: number; api: number; postgres: number };
}

export interface BackfillBenchResult {
  users: number;
  /** Fetches, parses and reads what is stored; writes nothing: the ceiling for the writes. */
  dryRun: BackfillRun;
  /** Into an empty database: every user created with its preferences. */
  firstRun: BackfillRun;
  /** Again, with every user stored already: all unchanged. */
  rerun: BackfillRun;
  /** Users in the database afterwards: must equal `users`. */
  rows: number;
  /**
   * The most users/s this machine could import if the writes cost the command nothing: all its
   * cores divided by what one user costs in reading (the dry run's command and API) plus
   * PostgreSQL's own work for it in the import.
   */
  ceilingUsersPerSecond: number;
}

/** The plain progress line the command prints once it has its first page. */
const FIRST_PAGE_LINE = / users in Clerk$/m;
const CPU_POLL_MS = 20;

/**
 * `npm run backfill` (the command itself, with the npm script's Node) against the stand-in
 * Backend API in its own process, into a fresh database: a dry run, the import, a re-run. The
 * CPU each process (and PostgreSQL) spends per user is counted from its first page to its exit.
 */
export function measureBackfill(options: { users: number }): Promise<BackfillBenchResult> {
  return Scope.run(async (scope) => {
    const database = await freshDatabase(scope);
    const api = await startClerkApi(scope, options.users);
    const env = {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: database.url,
      CLERK_SECRET_KEY: 'sk_test_bench',
      CLERK_API_URL: api.url,
      LOG_LEVEL: 'warn',
    };
    const backfill = async (...args: string[]): Promise<BackfillRun> => {
      const run = await runCountingCpu(['src/bin/backfill.ts', ...args], env, api.pid);
      const figures = /: (\d+) users in ([\d.]+) s \((\d+) users\/s\)/.exec(run.stdout);
      if (run.code !== 0 || !figures) {
        throw new Error(`backfill ${args.join(' ')} failed (${run.code}):\n${run.stdout}`);
      }
      const users = Number(figures[1]);
      return {
        users,
        seconds: Number(figures[2]),
        usersPerSecond: Number(figures[3]),
        summary: run.stdout.trim(),
        cpuMicrosPerUser: {
          backfill: run.cpuMicros / users,
          api: run.apiCpuMicros / users,
          postgres: run.postgresCpuMicros / users,
        },
      };
    };
    const dryRun = await backfill('--dry-run');
    const firstRun = await backfill();
    const rerun = await backfill();
    const rows = await countRows(database, 'users');
    const perUser =
      dryRun.cpuMicrosPerUser.backfill +
      dryRun.cpuMicrosPerUser.api +
      firstRun.cpuMicrosPerUser.postgres;
    return {
      users: options.users,
      dryRun,
      firstRun,
      rerun,
      rows,
      ceilingUsersPerSecond: (cpus().length * 1e6) / perUser,
    };
  });
}

/**
 * Runs the command to completion with a clean environment, as every process the bench starts,
 * and counts the CPU it and the API spend from its first page (start-up excluded) to its exit.
 */
async function runCountingCpu(args: string[], env: Record<string, string>, apiPid: number) {
  const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env });
  const pid = child.pid as number;
  let stdout = '';
  let stderr = '';
  let from: Promise<{ own: number; api: number; postgres: number }> | undefined;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk;
    if (from || !FIRST_PAGE_LINE.test(stderr)) return;
    from = Promise.all([processCpuMicros(pid), processCpuMicros(apiPid), postgresCpuMicros()]).then(
      ([own, api, postgres]) => ({ own, api, postgres }),
    );
  });
  // The command's /proc entry goes when it exits: its CPU is the last reading before that.
  let lastOwnCpu = 0;
  const poll = setInterval(() => {
    processCpuMicros(pid).then(
      (micros) => {
        lastOwnCpu = micros;
      },
      () => undefined,
    );
  }, CPU_POLL_MS);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearInterval(poll);
  const [apiCpu, postgresCpu] = [await processCpuMicros(apiPid), await postgresCpuMicros()];
  if (!from) throw new Error(`the backfill never reported its first page:\n${stderr}`);
  const start = await from;
  return {
    code,
    stdout,
    cpuMicros: lastOwnCpu - start.own,
    apiCpuMicros: apiCpu - start.api,
    postgresCpuMicros: postgresCpu - start.postgres,
  };
}
