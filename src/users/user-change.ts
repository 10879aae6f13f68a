import type { z } from 'zod';
import { InvalidPayloadError } from '../errors.ts';
import { type ClerkUser, clerkUserSchema, deletedObjectSchema } from './clerk-user.ts';

/** A change to one Clerk user: its current state (from an event or the Backend API), or its deletion. */
export type UserChange =
  | { kind: 'upsert'; user: ClerkUser }
  | { kind: 'delete'; clerkUserId: string };

/**
 * A Clerk user's current state, as user.created and user.updated carry it and the Backend API
 * lists it. Throws an InvalidPayloadError when it is not a Clerk user.
 */
export function upsertOf(data: unknown): UserChange {
  return { kind: 'upsert', user: parse(clerkUserSchema, data) };
}

/** A user's deletion, as user.deleted carries it (`{ id, deleted: true }`). */
export function deletionOf(data: unknown): UserChange {
  return { kind: 'delete', clerkUserId: parse(deletedObjectSchema, data).id };
}

export function clerkUserIdOf(change: UserChange): string {
  return change.kind === 'delete' ? change.clerkUserId : change.user.id;
}

function parse<T>(schema: z.ZodType<T>, data: unknown): T {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.map((issue) => issue.path.join('.') || '(data)');
  throw new InvalidPayloadError(`bad ${[...new Set(fields)].join(', ')}`);
}
