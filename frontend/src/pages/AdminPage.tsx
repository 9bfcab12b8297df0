// Admin: list an item, and cancel open items nobody has bid on.
import { zodResolver } from '@hookform/resolvers/zod';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { useForm } from 'react-hook-form';
import { Link } from 'react-router-dom';

import * as endpoints from '../api/endpoints';
import type { Item } from '../api/types';
import { useAuth } from '../auth/useAuth';
import { Field } from '../components/Field';
import { ProblemAlert } from '../components/ProblemAlert';
import { useToast } from '../components/useToast';
import { placeFieldErrors } from '../forms';
import { currencyOf, formatMoney } from '../money';
import { itemSchema, type ItemFormInput } from '../schemas';

/** A `datetime-local` value `minutes` from now. */
function localInMinutes(minutes: number): string {
  const at = new Date(Date.now() + minutes * 60_000);
  at.setSeconds(0, 0);
  const offset = at.getTimezoneOffset() * 60_000;
  return new Date(at.getTime() - offset).toISOString().slice(0, 16);
}

function CreateItem() {
  const toast = useToast();
  const queryClient = useQueryClient();
  const schema = useMemo(() => itemSchema(), []);
  const [failure, setFailure] = useState<unknown>(null);
  const { register, handleSubmit, setError, reset, formState } = useForm<ItemFormInput, unknown, ReturnType<typeof schema.parse>>({
    resolver: zodResolver(schema),
    defaultValues: {
      title: '',
      description: '',
      currency: 'USD',
      base_price: '1.00',
      min_increment: '1.00',
      close_at: localInMinutes(60),
    },
  });
  const submit = handleSubmit(async (form) => {
    setFailure(null);
    try {
      const item = await endpoints.createItem(form);
      // Said with the server's reading of the amounts: its decimals for the
      // currency may differ from the browser's the form read them with.
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
    <form onSubmit={(event) => void submit(event)} noValidate aria-labelledby="create-title">
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
      <Field label="Currency" registration={register('currency')} error={formState.errors.currency?.message} />
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
            <Link to={`/items/${item.id}`}>{item.title}</Link>{' '}
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
