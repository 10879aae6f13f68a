import { expect } from 'vitest';
import type { Services } from '../../src/orm.ts';
import { countRows, sql } from './database.ts';

export interface StoredUser {
  id: string;
  email: string;
  timezone: string;
}

export interface StoredPreferences {
  theme: string;
  communication_preferences: unknown;
  custom_hours: unknown;
  onboarding_completed: boolean;
}

/** The users row of a Clerk user, as stored; undefined when there is none. */
export async function storedUser(
  db: Services,
  clerkUserId: string,
): Promise<StoredUser | undefined> {
  const [row] = await sql<StoredUser>(
    db,
    'select id, email, timezone from users where clerk_user_id = ?',
    [clerkUserId],
  );
  return row;
}

/** The user_preferences rows of a Clerk user, as stored: exactly one when all is well. */
export function storedPreferences(db: Services, clerkUserId: string): Promise<StoredPreferences[]> {
  return sql<StoredPreferences>(
    db,
    `select p.theme, p.communication_preferences, p.custom_hours, p.onboarding_completed
       from user_preferences p join users u on u.id = p.user_id where u.clerk_user_id = ?`,
    [clerkUserId],
  );
}

/** The preferences a new user gets, working hours in the user's timezone. */
export function defaultPreferences(timezone: string): StoredPreferences {
  return {
    theme: 'modern',
    communication_preferences: { email: true, sms: false, in_app: true },
    custom_hours: { start: '09:00', end: '17:00', timezone },
    onboarding_completed: false,
  };
}

/** Expects the Clerk user stored with this email and timezone, and with default preferences. */
export async function expectNewUserStored(
  db: Services,
  clerkUserId: string,
  user: { email: string; timezone: string },
): Promise<void> {
  expect(await storedUser(db, clerkUserId)).toMatchObject(user);
  expect(await storedPreferences(db, clerkUserId)).toEqual([defaultPreferences(user.timezone)]);
}

/** Every row of the three tables, timestamps included, to prove nothing was written. */
export async function snapshotTables(db: Services) {
  return {
    users: await sql(db, 'select * from users order by clerk_user_id'),
    preferences: await sql(db, 'select * from user_preferences order by user_id'),
    tombstones: await sql(db, 'select * from deleted_clerk_users order by clerk_user_id'),
  };
}

/** The Clerk user ids of the tombstones, sorted. */
export async function tombstoneIds(db: Services): Promise<string[]> {
  const rows = await sql<{ clerk_user_id: string }>(
    db,
    'select clerk_user_id from deleted_clerk_users order by clerk_user_id',
  );
  return rows.map((row) => row.clerk_user_id);
}

/** Every users row as Clerk's fields, clerk_updated_at in epoch milliseconds. */
export function userRows(db: Services) {
  return sql(
    db,
    `select clerk_user_id, email, timezone,
            (extract(epoch from clerk_updated_at) * 1000)::float8 as clerk_updated_at
       from users order by clerk_user_id`,
  );
}

/** How many users have exactly one preferences row, and it holds the defaults for their timezone. */
export async function usersWithDefaultPreferences(db: Services): Promise<number> {
  const [row] = await sql<{ count: number }>(
    db,
    `select count(*)::int as count from users u
       where (select count(*) from user_preferences p where p.user_id = u.id) = 1
         and exists (select 1 from user_preferences p where p.user_id = u.id
           and p.theme = 'modern' and p.onboarding_completed = false
           and p.communication_preferences = '{"email": true, "sms": false, "in_app": true}'::jsonb
           and p.custom_hours = jsonb_build_object('start', '09:00', 'end', '17:00', 'timezone', u.timezone))`,
  );
  return row?.count ?? 0;
}

/** Expects exactly these users rows (see userRows), each with one preferences row of defaults. */
export async function expectUserRows(db: Services, expected: unknown[]): Promise<void> {
  expect(await userRows(db)).toEqual(expected);
  expect(await countRows(db, 'user_preferences')).toBe(expected.length);
  expect(await usersWithDefaultPreferences(db)).toBe(expected.length);
}
