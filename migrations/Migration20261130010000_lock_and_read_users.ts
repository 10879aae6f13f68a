import { Migration } from '@mikro-orm/migrations';
import { lockAndReadClerkUsers } from '../src/users/lock-and-read.ts';

/**
 * One round trip for what every change reads first: the advisory locks on its Clerk ids, then
 * each id's stored user, whether it has preferences, and its tombstone.
 */
export class Migration20261130010000_lock_and_read_users extends Migration {
  override up(): void {
    this.addSql(`${lockAndReadClerkUsers.expression};`);
  }

  override down(): void {
    this.addSql('drop function if exists "lock_and_read_clerk_users"(text[], integer);');
  }
}
