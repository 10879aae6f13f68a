import { processSuite } from './test/support/suite-config.ts';

/**
 * The fault-injection suite (test/faults): real receiver and worker processes against a Redis
 * and a PostgreSQL proxy of each file's own. Run with `npm run test:faults`.
 */
export default processSuite('test/faults');
