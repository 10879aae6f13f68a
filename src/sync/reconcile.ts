import type { ClerkClient } from '@clerk/backend';
import type { EntityManager } from '@mikro-orm/postgresql';
import pMap from 'p-map';
import { type ApiRetryEvents, PAGE_SIZE, readUserPages, userExists } from '../clerk/api.ts';
import { User } from '../entities/index.ts';
import {
  applyUserChanges,
  type ChangeOutcome,
  type UserChange,
} from '../users/apply-user-changes.ts';
import {
  type ClerkUser,
  chooseEmail,
  chooseTimezone,
  clerkUserSchema,
  trimClerkUser,
} from '../users/clerk-user.ts';
import { lockAndRead } from '../users/lock-and-read.ts';
import type { Progress } from './progress.ts';

const LOCAL_BATCH = 5_000;
/**
 * How many "is this user gone?" requests are in flight at once: after a mass deletion in Clerk
 * there can be thousands, and one at a time they would take an hour against the real API.
 * Kept well under Clerk's rate limits; a 429 still waits as Retry-After says.
 */
export const GONE_CHECK_CONCURRENCY = 8;

/** --apply deletes at most this share of the local users unless told otherwise. */
export const DEFAULT_MAX_DELETE_PERCENT = 5;

export interface Drift {
  clerkUserId: string;
  fields: ('email' | 'timezone')[];
  local: { email: string; timezone: string | null | undefined };
  clerk: { email: string | undefined; timezone: string };
}

export interface ReconcileReport {
  clerkUsers: number;
  localUsers: number;
  /** In Clerk, not here. */
  missing: string[];
  /** Here, and Clerk says the user does not exist (asked for each one). */
  gone: string[];
  /** Email or timezone differ. */
  drifted: Drift[];
  /** Deleted here by a user.deleted, yet listed by Clerk: left deleted. */
  deletedHere: string[];
  /** Clerk users that cannot be stored: no email address, or a malformed record. */
  unusable: string[];
  applied?: Partial<Record<ChangeOutcome, number>>;
  /** Why `apply` changed nothing: it would have deleted too many of the local users. */
  refused?: string;
}

export interface ReconcileOptions {
  em: EntityManager;
  client: ClerkClient;
  apply?: boolean;
  /** `apply` refuses when it would delete more than this percentage of the local users. */
  maxDeletePercent?: number;
  progress?: Progress;
  api?: ApiRetryEvents;
}

/**
 * Compares the local users table with Clerk's user list. Changes nothing unless `apply`: then
 * the missing are created and the drifted fixed through the same rules as webhooks, and the
 * gone deleted through the same path as user.deleted (so they leave tombstones). A run pointed at
 * the wrong Clerk instance finds every local user gone, so `apply` refuses, changing nothing,
 * when Clerk lists nobody while users are stored here or when it would delete more than
 * `maxDeletePercent` of them.
 */
export async function reconcile(options: ReconcileOptions): Promise<ReconcileReport> {
  const { users: clerk, malformed } = await listClerkUsers(options);
  const report: ReconcileReport = {
    clerkUsers: clerk.size + malformed.size,
    localUsers: 0,
    missing: [],
    gone: [],
    drifted: [],
    deletedHere: [],
    unusable: [],
  };

  const seenLocally = new Set<string>();
  const goneCandidates: string[] = [];
  for await (const users of localUsers(options.em)) {
    report.localUsers += users.length;
    for (const user of users) {
      seenLocally.add(user.clerkUserId);
      if (malformed.has(user.clerkUserId)) continue;
      const clerkUser = clerk.get(user.clerkUserId);
      if (!clerkUser) {
        goneCandidates.push(user.clerkUserId);
        continue;
      }
      const drift = compare(user, clerkUser);
      if (drift) report.drifted.push(drift);
    }
  }

  const tombstones = await tombstoned(
    options.em,
    [...clerk.keys()].filter((id) => !seenLocally.has(id)),
  );
  for (const [id, clerkUser] of clerk) {
    if (seenLocally.has(id)) continue;
    if (tombstones.has(id)) report.deletedHere.push(id);
    else if (!chooseEmail(clerkUser)) report.unusable.push(id);
    else report.missing.push(id);
  }
  report.unusable.push(...malformed);
  // A user deleted in Clerk while the list was being read shifts its pages; only a user that
  // Clerk itself says is gone counts as gone.
  const exists = await pMap(goneCandidates, (id) => userExists(options.client, id, options.api), {
    concurrency: GONE_CHECK_CONCURRENCY,
  });
  report.gone = goneCandidates.filter((_, index) => !exists[index]);

  if (!options.apply) return report;
  report.refused = deletionRefusal(report, options.maxDeletePercent ?? DEFAULT_MAX_DELETE_PERCENT);
  if (report.refused) return report;
  const upserts = [...report.missing, ...report.drifted.map((drift) => drift.clerkUserId)];
  const changes: UserChange[] = [
    ...upserts.map((id) => ({ kind: 'upsert' as const, user: clerk.get(id) as ClerkUser })),
    ...report.gone.map((clerkUserId) => ({ kind: 'delete' as const, clerkUserId })),
  ];
  report.applied = {};
  for (let start = 0; start < changes.length; start += PAGE_SIZE) {
    for (const outcome of await applyUserChanges(
      options.em,
      changes.slice(start, start + PAGE_SIZE),
    )) {
      report.applied[outcome] = (report.applied[outcome] ?? 0) + 1;
    }
  }
  return report;
}

function deletionRefusal(report: ReconcileReport, maxPercent: number): string | undefined {
  const { clerkUsers, localUsers } = report;
  const deletions = report.gone.length;
  const check = 'check that CLERK_SECRET_KEY and CLERK_API_URL name the right Clerk instance';
  if (clerkUsers === 0 && localUsers > 0 && maxPercent < 100) {
    return `Clerk lists no users while ${localUsers} are stored here; ${check}, or run again with --max-delete-percent 100 to delete them all`;
  }
  const percent = localUsers > 0 ? (100 * deletions) / localUsers : 0;
  if (percent <= maxPercent) return undefined;
  return `--apply would delete ${deletions} of the ${localUsers} users stored here (${percent.toFixed(1)}%), more than --max-delete-percent ${maxPercent} allows; ${check}, or run again with --max-delete-percent ${Math.ceil(percent)} to delete them`;
}

/**
 * Every Clerk user, trimmed to what the rules read (a whole instance is held in memory), and
 * the ids of the records that are not valid Clerk users.
 */
async function listClerkUsers(
  options: ReconcileOptions,
): Promise<{ users: Map<string, ClerkUser>; malformed: Set<string> }> {
  const users = new Map<string, ClerkUser>();
  const malformed = new Set<string>();
  let started = false;
  for await (const page of readUserPages(options.client, 0, options.api)) {
    if (!started) options.progress?.start(page.totalCount, 0);
    started = true;
    for (const raw of page.users) {
      const parsed = clerkUserSchema.safeParse(raw);
      if (parsed.success) users.set(parsed.data.id, trimClerkUser(parsed.data));
      else malformed.add(typeof raw.id === 'string' ? raw.id : '(no id)');
    }
    options.progress?.update(page.end, Math.max(page.totalCount, page.end));
  }
  options.progress?.stop();
  return { users, malformed };
}

async function* localUsers(em: EntityManager) {
  let after = '';
  for (;;) {
    const users = await em
      .fork()
      .find(
        User,
        { clerkUserId: { $gt: after } },
        { orderBy: { clerkUserId: 'asc' }, limit: LOCAL_BATCH },
      );
    if (users.length === 0) return;
    yield users;
    after = users.at(-1)?.clerkUserId ?? after;
  }
}

async function tombstoned(em: EntityManager, ids: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let start = 0; start < ids.length; start += LOCAL_BATCH) {
    for (const user of await lockAndRead(em, ids.slice(start, start + LOCAL_BATCH), null)) {
      if (user.tombstoned) found.add(user.clerkUserId);
    }
  }
  return found;
}

function compare(user: User, clerkUser: ClerkUser): Drift | undefined {
  const clerk = { email: chooseEmail(clerkUser), timezone: chooseTimezone(clerkUser) };
  const fields: Drift['fields'] = [];
  if (clerk.email !== undefined && clerk.email !== user.email) fields.push('email');
  if (clerk.timezone !== user.timezone) fields.push('timezone');
  if (fields.length === 0) return undefined;
  return {
    clerkUserId: user.clerkUserId,
    fields,
    local: { email: user.email, timezone: user.timezone },
    clerk,
  };
}

const SHOWN_IDS = 5;

/** The report as text: counts and the first few Clerk ids of each kind; emails only on request. */
export function formatReconcileReport(
  report: ReconcileReport,
  options: { showEmails?: boolean } = {},
): string {
  const ids = (list: string[]) =>
    list.length
      ? `: ${list.slice(0, SHOWN_IDS).join(', ')}${list.length > SHOWN_IDS ? ', …' : ''}`
      : '';
  const lines = [
    `reconcile: ${report.clerkUsers} users in Clerk, ${report.localUsers} here`,
    `  missing here         ${report.missing.length}${ids(report.missing)}`,
    `  gone from Clerk      ${report.gone.length}${ids(report.gone)}`,
    `  email drift          ${report.drifted.filter((d) => d.fields.includes('email')).length}${ids(report.drifted.filter((d) => d.fields.includes('email')).map((d) => d.clerkUserId))}`,
    `  timezone drift       ${report.drifted.filter((d) => d.fields.includes('timezone')).length}${ids(report.drifted.filter((d) => d.fields.includes('timezone')).map((d) => d.clerkUserId))}`,
    `  deleted here, still in Clerk (left deleted) ${report.deletedHere.length}${ids(report.deletedHere)}`,
    `  cannot be stored (no email address, or malformed) ${report.unusable.length}${ids(report.unusable)}`,
  ];
  if (options.showEmails) {
    for (const drift of report.drifted.slice(0, SHOWN_IDS)) {
      lines.push(
        `    ${drift.clerkUserId}: here ${drift.local.email} ${drift.local.timezone ?? '-'}; Clerk ${drift.clerk.email ?? '-'} ${drift.clerk.timezone}`,
      );
    }
  }
  if (report.refused) {
    lines.push(`refused, nothing changed: ${report.refused}`);
  } else if (report.applied) {
    const applied = Object.entries(report.applied).map(([outcome, count]) => `${outcome} ${count}`);
    lines.push(`applied: ${applied.length ? applied.join(', ') : 'nothing to change'}`);
  } else {
    lines.push('nothing changed (run with --apply to fix)');
  }
  return lines.join('\n');
}
