import { UnrecoverableError } from 'bullmq';
import {
  DeletedClerkUser,
  defaultPreferences,
  User,
  UserPreferences,
} from '../../entities/index.ts';
import { type ClerkUser, chooseEmail, chooseTimezone } from '../clerk-user.ts';
import { type HandlerContext, type HandlerOutcome, lockClerkUser } from '../context.ts';

/**
 * Writes a Clerk user as user.created and user.updated both need: the user row is created or
 * brought up to date, and a user that has no preferences gets the defaults; existing
 * preferences are never touched. An event older than what is stored, or one for a user
 * already deleted, changes nothing.
 */
export async function applyClerkUser(
  clerkUser: ClerkUser,
  { em, log }: HandlerContext,
): Promise<HandlerOutcome> {
  const email = chooseEmail(clerkUser);
  if (!email) throw new UnrecoverableError('Clerk user has no email address; email is required');
  const timezone = chooseTimezone(clerkUser);
  const clerkUpdatedAt = clerkUser.updated_at ? new Date(clerkUser.updated_at) : null;

  return em.transactional(async (tx) => {
    await lockClerkUser(tx, clerkUser.id);
    if (await tx.findOne(DeletedClerkUser, { clerkUserId: clerkUser.id })) {
      log.info('user was deleted earlier; event ignored');
      return 'tombstoned';
    }

    const user = await tx.findOne(
      User,
      { clerkUserId: clerkUser.id },
      { populate: ['preferences'] },
    );
    if (!user) {
      const created = tx.create(User, {
        clerkUserId: clerkUser.id,
        email,
        timezone,
        clerkUpdatedAt,
      });
      tx.create(UserPreferences, { user: created, ...defaultPreferences(timezone) });
      return 'created';
    }

    if (user.clerkUpdatedAt && (!clerkUpdatedAt || clerkUpdatedAt <= user.clerkUpdatedAt)) {
      log.info('event is not newer than the stored user; ignored');
      return 'stale';
    }
    tx.assign(user, { email, timezone, clerkUpdatedAt });
    if (!user.preferences) tx.create(UserPreferences, { user, ...defaultPreferences(timezone) });
    return 'updated';
  });
}
