import { defineEntity, p } from '@mikro-orm/core';

/**
 * A tombstone for each Clerk user deleted by a `user.deleted` event. Clerk never reuses user
 * ids, so a `user.created` or `user.updated` delivered after the deletion is stale by
 * definition and must not bring the user back.
 */
export const DeletedClerkUserSchema = defineEntity({
  name: 'DeletedClerkUser',
  tableName: 'deleted_clerk_users',
  properties: {
    clerkUserId: p.string().length(255).primary(),
    deletedAt: p.datetime().columnType('timestamptz').defaultRaw('now()'),
  },
});

export class DeletedClerkUser extends DeletedClerkUserSchema.class {}
DeletedClerkUserSchema.setClass(DeletedClerkUser);
