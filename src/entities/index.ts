export { DeletedClerkUser } from './DeletedClerkUser.ts';
export { SyncCheckpoint } from './SyncCheckpoint.ts';
export { User } from './User.ts';
export type { CommunicationPreferences, CustomHours } from './UserPreferences.ts';
export { defaultPreferences, UserPreferences } from './UserPreferences.ts';

import { DeletedClerkUser } from './DeletedClerkUser.ts';
import { SyncCheckpoint } from './SyncCheckpoint.ts';
import { User } from './User.ts';
import { UserPreferences } from './UserPreferences.ts';

export const entities = [User, UserPreferences, DeletedClerkUser, SyncCheckpoint];
