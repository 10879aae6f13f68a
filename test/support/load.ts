import { clerkId, sampleUserEvent } from '../../src/clerk/sample-events.ts';
import { newSvixId, signedHeaders } from './svix.ts';

const REQUEST_TIMEOUT_MS = 15_000;

/** One Svix delivery: a message id and the exact bytes to sign and post. */
export interface Delivery {
  svixId: string;
  clerkUserId: string;
  body: string;
}

export interface Outcome {
  delivery: Delivery;
  /** HTTP status, undefined when no response came (a reset, a timeout). */
  status: number | undefined;
  error: string | undefined;
  /** The Retry-After header of the answer, if any. */
  retryAfter?: string | null;
  ms: number;
}

export function userCreated(
  clerkUserId: string,
  options: { updatedAt?: number; svixId?: string; email?: string } = {},
): Delivery {
  const event = sampleUserEvent('user.created', {
    id: clerkUserId,
    updatedAt: options.updatedAt,
    email: options.email,
  });
  return { svixId: options.svixId ?? newSvixId(), clerkUserId, body: JSON.stringify(event) };
}

/** `count` Clerk user ids never seen before. */
export function newClerkUserIds(count: number): string[] {
  return Array.from({ length: count }, () => clerkId('user'));
}

/** One user.created delivery for each of these Clerk users. */
export function createdDeliveries(clerkUserIds: readonly string[]): Delivery[] {
  return clerkUserIds.map((id) => userCreated(id));
}

/** user.created deliveries for `count` users never seen before, each id added to `users`. */
export function newUsers(count: number, users: Set<string>): Delivery[] {
  const ids = newClerkUserIds(count);
  for (const id of ids) users.add(id);
  return createdDeliveries(ids);
}

export function userUpdated(
  clerkUserId: string,
  options: { updatedAt: number; email: string; timezone?: string; svixId?: string },
): Delivery {
  const event = sampleUserEvent('user.updated', { id: clerkUserId, ...options });
  return { svixId: options.svixId ?? newSvixId(), clerkUserId, body: JSON.stringify(event) };
}

/** The same bytes again: Svix's retry of one message keeps its svix-id. */
export function redelivery(delivery: Delivery): Delivery {
  return { ...delivery };
}

/** The same event as a new message, as Clerk sends when it emits an event twice. */
export function asNewMessage(delivery: Delivery): Delivery {
  return { ...delivery, svixId: newSvixId() };
}

/** Signs (at send time, as Svix does) and posts one delivery; never throws. */
export async function send(baseUrl: string, delivery: Delivery): Promise<Outcome> {
  const startedAt = performance.now();
  try {
    const response = await fetch(`${baseUrl}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(delivery.body, { svixId: delivery.svixId }),
      body: delivery.body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    await response.arrayBuffer();
    return {
      delivery,
      status: response.status,
      error: undefined,
      retryAfter: response.headers.get('retry-after'),
      ms: performance.now() - startedAt,
    };
  } catch (error) {
    return {
      delivery,
      status: undefined,
      error: describeError(error),
      ms: performance.now() - startedAt,
    };
  }
}

/** Sends every delivery, `concurrency` at a time, in the order given. */
export async function sendAll(
  baseUrl: string,
  deliveries: readonly Delivery[],
  concurrency = 32,
): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(deliveries.length);
  let next = 0;
  const lane = async () => {
    while (next < deliveries.length) {
      const index = next++;
      outcomes[index] = await send(baseUrl, deliveries[index] as Delivery);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, deliveries.length) }, lane));
  return outcomes;
}

export function isAcknowledged(outcome: Outcome): boolean {
  return outcome.status !== undefined && outcome.status >= 200 && outcome.status < 300;
}

/** Counts by status (or error), for reports and assertion messages. */
export function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) {
    const key = outcome.status === undefined ? `error: ${outcome.error}` : String(outcome.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

export function maxMs(outcomes: readonly Outcome[]): number {
  return Math.round(Math.max(0, ...outcomes.map((outcome) => outcome.ms)));
}

/** Fisher-Yates, in place. */
export function shuffle<T>(items: T[]): T[] {
  for (let index = items.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1));
    [items[index], items[other]] = [items[other] as T, items[index] as T];
  }
  return items;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.name}: ${error.message}${cause}`;
}

/** An outcome and when its answer came (performance.now()). */
export interface TimedOutcome extends Outcome {
  answeredAt: number;
}

export interface SteadyLoad {
  /** Every outcome so far, in the order the answers came. */
  outcomes: TimedOutcome[];
  /** Stops sending and waits for the requests in flight; returns every outcome. */
  stop(): Promise<TimedOutcome[]>;
}

/**
 * Deliveries of new users, one after another on each lane with a pause between, until stop():
 * steady traffic through a failover. Each user's id is added to `users`.
 */
export function startSteadyLoad(
  baseUrl: string,
  users: Set<string>,
  options: { lanes: number; pauseMs: number },
): SteadyLoad {
  const outcomes: TimedOutcome[] = [];
  let stopping = false;
  const lane = async () => {
    while (!stopping) {
      const [delivery] = newUsers(1, users);
      const outcome = await send(baseUrl, delivery as Delivery);
      outcomes.push({ ...outcome, answeredAt: performance.now() });
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  };
  const lanes = Promise.all(Array.from({ length: options.lanes }, lane));
  return {
    outcomes,
    async stop() {
      stopping = true;
      await lanes;
      return outcomes;
    },
  };
}
