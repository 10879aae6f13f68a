import type { Job, Queue } from 'bullmq';

/** Failed jobs are read and retried this many at a time. */
const RETRY_PAGE_SIZE = 500;

/**
 * Moves a failed job back to the queue with its full attempts again: a job that used them all
 * up during an outage would otherwise fail for good on its next error. Resolves false when no
 * failed job has this id (none at all, or one in another state).
 */
export async function retryFailedJob(queue: Queue, jobId: string): Promise<boolean> {
  const job = await queue.getJob(jobId);
  return job ? retry(job) : false;
}

/**
 * Retries every job that had failed when it was called, oldest first, each with its full
 * attempts again; returns how many. A job that fails again meanwhile is not retried twice.
 */
export async function retryAllFailedJobs(queue: Queue): Promise<number> {
  const startedAt = Date.now();
  const seen = new Set<string>();
  let retried = 0;
  for (;;) {
    const page = (await queue.getJobs(['failed'], 0, RETRY_PAGE_SIZE - 1, true)).filter(
      (job) => job.id && !seen.has(job.id) && (job.finishedOn ?? 0) <= startedAt,
    );
    if (page.length === 0) return retried;
    for (const job of page) seen.add(job.id as string);
    const results = await Promise.all(page.map(retry));
    retried += results.filter(Boolean).length;
  }
}

async function retry(job: Job): Promise<boolean> {
  try {
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    return true;
  } catch (error) {
    // Another retry (a redelivery, a second operator) may have moved it out of the failed set.
    if (await job.isFailed()) throw error;
    return false;
  }
}
