import { applyUserChanges } from '../../users/apply-user-changes.ts';
import type { HandlerContext, HandlerOutcome } from '../context.ts';

/**
 * user.deleted: removes the user, whose preferences go by the database's ON DELETE CASCADE,
 * and leaves a tombstone so that no late event brings the user back.
 */
export async function handleUserDeleted(
  clerkUserId: string,
  { em }: HandlerContext,
): Promise<HandlerOutcome> {
  const [outcome] = await applyUserChanges(em, [{ kind: 'delete', clerkUserId }]);
  return outcome as HandlerOutcome;
}
