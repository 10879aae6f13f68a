import type { Queue } from 'bullmq';
import { Router } from 'express';
import { basicAuth } from './basic-auth.ts';

export const DASHBOARD_PATH = '/admin/queues';

/**
 * The bull-board queue dashboard behind basic auth. Loaded only when credentials are
 * configured, so a receiver without a dashboard does not carry its code.
 */
export async function dashboardRouter(
  queue: Queue,
  credentials: { username: string; password: string },
): Promise<Router> {
  const [{ createBullBoard }, { BullMQAdapter }, { ExpressAdapter }] = await Promise.all([
    import('@bull-board/api'),
    import('@bull-board/api/bullMQAdapter'),
    import('@bull-board/express'),
  ]);
  const board = new ExpressAdapter();
  board.setBasePath(DASHBOARD_PATH);
  createBullBoard({ queues: [new BullMQAdapter(queue)], serverAdapter: board });
  const router = Router();
  router.use(DASHBOARD_PATH, basicAuth(credentials, 'clerk-sync'), board.getRouter());
  return router;
}
