import { DeletedClerkUser } from './DeletedClerkUser.ts';
import { SyncCheckpoint } from './SyncCheckpoint.ts';
import { User } from './User.ts';
import { defaultPreferences, UserPreferences } from './UserPreferences.ts';

export type { CommunicationPreferences, CustomHours } from './UserPreferences.ts';
export { DeletedClerkUser, defaultPreferences, SyncCheckpoint, User, UserPreferences };

export const entities = [User, UserPreferences, DeletedClerkUser, SyncCheckpoint];
