import { createHmac } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { Webhook } from 'svix';
import { sampleUserEvent } from '../src/clerk/sample-events.ts';
import { newSvixId, TEST_SECRET } from '../test/support/svix.ts';
import { percentile } from './stats.ts';

const WEBHOOK_PATH = '/webhooks/clerk';
const SIGNING_KEY = Buffer.from(TEST_SECRET.replace(/^whsec_/, ''), 'base64');

/**
 * Signs a body as Svix does (HMAC-SHA256 of `id.timestamp.body`, base64, `v1,` prefix) with the
 * services' one secret, under a fresh svix-id. node:crypto does it for a fraction of the CPU of
 * svix's pure-JS HMAC, which matters when the load generator shares two cores with the server;
 * the first signature is checked with svix's own verify, so a mismatch stops the run instead of
 * measuring 401s.
 */
function sign(body: string): Record<string, string> {
  const svixId = newSvixId();
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = createHmac('sha256', SIGNING_KEY)
    .update(`${svixId}.${timestamp}.${body}`)
    .digest('base64');
  return {
    'content-type': 'application/json',
    'svix-id': svixId,
    'svix-timestamp': timestamp,
    'svix-signature': `v1,${signature}`,
  };
}
new Webhook(TEST_SECRET).verify('{}', sign('{}'));

/** A Clerk user.created for a user never seen before, as its JSON body. */
function newUserBody(): string {
  return JSON.stringify(sampleUserEvent('user.created'));
}

export interface LoadResult {
  /** 2xx answers per second. */
  deliveriesPerSecond: number;
  /** Response time of the 2xx answers. */
  p50Ms: number;
  p99Ms: number;
  accepted: number;
  /** Answers other than 2xx, and connection errors or timeouts. */
  rejected: number;
  errors: number;
  seconds: number;
}

/** As many deliveries as `connections` keep-alive connections can push for `seconds`. */
export async function saturate(
  baseUrl: string,
  options: { connections: number; seconds: number },
): Promise<LoadResult> {
  const result = await autocannon({
    url: `${baseUrl}${WEBHOOK_PATH}`,
    connections: options.connections,
    duration: options.seconds,
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => {
          const body = newUserBody();
          return { ...request, headers: { ...request.headers, ...sign(body) }, body };
        },
      },
    ],
  });
  return {
    deliveriesPerSecond: result['2xx'] / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    accepted: result['2xx'],
    rejected: result.non2xx,
    errors: result.errors,
    seconds: result.duration,
  };
}

export interface SteadyResult {
  sent: number;
  accepted: number;
  /** Deliveries not accepted, by status code or connection error. */
  refused: Record<string, number>;
  /** The rate actually achieved: deliveries sent over the time it took to send them. */
  ratePerSecond: number;
  httpP50Ms: number;
  httpP99Ms: number;
}

/**
 * Deliveries at a steady rate, each on its own schedule (start + i / rate) rather than in
 * per-second bursts as autocannon's rate limit sends them, so queueing in the service shows
 * as latency and not as a burst the sender made.
 */
export async function sendSteadily(
  baseUrl: string,
  options: { ratePerSecond: number; seconds: number },
): Promise<SteadyResult> {
  const total = Math.round(options.ratePerSecond * options.seconds);
  const intervalMs = 1_000 / options.ratePerSecond;
  const latencies: number[] = [];
  let accepted = 0;
  const refused: Record<string, number> = {};
  const refuse = (reason: string) => {
    refused[reason] = (refused[reason] ?? 0) + 1;
  };

  // node:http with keep-alive costs the sender a fraction of fetch's CPU, which on a shared
  // 2-core machine is CPU the services under test would otherwise lose.
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const url = new URL(`${baseUrl}${WEBHOOK_PATH}`);
  const post = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const request = httpRequest(
        url,
        { method: 'POST', agent, headers: sign(body) },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body);
    });

  const deliver = async () => {
    const body = newUserBody();
    const sentAt = performance.now();
    try {
      const status = await post(body);
      if (status >= 200 && status < 300) {
        accepted++;
        latencies.push(performance.now() - sentAt);
      } else refuse(String(status));
    } catch (error) {
      refuse((error as NodeJS.ErrnoException).code ?? String(error));
    }
  };

  const startedAt = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let index = 0; index < total; index++) {
    const wait = startedAt + index * intervalMs - performance.now();
    // Timers fire about a millisecond late; a delivery that is due (or late) goes at once.
    if (wait >= 1) await sleep(wait);
    inFlight.push(deliver());
  }
  const sendingMs = performance.now() - startedAt;
  await Promise.all(inFlight);
  agent.destroy();
  return {
    sent: total,
    accepted,
    refused,
    ratePerSecond: total > 1 ? (total - 1) / (sendingMs / 1_000) : total,
    httpP50Ms: percentile(latencies, 50),
    httpP99Ms: percentile(latencies, 99),
  };
}
