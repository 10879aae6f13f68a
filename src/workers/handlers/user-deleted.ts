import { DeletedClerkUser, User } from '../../entities/index.ts';
import { type HandlerContext, type HandlerOutcome, lockClerkUser } from '../context.ts';

/**
 * user.deleted: leaves a tombstone, so no late event brings the user back, and removes the
 * user; the database's ON DELETE CASCADE removes its preferences.
 */
export async function handleUserDeleted(
  clerkUserId: string,
  { em }: HandlerContext,
): Promise<HandlerOutcome> {
  return em.transactional(async (tx) => {
    await lockClerkUser(tx, clerkUserId);
    if (!(await tx.findOne(DeletedClerkUser, { clerkUserId }))) {
      tx.create(DeletedClerkUser, { clerkUserId });
    }
    const user = await tx.findOne(User, { clerkUserId });
    if (!user) return 'absent';
    tx.remove(user);
    return 'deleted';
  });
}
