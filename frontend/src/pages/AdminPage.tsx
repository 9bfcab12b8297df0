// Admin: list an item (with its soft-close rule), see every item with its
// status, edit or cancel one nobody has bid on, and manage accounts: find
// them by address, change their role, deactivate or reactivate them.
import { zodResolver } from '@hookform/resolvers/zod';
import {
  keepPreviousData,
  type QueryClient,
  queryOptions,
  useInfiniteQuery,
  useMutation,
  useQuery,
  useQueryClient,
} from '@tanstack/react-query';
import { useEffect, useRef, useState, type ChangeEvent } from 'react';
import { useForm, useWatch, type UseFormRegisterReturn } from 'react-hook-form';
import { Link } from 'react-router-dom';

import { ApiError } from '../api/client';

import * as endpoints from '../api/endpoints';
import type { CurrencyInfo, Item, ItemStatus, User } from '../api/types';
import { useAuth } from '../auth/useAuth';
import { ConfirmButton } from '../components/ConfirmButton';
import { Field } from '../components/Field';
import { PhotoManager } from '../components/PhotoManager';
import { ProblemAlert } from '../components/ProblemAlert';
import { useToast } from '../components/useToast';
import { placeFieldErrors } from '../forms';
import { currencyOf, formatMoney } from '../money';
import {
  itemEditSchema,
  itemSchema,
  type ItemEditInput,
  type ItemEditOutput,
  type ItemFormInput,
  type ItemFormOutput,
} from '../schemas';

/** A moment as a `datetime-local` value, to the minute, in local time. */
function localValue(at: Date): string {
  const offset = at.getTimezoneOffset() * 60_000;
  return new Date(at.getTime() - offset).toISOString().slice(0, 16);
}

/** A `datetime-local` value `minutes` from now. */
function localInMinutes(minutes: number): string {
  const at = new Date(Date.now() + minutes * 60_000);
  at.setSeconds(0, 0);
  return localValue(at);
}

const SOFT_CLOSE_DEFAULTS = { soft_close: false, window_secs: '300', extend_by_secs: '120', max_extensions: '10' };

const CURRENCY_CODE = /^[a-z]{3}$/;

/** How amounts in currency `code` (lower case) are written, as the server says (cached for the page's life). */
const currencyQuery = (code: string) =>
  queryOptions({ queryKey: ['currency', code], queryFn: () => endpoints.currency(code), staleTime: Infinity });

/**
 * The server's decimals for `code`, waiting for a lookup in flight (or
 * starting one); `null` when it failed. A failed one is not asked again
 * here, where every keystroke after a submit validates: submitting does.
 */
async function serverDecimals(queryClient: QueryClient, code: string): Promise<number | null> {
  const state = queryClient.getQueryState(currencyQuery(code).queryKey);
  if (state?.status === 'error' && state.fetchStatus === 'idle') return null;
  try {
    return (await queryClient.fetchQuery(currencyQuery(code))).decimals;
  } catch {
    return null;
  }
}

/** What the currency field says of the typed code's decimals. */
function currencyHint(code: string, lookup: { data?: CurrencyInfo; isError: boolean; isFetching: boolean }): string | undefined {
  const shown = code.toUpperCase();
  if (!CURRENCY_CODE.test(code)) return undefined;
  if (lookup.data) {
    const { decimals } = lookup.data;
    if (decimals === 0) return `Amounts in ${shown} are whole numbers.`;
    return `Amounts in ${shown} have ${decimals} decimals: 1000 is ${formatMoney(1000 * 10 ** decimals, { code, decimals })}.`;
  }
  if (lookup.isError && !lookup.isFetching) return `Could not look up how amounts in ${shown} are written; List item tries again.`;
  return `Looking up how amounts in ${shown} are written…`;
}

/** An item's description: a few lines, with its error below. */
function Description({ id, registration, error }: { id: string; registration: UseFormRegisterReturn; error?: string }) {
  return (
    <div className="field">
      <label htmlFor={id}>Description</label>
      <textarea id={id} rows={3} {...registration} aria-invalid={error ? true : undefined} />
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function CreateItem() {
  const toast = useToast();
  const queryClient = useQueryClient();
  const [failure, setFailure] = useState<unknown>(null);
  const { register, handleSubmit, setError, reset, formState, control } = useForm<ItemFormInput, unknown, ItemFormOutput>({
    // Amounts are read with the server's decimals for the typed currency,
    // waited for when the lookup is still under way.
    resolver: async (values, context, options) => {
      const code = values.currency.trim().toLowerCase();
      const decimals = CURRENCY_CODE.test(code) ? await serverDecimals(queryClient, code) : null;
      return zodResolver(itemSchema(() => decimals))(values, context, options);
    },
    defaultValues: {
      title: '',
      description: '',
      currency: 'USD',
      base_price: '1.00',
      min_increment: '1.00',
      close_at: localInMinutes(60),
      ...SOFT_CLOSE_DEFAULTS,
    },
  });
  const softClose = useWatch({ control, name: 'soft_close' });
  const code = useWatch({ control, name: 'currency' }).trim().toLowerCase();
  const lookup = useQuery({ ...currencyQuery(code), enabled: CURRENCY_CODE.test(code) });
  const submit = handleSubmit(async (form) => {
    setFailure(null);
    try {
      const item = await endpoints.createItem(form);
      // Said with the server's reading of the amounts, as the item has them.
      const currency = currencyOf(item);
      toast(
        `Listed "${item.title}": opens at ${formatMoney(item.base_price, currency)}, raised by at least ${formatMoney(item.min_increment, currency)}.`,
        'good',
      );
      reset({
        title: '',
        description: '',
        base_price: '1.00',
        min_increment: '1.00',
        currency: 'USD',
        close_at: localInMinutes(60),
        ...SOFT_CLOSE_DEFAULTS,
      });
      await queryClient.invalidateQueries({ queryKey: ['items'] });
    } catch (error) {
      const placed = placeFieldErrors(error, setError, {
        title: 'title',
        description: 'description',
        base_price: 'base_price',
        min_increment: 'min_increment',
        currency: 'currency',
        close_at: 'close_at',
        soft_close: 'window_secs',
      });
      if (!placed) setFailure(error);
    }
  });
  return (
    <form
      onSubmit={(event) => {
        // A lookup that failed is asked again; the check waits for it.
        if (lookup.isError) void lookup.refetch();
        void submit(event);
      }}
      noValidate
      aria-labelledby="create-title"
    >
      <h2 id="create-title">List an item</h2>
      <Field label="Title" registration={register('title')} error={formState.errors.title?.message} />
      <Description id="description" registration={register('description')} error={formState.errors.description?.message} />
      <Field
        label="Currency"
        registration={register('currency')}
        hint={currencyHint(code, lookup)}
        error={formState.errors.currency?.message}
      />
      <Field label="Base price" inputMode="decimal" registration={register('base_price')} error={formState.errors.base_price?.message} />
      <Field label="Minimum increment" inputMode="decimal" registration={register('min_increment')} error={formState.errors.min_increment?.message} />
      <Field label="Closes at" type="datetime-local" registration={register('close_at')} error={formState.errors.close_at?.message} />
      <div className="field checkbox">
        <input id="soft_close" type="checkbox" {...register('soft_close')} />
        <label htmlFor="soft_close">Soft close: a late bid that changes the leader extends the auction</label>
      </div>
      {softClose && (
        <fieldset className="soft-close-fields">
          <legend>Soft close</legend>
          <Field
            label="Window (seconds)"
            inputMode="numeric"
            hint="How late a bid must be to extend, 1 to 3600"
            registration={register('window_secs')}
            error={formState.errors.window_secs?.message}
          />
          <Field
            label="Extend by (seconds)"
            inputMode="numeric"
            hint="The close moves this long after the bid, 1 to 3600"
            registration={register('extend_by_secs')}
            error={formState.errors.extend_by_secs?.message}
          />
          <Field
            label="Extensions at most"
            inputMode="numeric"
            hint="1 to 100"
            registration={register('max_extensions')}
            error={formState.errors.max_extensions?.message}
          />
        </fieldset>
      )}
      <ProblemAlert error={failure} />
      <button type="submit" disabled={formState.isSubmitting}>
        List item
      </button>
    </form>
  );
}

/** Whether an item may still be edited or cancelled: open, ahead of its close, no bids. */
function changeable(item: Item): boolean {
  return item.status === 'open' && item.bid_count === 0 && Date.parse(item.close_at) > Date.now();
}

const STATUS_TEXT: Record<ItemStatus, string> = { open: 'Open', closed: 'Closed', cancelled: 'Cancelled' };

/** Edits an item before its first bid: title, description, a later close. */
function EditItem({ item, onDone }: { item: Item; onDone: () => void }) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [failure, setFailure] = useState<unknown>(null);
  const shownClose = localValue(new Date(item.close_at));
  const { register, handleSubmit, setError, formState } = useForm<ItemEditInput, unknown, ItemEditOutput>({
    resolver: zodResolver(itemEditSchema(undefined, shownClose)),
    defaultValues: { title: item.title, description: item.description, close_at: shownClose },
  });
  // The form opens below the list: take the reader there.
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  const submit = handleSubmit(async (form) => {
    setFailure(null);
    // The close is sent only when it was changed: the field shows it to the
    // minute, and sending that back would move it earlier.
    const change = { title: form.title, description: form.description, ...(form.close_at ? { close_at: form.close_at } : {}) };
    try {
      const edited = await endpoints.editItem(item.id, change);
      toast(`Saved "${edited.title}".`, 'good');
      await queryClient.invalidateQueries({ queryKey: ['items'] });
      onDone();
    } catch (error) {
      if (error instanceof ApiError && (error.code === 'item_has_bids' || error.code === 'auction_closed')) {
        await queryClient.invalidateQueries({ queryKey: ['items'] });
      }
      if (!placeFieldErrors(error, setError, { title: 'title', description: 'description', close_at: 'close_at' })) setFailure(error);
    }
  });
  return (
    <form onSubmit={(event) => void submit(event)} noValidate aria-labelledby={`edit-${item.id}`} className="admin-edit">
      <h3 id={`edit-${item.id}`} ref={heading} tabIndex={-1}>
        Edit “{item.title}”
      </h3>
      <Field label="Title" registration={register('title')} error={formState.errors.title?.message} />
      <Description id={`description-${item.id}`} registration={register('description')} error={formState.errors.description?.message} />
      <Field
        label="Closes at"
        type="datetime-local"
        hint="Only later than now set: a close never moves earlier"
        registration={register('close_at')}
        error={formState.errors.close_at?.message}
      />
      <ProblemAlert error={failure} />
      <div className="row-actions">
        <button type="submit" disabled={formState.isSubmitting}>
          Save changes
        </button>
        <button type="button" className="secondary" onClick={onDone}>
          Keep as it is
        </button>
      </div>
    </form>
  );
}

function Items() {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [status, setStatus] = useState<ItemStatus | ''>('');
  const [editing, setEditing] = useState<string | null>(null);
  const items = useInfiniteQuery({
    queryKey: ['items', status || 'all', 'admin'],
    queryFn: ({ pageParam }) => endpoints.listItems(status || undefined, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (page) => page.next_cursor ?? undefined,
    // The last list stays in place while another one loads.
    placeholderData: keepPreviousData,
  });
  const cancel = useMutation({
    mutationFn: (item: Item) => endpoints.cancelItem(item.id),
    onSuccess: async (item) => {
      toast(`Cancelled "${item.title}".`);
      await queryClient.invalidateQueries({ queryKey: ['items'] });
    },
  });
  const shown = items.data?.pages.flatMap((page) => page.items) ?? [];
  return (
    <section aria-labelledby="items-title">
      <h2 id="items-title">Items</h2>
      <div className="field">
        <label htmlFor="status-filter">Show</label>
        <select id="status-filter" value={status} onChange={(event) => setStatus(event.target.value as ItemStatus | '')}>
          <option value="">Every item</option>
          <option value="open">Open</option>
          <option value="closed">Closed</option>
          <option value="cancelled">Cancelled</option>
        </select>
      </div>
      <ProblemAlert error={items.error ?? cancel.error} />
      {items.isSuccess && shown.length === 0 && <p>No items.</p>}
      {shown.length > 0 && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Item list">
          <table>
            <thead>
              <tr>
                <th scope="col">Item</th>
                <th scope="col">Status</th>
                <th scope="col">Bids</th>
                <th scope="col">Price</th>
                <th scope="col">Closes</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((item) => (
                <tr key={item.id} data-testid="admin-item">
                  <td>
                    <Link to={`/items/${encodeURIComponent(item.id)}`}>{item.title}</Link>
                    {item.soft_close && <span className="hint"> · soft close</span>}
                  </td>
                  <td>{STATUS_TEXT[item.status]}</td>
                  <td>{item.bid_count}</td>
                  <td>{formatMoney(item.final_price ?? item.current_price ?? item.base_price, currencyOf(item))}</td>
                  <td>
                    <time dateTime={item.close_at}>{new Date(item.close_at).toLocaleString()}</time>
                  </td>
                  <td>
                    {changeable(item) ? (
                      <span className="row-actions">
                        <button type="button" className="secondary" onClick={() => setEditing(item.id)} aria-label={`Edit ${item.title}`}>
                          Edit
                        </button>
                        <ConfirmButton
                          label="Cancel"
                          name={`Cancel ${item.title}`}
                          confirm={`Yes, cancel ${item.title}`}
                          keep="Keep it"
                          danger
                          disabled={cancel.isPending}
                          onConfirm={() => cancel.mutate(item)}
                        />
                      </span>
                    ) : (
                      <span className="hint">{item.status !== 'open' ? '—' : item.bid_count > 0 ? 'Has bids' : 'Closing'}</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {items.hasNextPage && (
        <button type="button" className="secondary" disabled={items.isFetchingNextPage} onClick={() => void items.fetchNextPage()}>
          Show more items
        </button>
      )}
      {shown
        .filter((item) => item.id === editing)
        .map((item) => (
          <div key={item.id} className="admin-item">
            <EditItem item={item} onDone={() => setEditing(null)} />
            <PhotoManager item={item} />
          </div>
        ))}
    </section>
  );
}

/** Accounts: found by part of the address; role and activation changed in place. */
function Users() {
  const { user: me } = useAuth();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [typed, setTyped] = useState('');
  const [search, setSearch] = useState('');
  const users = useInfiniteQuery({
    queryKey: ['users', search],
    queryFn: ({ pageParam }) => endpoints.listUsers(search, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (page) => page.next_cursor ?? undefined,
    placeholderData: keepPreviousData,
  });
  const change = useMutation({
    mutationFn: ({ user, to }: { user: User; to: { role?: User['role']; is_active?: boolean } }) => endpoints.administerUser(user.id, to),
    onSuccess: async (changed) => {
      toast(`${changed.email}: ${changed.is_active ? (changed.role === 'admin' ? 'admin' : 'user') : 'deactivated'}.`, 'good');
      await queryClient.invalidateQueries({ queryKey: ['users'] });
    },
  });
  const shown = users.data?.pages.flatMap((page) => page.items) ?? [];
  return (
    <section aria-labelledby="users-title">
      <h2 id="users-title">Accounts</h2>
      <form
        role="search"
        className="filters"
        onSubmit={(event) => {
          event.preventDefault();
          setSearch(typed.trim());
        }}
      >
        <Field
          label="E-mail contains"
          type="search"
          registration={{
            name: 'email-search',
            value: typed,
            onChange: (event: ChangeEvent<HTMLInputElement>) => setTyped(event.target.value),
          }}
        />
        <div className="filter-actions">
          <button type="submit">Find</button>
        </div>
      </form>
      <ProblemAlert error={users.error ?? change.error} />
      {users.isSuccess && shown.length === 0 && <p>No account matches.</p>}
      {shown.length > 0 && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Account list">
          <table>
            <thead>
              <tr>
                <th scope="col">E-mail</th>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">State</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((user) => {
                const self = user.id === me?.id;
                return (
                  <tr key={user.id} data-testid="admin-user">
                    <td>{user.email}</td>
                    <td>{user.display_name}</td>
                    <td>{user.role === 'admin' ? 'Admin' : 'User'}</td>
                    <td>{user.is_active ? 'Active' : 'Deactivated'}</td>
                    <td>
                      {self ? (
                        <span className="hint">You</span>
                      ) : (
                        <span className="row-actions">
                          <ConfirmButton
                            label={user.role === 'admin' ? 'Make user' : 'Make admin'}
                            name={`${user.role === 'admin' ? 'Make user' : 'Make admin'}: ${user.email}`}
                            confirm={`Yes, make ${user.email} ${user.role === 'admin' ? 'a user' : 'an admin'}`}
                            disabled={change.isPending}
                            onConfirm={() => change.mutate({ user, to: { role: user.role === 'admin' ? 'user' : 'admin' } })}
                          />
                          <ConfirmButton
                            label={user.is_active ? 'Deactivate' : 'Reactivate'}
                            name={`${user.is_active ? 'Deactivate' : 'Reactivate'} ${user.email}`}
                            confirm={`Yes, ${user.is_active ? 'deactivate' : 'reactivate'} ${user.email}`}
                            danger={user.is_active}
                            disabled={change.isPending}
                            onConfirm={() => change.mutate({ user, to: { is_active: !user.is_active } })}
                          />
                        </span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {users.hasNextPage && (
        <button type="button" className="secondary" disabled={users.isFetchingNextPage} onClick={() => void users.fetchNextPage()}>
          Show more accounts
        </button>
      )}
    </section>
  );
}

export function AdminPage() {
  const { user } = useAuth();
  if (user?.role !== 'admin') return <p role="alert">This page is for admins.</p>;
  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Admin</h1>
      <CreateItem />
      <Items />
      <Users />
    </section>
  );
}
