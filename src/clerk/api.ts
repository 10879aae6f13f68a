import { setTimeout as sleep } from 'node:timers/promises';
import { type ClerkClient, createClerkClient, type UserJSON } from '@clerk/backend';
import { Agent, setGlobalDispatcher } from 'undici';
import type { Config } from '../config.ts';
import { ClerkApiError, ConfigError } from '../errors.ts';

/** The Backend API's largest page. */
export const PAGE_SIZE = 500;
const MAX_TRANSIENT_ATTEMPTS = 8;
const MAX_RATE_LIMIT_WAITS = 100;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export interface ApiRetryEvents {
  onRetry?: (reason: string, waitMs: number) => void;
  /** Waits between attempts; tests pass a shorter one. */
  wait?: (ms: number) => Promise<unknown>;
}

/**
 * The Backend API client of the backfill and reconcile commands. @clerk/backend calls Node's
 * fetch with no timeout and no way to pass one, so a Clerk (or proxy) that accepts a request
 * and never answers would hold the command for good; fetch goes through undici's global
 * dispatcher, which is given the timeout here: for connecting, for the response headers, and
 * between chunks of the body. A timed-out request is retried like a network error.
 */
export function clerkClientFrom(config: Config): ClerkClient {
  if (!config.clerkSecretKey) {
    throw new ConfigError(
      'CLERK_SECRET_KEY is required: the secret key of your Clerk instance (sk_live_… or sk_test_…)',
    );
  }
  const timeout = config.clerkApiTimeoutMs;
  setGlobalDispatcher(
    new Agent({ connect: { timeout }, headersTimeout: timeout, bodyTimeout: timeout }),
  );
  return createClerkClient({ secretKey: config.clerkSecretKey, apiUrl: config.clerkApiUrl });
}

/**
 * Each page starts this many users before the previous one ended. A user deleted in Clerk
 * while the list is read moves everyone after it one offset down, so a page that started right
 * where the last one ended would skip as many users as were deleted; the overlap absorbs that
 * many, and a page that does not reach back to users already read is asked for again from
 * further back.
 */
export const PAGE_OVERLAP = 50;

export interface UnreadPage {
  /** The users of the page not read before in this run, oldest first. */
  users: UserJSON[];
  /** The offset just after the page, where a run interrupted after it resumes. */
  end: number;
  totalCount: number;
}

/**
 * Every Clerk user once, oldest first, in pages, starting at `offset`; each page is fetched
 * while the caller works on the one before. Users deleted in Clerk meanwhile make no one else
 * be skipped.
 */
export async function* readUserPages(
  client: ClerkClient,
  offset: number,
  events: ApiRetryEvents = {},
): AsyncGenerator<UnreadPage> {
  // One page as raw UserJSON; rides out rate limits, 5xx and network errors.
  const fetchPage = async (at: number) => {
    const start = Math.max(0, at);
    const response = await withApiRetries(
      () => client.users.getUserList({ limit: PAGE_SIZE, offset: start, orderBy: '+created_at' }),
      `GET /v1/users offset ${start}`,
      events,
    );
    const users = response.data
      .map((user) => user.raw)
      .filter((raw): raw is UserJSON => raw !== null);
    return { offset: start, users, totalCount: response.totalCount };
  };
  const read = new ReadPosition();
  let page = await fetchPage(offset);
  for (;;) {
    while (page.offset > 0 && !read.reachedBy(page.users)) {
      page = await fetchPage(page.offset - PAGE_SIZE + PAGE_OVERLAP);
    }
    const end = page.offset + page.users.length;
    // Clerk answers a short page only at the end of the list.
    const next = page.users.length < PAGE_SIZE ? undefined : fetchPage(end - PAGE_OVERLAP);
    next?.catch(() => undefined);
    const users = page.users.filter((user) => read.isUnread(user));
    read.advance(users);
    yield { users, end, totalCount: page.totalCount };
    if (!next) return;
    page = await next;
  }
}

/**
 * How far through Clerk's list (oldest first) a run has read: the newest creation time read,
 * and the users read with exactly that time (several users can share a millisecond).
 */
class ReadPosition {
  #createdAt = Number.NEGATIVE_INFINITY;
  #idsAtCreatedAt = new Set<string>();

  isUnread(user: UserJSON): boolean {
    if (typeof user.created_at !== 'number') return true;
    return (
      user.created_at > this.#createdAt ||
      (user.created_at === this.#createdAt && !this.#idsAtCreatedAt.has(user.id))
    );
  }

  /** Whether a page starts at or before the newest user read, so that no user in between is missed. */
  reachedBy(users: readonly UserJSON[]): boolean {
    if (this.#createdAt === Number.NEGATIVE_INFINITY) return true;
    const [first] = users;
    return first !== undefined && !this.isUnread(first);
  }

  advance(users: readonly UserJSON[]): void {
    for (const user of users) {
      if (typeof user.created_at !== 'number' || user.created_at < this.#createdAt) continue;
      if (user.created_at > this.#createdAt) {
        this.#createdAt = user.created_at;
        this.#idsAtCreatedAt = new Set();
      }
      this.#idsAtCreatedAt.add(user.id);
    }
  }
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
      const hint =
        status === 401 || status === 403
          ? ' (check CLERK_SECRET_KEY)'
          : status === undefined
            ? ' (no answer: a network error, or none within CLERK_API_TIMEOUT_MS)'
            : '';
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
