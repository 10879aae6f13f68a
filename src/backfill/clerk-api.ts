import { setTimeout as sleep } from 'node:timers/promises';
import type { UserJSON } from '@clerk/backend';
import { type ClerkClient, createClerkClient } from '@clerk/backend';
import { type Config, ConfigError } from '../config.ts';

/** The Backend API's largest page. */
export const PAGE_SIZE = 500;
const MAX_TRANSIENT_ATTEMPTS = 8;
const MAX_RATE_LIMIT_WAITS = 100;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export interface UserPage {
  offset: number;
  users: UserJSON[];
  totalCount: number;
}

export interface ApiRetryEvents {
  onRetry?: (reason: string, waitMs: number) => void;
  /** Waits between attempts; tests pass a shorter one. */
  wait?: (ms: number) => Promise<unknown>;
}

export class ClerkApiError extends Error {
  override name = 'ClerkApiError';
  /** The HTTP status of the final answer; undefined when there was none (a network error). */
  readonly status: number | undefined;

  constructor(message: string, status: number | undefined) {
    super(message);
    this.status = status;
  }
}

export function clerkClientFrom(config: Config): ClerkClient {
  if (!config.clerkSecretKey) {
    throw new ConfigError(
      'CLERK_SECRET_KEY is required: the secret key of your Clerk instance (sk_live_… or sk_test_…)',
    );
  }
  return createClerkClient({ secretKey: config.clerkSecretKey, apiUrl: config.clerkApiUrl });
}

/** One page of users, oldest first, as raw UserJSON; rides out rate limits, 5xx and network errors. */
export async function fetchUserPage(
  client: ClerkClient,
  offset: number,
  events: ApiRetryEvents = {},
): Promise<UserPage> {
  const response = await withApiRetries(
    () => client.users.getUserList({ limit: PAGE_SIZE, offset, orderBy: '+created_at' }),
    `GET /v1/users offset ${offset}`,
    events,
  );
  const users = response.data
    .map((user) => user.raw)
    .filter((raw): raw is UserJSON => raw !== null);
  return { offset, users, totalCount: response.totalCount };
}

/** Whether Clerk still has this user: a 404 says it does not. */
export async function userExists(
  client: ClerkClient,
  clerkUserId: string,
  events: ApiRetryEvents = {},
): Promise<boolean> {
  try {
    await withApiRetries(
      () => client.users.getUser(clerkUserId),
      `GET /v1/users/${clerkUserId}`,
      events,
    );
    return true;
  } catch (error) {
    if (error instanceof ClerkApiError && error.status === 404) return false;
    throw error;
  }
}

/**
 * Retries a Backend API call: on 429 it waits as Retry-After says; 5xx and network errors back
 * off exponentially; any other answer (a bad key, a bad request) is final.
 */
export async function withApiRetries<T>(
  call: () => Promise<T>,
  what: string,
  events: ApiRetryEvents = {},
): Promise<T> {
  const wait = events.wait ?? sleep;
  let transientFailures = 0;
  let rateLimitWaits = 0;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const status = statusOf(error);
      if (status === 429 && rateLimitWaits < MAX_RATE_LIMIT_WAITS) {
        rateLimitWaits++;
        const waitMs = (retryAfterOf(error) ?? 1) * 1000;
        events.onRetry?.(`${what}: rate limited (429)`, waitMs);
        await wait(waitMs);
        continue;
      }
      const transient = status === undefined || status >= 500;
      if (transient && ++transientFailures < MAX_TRANSIENT_ATTEMPTS) {
        const waitMs = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (transientFailures - 1));
        events.onRetry?.(`${what}: ${status ? `status ${status}` : 'network error'}`, waitMs);
        await wait(waitMs);
        continue;
      }
      const hint = status === 401 || status === 403 ? ' (check CLERK_SECRET_KEY)' : '';
      throw new ClerkApiError(
        `${what} failed with ${status ? `status ${status}` : describe(error)}${hint}`,
        status,
      );
    }
  }
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown })?.status;
  return typeof status === 'number' ? status : undefined;
}

function retryAfterOf(error: unknown): number | undefined {
  const retryAfter = (error as { retryAfter?: unknown })?.retryAfter;
  return typeof retryAfter === 'number' && retryAfter >= 0 ? retryAfter : undefined;
}

function describe(error: unknown): string {
  const errors = (error as { errors?: { message?: string }[] })?.errors;
  return errors?.[0]?.message ?? (error instanceof Error ? error.message : String(error));
}
