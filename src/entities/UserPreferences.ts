import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { timestamps, uuidPrimaryKey } from './base.ts';
import { User } from './User.ts';

export interface CustomHours {
  start: string;
  end: string;
  timezone: string;
}

export interface CommunicationPreferences {
  email: boolean;
  sms: boolean;
  in_app: boolean;
}

export const UserPreferencesSchema = defineEntity({
  name: 'UserPreferences',
  tableName: 'user_preferences',
  properties: {
    ...uuidPrimaryKey,
    user: () => p.oneToOne(User).inversedBy('preferences').owner().deleteRule('cascade'),
    customHours: p.json<CustomHours>().nullable(),
    theme: p.string().length(50).default('modern').nullable(),
    communicationPreferences: p.json<CommunicationPreferences>().nullable(),
    onboardingCompleted: p.boolean().default(false).nullable(),
    ...timestamps,
  },
});

export class UserPreferences extends UserPreferencesSchema.class {}
UserPreferencesSchema.setClass(UserPreferences);
export type IUserPreferences = InferEntity<typeof UserPreferencesSchema>;

export function defaultPreferences(timezone: string) {
  return {
    theme: 'modern',
    customHours: { start: '09:00', end: '17:00', timezone },
    communicationPreferences: { email: true, sms: false, in_app: true },
    onboardingCompleted: false,
  } satisfies Partial<IUserPreferences>;
}
