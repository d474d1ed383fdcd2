-- directives are materialised in chunks (each chunk: tasks + outbox + counts in one
-- transaction) under a lease, so delivery starts before a large fan-out is fully written
alter table directive add column lease_owner text;
alter table directive add column lease_until timestamptz;
alter table directive drop constraint directive_status_check;
alter table directive add constraint directive_status_check
    check (status in ('pending', 'dispatching', 'dispatched', 'cancelled', 'failed'));
drop index directive_pending_idx;
create index directive_pending_idx on directive (created_at) where status in ('pending', 'dispatching');
