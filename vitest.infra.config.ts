import { processSuite } from './test/support/suite-config.ts';

/** The infrastructure suite (test/infra): TLS PostgreSQL, PgBouncer, TLS Redis, Sentinel, Cluster, each started by the test. */
export default processSuite('test/infra');
