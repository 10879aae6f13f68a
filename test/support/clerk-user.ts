import { sampleUserEvent } from '../../src/clerk/sample-events.ts';
import { type ClerkUser, clerkUserSchema } from '../../src/users/clerk-user.ts';
import type { UserChange } from '../../src/users/user-change.ts';

/**
 * A Clerk user as a webhook or the Backend API describes it (a verified primary address, by
 * default `<id>@example.com`), as the rules read it.
 */
export function clerkUser(
  id: string,
  user: { email?: string | null; timezone?: string; at?: number } = {},
): ClerkUser {
  return clerkUserSchema.parse(
    sampleUserEvent('user.updated', {
      id,
      email: user.email === undefined ? `${id.toLowerCase()}@example.com` : user.email,
      timezone: user.timezone,
      updatedAt: user.at ?? 1_000,
    }).data,
  );
}

export const upsert = (user: ClerkUser): UserChange => ({ kind: 'upsert', user });
export const remove = (clerkUserId: string): UserChange => ({ kind: 'delete', clerkUserId });
