import type { ClerkUser } from '../../users/clerk-user.ts';
import type { HandlerContext, HandlerOutcome } from '../context.ts';

/**
 * user.created: the user and its default preferences, in one transaction. A duplicate, an
 * event older than the stored user, or one for a user already deleted changes nothing; a user
 * with no verified email address cannot be stored (outcome no_email).
 */
export async function handleUserCreated(
  user: ClerkUser,
  { commit }: HandlerContext,
): Promise<HandlerOutcome> {
  return commit({ kind: 'upsert', user });
}
