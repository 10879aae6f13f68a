import type { ClerkUser } from '../clerk-user.ts';
import type { HandlerContext, HandlerOutcome } from '../context.ts';
import { applyClerkUser } from './apply-clerk-user.ts';

/**
 * user.updated: new email and timezone. The update may arrive before the user.created it
 * follows; then it creates the user with default preferences, and the late user.created is
 * recognised as stale.
 */
export function handleUserUpdated(
  user: ClerkUser,
  context: HandlerContext,
): Promise<HandlerOutcome> {
  return applyClerkUser(user, context);
}
