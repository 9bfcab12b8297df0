// Admin: the audit trail, newest first, filtered by event and by account,
// "load more" by cursor.
import { zodResolver } from '@hookform/resolvers/zod';
import { useInfiniteQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { useForm } from 'react-hook-form';
import { Link } from 'react-router-dom';

import { auditTrailEventValues } from '../api/enums';
import * as endpoints from '../api/endpoints';
import type { AuditEntry, AuditEvent } from '../api/types';
import { useAuth } from '../auth/useAuth';
import { Field } from '../components/Field';
import { ProblemAlert } from '../components/ProblemAlert';
import { auditFilterSchema, type AuditFilter, type AuditFilterInput } from '../schemas';

/** `login_failed` as people read it: "Login failed". */
function eventLabel(event: string): string {
  const words = event.replaceAll('_', ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const NONE = '—';

function Filters({ onApply }: { onApply: (filter: { event?: AuditEvent; user_id?: string }) => void }) {
  const eventId = useId();
  const { register, handleSubmit, reset, formState } = useForm<AuditFilterInput, unknown, AuditFilter>({
    resolver: zodResolver(auditFilterSchema),
    defaultValues: { event: '', user_id: '' },
  });
  const apply = handleSubmit((form) => onApply({ event: form.event || undefined, user_id: form.user_id || undefined }));
  const clear = () => {
    reset({ event: '', user_id: '' });
    onApply({});
  };
  return (
    <form onSubmit={(event) => void apply(event)} noValidate aria-label="Filter the audit trail" className="filters">
      <div className="field">
        <label htmlFor={eventId}>Event</label>
        <select id={eventId} {...register('event')}>
          <option value="">Any event</option>
          {auditTrailEventValues.map((event) => (
            <option key={event} value={event}>
              {eventLabel(event)}
            </option>
          ))}
        </select>
      </div>
      <Field
        label="Account (user id)"
        autoComplete="off"
        spellCheck={false}
        registration={register('user_id')}
        error={formState.errors.user_id?.message}
      />
      <div className="filter-actions">
        <button type="submit">Filter</button>
        <button type="button" className="secondary" onClick={clear}>
          Clear
        </button>
      </div>
    </form>
  );
}

function EntryRow({ entry }: { entry: AuditEntry }) {
  return (
    <tr>
      <td>
        <time dateTime={entry.at}>{new Date(entry.at).toLocaleString()}</time>
      </td>
      <td>{eventLabel(entry.event)}</td>
      <td className="mono">{entry.user_id ?? NONE}</td>
      <td className="mono">{entry.actor_id ?? NONE}</td>
      <td className="mono">{entry.ip ?? NONE}</td>
      <td className="mono">{entry.request_id ?? NONE}</td>
      <td>{entry.details ?? NONE}</td>
    </tr>
  );
}

function Trail() {
  const [filter, setFilter] = useState<{ event?: AuditEvent; user_id?: string }>({});
  const query = useInfiniteQuery({
    queryKey: ['audit', filter],
    queryFn: ({ pageParam }) => endpoints.auditTrail(filter, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const entries = query.data?.pages.flatMap((page) => page.items) ?? [];
  const filtered = Boolean(filter.event ?? filter.user_id);
  return (
    <>
      <Filters onApply={setFilter} />
      <ProblemAlert error={query.error} />
      {query.isPending ? (
        <p>Loading…</p>
      ) : entries.length === 0 ? (
        !query.isError && <p>{filtered ? 'No audit entries match these filters.' : 'The audit trail is empty.'}</p>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Audit entries">
          <table>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Event</th>
                <th scope="col">Account</th>
                <th scope="col">Actor</th>
                <th scope="col">IP</th>
                <th scope="col">Request id</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((entry) => (
                <EntryRow key={entry.id} entry={entry} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {query.hasNextPage && (
        <button type="button" className="secondary" onClick={() => void query.fetchNextPage()} disabled={query.isFetchingNextPage}>
          Load more
        </button>
      )}
    </>
  );
}

export function AuditTrailPage() {
  const { user } = useAuth();
  if (user?.role !== 'admin') return <p role="alert">This page is for admins.</p>;
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit trail</h1>
      <p className="hint">
        Security and account events, newest first. <Link to="/admin">Back to admin</Link>
      </p>
      <Trail />
    </section>
  );
}
