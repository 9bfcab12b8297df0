import {
  DEFAULT_PASSWORD_POLICY,
  auditFilterSchema,
  bidSchema,
  changePasswordSchema as changePasswordSchemaFor,
  itemEditSchema,
  itemSchema,
  loginSchema,
  registerSchema as registerSchemaFor,
  resetSchema as resetSchemaFor,
} from './schemas';

const registerSchema = registerSchemaFor(DEFAULT_PASSWORD_POLICY);
const resetSchema = resetSchemaFor(DEFAULT_PASSWORD_POLICY);
const changePasswordSchema = changePasswordSchemaFor(DEFAULT_PASSWORD_POLICY);

const messages = (result: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  Object.fromEntries((result.error?.issues ?? []).map((issue) => [issue.path.join('.'), issue.message]));

describe('the register form', () => {
  it('counts the password in code points, never truncates, and checks the address', () => {
    const fourteen = '🐍'.repeat(14); // 28 UTF-16 units, 14 characters
    expect(messages(registerSchema.safeParse({ email: 'ann@example.com', password: fourteen }))).toEqual({
      password: 'Use at least 15 characters',
    });
    expect(registerSchema.safeParse({ email: 'ann@example.com', password: '🐍'.repeat(15) }).success).toBe(true);
    expect(messages(registerSchema.safeParse({ email: 'ann@example.com', password: 'x'.repeat(129) }))).toEqual({
      password: 'Use at most 128 characters',
    });
    expect(messages(registerSchema.safeParse({ email: 'not an address', password: 'violet kettle drums' }))).toEqual({
      email: 'Enter a valid e-mail address',
    });
  });
});

describe('the password rules', () => {
  it('are the server’s own', () => {
    const relaxed = registerSchemaFor({ password_min_length: 10, password_max_length: 128 });
    expect(relaxed.safeParse({ email: 'ann@example.com', password: 'x'.repeat(10) }).success).toBe(true);
    expect(messages(relaxed.safeParse({ email: 'ann@example.com', password: 'x'.repeat(9) }))).toEqual({
      password: 'Use at least 10 characters',
    });
  });
});

describe('the other account forms', () => {
  it('need their fields and matching repeats', () => {
    expect(Object.keys(messages(loginSchema.safeParse({ email: '', password: '' })))).toEqual(['email', 'password']);
    expect(messages(resetSchema.safeParse({ new_password: 'violet kettle drums', confirm: 'violet kettle drum' }))).toEqual({
      confirm: 'The passwords differ',
    });
    expect(
      messages(
        changePasswordSchema.safeParse({
          current_password: 'violet kettle drums',
          new_password: 'violet kettle drums',
          confirm: 'violet kettle drums',
        }),
      ),
    ).toEqual({ new_password: 'Choose a password you have not used here' });
  });
});

describe('the bid form', () => {
  const item = { currency_decimals: 2, minimum_next_bid: 12_500, min_increment: 500 };
  const schema = bidSchema(item);

  it('sends a plain bid in minor units', () => {
    expect(schema.parse({ amount: '125', poisoned: false, budget: '', step: '' })).toEqual({ amount: 12_500, poison: null });
  });

  it('refuses less than the minimum next bid and malformed amounts', () => {
    expect(messages(schema.safeParse({ amount: '124.99', poisoned: false, budget: '', step: '' }))).toEqual({
      amount: 'Bid at least the minimum next bid',
    });
    expect(messages(schema.safeParse({ amount: '12.345', poisoned: false, budget: '', step: '' }))).toEqual({
      amount: 'Enter an amount like 12.50',
    });
    expect(messages(schema.safeParse({ amount: '0', poisoned: false, budget: '', step: '' }))).toHaveProperty('amount');
  });

  it('checks the poison as the server does: budget ≥ amount, step ≥ increment', () => {
    expect(schema.parse({ amount: '125', poisoned: true, budget: '200', step: '5' })).toEqual({
      amount: 12_500,
      poison: { budget: 20_000, step: 500 },
    });
    expect(messages(schema.safeParse({ amount: '125', poisoned: true, budget: '124', step: '4.99' }))).toEqual({
      budget: 'The budget must be at least the amount',
      step: 'The step must be at least the minimum increment',
    });
    expect(messages(schema.safeParse({ amount: '125', poisoned: true, budget: 'lots', step: '5' }))).toEqual({
      budget: 'Enter a budget like 12.50',
    });
  });

  it("reads amounts with the server's decimals, not the browser's (huf: 2, where Intl says 0)", () => {
    const forint = bidSchema({ currency_decimals: 2, minimum_next_bid: 10_000, min_increment: 100 });
    expect(forint.parse({ amount: '123.45', poisoned: false, budget: '', step: '' })).toEqual({ amount: 12_345, poison: null });
    expect(forint.parse({ amount: '150', poisoned: true, budget: '200.5', step: '1' })).toEqual({
      amount: 15_000,
      poison: { budget: 20_050, step: 100 },
    });
  });

  it('asks for whole numbers without decimals, and shows as many as a currency has', () => {
    const yen = bidSchema({ currency_decimals: 0, minimum_next_bid: 700, min_increment: 10 });
    expect(yen.parse({ amount: '700', poisoned: false, budget: '', step: '' })).toEqual({ amount: 700, poison: null });
    expect(messages(yen.safeParse({ amount: '700.5', poisoned: false, budget: '', step: '' }))).toEqual({
      amount: 'Enter an amount as a whole number',
    });
    const dinar = bidSchema({ currency_decimals: 3, minimum_next_bid: 1_000, min_increment: 5 });
    expect(dinar.parse({ amount: '1.005', poisoned: false, budget: '', step: '' })).toEqual({ amount: 1_005, poison: null });
    expect(messages(dinar.safeParse({ amount: '1.0005', poisoned: false, budget: '', step: '' }))).toEqual({
      amount: 'Enter an amount like 12.500',
    });
  });
});

describe('the new-item form', () => {
  const now = new Date('2026-06-01T12:00:00Z');
  // The server's decimals (GET /currencies/{code}), as the form has looked them up.
  const server: Record<string, number> = { eur: 2, jpy: 0, huf: 2, xyz: 2 };
  const schema = itemSchema((code) => server[code] ?? null, () => now);
  const valid = {
    title: ' Lamp ',
    description: 'Brass',
    currency: 'EUR',
    base_price: '10',
    min_increment: '0.50',
    close_at: '2026-06-02T12:00:00Z',
    soft_close: false,
    window_secs: '300',
    extend_by_secs: '120',
    max_extensions: '10',
  };

  it('converts to what the API takes', () => {
    expect(schema.parse(valid)).toEqual({
      title: 'Lamp',
      description: 'Brass',
      currency: 'eur',
      base_price: 1000,
      min_increment: 50,
      close_at: '2026-06-02T12:00:00.000Z',
    });
  });

  it("reads a typed currency's amounts with the server's decimals, not the browser's", () => {
    expect(schema.parse({ ...valid, currency: 'jpy', base_price: '700', min_increment: '10' })).toMatchObject({
      currency: 'jpy',
      base_price: 700,
      min_increment: 10,
    });
    expect(messages(schema.safeParse({ ...valid, currency: 'jpy' }))).toEqual({ min_increment: 'Enter an increment as a whole number' });
    expect(schema.parse({ ...valid, currency: 'xyz' })).toMatchObject({ base_price: 1000, min_increment: 50 });
    // The forint: 2 decimals by ISO 4217 and the server, none by Intl. 1000
    // is 1000.00 forints, as the item will show it, and fillér are allowed.
    expect(new Intl.NumberFormat('en', { style: 'currency', currency: 'HUF' }).resolvedOptions().maximumFractionDigits).toBe(0);
    expect(schema.parse({ ...valid, currency: 'HUF', base_price: '1000', min_increment: '10.50' })).toMatchObject({
      currency: 'huf',
      base_price: 100_000,
      min_increment: 1_050,
    });
  });

  it('reads no amount while the currency is not looked up, and says so on the currency', () => {
    expect(messages(schema.safeParse({ ...valid, currency: 'sek', base_price: 'a' }))).toEqual({
      currency: 'Could not look up how amounts in SEK are written; try again',
    });
  });

  it('names every broken rule', () => {
    const result = schema.safeParse({
      title: '',
      description: 'x'.repeat(10_001),
      currency: 'dollars',
      base_price: '0',
      min_increment: 'a',
      close_at: '2026-06-01T11:00:00Z',
      soft_close: false,
      window_secs: '',
      extend_by_secs: '',
      max_extensions: '',
    });
    expect(Object.keys(messages(result)).sort()).toEqual(['base_price', 'close_at', 'currency', 'description', 'min_increment', 'title']);
    expect(messages(schema.safeParse({ ...valid, close_at: '2027-06-02T12:00:00Z' }))).toEqual({
      close_at: 'Choose a time at most a year ahead',
    });
  });

  it('takes a soft-close rule only when asked, each number in its range', () => {
    expect(schema.parse({ ...valid, soft_close: true })).toMatchObject({
      soft_close: { window_secs: 300, extend_by_secs: 120, max_extensions: 10 },
    });
    expect(schema.parse({ ...valid, window_secs: 'x' })).not.toHaveProperty('soft_close');
    expect(messages(schema.safeParse({ ...valid, soft_close: true, window_secs: '0', extend_by_secs: '3601', max_extensions: '1.5' }))).toEqual({
      window_secs: 'Enter 1 to 3600 seconds',
      extend_by_secs: 'Enter 1 to 3600 seconds',
      max_extensions: 'Enter 1 to 100 extensions',
    });
  });
});

describe('the item edit form', () => {
  const now = new Date('2026-06-01T12:00:00Z');
  const schema = itemEditSchema(() => now);
  it('checks what listing checks, and sends the close as an instant', () => {
    expect(schema.parse({ title: ' Lamp ', description: ' ', close_at: '2026-06-02T12:00:00Z' })).toEqual({
      title: 'Lamp',
      description: '',
      close_at: '2026-06-02T12:00:00.000Z',
    });
    expect(Object.keys(messages(schema.safeParse({ title: '', description: 'x'.repeat(10_001), close_at: 'soon' }))).sort()).toEqual([
      'close_at',
      'description',
      'title',
    ]);
    expect(messages(schema.safeParse({ title: 'Lamp', description: '', close_at: '2027-06-02T12:00:00Z' }))).toEqual({
      close_at: 'Choose a time at most a year ahead',
    });
  });

  it('leaves an unchanged close alone, even one already past the minute shown', () => {
    const shown = '2026-06-01T11:59';
    const edited = itemEditSchema(() => now, shown);
    expect(edited.parse({ title: 'Lamp', description: '', close_at: shown })).toEqual({ title: 'Lamp', description: '', close_at: '' });
    expect(messages(edited.safeParse({ title: 'Lamp', description: '', close_at: '2026-06-01T11:58' }))).toEqual({
      close_at: 'Choose a time in the future',
    });
  });
});

describe('the audit filters', () => {
  it('take an event the API knows and a whole user id, or nothing', () => {
    expect(auditFilterSchema.parse({ event: '', user_id: '  ' })).toEqual({ event: '', user_id: '' });
    expect(auditFilterSchema.parse({ event: 'login_failed', user_id: ' 0B7E4C1A-3F5D-4E2A-9C8B-1D2E3F4A5B6C ' })).toEqual({
      event: 'login_failed',
      user_id: '0B7E4C1A-3F5D-4E2A-9C8B-1D2E3F4A5B6C',
    });
    expect(auditFilterSchema.safeParse({ event: 'made_up', user_id: '' }).success).toBe(false);
    for (const id of ['0b7e4c1a', '0b7e4c1a3f5d4e2a9c8b1d2e3f4a5b6c', '0b7e4c1a-3f5d-4e2a-9c8b-1d2e3f4a5b6g']) {
      expect(auditFilterSchema.safeParse({ event: '', user_id: id }).success).toBe(false);
    }
  });
});
