import { UnrecoverableError } from 'bullmq';
import { type ClerkUser, chooseEmail } from '../../users/clerk-user.ts';
import type { HandlerContext, HandlerOutcome } from '../context.ts';

/**
 * user.updated: new email and timezone; existing preferences are never touched. The update may
 * arrive before the user.created it follows: then it creates the user with default
 * preferences, and the late user.created is recognised as older.
 */
export async function handleUserUpdated(
  user: ClerkUser,
  { commit }: HandlerContext,
): Promise<HandlerOutcome> {
  if (!chooseEmail(user))
    throw new UnrecoverableError('Clerk user has no email address; email is required');
  return commit({ kind: 'upsert', user });
}
