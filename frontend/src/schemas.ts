// One zod schema per form: the same rules the server checks (docs/spec/api.md,
// docs/spec/auction-rules.md), so a mistake is shown before anything is sent. The
// form's types are inferred from them.
import { z } from 'zod';

import { auditTrailEventValues } from './api/enums';
import type { Item, PasswordPolicy } from './api/types';
import { MAX_MINOR, parseMoney } from './money';

/** Password length is counted in Unicode code points, as on the server. */
export const codePoints = (text: string) => [...text].length;

/** The server's rules until it has told its own (GET /auth/policy). */
export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = { password_min_length: 15, password_max_length: 128 };

const email = z.string().trim().min(1, 'Enter your e-mail address').pipe(z.email('Enter a valid e-mail address'));

const newPassword = ({ password_min_length: min, password_max_length: max }: PasswordPolicy) =>
  z
    .string()
    .refine((p) => codePoints(p) >= min, `Use at least ${min} characters`)
    .refine((p) => codePoints(p) <= max, `Use at most ${max} characters`);

export const registerSchema = (policy: PasswordPolicy) =>
  z.object({
    email,
    display_name: z.string().trim().max(100, 'Use at most 100 characters').optional(),
    password: newPassword(policy),
  });
export type RegisterForm = z.infer<ReturnType<typeof registerSchema>>;

export const loginSchema = z.object({
  email,
  password: z.string().min(1, 'Enter your password'),
});
export type LoginForm = z.infer<typeof loginSchema>;

export const forgotSchema = z.object({ email });
export type ForgotForm = z.infer<typeof forgotSchema>;

export const resetSchema = (policy: PasswordPolicy) =>
  z
    .object({ new_password: newPassword(policy), confirm: z.string() })
    .refine((f) => f.new_password === f.confirm, { path: ['confirm'], message: 'The passwords differ' });
export type ResetForm = z.infer<ReturnType<typeof resetSchema>>;

export const changePasswordSchema = (policy: PasswordPolicy) =>
  z
    .object({
      current_password: z.string().min(1, 'Enter your current password'),
      new_password: newPassword(policy),
      confirm: z.string(),
    })
    .refine((f) => f.new_password === f.confirm, { path: ['confirm'], message: 'The passwords differ' })
    .refine((f) => f.new_password !== f.current_password, {
      path: ['new_password'],
      message: 'Choose a password you have not used here',
    });
export type ChangePasswordForm = z.infer<ReturnType<typeof changePasswordSchema>>;

/** Your display name: 1 to 100 characters once trimmed, counted as the server counts them. */
export const displayNameSchema = z.object({
  display_name: z
    .string()
    .trim()
    .min(1, 'Enter a display name')
    .refine((name) => codePoints(name) <= 100, 'Use at most 100 characters'),
});
export type DisplayNameForm = z.infer<typeof displayNameSchema>;

/** An example amount with `decimals` decimals, as people type one ("12.50", "12.500"). */
const example = (decimals: number) => (decimals > 0 ? `12.${'50'.padEnd(decimals, '0').slice(0, decimals)}` : '12');

/**
 * What a person typed in a money field of a currency with `decimals`
 * decimals, as minor units or what is wrong.
 */
function readMoney(text: string, decimals: number, label: string): { value: number } | { message: string } {
  const minor = parseMoney(text, decimals);
  if (minor === null) {
    return {
      message: decimals > 0 ? `Enter ${label} like ${example(decimals)}` : `Enter ${label} as a whole number`,
    };
  }
  if (minor < 1 || minor > MAX_MINOR) {
    return { message: `Enter ${label} above zero and at most 10,000,000,000` };
  }
  return { value: minor };
}

type Context = z.RefinementCtx;

/** Reads a money field, reporting its problem on `path`; `null` when wrong. */
function moneyField(context: Context, path: string, text: string, decimals: number, label: string): number | null {
  const read = readMoney(text, decimals, label);
  if ('message' in read) {
    context.addIssue({ code: 'custom', path: [path], message: read.message });
    return null;
  }
  return read.value;
}

/**
 * The bid form of `item`: amount at least the minimum next bid; with poison,
 * a budget of at least the amount and a step of at least the item's
 * minimum increment (the server's order of checks). Every problem is
 * reported at once, each on its field. Amounts are read with the item's
 * decimals as the server counts them (`currency_decimals`).
 */
export function bidSchema(item: Pick<Item, 'currency_decimals' | 'minimum_next_bid' | 'min_increment'>) {
  const decimals = item.currency_decimals;
  return z
    .object({ amount: z.string(), poisoned: z.boolean(), budget: z.string(), step: z.string() })
    .transform((form, context) => {
      const amount = moneyField(context, 'amount', form.amount, decimals, 'an amount');
      if (amount !== null && amount < item.minimum_next_bid) {
        context.addIssue({ code: 'custom', path: ['amount'], message: 'Bid at least the minimum next bid' });
      }
      if (!form.poisoned) return amount === null ? z.NEVER : { amount, poison: null };
      const budget = moneyField(context, 'budget', form.budget, decimals, 'a budget');
      if (budget !== null && amount !== null && budget < amount) {
        context.addIssue({ code: 'custom', path: ['budget'], message: 'The budget must be at least the amount' });
      }
      const step = moneyField(context, 'step', form.step, decimals, 'a step');
      if (step !== null && step < item.min_increment) {
        context.addIssue({ code: 'custom', path: ['step'], message: 'The step must be at least the minimum increment' });
      }
      if (amount === null || budget === null || step === null) return z.NEVER;
      return { amount, poison: { budget, step } };
    });
}
export type BidFormInput = z.input<ReturnType<typeof bidSchema>>;
export type BidFormOutput = z.output<ReturnType<typeof bidSchema>>;

/**
 * The admin's new item, every problem reported at once on its field. Its
 * amounts are read with the server's decimals for the typed currency
 * (`decimalsOf`, from GET /currencies/{code}: the HUF has 2 there, none by
 * Intl), never the browser's guess; while they are unknown (not looked up
 * yet, or the lookup failed) the amounts cannot be read and the currency
 * field says so. A code that is not three letters reads them with 2.
 */
export function itemSchema(decimalsOf: (code: string) => number | null, now: () => Date = () => new Date()) {
  return z
    .object({
      title: z.string(),
      description: z.string(),
      currency: z.string(),
      base_price: z.string(),
      min_increment: z.string(),
      close_at: z.string(),
      soft_close: z.boolean(),
      window_secs: z.string(),
      extend_by_secs: z.string(),
      max_extensions: z.string(),
    })
    .transform((form, context) => {
      const issue = (path: string, message: string) => context.addIssue({ code: 'custom', path: [path], message });
      const { title, description } = checkedText(form, issue);
      const currency = form.currency.trim().toLowerCase();
      const currencyValid = /^[a-z]{3}$/.test(currency);
      // A code that is no currency at all: its amounts are still checked (as
      // with 2 decimals), so every problem shows at once.
      const decimals = currencyValid ? decimalsOf(currency) : 2;
      if (!currencyValid) issue('currency', 'Use a three-letter currency code, like USD');
      else if (decimals === null) {
        issue('currency', `Could not look up how amounts in ${currency.toUpperCase()} are written; try again`);
      }
      const base = decimals === null ? null : moneyField(context, 'base_price', form.base_price, decimals, 'a base price');
      const increment = decimals === null ? null : moneyField(context, 'min_increment', form.min_increment, decimals, 'an increment');
      const closeAt = checkedClose(form.close_at, now(), issue);
      const softClose = form.soft_close
        ? {
            window_secs: wholeIn(context, 'window_secs', form.window_secs, 1, 3600, 'seconds'),
            extend_by_secs: wholeIn(context, 'extend_by_secs', form.extend_by_secs, 1, 3600, 'seconds'),
            max_extensions: wholeIn(context, 'max_extensions', form.max_extensions, 1, 100, 'extensions'),
          }
        : null;
      if (base === null || increment === null) return z.NEVER;
      if (softClose && Object.values(softClose).some((value) => value === null)) return z.NEVER;
      const item = { title, description, currency, base_price: base, min_increment: increment, close_at: closeAt };
      return softClose ? { ...item, soft_close: softClose as { window_secs: number; extend_by_secs: number; max_extensions: number } } : item;
    });
}

type Issue = (path: string, message: string) => void;

/** An item's title and description, trimmed, with what breaks their limits. */
function checkedText(form: { title: string; description: string }, issue: Issue) {
  const title = form.title.trim();
  const description = form.description.trim();
  if (!title) issue('title', 'Enter a title');
  else if (codePoints(title) > 200) issue('title', 'Use at most 200 characters');
  if (codePoints(description) > 10_000) issue('description', 'Use at most 10,000 characters');
  return { title, description };
}

/** A close typed in a `datetime-local` field, as an instant: ahead of `now`, within a year. */
function checkedClose(typed: string, now: Date, issue: Issue): string {
  const closeAt = new Date(typed);
  const ahead = closeAt.getTime() - now.getTime();
  if (!typed || Number.isNaN(closeAt.getTime()) || ahead <= 0) issue('close_at', 'Choose a time in the future');
  else if (ahead > 365 * 24 * 3600 * 1000) issue('close_at', 'Choose a time at most a year ahead');
  return Number.isNaN(closeAt.getTime()) ? '' : closeAt.toISOString();
}

/** A whole number `min..=max` typed in `field`, or `null` with the field's message. */
function wholeIn(context: z.RefinementCtx, field: string, text: string, min: number, max: number, unit: string): number | null {
  const value = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
    context.addIssue({ code: 'custom', path: [field], message: `Enter ${min} to ${max} ${unit}` });
    return null;
  }
  return value;
}

/**
 * Editing an item before its first bid: the same limits as listing it. The
 * close is checked, and sent, only when it was changed from `shownClose`
 * (the field's first value): an item closing within the minute keeps its
 * close while its title is fixed. `close_at` is '' when unchanged.
 */
export function itemEditSchema(now: () => Date = () => new Date(), shownClose?: string) {
  return z
    .object({ title: z.string(), description: z.string(), close_at: z.string() })
    .transform((form, context) => {
      const issue = (path: string, message: string) => context.addIssue({ code: 'custom', path: [path], message });
      const { title, description } = checkedText(form, issue);
      const unchanged = shownClose !== undefined && form.close_at === shownClose;
      return { title, description, close_at: unchanged ? '' : checkedClose(form.close_at, now(), issue) };
    });
}
export type ItemEditInput = z.input<ReturnType<typeof itemEditSchema>>;
export type ItemEditOutput = z.output<ReturnType<typeof itemEditSchema>>;
export type ItemFormInput = z.input<ReturnType<typeof itemSchema>>;
export type ItemFormOutput = z.output<ReturnType<typeof itemSchema>>;

/** Any UUID, as the server parses one (hyphenated, any version). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The audit page's filters: an event the API knows, and a user id or nothing. */
export const auditFilterSchema = z.object({
  event: z.union([z.literal(''), z.enum(auditTrailEventValues)]),
  user_id: z
    .string()
    .trim()
    .refine((id) => id === '' || UUID.test(id), 'Enter a whole user id, like 0b7e4c1a-3f5d-4e2a-9c8b-1d2e3f4a5b6c'),
});
export type AuditFilterInput = z.input<typeof auditFilterSchema>;
export type AuditFilter = z.output<typeof auditFilterSchema>;
