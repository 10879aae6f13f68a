import { beforeAll, expect, it } from 'vitest';
import { clerkId, sampleUserEvent } from '../../src/clerk/sample-events.ts';
import { countRows } from '../support/database.ts';
import { health, type ServiceProcess } from '../support/services.ts';
import { useFaultStack } from '../support/stack.ts';
import { deliver } from '../support/svix.ts';
import { waitFor } from '../support/wait.ts';

const stack = useFaultStack();
let receiver: ServiceProcess;
let worker: ServiceProcess;

async function probe(service: ServiceProcess, path: '/livez' | '/readyz') {
  const response = await fetch(`${service.url}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: await response.json() };
}

beforeAll(async () => {
  // Both processes reach PostgreSQL through the proxy, so that it can be taken from both.
  [receiver, worker] = await Promise.all([
    stack.startReceiver({ DATABASE_URL: stack.proxy.url }),
    stack.startWorker(),
  ]);
});

it('keeps the receiver ready and queueing while PostgreSQL is unreachable, and takes the worker out of service', async () => {
  expect(await probe(receiver, '/readyz')).toEqual({
    status: 200,
    body: { status: 'ready', redis: 'connected' },
  });
  expect(await probe(worker, '/readyz')).toEqual({
    status: 200,
    body: { status: 'ready', database: 'connected', redis: 'connected' },
  });

  stack.proxy.refuse();
  stack.proxy.cutAll();
  const clerkUserId = clerkId('user');
  const delivery = await deliver(
    receiver.url,
    sampleUserEvent('user.created', { id: clerkUserId }),
  );

  expect(delivery.status).toBe(202);
  expect(await probe(receiver, '/livez')).toEqual({ status: 200, body: { status: 'ok' } });
  expect(await probe(receiver, '/readyz')).toEqual({
    status: 200,
    body: { status: 'ready', redis: 'connected' },
  });
  expect(await health(receiver)).toMatchObject({
    status: 503,
    body: { database: 'disconnected', redis: 'connected' },
  });
  expect(await probe(worker, '/livez')).toEqual({ status: 200, body: { status: 'ok' } });
  expect(await probe(worker, '/readyz')).toEqual({
    status: 503,
    body: { status: 'unavailable', database: 'disconnected', redis: 'connected' },
  });
  expect(await health(worker)).toMatchObject({
    status: 503,
    body: { database: 'disconnected', redis: 'connected' },
  });

  stack.proxy.accept();

  await waitFor(
    async () => (await probe(worker, '/readyz')).status === 200,
    10_000,
    'the worker to be ready again',
  );
  await waitFor(
    async () => (await countRows(stack.db, 'users', 'clerk_user_id = ?', [clerkUserId])) === 1,
    30_000,
    'the delivery queued during the outage to be stored',
  );
});
