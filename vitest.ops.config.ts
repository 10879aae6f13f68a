import { processSuite } from './test/support/suite-config.ts';

/** The operations suite (test/ops): alert rules in promtool and a live Prometheus, manifests, the dashboard in Chromium. */
export default processSuite('test/ops');
