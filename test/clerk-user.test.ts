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
  it('takes the primary address', () => {
    expect(
      chooseEmail(
        clerkUser({ email_addresses: addresses, primary_email_address_id: 'idn_primary' }),
      ),
    ).toBe('primary@example.com');
  });

  it('falls back to the first verified address without a primary', () => {
    expect(chooseEmail(clerkUser({ email_addresses: addresses }))).toBe('first@example.com');
    expect(chooseEmail(clerkUser({ email_addresses: [unverified, ...addresses] }))).toBe(
      'first@example.com',
    );
  });

  it('falls back to the first verified address when the primary id matches none', () => {
    expect(
      chooseEmail(clerkUser({ email_addresses: addresses, primary_email_address_id: 'idn_gone' })),
    ).toBe('first@example.com');
  });

  it('never takes an unverified address, primary or not', () => {
    expect(chooseEmail(clerkUser({ email_addresses: [unverified] }))).toBeUndefined();
    expect(
      chooseEmail(
        clerkUser({ email_addresses: [unverified], primary_email_address_id: 'idn_unverified' }),
      ),
    ).toBeUndefined();
    expect(
      chooseEmail(
        clerkUser({
          email_addresses: [
            { ...unverified, verification: { status: 'unverified' } },
            ...addresses,
          ],
          primary_email_address_id: 'idn_unverified',
        }),
      ),
    ).toBe('first@example.com');
  });

  it('in a job queued before verification was kept, takes the primary address only', () => {
    const legacy = addresses.map(({ id, email_address }) => ({ id, email_address }));
    expect(
      chooseEmail(clerkUser({ email_addresses: legacy, primary_email_address_id: 'idn_primary' })),
    ).toBe('primary@example.com');
    expect(chooseEmail(clerkUser({ email_addresses: legacy }))).toBeUndefined();
  });

  it('is undefined when the user has no address', () => {
    expect(chooseEmail(clerkUser())).toBeUndefined();
  });

  it('skips addresses that cannot be stored (empty, or longer than the column)', () => {
    const tooLong = `${'a'.repeat(250)}@example.com`;
    expect(
      chooseEmail(
        clerkUser({
          email_addresses: [
            { id: 'idn_long', email_address: tooLong, verification: verified },
            { id: 'idn_empty', email_address: '', verification: verified },
          ],
          primary_email_address_id: 'idn_long',
        }),
      ),
    ).toBeUndefined();
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
