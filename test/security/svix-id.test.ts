import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sampleUserEvent } from '../../src/clerk/sample-events.ts';
import { useReceiverStack } from '../support/stack.ts';
import { deliver, newSvixId } from '../support/svix.ts';

const { stack, receiver } = useReceiverStack();
let redis: Redis;
beforeAll(() => {
  redis = new Redis(stack.redis.url);
});
afterAll(() => redis?.disconnect());

/** Every key of the queue in Redis: what a refused delivery may not touch. */
async function queueKeys(): Promise<string[]> {
  const keys = await redis.keys(`bull:${stack.queueName}:*`);
  return keys.sort();
}

it.each([
  // BullMQ's own keys: `meta` was answered 202 with nothing stored, `events` 503 forever.
  'meta',
  'events',
  'wait',
  'id',
  'stalled-check',
  'msg_',
  'msg_a:b',
  'msg_a-b',
  `msg_${'a'.repeat(65)}`,
  'MSG_2KWPBgLlAfxdpx2AI54pPJ85f1W',
])(
  'answers 400 to a validly signed delivery whose svix-id is %s, and stores nothing',
  async (svixId) => {
    const keysBefore = await queueKeys();
    const answer = await deliver(receiver.url, sampleUserEvent('user.created'), { svixId });
    expect({ status: answer.status, body: await answer.json() }).toEqual({
      status: 400,
      body: { error: 'malformed svix-id header' },
    });
    expect(await queueKeys()).toEqual(keysBefore);
  },
);

it('answers 202 only with the job in Redis under the delivery svix-id', async () => {
  const svixIds = [newSvixId(), 'msg_2KWPBgLlAfxdpx2AI54pPJ85f1W', `msg_${'a'.repeat(64)}`];
  for (const svixId of svixIds) {
    const answer = await deliver(receiver.url, sampleUserEvent('user.created'), { svixId });
    expect({ status: answer.status, body: await answer.json() }).toEqual({
      status: 202,
      body: { status: 'queued', id: svixId },
    });
  }
  expect(await stack.jobIds()).toEqual(new Set(svixIds));
});
