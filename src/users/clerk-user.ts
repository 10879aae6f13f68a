import { z } from 'zod';

const MAX_TIMEZONE_LENGTH = 50;
const MAX_EMAIL_LENGTH = 255;
const IANA_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

const metadata = z.record(z.string(), z.unknown()).nullish();
/** The last moment a JavaScript Date can hold; a later `updated_at` is no time at all. */
const LAST_DATE_MS = 8.64e15;
/**
 * Text PostgreSQL can hold: no NUL, and no lone UTF-16 surrogate, which has no UTF-8 encoding.
 * A value with either could never be stored as it is, so it is invalid here.
 */
const isStorable = (value: string) => !value.includes('\0') && value.isWellFormed();
const storableText = (max: number) =>
  z.string().min(1).max(max).refine(isStorable, 'must be text PostgreSQL can store');

/** The part of Clerk's UserJSON that clerk-sync reads; everything else in the payload is ignored. */
export const clerkUserSchema = z.object({
  id: storableText(255),
  email_addresses: z
    .array(
      z
        .object({
          id: z.string(),
          email_address: z.string().refine(isStorable),
          // Clerk sends null for an address never verified; absent only in jobs queued before
          // the queue kept this field (see isVerified).
          verification: z.object({ status: z.unknown() }).loose().nullish(),
        })
        .loose(),
    )
    .nullish()
    .transform((addresses) => addresses ?? []),
  primary_email_address_id: z.string().nullish(),
  public_metadata: metadata,
  unsafe_metadata: metadata,
  updated_at: z.number().int().nonnegative().max(LAST_DATE_MS).nullish(),
});
export type ClerkUser = z.infer<typeof clerkUserSchema>;

export const deletedObjectSchema = z.object({ id: storableText(255) });

type EmailAddress = ClerkUser['email_addresses'][number];

/**
 * Whether Clerk verified this address. A job queued by an earlier version of clerk-sync kept
 * no verification field at all (undefined, where Clerk itself sends null or an object): such an
 * address counts as verified only when it is the primary one, which Clerk lets an address
 * become only once it is verified.
 */
function isVerified(address: EmailAddress, isPrimary: boolean): boolean {
  if (address.verification === undefined) return isPrimary;
  return address.verification?.status === 'verified';
}

/**
 * The primary address if it is verified, else the first verified one; undefined when there is
 * none (a phone-only sign-up, or only unverified addresses). An unverified address is never
 * chosen: anyone can add an address they do not own to their account.
 */
export function chooseEmail(user: ClerkUser): string | undefined {
  const usable = user.email_addresses.filter(
    (address) =>
      address.email_address.length > 0 &&
      address.email_address.length <= MAX_EMAIL_LENGTH &&
      isVerified(address, address.id === user.primary_email_address_id),
  );
  const primary = usable.find((address) => address.id === user.primary_email_address_id);
  return (primary ?? usable[0])?.email_address;
}

/**
 * The same user as far as clerk-sync's rules go (the same email, timezone and `updated_at`),
 * without the rest of Clerk's payload: metadata, unused addresses, verification details. What
 * a command holds in memory for each of a whole instance's users.
 */
export function trimClerkUser(user: ClerkUser): ClerkUser {
  const email = chooseEmail(user);
  const chosen = user.email_addresses.find((address) => address.email_address === email);
  return {
    id: user.id,
    email_addresses: chosen
      ? [
          {
            id: chosen.id,
            email_address: chosen.email_address,
            verification: { status: 'verified' },
          },
        ]
      : [],
    primary_email_address_id: chosen?.id ?? null,
    public_metadata: { timezone: chooseTimezone(user) },
    unsafe_metadata: null,
    updated_at: user.updated_at,
  };
}

/** A valid IANA name from public metadata, else from unsafe metadata, else 'UTC'. */
export function chooseTimezone(user: ClerkUser): string {
  return (
    canonicalTimezone(user.public_metadata?.timezone) ??
    canonicalTimezone(user.unsafe_metadata?.timezone) ??
    'UTC'
  );
}

const canonicalNames = new Map<string, string | undefined>();
const MAX_CACHED_NAMES = 2_000;

/** The canonical spelling of an IANA time zone name, or undefined when it is not one. */
export function canonicalTimezone(candidate: unknown): string | undefined {
  if (typeof candidate !== 'string' || !IANA_NAME.test(candidate)) return undefined;
  // Asking Intl is costly and there are only a few hundred zones: remember the answers.
  if (canonicalNames.has(candidate)) return canonicalNames.get(candidate);
  const name = resolveTimezone(candidate);
  if (canonicalNames.size < MAX_CACHED_NAMES) canonicalNames.set(candidate, name);
  return name;
}

function resolveTimezone(candidate: string): string | undefined {
  try {
    const name = new Intl.DateTimeFormat('en-US', { timeZone: candidate }).resolvedOptions()
      .timeZone;
    return name.length <= MAX_TIMEZONE_LENGTH ? name : undefined;
  } catch {
    return undefined;
  }
}
