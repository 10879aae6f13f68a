import { describe, expect, it } from 'vitest';
import {
  type ClerkUser,
  chooseEmail,
  chooseTimezone,
  trimClerkUser,
} from '../src/users/clerk-user.ts';

function clerkUser(overrides: Partial<ClerkUser> = {}): ClerkUser {
  return {
    id: 'user_1',
    email_addresses: [],
    primary_email_address_id: null,
    public_metadata: {},
    unsafe_metadata: {},
    updated_at: 1,
    ...overrides,
  };
}

const verified = { status: 'verified' };
const addresses = [
  { id: 'idn_first', email_address: 'first@example.com', verification: verified },
  { id: 'idn_primary', email_address: 'primary@example.com', verification: verified },
];
const unverified = {
  id: 'idn_unverified',
  email_address: 'not-theirs@example.com',
  verification: null,
};

describe('chooseEmail', () => {
  const legacy = addresses.map(({ id, email_address }) => ({ id, email_address }));
  /** An address Clerk is verifying: not verified yet. */
  const pending = { ...unverified, verification: { status: 'unverified' } };
  /** Addresses that cannot be stored: empty, or longer than the column. */
  const unstorable = [
    { id: 'idn_long', email_address: `${'a'.repeat(250)}@example.com`, verification: verified },
    { id: 'idn_empty', email_address: '', verification: verified },
  ];

  const [first, primary] = ['first@example.com', 'primary@example.com'];

  it.each<[string, ClerkUser['email_addresses'], string | null, string | undefined]>([
    ['the primary address', addresses, 'idn_primary', primary],
    ['no primary: the first verified', addresses, null, first],
    ['no primary: the first verified after an unverified', [unverified, ...addresses], null, first],
    ['a primary id matching none: the first verified', addresses, 'idn_gone', first],
    ['never an unverified address', [unverified], null, undefined],
    ['never an unverified primary', [unverified], 'idn_unverified', undefined],
    ['a pending primary: the first verified', [pending, ...addresses], 'idn_unverified', first],
    ['queued before verification was kept: the primary', legacy, 'idn_primary', primary],
    ['queued before verification was kept: only the primary', legacy, null, undefined],
    ['no address', [], null, undefined],
    ['no address that can be stored', unstorable, 'idn_long', undefined],
  ])('%s', (_case, email_addresses, primary_email_address_id, expected) => {
    expect(chooseEmail(clerkUser({ email_addresses, primary_email_address_id }))).toBe(expected);
  });
});

describe('chooseTimezone', () => {
  const withZones = (publicZone?: unknown, unsafeZone?: unknown) =>
    chooseTimezone(
      clerkUser({
        public_metadata: publicZone === undefined ? {} : { timezone: publicZone },
        unsafe_metadata: unsafeZone === undefined ? {} : { timezone: unsafeZone },
      }),
    );

  it('prefers public metadata over unsafe metadata', () => {
    expect(withZones('Europe/Berlin', 'Asia/Tokyo')).toBe('Europe/Berlin');
  });

  it('uses unsafe metadata when public metadata has no valid zone', () => {
    expect(withZones(undefined, 'Asia/Tokyo')).toBe('Asia/Tokyo');
    expect(withZones('Mars/Olympus', 'Asia/Tokyo')).toBe('Asia/Tokyo');
  });

  it('is UTC when neither has one, or metadata is missing altogether', () => {
    expect(withZones()).toBe('UTC');
    expect(chooseTimezone(clerkUser({ public_metadata: null, unsafe_metadata: undefined }))).toBe(
      'UTC',
    );
  });

  it.each([
    'Mars/Olympus',
    '+01:00',
    'a'.repeat(60),
    '',
    '../../etc/passwd',
    42,
    { name: 'Europe/Paris' },
  ])('rejects %j and falls through to UTC', (zone) => {
    expect(withZones(zone, zone)).toBe('UTC');
  });

  it('canonicalises the spelling of a valid name', () => {
    expect(withZones('europe/paris')).toBe('Europe/Paris');
    expect(withZones(undefined, 'AMERICA/NEW_YORK')).toBe('America/New_York');
  });
});

describe('trimClerkUser', () => {
  const users: ClerkUser[] = [
    clerkUser({ email_addresses: addresses, primary_email_address_id: 'idn_primary' }),
    clerkUser({ email_addresses: addresses, primary_email_address_id: 'idn_gone' }),
    clerkUser({
      email_addresses: [
        { id: 'idn_empty', email_address: '', verification: verified },
        ...addresses,
      ],
    }),
    clerkUser({
      email_addresses: [unverified, ...addresses],
      primary_email_address_id: 'idn_unverified',
    }),
    clerkUser({ public_metadata: { timezone: 'Europe/Paris' }, unsafe_metadata: null }),
    clerkUser({
      public_metadata: { timezone: 'Not/AZone' },
      unsafe_metadata: { timezone: 'Asia/Tokyo' },
    }),
    clerkUser({ public_metadata: null, unsafe_metadata: null, updated_at: null }),
  ];

  it('keeps what the rules read: the same email, timezone, id and updated_at', () => {
    for (const user of users) {
      const trimmed = trimClerkUser(user);
      expect(chooseEmail(trimmed)).toBe(chooseEmail(user));
      expect(chooseTimezone(trimmed)).toBe(chooseTimezone(user));
      expect([trimmed.id, trimmed.updated_at]).toEqual([user.id, user.updated_at]);
    }
  });

  it('drops the rest: other addresses, their details, and metadata', () => {
    const trimmed = trimClerkUser(
      clerkUser({
        email_addresses: [
          {
            id: 'idn_primary',
            email_address: 'primary@example.com',
            verification: { status: 'verified' },
          },
          { id: 'idn_other', email_address: 'other@example.com', verification: verified },
        ],
        primary_email_address_id: 'idn_primary',
        public_metadata: { timezone: 'Europe/Paris', plan: 'pro', notes: 'x'.repeat(10_000) },
        unsafe_metadata: { timezone: 'Asia/Tokyo', draft: { long: 'y'.repeat(10_000) } },
      }),
    );

    expect(trimmed).toEqual({
      id: 'user_1',
      email_addresses: [
        { id: 'idn_primary', email_address: 'primary@example.com', verification: verified },
      ],
      primary_email_address_id: 'idn_primary',
      public_metadata: { timezone: 'Europe/Paris' },
      unsafe_metadata: null,
      updated_at: 1,
    });
  });
});
