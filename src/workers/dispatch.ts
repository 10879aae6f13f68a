import { UnrecoverableError } from 'bullmq';
import type { z } from 'zod';
import type { ClerkEvent } from '../queue.ts';
import { clerkUserSchema, deletedObjectSchema } from '../users/clerk-user.ts';
import type { HandlerContext, HandlerOutcome } from './context.ts';
import { handleUserCreated } from './handlers/user-created.ts';
import { handleUserDeleted } from './handlers/user-deleted.ts';
import { handleUserUpdated } from './handlers/user-updated.ts';

/** Runs the handler for an event's type; a payload that can never succeed fails for good. */
export async function dispatchEvent(
  event: ClerkEvent,
  context: HandlerContext,
): Promise<HandlerOutcome | 'ignored'> {
  switch (event.type) {
    case 'user.created':
      return handleUserCreated(parse(clerkUserSchema, event), context);
    case 'user.updated':
      return handleUserUpdated(parse(clerkUserSchema, event), context);
    case 'user.deleted':
      return handleUserDeleted(parse(deletedObjectSchema, event).id, context);
    default:
      return 'ignored';
  }
}

/** The Clerk user id of an event, for log context, when it has one. */
export function clerkUserIdOf(event: ClerkEvent): string | undefined {
  const id = event.data?.id;
  return typeof id === 'string' ? id : undefined;
}

function parse<T>(schema: z.ZodType<T>, event: ClerkEvent): T {
  const parsed = schema.safeParse(event.data);
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.map((issue) => issue.path.join('.') || '(data)');
  throw new UnrecoverableError(
    `invalid ${event.type} payload: bad ${[...new Set(fields)].join(', ')}`,
  );
}
