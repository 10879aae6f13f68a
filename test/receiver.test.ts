import type { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { sampleDeletedEvent, sampleUserEvent } from '../src/clerk/sample-events.ts';
import type { Logger } from '../src/logger.ts';
import type { ClerkEvent } from '../src/queue/queue.ts';
import { MAX_BODY_BYTES } from '../src/webhooks/clerk-webhook.ts';
import { toJobEvent } from '../src/webhooks/job-event.ts';
import { cleanUpAfterEach, useTestDatabase } from './support/hooks.ts';
import { metricsText, rawRequest } from './support/http.ts';
import { capturingLogger, expectCleanLogsAfterEach } from './support/logs.ts';
import { failWaitingJobs } from './support/queue.ts';
import { type InProcessReceiver, startInProcessReceiver } from './support/receiver.ts';
import { deliver, newSvixId, OLD_SECRET, signedHeaders, TEST_SECRET } from './support/svix.ts';

const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;
const SIX_MINUTES_MS = 6 * 60 * 1000;

const db = useTestDatabase();
const logs = capturingLogger();
const cleanUpLater = cleanUpAfterEach();
expectCleanLogsAfterEach(logs, [TEST_SECRET]);

/** A receiver on its own queue, stopped and its queue removed after the test. */
async function startTestReceiver(
  overrides: Record<string, string | undefined> = {},
  options: { waitUntilHealthy?: boolean; log?: Logger } = {},
): Promise<InProcessReceiver> {
  const receiver = await startInProcessReceiver(
    { DATABASE_URL: db.url, ...overrides },
    { log: logs.log, ...options },
  );
  cleanUpLater(() => receiver.stop());
  return receiver;
}

async function jobIds(queue: Queue): Promise<string[]> {
  const jobs = await queue.getJobs([...JOB_STATES]);
  return jobs.map((job) => job.id ?? '').sort();
}

function rawPost(url: string, body: Buffer | string, headers: Record<string, string>) {
  return rawRequest(url, '/webhooks/clerk', { headers, body });
}

/** The receiver's warnings about refused signatures: the delivery's id and why, once each. */
function signatureRejections() {
  return logs
    .records()
    .filter((record) => record.msg === 'webhook signature rejected')
    .map(({ level, svixId, reason }) => ({ level, svixId, reason }));
}

/** The line of /metrics that counts `count` webhooks of this type and outcome. */
function received(type: string, outcome: string, count: number): RegExp {
  const labels = `type="${type.replaceAll('.', '\\.')}",outcome="${outcome}"`;
  return new RegExp(`^clerk_sync_webhooks_received_total\\{${labels}\\} ${count}$`, 'm');
}

describe('POST /webhooks/clerk', () => {
  it('queues a valid delivery as one job named by its svix-id, keeping only what the worker reads', async () => {
    const { url, queue } = await startTestReceiver();
    const event = sampleUserEvent('user.created', { timezone: 'Europe/Paris' });
    const svixId = newSvixId();

    const response = await deliver(url, event, { svixId });

    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ status: 'queued', id: svixId });
    expect(await jobIds(queue)).toEqual([svixId]);
    const job = await queue.getJob(svixId);
    expect(job?.name).toBe('user.created');
    expect(Object.keys(job?.data ?? {}).sort()).toEqual(['event', 'receivedAt', 'svixId']);
    expect(job?.data.svixId).toBe(svixId);
    expect(job?.data.event).toEqual(
      JSON.parse(JSON.stringify(toJobEvent(event as unknown as ClerkEvent))),
    );
    expect(Object.keys(job?.data.event.data ?? {}).sort()).toEqual([
      'email_addresses',
      'id',
      'primary_email_address_id',
      'public_metadata',
      'unsafe_metadata',
      'updated_at',
    ]);
    expect(job?.data.event.data.public_metadata).toEqual({ timezone: 'Europe/Paris' });
    expect(job?.data.event.data).not.toHaveProperty('first_name');
    expect(job?.data.event).not.toHaveProperty('event_attributes');
    expect(job?.data.event.data.email_addresses).toEqual([
      {
        id: event.data.email_addresses[0]?.id,
        email_address: event.data.email_addresses[0]?.email_address,
        verification: { status: 'verified' },
      },
    ]);
  });

  it('queues a user.deleted by its id', async () => {
    const { url, queue } = await startTestReceiver();
    const svixId = newSvixId();
    expect((await deliver(url, sampleDeletedEvent('user_deleted_1'), { svixId })).status).toBe(202);
    const job = await queue.getJob(svixId);
    expect(job?.name).toBe('user.deleted');
    expect(job?.data.event.data).toMatchObject({ id: 'user_deleted_1', deleted: true });
  });

  it('rejects a tampered body with 401 and queues nothing', async () => {
    const { url, queue } = await startTestReceiver();
    const body = JSON.stringify(sampleUserEvent('user.created'));
    const headers = signedHeaders(body);

    const response = await rawPost(url, body.replace('"Example"', '"Mallory"'), headers);

    expect(response.status).toBe(401);
    expect(await jobIds(queue)).toEqual([]);
    expect(signatureRejections()).toEqual([
      { level: 40, svixId: headers['svix-id'], reason: 'No matching signature found' },
    ]);
  });

  it.each([
    ['stale', -SIX_MINUTES_MS],
    ['future', SIX_MINUTES_MS],
  ])('rejects a %s timestamp with 401', async (_label, offsetMs) => {
    const { url, queue } = await startTestReceiver();
    const svixId = newSvixId();
    const response = await deliver(url, sampleUserEvent('user.created'), {
      svixId,
      timestamp: new Date(Date.now() + offsetMs),
    });
    expect(response.status).toBe(401);
    expect(await jobIds(queue)).toEqual([]);
    expect(signatureRejections()).toEqual([
      { level: 40, svixId, reason: 'svix-timestamp is not within 5 minutes of now' },
    ]);
  });

  it.each(['svix-id', 'svix-timestamp', 'svix-signature'])(
    'rejects a delivery without %s with 400',
    async (header) => {
      const { url, queue } = await startTestReceiver();
      const body = JSON.stringify(sampleUserEvent('user.created'));
      const headers = signedHeaders(body);
      delete headers[header];

      const response = await rawPost(url, body, headers);

      expect(response.status).toBe(400);
      expect(await jobIds(queue)).toEqual([]);
    },
  );

  it('accepts deliveries signed with any configured secret while one is rotated', async () => {
    const { url, queue } = await startTestReceiver({
      CLERK_WEBHOOK_SIGNING_SECRET: `${TEST_SECRET},${OLD_SECRET}`,
    });
    const newId = newSvixId();
    const oldId = newSvixId();
    const otherSecret = `whsec_${Buffer.from('some other endpoint secret').toString('base64')}`;

    const statuses = await Promise.all(
      [
        { svixId: newId, secret: TEST_SECRET },
        { svixId: oldId, secret: OLD_SECRET },
        { secret: otherSecret },
      ].map(
        async (options) => (await deliver(url, sampleUserEvent('user.created'), options)).status,
      ),
    );

    expect(statuses).toEqual([202, 202, 401]);
    expect(await jobIds(queue)).toEqual([newId, oldId].sort());
  });

  it('accepts a header carrying several signatures when one of them is valid', async () => {
    const { url, queue } = await startTestReceiver();
    const body = JSON.stringify(sampleUserEvent('user.created'));
    const headers = signedHeaders(body);
    const forged = `v1,${Buffer.alloc(32, 7).toString('base64')}`;

    const onlyForged = await rawPost(url, body, {
      ...headers,
      'svix-signature': `${forged} v1a,abc`,
    });
    const withValid = await rawPost(url, body, {
      ...headers,
      'svix-signature': `${forged} ${headers['svix-signature']} v1a,abc`,
    });

    expect(onlyForged.status).toBe(401);
    expect(withValid.status).toBe(202);
    expect(await jobIds(queue)).toEqual([headers['svix-id']]);
  });

  it('answers 413 to a body over 1 MiB and accepts one of exactly 1 MiB', async () => {
    const { url, queue } = await startTestReceiver({}, { log: capturingLogger('info').log });
    const sized = (bytes: number) => {
      const event = sampleUserEvent('user.created');
      const bare = JSON.stringify({
        ...event,
        data: { ...event.data, private_metadata: { pad: '' } },
      });
      const pad = 'x'.repeat(bytes - Buffer.byteLength(bare));
      return JSON.stringify({ ...event, data: { ...event.data, private_metadata: { pad } } });
    };
    const exact = sized(MAX_BODY_BYTES);
    const over = sized(MAX_BODY_BYTES + 1);
    expect(Buffer.byteLength(exact)).toBe(1024 * 1024);

    const tooLarge = await rawPost(url, over, signedHeaders(over));
    const justFits = await rawPost(url, exact, signedHeaders(exact, { svixId: 'msg_exact' }));

    expect(tooLarge.status).toBe(413);
    expect(justFits.status).toBe(202);
    expect(await jobIds(queue)).toEqual(['msg_exact']);
    expect(await metricsText(url)).toMatch(received('unknown', 'too_large', 1));
  });

  it('answers 400 to a validly signed body that is not JSON', async () => {
    const { url, queue } = await startTestReceiver();
    const body = 'type=user.created&object=event';
    expect((await rawPost(url, body, signedHeaders(body))).status).toBe(400);
    expect(await jobIds(queue)).toEqual([]);
  });

  it.each([
    ['an array', [1, 2, 3]],
    ['a string', 'user.created'],
    ['null', null],
    ['an object that is not an event', { type: 'user.created', object: 'user', data: {} }],
    ['an event without data', { type: 'user.created', object: 'event' }],
    ['an event whose data is not an object', { type: 'user.created', object: 'event', data: [] }],
    ['an event without a type', { object: 'event', data: {} }],
  ])('answers 400 to validly signed JSON that is %s', async (_label, payload) => {
    const { url, queue } = await startTestReceiver();
    expect((await deliver(url, payload)).status).toBe(400);
    expect(await jobIds(queue)).toEqual([]);
  });

  it('acknowledges an event type it does not process, queues nothing, and counts it', async () => {
    const { url, queue } = await startTestReceiver();
    const session = {
      type: 'session.created',
      object: 'event',
      data: { id: 'sess_1', user_id: 'user_1' },
      timestamp: Date.now(),
    };

    const response = await deliver(url, session);

    expect(response.status).toBe(200);
    expect(await jobIds(queue)).toEqual([]);
    expect(await metricsText(url)).toMatch(received('session.created', 'ignored', 1));
  });

  it('queues a validly signed user event that has no envelope timestamp', async () => {
    const { url, queue } = await startTestReceiver();
    const { timestamp: _, ...event } = sampleUserEvent('user.created');
    const svixId = newSvixId();

    const response = await deliver(url, event, { svixId });

    expect(response.status).toBe(202);
    expect(await jobIds(queue)).toEqual([svixId]);
  });

  it('queues a delivery received twice with the same svix-id once', async () => {
    const { url, queue } = await startTestReceiver();
    const svixId = newSvixId();
    const event = sampleUserEvent('user.created');

    const answers = await Promise.all([
      deliver(url, event, { svixId }),
      deliver(url, event, { svixId }),
      deliver(url, event, { svixId }),
    ]);
    const again = await deliver(url, event, { svixId });

    expect([...answers, again].map((response) => response.status)).toEqual([202, 202, 202, 202]);
    expect(await jobIds(queue)).toEqual([svixId]);
  });

  it('puts a failed job back in waiting when its delivery comes again', async () => {
    const { url, queue } = await startTestReceiver();
    const svixId = newSvixId();
    const event = sampleUserEvent('user.created');
    expect((await deliver(url, event, { svixId })).status).toBe(202);

    await failWaitingJobs(queue, 1);
    expect(await queue.getJobState(svixId)).toBe('failed');

    const redelivery = await deliver(url, event, { svixId });

    expect(redelivery.status).toBe(202);
    expect(await redelivery.json()).toEqual({ status: 'requeued', id: svixId });
    expect(await queue.getJobState(svixId)).toBe('waiting');
    expect((await queue.getJob(svixId))?.attemptsMade).toBe(0);
    expect(await jobIds(queue)).toEqual([svixId]);
    expect(await metricsText(url)).toMatch(received('user.created', 'requeued', 1));
  });
});

describe('/admin/queues', () => {
  it('is not served when no dashboard credentials are configured', async () => {
    const { url } = await startTestReceiver();
    expect((await fetch(`${url}/admin/queues`)).status).toBe(404);
  });

  it('asks for the configured basic-auth credentials', async () => {
    const { url } = await startTestReceiver({
      DASHBOARD_USERNAME: 'operator',
      DASHBOARD_PASSWORD: 'correct horse',
    });
    const basic = (user: string, password: string) => ({
      authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
    });

    const anonymous = await fetch(`${url}/admin/queues`);
    const wrongPassword = await fetch(`${url}/admin/queues`, {
      headers: basic('operator', 'wrong'),
    });
    const wrongUser = await fetch(`${url}/admin/queues`, {
      headers: basic('admin', 'correct horse'),
    });
    const right = await fetch(`${url}/admin/queues`, {
      headers: basic('operator', 'correct horse'),
    });

    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect(wrongPassword.status).toBe(401);
    expect(wrongUser.status).toBe(401);
    expect(right.status).toBe(200);
    expect(await right.text()).toMatch(/<html/i);
  });
});

describe('GET /metrics', () => {
  it('counts webhooks received by type and outcome', async () => {
    const { url } = await startTestReceiver();
    await deliver(url, sampleUserEvent('user.created'));
    await deliver(url, sampleUserEvent('user.updated'));
    await deliver(url, sampleUserEvent('user.created'), { secret: OLD_SECRET });

    const text = await metricsText(url);

    expect(text).toContain('# TYPE clerk_sync_webhooks_received_total counter');
    expect(text).toMatch(received('user.created', 'queued', 1));
    expect(text).toMatch(received('user.updated', 'queued', 1));
    expect(text).toMatch(received('unknown', 'invalid_signature', 1));
    expect(text).toMatch(/^clerk_sync_queue_jobs\{state="waiting"\} 2$/m);
  });

  it('moves to a port of its own when METRICS_PORT is set', async () => {
    const { url, metricsUrl } = await startTestReceiver({ METRICS_PORT: '0' });
    await deliver(url, sampleUserEvent('user.created'));

    expect(metricsUrl).not.toBe(url);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
    expect(await metricsText(metricsUrl)).toMatch(/outcome="queued"\} 1$/m);
  });
});

describe('whatever a client sends', () => {
  it('is answered without a 5xx', async () => {
    const { url, queue } = await startTestReceiver();
    const body = JSON.stringify(sampleUserEvent('user.created'));
    const headers = signedHeaders(body);
    const cases: [string, Buffer | string, Record<string, string>, number][] = [
      ['garbage content-type', body, { ...headers, 'content-type': '%%%/;;;' }, 202],
      ['no headers at all', '', {}, 400],
      ['an empty body', '', { ...headers, 'svix-id': newSvixId() }, 401],
      ['an empty body, validly signed', '', signedHeaders(''), 400],
      ['a huge header', '', { ...headers, 'x-padding': 'x'.repeat(20 * 1024) }, 431],
      ['a svix-id with a colon', body, { ...headers, 'svix-id': 'msg:1' }, 400],
      ['a numeric svix-id', body, { ...headers, 'svix-id': '12345' }, 400],
      ['a non-numeric timestamp', body, { ...headers, 'svix-timestamp': 'yesterday' }, 401],
      ['a garbage signature', body, { ...headers, 'svix-signature': ',,, v1 v1,' }, 401],
      ['an unknown content-encoding', body, { ...headers, 'content-encoding': 'x-zip' }, 415],
      ['a gzip content-encoding', body, { ...headers, 'content-encoding': 'gzip' }, 415],
    ];

    for (const [label, payload, requestHeaders, expected] of cases) {
      const response = await rawPost(url, payload, requestHeaders);
      expect({ label, status: response.status }).toEqual({ label, status: expected });
    }
    expect(await jobIds(queue)).toEqual([headers['svix-id']]);
    expect(await metricsText(url)).toMatch(received('unknown', 'bad_request', 4));
  });
});
