DROP INDEX users_created_at_idx;
