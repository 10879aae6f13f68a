import type { ClerkUser } from '../clerk-user.ts';
import type { HandlerContext, HandlerOutcome } from '../context.ts';
import { applyClerkUser } from './apply-clerk-user.ts';

/** user.created: the user and its default preferences, in one transaction. */
export function handleUserCreated(
  user: ClerkUser,
  context: HandlerContext,
): Promise<HandlerOutcome> {
  return applyClerkUser(user, context);
}
