import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { countRows } from '../test/support/database.ts';
import { baseUrl, freshDatabase, ROOT, Scope, startClerkApi } from './fixtures.ts';

const run = promisify(execFile);

export interface BackfillRun {
  /** As the command reports it: users read over its own time, start-up excluded. */
  users: number;
  seconds: number;
  usersPerSecond: number;
  summary: string;
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
}

/**
 * `npm run backfill` (the command itself, with the npm script's Node) against the stand-in
 * Backend API in its own process, into a fresh database: a dry run, the import, a re-run.
 */
export function measureBackfill(options: { users: number }): Promise<BackfillBenchResult> {
  return Scope.run(async (scope) => {
    const database = await freshDatabase(scope);
    const api = await startClerkApi(scope, options.users);
    const backfill = async (...args: string[]): Promise<BackfillRun> => {
      const { stdout } = await run(process.execPath, ['src/bin/backfill.ts', ...args], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          DATABASE_URL: database.url,
          CLERK_SECRET_KEY: 'sk_test_bench',
          CLERK_API_URL: baseUrl(api),
          LOG_LEVEL: 'warn',
        },
      });
      const figures = /: (\d+) users in ([\d.]+) s \((\d+) users\/s\)/.exec(stdout);
      if (!figures) throw new Error(`cannot read the backfill's summary:\n${stdout}`);
      return {
        users: Number(figures[1]),
        seconds: Number(figures[2]),
        usersPerSecond: Number(figures[3]),
        summary: stdout.trim(),
      };
    };
    const dryRun = await backfill('--dry-run');
    const firstRun = await backfill();
    const rerun = await backfill();
    return {
      users: options.users,
      dryRun,
      firstRun,
      rerun,
      rows: await countRows(database, 'users'),
    };
  });
}
