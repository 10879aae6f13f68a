import { expect } from 'vitest';
import type { Services } from '../../src/orm.ts';
import { sql } from './database.ts';

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
