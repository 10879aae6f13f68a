import { loadConfigOrExit } from '../config.ts';
import { initMigrationORM } from '../orm.ts';
import { runOrExit } from './run.ts';

/**
 * Runs before the migration commands: checks MIGRATION_DATABASE_URL (DATABASE_URL unless set),
 * reaches the server and creates the database when it does not exist yet, so the MikroORM CLI
 * that follows starts from a known good connection and a bad one is reported in one line.
 */
await runOrExit(async () => {
  const config = loadConfigOrExit();
  const { orm } = await initMigrationORM(config);
  await orm.close();
});
