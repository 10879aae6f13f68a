import { clerkClientFrom } from '../clerk/api.ts';
import { loadConfigOrExit } from '../config.ts';
import { initORM } from '../orm.ts';
import { formatBackfillSummary, runBackfill } from '../sync/backfill.ts';
import { expectDatabaseReady } from '../users/lock-and-read.ts';
import { createProgress } from './progress.ts';
import { parseCommandLine, runOrExit } from './run.ts';

const USAGE = `usage: npm run backfill -- [--dry-run] [--restart]
  Imports every user from Clerk's Backend API (CLERK_SECRET_KEY, CLERK_API_URL).
  --dry-run   report what would be written; write nothing
  --restart   start from the first page instead of resuming after the last committed one`;

await runOrExit(async () => {
  const { values } = parseCommandLine(USAGE, {
    'dry-run': { type: 'boolean' },
    restart: { type: 'boolean' },
  });
  const config = loadConfigOrExit();
  const client = clerkClientFrom(config);
  const { orm, em } = await initORM(config.databaseUrl);
  const progress = createProgress('backfill');
  try {
    const dryRun = values['dry-run'] ?? false;
    await expectDatabaseReady(em, { writes: !dryRun });
    const result = await runBackfill({
      em,
      client,
      progress,
      dryRun,
      restart: values.restart,
      api: {
        onRetry: (reason, waitMs) => progress.note(`backfill: ${reason}; retrying in ${waitMs} ms`),
      },
    });
    console.log(formatBackfillSummary(result, dryRun));
  } finally {
    await orm.close();
  }
});
