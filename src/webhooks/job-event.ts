import type { ClerkEvent } from '../queue/queue.ts';

/**
 * The part of a Clerk event that the worker reads. Clerk's user payload also carries names,
 * phone numbers, addresses and client IPs; none of that is ours to keep, in Redis or anywhere.
 */
export function toJobEvent(event: ClerkEvent): ClerkEvent {
  const data = event.data;
  const pick = (source: unknown, key: string) =>
    source && typeof source === 'object' ? (source as Record<string, unknown>)[key] : undefined;
  const addresses = Array.isArray(data.email_addresses) ? data.email_addresses : undefined;
  return {
    type: event.type,
    object: 'event',
    timestamp: event.timestamp,
    data: {
      id: data.id,
      deleted: data.deleted,
      email_addresses: addresses?.map((address) => {
        // The worker stores only a verified address, so the status travels with each one.
        const verification = pick(address, 'verification');
        return {
          id: pick(address, 'id'),
          email_address: pick(address, 'email_address'),
          verification: verification ? { status: pick(verification, 'status') } : null,
        };
      }),
      primary_email_address_id: data.primary_email_address_id,
      public_metadata: { timezone: pick(data.public_metadata, 'timezone') },
      unsafe_metadata: { timezone: pick(data.unsafe_metadata, 'timezone') },
      updated_at: data.updated_at,
    },
  };
}
