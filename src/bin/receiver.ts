import { loadConfigOrExit } from '../config.ts';
import { createLogger } from '../logger.ts';
import { stopOnSignals } from '../services/lifecycle.ts';
import { startReceiver } from '../services/receiver.ts';
import { runOrExit } from './run.ts';

await runOrExit(async () => {
  const config = loadConfigOrExit();
  const log = createLogger({ level: config.logLevel, name: 'receiver' });
  stopOnSignals(log, await startReceiver(config, log));
});
