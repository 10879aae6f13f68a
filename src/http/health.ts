import { Router } from 'express';
import { withTimeout } from '../timeout.ts';

/** Each dependency gets this long to answer, so the whole check answers within 2 seconds. */
export const HEALTH_CHECK_TIMEOUT_MS = 1_500;

/** A real check of each dependency, for health, probes and the metrics alike. */
export interface DependencyChecks {
  database: () => Promise<boolean>;
  redis: () => Promise<boolean>;
}

export interface HealthChecks extends DependencyChecks {
  /**
   * What the process needs to do its job, for GET /readyz: the receiver only queues, so Redis;
   * the worker writes users, so Redis and PostgreSQL.
   */
  readiness: readonly (keyof DependencyChecks)[];
}

type Status = 'connected' | 'disconnected';

/** Whether the dependency answers within HEALTH_CHECK_TIMEOUT_MS; a hang or an error is a no. */
export async function answersInTime(check: () => Promise<boolean>, name: string): Promise<boolean> {
  return withTimeout(check(), HEALTH_CHECK_TIMEOUT_MS, name).catch(() => false);
}

async function probe(check: () => Promise<boolean>, name: string): Promise<Status> {
  return (await answersInTime(check, name)) ? 'connected' : 'disconnected';
}

/**
 * GET /api/v1/health: 200 when PostgreSQL and Redis both answer, 503 otherwise, whatever the
 * process. GET /livez (the process serves: always 200) and GET /readyz (200 when what this
 * process needs answers, 503 otherwise) are for a load balancer's or Kubernetes' probes: a
 * receiver that reported PostgreSQL's outage there would be taken out of service while it can
 * still queue every delivery.
 */
export function healthRouter(checks: HealthChecks): Router {
  const router = Router();
  router.get('/api/v1/health', async (_request, response) => {
    const [database, redis] = await Promise.all([
      probe(checks.database, 'database'),
      probe(checks.redis, 'redis'),
    ]);
    const healthy = database === 'connected' && redis === 'connected';
    response
      .status(healthy ? 200 : 503)
      .json({ status: healthy ? 'ok' : 'unavailable', database, redis });
  });
  router.get('/livez', (_request, response) => {
    response.json({ status: 'ok' });
  });
  router.get('/readyz', async (_request, response) => {
    const statuses = await Promise.all(
      checks.readiness.map(async (name) => [name, await probe(checks[name], name)] as const),
    );
    const ready = statuses.every(([, status]) => status === 'connected');
    response
      .status(ready ? 200 : 503)
      .json({ status: ready ? 'ready' : 'unavailable', ...Object.fromEntries(statuses) });
  });
  return router;
}
