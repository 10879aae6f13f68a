import { request } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { expect, it } from 'vitest';
import { sampleUserEvent } from '../../src/clerk/sample-events.ts';
import { MAX_BODY_BYTES } from '../../src/webhooks/clerk-webhook.ts';
import { rawRequest } from '../support/http.ts';
import { useReceiverStack } from '../support/stack.ts';
import { signedHeaders } from '../support/svix.ts';

const SIX_MINUTES_MS = 6 * 60 * 1000;
/** How long a client that never sends its body waits for the answer before giving up. */
const ANSWER_WAIT_MS = 5_000;

const { stack, receiver } = useReceiverStack();

const event = JSON.stringify(sampleUserEvent('user.created'));

async function isQueued(svixId: string | undefined): Promise<boolean> {
  return (await stack.jobIds()).has(svixId ?? '');
}

it.each([
  ['gzip', gzipSync(event)],
  ['deflate', deflateSync(event)],
  ['br', brotliCompressSync(event)],
  ['x-zip', Buffer.from(event)],
  ['identity, gzip', gzipSync(event)],
])(
  'answers 415 to a body sent with Content-Encoding %s, signed or not, and queues nothing',
  async (encoding, body) => {
    for (const headers of [signedHeaders(body.toString('latin1')), signedHeaders(event)]) {
      const answer = await rawRequest(receiver.url, '/webhooks/clerk', {
        headers: { ...headers, 'content-encoding': encoding },
        body,
      });
      expect(answer.status).toBe(415);
      expect(await isQueued(headers['svix-id'])).toBe(false);
    }
  },
);

it('answers 415 to a compression bomb under a junk signature, without inflating it', async () => {
  const headers = signedHeaders('not this body');
  const answer = await rawRequest(receiver.url, '/webhooks/clerk', {
    headers: { ...headers, 'content-encoding': 'gzip' },
    // 1 KiB on the wire, 1 MiB once inflated.
    body: gzipSync(Buffer.alloc(MAX_BODY_BYTES, ' ')),
  });
  expect(answer.status).toBe(415);
  expect(await isQueued(headers['svix-id'])).toBe(false);
});

it('queues a delivery sent with Content-Encoding identity', async () => {
  const headers = signedHeaders(event);
  const answer = await rawRequest(receiver.url, '/webhooks/clerk', {
    headers: { ...headers, 'content-encoding': 'identity' },
    body: event,
  });
  expect(answer.status).toBe(202);
  expect(await isQueued(headers['svix-id'])).toBe(true);
});

/**
 * Sends the headers of a request announcing a 1 MiB body, and never the body: only a receiver
 * that decides on the headers alone can answer.
 */
function answerWithoutBody(headers: Record<string, string>): Promise<number | 'no answer'> {
  return new Promise((resolve) => {
    const outgoing = request(`${receiver.url}/webhooks/clerk`, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(MAX_BODY_BYTES) },
    });
    const timer = setTimeout(() => {
      outgoing.destroy();
      resolve('no answer');
    }, ANSWER_WAIT_MS);
    outgoing.on('response', (response) => {
      clearTimeout(timer);
      response.resume();
      outgoing.destroy();
      resolve(response.statusCode ?? 0);
    });
    outgoing.on('error', () => undefined);
    outgoing.flushHeaders();
  });
}

const signedAt = (offsetMs: number) =>
  signedHeaders(event, { timestamp: new Date(Date.now() + offsetMs) });
const without = (name: string) => {
  const { [name]: _, ...headers } = signedHeaders(event);
  return headers;
};

it.each<[string, () => Record<string, string>, number]>([
  ['Content-Encoding gzip', () => ({ ...signedHeaders(event), 'content-encoding': 'gzip' }), 415],
  ['no svix-id', () => without('svix-id'), 400],
  ['no svix-signature', () => without('svix-signature'), 400],
  ['a svix-id naming a BullMQ key', () => ({ ...signedHeaders(event), 'svix-id': 'meta' }), 400],
  [
    'a svix-timestamp that is not an integer',
    () => ({ ...signedHeaders(event), 'svix-timestamp': '1e9' }),
    401,
  ],
  ['a svix-timestamp six minutes old', () => signedAt(-SIX_MINUTES_MS), 401],
  ['a svix-timestamp six minutes ahead', () => signedAt(SIX_MINUTES_MS), 401],
])(
  'answers a delivery with %s from its headers, without waiting for its body',
  async (_label, headers, expected) => {
    const sent = headers();
    expect(await answerWithoutBody(sent)).toBe(expected);
    expect(await isQueued(sent['svix-id'])).toBe(false);
  },
);
