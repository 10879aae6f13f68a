import { defineEntity, p } from '@mikro-orm/core';
import { timestamps, uuidPrimaryKey } from './base.ts';
import { UserPreferences } from './UserPreferences.ts';

export const UserSchema = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    ...uuidPrimaryKey,
    // The unique constraint's index serves lookups by Clerk id; a second index would only slow writes.
    clerkUserId: p.string().length(255).unique(),
    email: p.string().length(255),
    timezone: p.string().length(50).default('UTC').nullable(),
    ...timestamps,
    /** Clerk's own `updated_at` of the newest event applied; older events never overwrite. */
    clerkUpdatedAt: p.datetime().columnType('timestamptz').nullable(),
    preferences: () => p.oneToOne(UserPreferences).mappedBy('user').nullable(),
  },
});

export class User extends UserSchema.class {}
UserSchema.setClass(User);
