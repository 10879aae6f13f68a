import { UnrecoverableError } from 'bullmq';
import { type ClerkUser, chooseEmail } from '../../users/clerk-user.ts';
import type { HandlerContext, HandlerOutcome } from '../context.ts';

/**
 * user.created: the user and its default preferences, in one transaction. A duplicate, an
 * event older than the stored user, or one for a user already deleted changes nothing.
 */
export async function handleUserCreated(
  user: ClerkUser,
  { commit }: HandlerContext,
): Promise<HandlerOutcome> {
  if (!chooseEmail(user))
    throw new UnrecoverableError('Clerk user has no email address; email is required');
  return commit({ kind: 'upsert', user });
}
