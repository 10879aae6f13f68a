import { Migration } from '@mikro-orm/migrations';
import { refuseToDropRows } from '../src/orm.ts';

/**
 * What order-safety needs: Clerk's own updated_at of the newest event applied to each user,
 * so an older event never overwrites newer data, and a tombstone per deleted Clerk user, so a
 * late user.created or user.updated never brings it back.
 */
export class Migration20261125020000_order_safety extends Migration {
  override up(): void {
    this.addSql('alter table "users" add column "clerk_updated_at" timestamptz null;');
    this.addSql(`create table "deleted_clerk_users" (
      "clerk_user_id" varchar(255) not null,
      "deleted_at" timestamptz not null default now(),
      primary key ("clerk_user_id"));`);
  }

  override async down(): Promise<void> {
    await refuseToDropRows(this, ['deleted_clerk_users', 'users']);
    this.addSql('drop table if exists "deleted_clerk_users";');
    this.addSql('alter table "users" drop column if exists "clerk_updated_at";');
  }
}
