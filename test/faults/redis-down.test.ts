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
  report,
  useRunningStack,
  waitUntilDrained,
} from '../support/stack.ts';

/** Redis unreachable, the receiver answers 503 within 5 s, so that Svix retries. */
const UNAVAILABLE_WITHIN_MS = 5_000;
/** The health check answers within 2 s, even when a dependency hangs. */
const HEALTH_WITHIN_MS = 2_000;
const BATCH = 200;
const HUNG_DELIVERIES = 32;

const running = useRunningStack();
const { stack, users } = running;

/** Svix's side: a delivery answered with anything but 2xx comes again, same svix-id, same body. */
async function redeliverUntilAcknowledged(outcomes: Outcome[]): Promise<Outcome[]> {
  const pending = outcomes.filter((outcome) => !isAcknowledged(outcome));
  return sendAll(
    running.receiver.url,
    pending.map((outcome) => outcome.delivery),
  );
}

/** Probes with one new delivery every 100 ms until one is acknowledged; ms it took. */
async function timeUntilAccepting(limitMs: number): Promise<number> {
  const startedAt = performance.now();
  while (performance.now() - startedAt < limitMs) {
    const [probe] = newUsers(1, users);
    const outcome = await send(running.receiver.url, probe as Delivery);
    if (isAcknowledged(outcome)) return performance.now() - startedAt;
    // Not acknowledged now: Svix would send it again later, and so do we below.
    unacknowledgedProbes.push(outcome);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the receiver did not accept deliveries within ${limitMs} ms`);
}
const unacknowledgedProbes: Outcome[] = [];

it('answers 503 within 5 s while Redis is down, reports it, and takes deliveries again once Redis is back, with no restart', async () => {
  const startedAt = performance.now();
  const before = await sendAll(running.receiver.url, newUsers(BATCH, users));
  expect(tally(before)).toEqual({ 202: BATCH });

  await stack.redis.kill();
  const downAt = performance.now();
  const duringOutage = await sendAll(running.receiver.url, newUsers(BATCH, users), 16);
  const receiverHealth = await health(running.receiver);
  const workerHealth = await health(running.worker);

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
  const after = await sendAll(running.receiver.url, newUsers(BATCH, users));
  expect(tally(after)).toEqual({ 202: BATCH });
  const retried = await redeliverUntilAcknowledged([...duringOutage, ...unacknowledgedProbes]);
  expect(tally(retried)).toEqual({ 202: duringOutage.length + unacknowledgedProbes.length });

  const drainMs = await waitUntilDrained(stack, users.size, 60_000);
  expect((await stack.jobCounts()).failed).toBe(0);
  await expectExactlyStored(stack.db, users);
  expect([running.receiver.isRunning(), running.worker.isRunning()]).toEqual([true, true]);
  expect((await health(running.receiver)).status).toBe(200);
  expect((await health(running.worker)).status).toBe(200);

  report('3 redis down (killed)', {
    outageMs: Math.round(restartedAt - downAt),
    during: tally(duringOutage),
    max503Ms: maxMs(duringOutage),
    healthDuringOutage: { ...receiverHealth.body, ms: Math.round(receiverHealth.ms) },
    restartToFirstAckMs: Math.round(backMs),
    redeliveredAfterOutage: retried.length,
    drainMs: Math.round(drainMs),
    stored: users.size,
    scenarioMs: Math.round(performance.now() - startedAt),
  });
});

it('answers 503 within 5 s while Redis hangs (SIGSTOP), and recovers when it answers again', async () => {
  const startedAt = performance.now();
  unacknowledgedProbes.length = 0;
  stack.redis.freeze();
  const frozenAt = performance.now();
  // One round of concurrent deliveries: each of them waits out the receiver's Redis timeout.
  const duringHang = await sendAll(
    running.receiver.url,
    newUsers(HUNG_DELIVERIES, users),
    HUNG_DELIVERIES,
  );
  const receiverHealth = await health(running.receiver);
  stack.redis.thaw();
  const thawedAt = performance.now();

  expect(tally(duringHang)).toEqual({ 503: HUNG_DELIVERIES });
  expect(maxMs(duringHang)).toBeLessThan(UNAVAILABLE_WITHIN_MS);
  expect(receiverHealth).toMatchObject({ status: 503, body: { redis: 'disconnected' } });
  expect(receiverHealth.ms).toBeLessThan(HEALTH_WITHIN_MS);

  const backMs = await timeUntilAccepting(30_000);
  const retried = await redeliverUntilAcknowledged([...duringHang, ...unacknowledgedProbes]);
  expect(tally(retried)).toEqual({ 202: duringHang.length + unacknowledgedProbes.length });
  const drainMs = await waitUntilDrained(stack, users.size, 60_000);
  expect((await stack.jobCounts()).failed).toBe(0);
  await expectExactlyStored(stack.db, users);
  expect([running.receiver.isRunning(), running.worker.isRunning()]).toEqual([true, true]);

  report('3 redis hung (SIGSTOP)', {
    hangMs: Math.round(thawedAt - frozenAt),
    during: tally(duringHang),
    max503Ms: maxMs(duringHang),
    healthDuringHangMs: Math.round(receiverHealth.ms),
    thawToFirstAckMs: Math.round(backMs),
    drainMs: Math.round(drainMs),
    stored: users.size,
    scenarioMs: Math.round(performance.now() - startedAt),
  });
});
