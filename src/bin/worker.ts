import { loadConfigOrExit } from '../config.ts';
import { createLogger } from '../logger.ts';
import { stopOnSignals } from '../services/lifecycle.ts';
import { startWorker } from '../services/worker.ts';
import { runOrExit } from './run.ts';

await runOrExit(async () => {
  const config = loadConfigOrExit();
  const log = createLogger({ level: config.logLevel, name: 'worker' });
  stopOnSignals(log, await startWorker(config, log));
});
