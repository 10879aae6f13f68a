import { randomBytes } from 'node:crypto';

/** A Clerk-style id: prefix, underscore, 27 base62-ish characters. */
export function clerkId(prefix: string): string {
  return `${prefix}_${randomBytes(20).toString('base64url').replace(/[-_]/g, 'x').slice(0, 27)}`;
}

export interface SampleUser {
  id?: string;
  email?: string | null;
  timezone?: string;
  updatedAt?: number;
}

/** A user.created or user.updated event shaped like Clerk's documented payload. */
export function sampleUserEvent(type: 'user.created' | 'user.updated', user: SampleUser = {}) {
  const now = Date.now();
  const id = user.id ?? clerkId('user');
  const emailId = clerkId('idn');
  const emails =
    user.email === null
      ? []
      : [
          {
            email_address: user.email ?? `${id.toLowerCase()}@example.com`,
            id: emailId,
            linked_to: [],
            object: 'email_address',
            verification: { status: 'verified', strategy: 'ticket' },
          },
        ];
  return {
    data: {
      birthday: '',
      created_at: now,
      email_addresses: emails,
      external_accounts: [],
      external_id: null,
      first_name: 'Example',
      gender: '',
      id,
      image_url: 'https://img.clerk.com/xxxxxx',
      last_name: 'Example',
      last_sign_in_at: now,
      object: 'user',
      password_enabled: true,
      phone_numbers: [],
      primary_email_address_id: emails.length ? emailId : null,
      primary_phone_number_id: null,
      primary_web3_wallet_id: null,
      private_metadata: {},
      profile_image_url: 'https://www.gravatar.com/avatar?d=mp',
      public_metadata: user.timezone ? { timezone: user.timezone } : {},
      two_factor_enabled: false,
      unsafe_metadata: {},
      updated_at: user.updatedAt ?? now,
      username: null,
      web3_wallets: [],
    },
    event_attributes: {
      http_request: { client_ip: '127.0.0.1', user_agent: 'clerk-sync webhook:send' },
    },
    instance_id: 'ins_local',
    object: 'event',
    timestamp: now,
    type,
  };
}

/** A user.deleted event: Clerk sends only the id. */
export function sampleDeletedEvent(id: string) {
  return {
    data: { deleted: true, id, object: 'user' },
    event_attributes: {
      http_request: { client_ip: '127.0.0.1', user_agent: 'clerk-sync webhook:send' },
    },
    instance_id: 'ins_local',
    object: 'event',
    timestamp: Date.now(),
    type: 'user.deleted',
  };
}
