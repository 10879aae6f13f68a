import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Webhook } from 'svix';
import { expect, it } from 'vitest';
import { processCpuMicros } from '../../bench/cpu.ts';
import { clerkId, sampleDeletedEvent, sampleUserEvent } from '../../src/clerk/sample-events.ts';
import { rawRequest } from '../support/http.ts';
import { health } from '../support/services.ts';
import { report, useReceiverStack } from '../support/stack.ts';
import { OLD_SECRET, TEST_SECRET } from '../support/svix.ts';

/** Enough to meet every kind of case many times over, few enough for well under a minute. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 1_000);
/** Reproduce a failing run with FUZZ_SEED=<the seed fast-check reported>. */
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** Generous: a delivery costs well under a millisecond; one quadratic scrub of a long URL, 400. */
const CPU_PER_REQUEST_MAX_MS = 5;
const SIX_MINUTES_MS = 6 * 60 * 1000;

// info: the request lines are logged, so the scrubber runs on every URL.
const { stack, receiver } = useReceiverStack({ LOG_LEVEL: 'info' });

type Signing = 'none' | 'junk' | 'valid' | 'another secret' | 'stale' | 'ahead';

interface Case {
  method: string;
  path: string;
  headers: Record<string, string>;
  encoding: string | undefined;
  body: Buffer | undefined;
  signing: Signing;
  svixId: string;
}

/** Paths that a backtracking scrubber, or a router, might choke on: up to 14,000 characters. */
const longPath = fc
  .tuple(
    fc.constantFrom('a', 'a.', 'a@', 'x@y.', '.x', '%41'),
    fc.integer({ min: 500, max: 7_000 }),
  )
  .map(([unit, count]) => `/${unit.repeat(count)}`.slice(0, 14_000));

const path = fc.oneof(
  { weight: 8, arbitrary: fc.constant('/webhooks/clerk') },
  fc.constantFrom(
    '/',
    '/webhooks',
    '/webhooks/clerk/',
    '/webhooks/clerk?x=1',
    '/webhooks/CLERK',
    '/api/v1/health',
    '/metrics',
    '/admin/queues',
    '/%zz',
  ),
  fc.webPath(),
  { weight: 2, arbitrary: longPath },
);

const headerValue = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 64 }) },
  fc.string({ unit: 'grapheme-ascii', minLength: 1_000, maxLength: 12_000 }),
);

const extraHeaders = fc.dictionary(
  fc.oneof(
    fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
    fc.constantFrom('content-type', 'user-agent', 'accept', 'cookie', 'authorization'),
  ),
  headerValue,
  { maxKeys: 4 },
);

const clerkEvent = fc
  .constantFrom('user.created', 'user.updated', 'user.deleted', 'session.created')
  .map((type) => {
    const id = clerkId('user');
    if (type === 'user.deleted') return sampleDeletedEvent(id);
    if (type === 'session.created') return { type, object: 'event', data: { id } };
    return sampleUserEvent(type, { id });
  });

const body = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 4_096 }).map((bytes) => Buffer.from(bytes)),
  fc.json().map((json) => Buffer.from(json)),
  fc
    .record({ type: fc.string(), object: fc.constantFrom('event', 'user'), data: fc.object() })
    .map((event) => Buffer.from(JSON.stringify(event))),
  { weight: 4, arbitrary: clerkEvent.map((event) => Buffer.from(JSON.stringify(event))) },
);

const svixId = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z0-9]{27}$/).map((id) => `msg_${id}`) },
  // BullMQ's own keys: `meta` was answered 202 with no job, `events` 503 for good.
  { weight: 2, arbitrary: fc.constantFrom('meta', 'events', 'wait', 'id', 'stalled-check') },
  fc.constantFrom('1', 'msg_', 'msg_a:b', `msg_${'a'.repeat(65)}`),
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 100 }),
);

const fuzzCase: fc.Arbitrary<Case> = fc.record({
  method: fc.oneof(
    { weight: 6, arbitrary: fc.constant('POST') },
    fc.constantFrom('GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'PROPFIND'),
  ),
  path,
  headers: extraHeaders,
  encoding: fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    fc.constantFrom('identity', 'IDENTITY'),
    fc.constantFrom('gzip', 'deflate', 'br', 'x-zip', 'identity, gzip'),
  ),
  body,
  signing: fc.constantFrom<Signing>(
    'none',
    'junk',
    'valid',
    'valid',
    'valid',
    'another secret',
    'stale',
    'ahead',
  ),
  svixId,
});

const SIGNED_AT_OFFSET_MS: Partial<Record<Signing, number>> = {
  stale: -SIX_MINUTES_MS,
  ahead: SIX_MINUTES_MS,
};

function svixHeaders(sent: Case, payload: Buffer): Record<string, string> {
  if (sent.signing === 'none') return {};
  const at = new Date(Date.now() + (SIGNED_AT_OFFSET_MS[sent.signing] ?? 0));
  const secret = sent.signing === 'another secret' ? OLD_SECRET : TEST_SECRET;
  const signature =
    sent.signing === 'junk'
      ? `v1,${Buffer.alloc(32, 7).toString('base64')}`
      : new Webhook(secret).sign(sent.svixId, at, payload.toString('utf8'));
  return {
    'svix-id': sent.svixId,
    'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
    'svix-signature': signature,
  };
}

/** What was sent on the wire: the body compressed when it says gzip, so that it could be inflated. */
function wireBody(sent: Case): Buffer | undefined {
  if (sent.body && sent.encoding === 'gzip') return gzipSync(sent.body);
  return sent.body;
}

it('answers random requests, signed and not, with no 5xx but 503, queues only what is validly signed, and stays cheap', async () => {
  const statuses: Record<string, number> = {};
  const accepted = new Set<string>();
  let requests = 0;
  const cpuBefore = await processCpuMicros(receiver.pid);

  await fc.assert(
    fc.asyncProperty(fuzzCase, async (sent) => {
      const payload = sent.body ?? Buffer.alloc(0);
      const headers: Record<string, string> = { ...sent.headers, ...svixHeaders(sent, payload) };
      if (sent.encoding !== undefined) headers['content-encoding'] = sent.encoding;
      const answer = await rawRequest(receiver.url, sent.path, {
        method: sent.method,
        headers,
        body: wireBody(sent),
      });
      requests++;
      statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;

      expect(answer.status === 503 || answer.status < 500).toBe(true);
      if (answer.status === 202) {
        expect(sent.signing).toBe('valid');
        expect(JSON.parse(answer.body)).toMatchObject({ id: sent.svixId });
        accepted.add(sent.svixId);
      }
    }),
    { numRuns: RUNS, seed: SEED, endOnFailure: true },
  );

  const cpuPerRequestMs = ((await processCpuMicros(receiver.pid)) - cpuBefore) / 1000 / requests;
  report('security: fuzz', {
    requests,
    statuses,
    accepted: accepted.size,
    cpuPerRequestMs: cpuPerRequestMs.toFixed(2),
  });
  expect(await stack.jobIds()).toEqual(accepted);
  expect(accepted.size).toBeGreaterThan(0);
  expect(cpuPerRequestMs).toBeLessThan(CPU_PER_REQUEST_MAX_MS);
  expect((await health(receiver)).status).toBe(200);
});
