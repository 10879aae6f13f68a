import { processSuite } from './test/support/suite-config.ts';

/** The security suite (test/security): hostile clients and careless operators, against real processes. */
export default processSuite('test/security');
