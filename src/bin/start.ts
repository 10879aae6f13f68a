import { loadConfigOrExit } from '../config.ts';
import { createLogger } from '../logger.ts';
import { initMigrationORM, initORM, migrateUp } from '../orm.ts';
import { stopOnSignals } from '../services/lifecycle.ts';
import { startReceiver } from '../services/receiver.ts';
import { startWorker } from '../services/worker.ts';
import { runOrExit } from './run.ts';

/**
 * Local use: migrate (over MIGRATION_DATABASE_URL, the direct connection when the app goes
 * through a transaction pooler), then run the receiver and the worker in this one process.
 */
await runOrExit(async () => {
  const config = loadConfigOrExit();
  const log = createLogger({ level: config.logLevel });
  const migrations = await initMigrationORM(config, log);
  try {
    const applied = await migrateUp(migrations.orm);
    log.info({ applied }, applied.length ? 'migrations applied' : 'schema is up to date');
  } finally {
    await migrations.orm.close();
  }
  const services = await initORM(config.databaseUrl, log);
  const receiver = await startReceiver(config, log.child({ name: 'receiver' }));
  const worker = await startWorker(config, log.child({ name: 'worker' }), { services });
  stopOnSignals(log, receiver, worker, { stop: () => services.orm.close() });
});
