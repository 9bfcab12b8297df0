// Admin: list an item, and cancel open items nobody has bid on.
import { zodResolver } from '@hookform/resolvers/zod';
import { type QueryClient, queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useForm, useWatch } from 'react-hook-form';
import { Link } from 'react-router-dom';

import * as endpoints from '../api/endpoints';
import type { CurrencyInfo, Item } from '../api/types';
import { useAuth } from '../auth/useAuth';
import { Field } from '../components/Field';
import { ProblemAlert } from '../components/ProblemAlert';
import { useToast } from '../components/useToast';
import { placeFieldErrors } from '../forms';
import { currencyOf, formatMoney } from '../money';
import { itemSchema, type ItemFormInput, type ItemFormOutput } from '../schemas';

/** A `datetime-local` value `minutes` from now. */
function localInMinutes(minutes: number): string {
  const at = new Date(Date.now() + minutes * 60_000);
  at.setSeconds(0, 0);
  const offset = at.getTimezoneOffset() * 60_000;
  return new Date(at.getTime() - offset).toISOString().slice(0, 16);
}

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
    },
  });
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
      reset({ ...form, title: '', description: '', base_price: '1.00', min_increment: '1.00', currency: 'USD', close_at: localInMinutes(60) });
      await queryClient.invalidateQueries({ queryKey: ['items'] });
    } catch (error) {
      const placed = placeFieldErrors(error, setError, {
        title: 'title',
        description: 'description',
        base_price: 'base_price',
        min_increment: 'min_increment',
        currency: 'currency',
        close_at: 'close_at',
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
      <div className="field">
        <label htmlFor="description">Description</label>
        <textarea id="description" rows={3} {...register('description')} aria-invalid={formState.errors.description ? true : undefined} />
        {formState.errors.description && (
          <p className="error" role="alert">
            {formState.errors.description.message}
          </p>
        )}
      </div>
      <Field
        label="Currency"
        registration={register('currency')}
        hint={currencyHint(code, lookup)}
        error={formState.errors.currency?.message}
      />
      <Field label="Base price" inputMode="decimal" registration={register('base_price')} error={formState.errors.base_price?.message} />
      <Field label="Minimum increment" inputMode="decimal" registration={register('min_increment')} error={formState.errors.min_increment?.message} />
      <Field label="Closes at" type="datetime-local" registration={register('close_at')} error={formState.errors.close_at?.message} />
      <ProblemAlert error={failure} />
      <button type="submit" disabled={formState.isSubmitting}>
        List item
      </button>
    </form>
  );
}

function OpenItems() {
  const queryClient = useQueryClient();
  const toast = useToast();
  const open = useQuery({ queryKey: ['items', 'open', 'admin'], queryFn: () => endpoints.listItems('open', null) });
  const cancel = useMutation({
    mutationFn: (item: Item) => endpoints.cancelItem(item.id),
    onSuccess: async (item) => {
      toast(`Cancelled "${item.title}".`);
      await queryClient.invalidateQueries({ queryKey: ['items'] });
    },
  });
  return (
    <section aria-labelledby="open-title">
      <h2 id="open-title">Open items</h2>
      <ProblemAlert error={open.error ?? cancel.error} />
      <ul className="cards">
        {open.data?.items.map((item) => (
          <li key={item.id} className="card">
            <Link to={`/items/${encodeURIComponent(item.id)}`}>{item.title}</Link>{' '}
            <span className="hint">
              {item.bid_count} bid{item.bid_count === 1 ? '' : 's'}
              {item.current_price !== null && ` · ${formatMoney(item.current_price, currencyOf(item))}`}
            </span>{' '}
            <button
              type="button"
              className="secondary"
              disabled={item.bid_count > 0 || cancel.isPending}
              onClick={() => cancel.mutate(item)}
              aria-label={`Cancel ${item.title}`}
            >
              Cancel
            </button>
          </li>
        ))}
      </ul>
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
      <OpenItems />
    </section>
  );
}
