import type { HandlerContext, HandlerOutcome } from '../context.ts';

/**
 * user.deleted: removes the user, whose preferences go by the database's ON DELETE CASCADE,
 * and leaves a tombstone so that no late event brings the user back.
 */
export async function handleUserDeleted(
  clerkUserId: string,
  { commit }: HandlerContext,
): Promise<HandlerOutcome> {
  return commit({ kind: 'delete', clerkUserId });
}
