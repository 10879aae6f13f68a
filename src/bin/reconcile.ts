import { clerkClientFrom } from '../clerk/api.ts';
import { exitWithError, loadConfigOrExit } from '../config.ts';
import { initORM } from '../orm.ts';
import { DEFAULT_MAX_DELETE_PERCENT, formatReconcileReport, reconcile } from '../sync/reconcile.ts';
import { expectDatabaseReady } from '../users/lock-and-read.ts';
import { createProgress } from './progress.ts';
import { parseCommandLine, runOrExit } from './run.ts';

const USAGE = `usage: npm run reconcile -- [--apply [--max-delete-percent N]] [--show-emails]
  Compares the users table with Clerk's Backend API (CLERK_SECRET_KEY, CLERK_API_URL).
  --apply                 create the missing, delete the gone, fix the drifted
  --max-delete-percent N  with --apply, change nothing if more than N% of the users stored
                          here would be deleted, or if Clerk lists no users (default ${DEFAULT_MAX_DELETE_PERCENT})
  --show-emails           include the differing email addresses in the report`;

await runOrExit(async () => {
  const { values } = parseCommandLine(USAGE, {
    apply: { type: 'boolean' },
    'max-delete-percent': { type: 'string' },
    'show-emails': { type: 'boolean' },
  });
  const maxDeletePercent = Number(values['max-delete-percent'] ?? DEFAULT_MAX_DELETE_PERCENT);
  if (!(maxDeletePercent >= 0 && maxDeletePercent <= 100))
    exitWithError('--max-delete-percent must be a number from 0 to 100');
  const config = loadConfigOrExit();
  const client = clerkClientFrom(config);
  const { orm, em } = await initORM(config.databaseUrl);
  const progress = createProgress('reconcile: reading Clerk');
  try {
    await expectDatabaseReady(em, { writes: values.apply ?? false });
    const report = await reconcile({
      em,
      client,
      apply: values.apply,
      maxDeletePercent,
      progress,
      api: {
        onRetry: (reason, waitMs) =>
          progress.note(`reconcile: ${reason}; retrying in ${waitMs} ms`),
      },
    });
    console.log(formatReconcileReport(report, { showEmails: values['show-emails'] }));
    if (report.refused) process.exitCode = 1;
  } finally {
    await orm.close();
  }
});
