import { loadConfigOrExit } from './src/config.ts';
import { createLogger } from './src/logger.ts';
import { ormOptions } from './src/orm.ts';

const config = loadConfigOrExit();

export default ormOptions(config.databaseUrl, createLogger({ level: 'warn', name: 'mikro-orm' }));
