import type { Queue } from 'bullmq';
import { type Response, Router } from 'express';
import { retryAllFailedJobs, retryFailedJob } from '../queue/failed-jobs.ts';
import { basicAuth } from './basic-auth.ts';

export const DASHBOARD_PATH = '/admin/queues';

/**
 * The bull-board queue dashboard behind basic auth: it shows everything and retries failed
 * jobs, nothing else. Every job in the queue was answered 2xx to Svix, and a job added there
 * runs unsigned (a forged user.deleted deletes a user for good), so adding, editing, cleaning,
 * emptying, obliterating, removing, promoting and pausing are refused on the server, before
 * bull-board sees the request. Loaded only when credentials are configured, so a receiver
 * without a dashboard does not carry its code.
 */
export async function dashboardRouter(
  queue: Queue,
  credentials: { username: string; password: string },
  /** Whether Redis is connected now: a retry is refused with 503 at once while it is not. */
  queueAvailable: () => boolean,
): Promise<Router> {
  const [{ createBullBoard }, { BullMQAdapter }, { ExpressAdapter }] = await Promise.all([
    import('@bull-board/api'),
    import('@bull-board/api/bullMQAdapter'),
    import('@bull-board/express'),
  ]);
  /**
   * bull-board's read-only mode would hide and refuse (405) retries too, in its pages and on
   * its server, so it stays off; this adapter offers retries of failed jobs only, and
   * retryOnly() refuses every other action.
   */
  class FailedRetriesAdapter extends BullMQAdapter {
    override readonly allowCompletedRetries = false;
  }
  const board = new ExpressAdapter();
  board.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: [new FailedRetriesAdapter(queue, { readOnlyMode: false, allowRetries: true })],
    serverAdapter: board,
  });
  const router = Router();
  router.use(
    DASHBOARD_PATH,
    basicAuth(credentials, 'clerk-sync'),
    retryOnly(queue, queueAvailable),
    board.getRouter(),
  );
  return router;
}

/**
 * Reads pass on to bull-board; the two retry routes of failed jobs are served here, giving
 * each job its full attempts again as `npm run jobs -- retry` does; anything else is refused
 * (the pages still show bull-board's other buttons; each gets this 403).
 */
function retryOnly(queue: Queue, queueAvailable: () => boolean): Router {
  const router = Router();
  const unknownQueue = (response: Response) =>
    void response.status(404).json({ error: 'no such queue' });
  // Redis down is no fault of the operator's: 503, like the receiver, never a 500.
  const unavailable = (response: Response) =>
    void response.status(503).json({ error: 'queue unavailable, retry later' });
  router.put('/api/queues/:queueName/retry/failed', async (request, response) => {
    if (request.params.queueName !== queue.name) return unknownQueue(response);
    if (!queueAvailable()) return unavailable(response);
    const retried = await retryAllFailedJobs(queue).catch(() => undefined);
    if (retried === undefined) return unavailable(response);
    response.json({ retried, skipped: 0 });
  });
  router.put('/api/queues/:queueName/:jobId/retry', async (request, response) => {
    if (request.params.queueName !== queue.name) return unknownQueue(response);
    if (!queueAvailable()) return unavailable(response);
    const retried = await retryFailedJob(queue, request.params.jobId).catch(() => undefined);
    if (retried === undefined) return unavailable(response);
    if (!retried) {
      response.status(400).json({ error: 'only a failed job can be retried' });
      return;
    }
    response.status(204).end();
  });
  router.use((request, response, next) => {
    if (request.method === 'GET' || request.method === 'HEAD') return next();
    response
      .status(403)
      .json({ error: 'the dashboard is read-only: it can only retry failed jobs' });
  });
  return router;
}
