import type { ClerkUser } from '../../users/clerk-user.ts';
import type { HandlerContext, HandlerOutcome } from '../context.ts';

/**
 * user.updated: new email and timezone; existing preferences are never touched. The update may
 * arrive before the user.created it follows: then it creates the user with default
 * preferences, and the late user.created is recognised as older. It is also how a user skipped
 * for want of a verified address (outcome no_email) is created once Clerk has one.
 */
export async function handleUserUpdated(
  user: ClerkUser,
  { commit }: HandlerContext,
): Promise<HandlerOutcome> {
  return commit({ kind: 'upsert', user });
}
