import { expect, it } from 'vitest';
import {
  type Delivery,
  isAcknowledged,
  maxMs,
  newUsers,
  type Outcome,
  send,
  sendAll,
  tally,
} from '../support/load.ts';
import { health } from '../support/services.ts';
import {
  expectExactlyStored,
  startScenario,
  timeUntil,
  useRunningStack,
} from '../support/stack.ts';

const { stack, receiver, worker, users, sendNewUsers } = useRunningStack();

/** Redis unreachable, the receiver answers 503 within 5 s, so that Svix retries. */
const UNAVAILABLE_WITHIN_MS = 5_000;
/** The health check answers within 2 s, even when a dependency hangs. */
const HEALTH_WITHIN_MS = 2_000;
const BATCH = 200;
const HUNG_DELIVERIES = 32;

/** Probes with one new delivery after another until one is acknowledged; ms it took. */
function timeUntilAccepting(limitMs: number): Promise<number> {
  return timeUntil(
    async () => {
      const [probe] = newUsers(1, users);
      const outcome = await send(receiver.url, probe as Delivery);
      // Not acknowledged now: Svix would send it again later, and so do we below.
      if (!isAcknowledged(outcome)) unacknowledgedProbes.push(outcome);
      return isAcknowledged(outcome);
    },
    limitMs,
    'the receiver to accept deliveries',
  );
}
const unacknowledgedProbes: Outcome[] = [];

/**
 * Svix's side once the receiver accepts again: each delivery refused meanwhile, the probes too,
 * comes again (same svix-id, same body) and is acknowledged. Then every user is stored and both
 * processes still run. Returns how many came again and how long the queue took to drain.
 */
async function redeliverRefused(refused: Outcome[]) {
  const pending = [...refused, ...unacknowledgedProbes];
  const retried = await sendAll(
    receiver.url,
    pending.map((outcome) => outcome.delivery),
  );
  expect(tally(retried)).toEqual({ 202: pending.length });
  const drainMs = await stack.waitUntilDrained(users.size, 60_000);
  expect((await stack.jobCounts()).failed).toBe(0);
  await expectExactlyStored(stack.db, users);
  expect([receiver.isRunning(), worker.isRunning()]).toEqual([true, true]);
  return { redelivered: retried.length, drainMs };
}

it('answers 503 within 5 s while Redis is down, reports it, and takes deliveries again once Redis is back, with no restart', async () => {
  const scenario = startScenario('3 redis down (killed)');
  await sendNewUsers(BATCH);

  await stack.redis.kill();
  const downAt = performance.now();
  const duringOutage = await sendAll(receiver.url, newUsers(BATCH, users), 16);
  const receiverHealth = await health(receiver);
  const workerHealth = await health(worker);

  expect(tally(duringOutage)).toEqual({ 503: BATCH });
  expect(maxMs(duringOutage)).toBeLessThan(UNAVAILABLE_WITHIN_MS);
  // Svix retries a 503 on its own schedule; the header says when it may.
  expect(new Set(duringOutage.map((outcome) => outcome.retryAfter))).toEqual(new Set(['5']));
  expect(receiverHealth).toMatchObject({
    status: 503,
    body: { status: 'unavailable', redis: 'disconnected', database: 'connected' },
  });
  expect(receiverHealth.ms).toBeLessThan(HEALTH_WITHIN_MS);
  expect(workerHealth.body).toMatchObject({ redis: 'disconnected' });

  await stack.redis.restart();
  const restartedAt = performance.now();
  const backMs = await timeUntilAccepting(30_000);
  await sendNewUsers(BATCH);
  const { redelivered, drainMs } = await redeliverRefused(duringOutage);
  expect((await health(receiver)).status).toBe(200);
  expect((await health(worker)).status).toBe(200);

  scenario.report({
    outageMs: Math.round(restartedAt - downAt),
    during: tally(duringOutage),
    max503Ms: maxMs(duringOutage),
    healthDuringOutage: { ...receiverHealth.body, ms: Math.round(receiverHealth.ms) },
    restartToFirstAckMs: Math.round(backMs),
    redeliveredAfterOutage: redelivered,
    drainMs: Math.round(drainMs),
    stored: users.size,
  });
});

it('answers 503 within 5 s while Redis hangs (SIGSTOP), and recovers when it answers again', async () => {
  const scenario = startScenario('3 redis hung (SIGSTOP)');
  unacknowledgedProbes.length = 0;
  stack.redis.freeze();
  const frozenAt = performance.now();
  // One round of concurrent deliveries: each of them waits out the receiver's Redis timeout.
  const duringHang = await sendAll(receiver.url, newUsers(HUNG_DELIVERIES, users), HUNG_DELIVERIES);
  const receiverHealth = await health(receiver);
  stack.redis.thaw();
  const thawedAt = performance.now();

  expect(tally(duringHang)).toEqual({ 503: HUNG_DELIVERIES });
  expect(maxMs(duringHang)).toBeLessThan(UNAVAILABLE_WITHIN_MS);
  expect(receiverHealth).toMatchObject({ status: 503, body: { redis: 'disconnected' } });
  expect(receiverHealth.ms).toBeLessThan(HEALTH_WITHIN_MS);

  const backMs = await timeUntilAccepting(30_000);
  const { drainMs } = await redeliverRefused(duringHang);

  scenario.report({
    hangMs: Math.round(thawedAt - frozenAt),
    during: tally(duringHang),
    max503Ms: maxMs(duringHang),
    healthDuringHangMs: Math.round(receiverHealth.ms),
    thawToFirstAckMs: Math.round(backMs),
    drainMs: Math.round(drainMs),
    stored: users.size,
  });
});
