import { Router } from 'express';
import { withTimeout } from '../timeout.ts';

/** Each dependency gets this long to answer, so the whole check answers within 2 seconds. */
export const HEALTH_CHECK_TIMEOUT_MS = 1_500;

export interface HealthChecks {
  database: () => Promise<boolean>;
  redis: () => Promise<boolean>;
}

type Status = 'connected' | 'disconnected';

async function probe(check: () => Promise<boolean>, name: string): Promise<Status> {
  try {
    return (await withTimeout(check(), HEALTH_CHECK_TIMEOUT_MS, name))
      ? 'connected'
      : 'disconnected';
  } catch {
    return 'disconnected';
  }
}

/** GET /api/v1/health: 200 when PostgreSQL and Redis both answer, 503 otherwise. */
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
  return router;
}
