import { loadConfigOrExit } from './src/config.ts';
import { createLogger } from './src/logger.ts';
import { CREATE_MISSING_DATABASE, ormOptions } from './src/orm.ts';

const config = loadConfigOrExit();

/** The CLI runs migrations, which need a session: the direct connection, not a transaction pooler. */
export default ormOptions(
  config.migrationDatabaseUrl,
  createLogger({ level: 'warn', name: 'mikro-orm' }),
  CREATE_MISSING_DATABASE,
);
