import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import type { ReactNode } from 'react';
import { MemoryRouter } from 'react-router-dom';

import type { Item } from '../api/types';
import { AuthProvider } from '../auth/AuthContext';
import { BidForm } from './AuctionRoom';
import { LoginPage, RegisterPage, ResetPasswordPage } from './AuthPages';

const server = setupServer(
  http.post('*/api/v1/auth/refresh', () => problem(401, 'invalid_token')),
  http.get('*/api/v1/auth/policy', () => HttpResponse.json({ password_min_length: 15, password_max_length: 128 })),
);
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

function problem(status: number, error_code: string, extra: Record<string, unknown> = {}) {
  return HttpResponse.json(
    { type: `/problems/${error_code}`, title: 'Unprocessable Entity', status, detail: 'the request breaks one or more rules', error_code, ...extra },
    { status },
  );
}

function wrap(children: ReactNode, path = '/') {
  return (
    <QueryClientProvider client={new QueryClient()}>
      <MemoryRouter initialEntries={[path]}>
        <AuthProvider>{children}</AuthProvider>
      </MemoryRouter>
    </QueryClientProvider>
  );
}

describe('the register form', () => {
  it('shows each rule next to its field before sending anything', async () => {
    let sent = 0;
    server.use(http.post('*/api/v1/auth/register', () => void sent++));
    render(wrap(<RegisterPage />));
    await userEvent.type(screen.getByLabelText('E-mail'), 'not-an-address');
    await userEvent.type(screen.getByLabelText('Password'), 'short');
    await userEvent.click(screen.getByRole('button', { name: 'Register' }));
    expect(await screen.findByText('Enter a valid e-mail address')).toBeInTheDocument();
    expect(screen.getByText('Use at least 15 characters')).toBeInTheDocument();
    expect(screen.getByLabelText('Password')).toHaveAttribute('aria-invalid', 'true');
    expect(sent).toBe(0);
  });

  it('keeps the usual rules when the policy answer is not a policy', async () => {
    server.use(http.get('*/api/v1/auth/policy', () => HttpResponse.text('<html>bad gateway</html>')));
    render(wrap(<RegisterPage />));
    await userEvent.type(screen.getByLabelText('E-mail'), 'ann@example.com');
    await userEvent.type(screen.getByLabelText('Password'), 'short');
    await userEvent.click(screen.getByRole('button', { name: 'Register' }));
    expect(await screen.findByText('Use at least 15 characters')).toBeInTheDocument();
  });

  it('asks the server how long a password must be', async () => {
    server.use(http.get('*/api/v1/auth/policy', () => HttpResponse.json({ password_min_length: 20, password_max_length: 128 })));
    render(wrap(<RegisterPage />));
    expect(await screen.findByText(/At least 20 characters/)).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText('E-mail'), 'ann@example.com');
    await userEvent.type(screen.getByLabelText('Password'), 'violet kettle drums');
    await userEvent.click(screen.getByRole('button', { name: 'Register' }));
    expect(await screen.findByText('Use at least 20 characters')).toBeInTheDocument();
  });

  it('puts the server’s 422 next to the field it names, and a taken address on the e-mail', async () => {
    server.use(
      http.post('*/api/v1/auth/register', () =>
        problem(422, 'validation_failed', { errors: [{ field: 'password', message: 'this password is too common' }] }),
      ),
    );
    render(wrap(<RegisterPage />));
    await userEvent.type(screen.getByLabelText('E-mail'), 'ann@example.com');
    await userEvent.type(screen.getByLabelText('Password'), 'password password');
    await userEvent.click(screen.getByRole('button', { name: 'Register' }));
    const error = await screen.findByText('this password is too common');
    expect(screen.getByLabelText('Password').getAttribute('aria-describedby')).toContain(error.id);

    server.use(http.post('*/api/v1/auth/register', () => problem(409, 'email_taken')));
    await userEvent.click(screen.getByRole('button', { name: 'Register' }));
    expect(await screen.findByText(/An account with this address exists/)).toBeInTheDocument();
  });

  it('tells the user to check their inbox once registered', async () => {
    server.use(http.post('*/api/v1/auth/register', () => HttpResponse.json({ id: '1' }, { status: 201 })));
    render(wrap(<RegisterPage />));
    await userEvent.type(screen.getByLabelText('E-mail'), 'ann@example.com');
    await userEvent.type(screen.getByLabelText('Password'), 'violet kettle drums at dawn');
    await userEvent.click(screen.getByRole('button', { name: 'Register' }));
    expect(await screen.findByText(/We sent a link to ann@example.com/)).toBeInTheDocument();
  });
});

describe('the login form', () => {
  it('shows a refused login by its problem title and detail', async () => {
    server.use(
      http.post('*/api/v1/auth/login', () =>
        HttpResponse.json(
          { type: '/problems/invalid_credentials', title: 'Unauthorized', status: 401, detail: 'wrong e-mail or password', error_code: 'invalid_credentials' },
          { status: 401 },
        ),
      ),
    );
    render(wrap(<LoginPage />, '/login'));
    await userEvent.type(screen.getByLabelText('E-mail'), 'ann@example.com');
    await userEvent.type(screen.getByLabelText('Password'), 'whatever it is');
    await userEvent.click(screen.getByRole('button', { name: 'Log in' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Unauthorized: wrong e-mail or password');
  });
});

describe('the reset form', () => {
  it('needs matching passwords and shows the server’s verdict on the new one', async () => {
    server.use(
      http.post('*/api/v1/auth/password/reset', () =>
        problem(422, 'validation_failed', { errors: [{ field: 'new_password', message: 'too easy to guess' }] }),
      ),
    );
    render(wrap(<ResetPasswordPage />, '/reset-password?token=t'));
    await userEvent.type(screen.getByLabelText('New password'), 'violet kettle drums at dawn');
    await userEvent.type(screen.getByLabelText('Repeat it'), 'violet kettle drums at dusk');
    await userEvent.click(screen.getByRole('button', { name: 'Set the password' }));
    expect(await screen.findByText('The passwords differ')).toBeInTheDocument();
    await userEvent.clear(screen.getByLabelText('Repeat it'));
    await userEvent.type(screen.getByLabelText('Repeat it'), 'violet kettle drums at dawn');
    await userEvent.click(screen.getByRole('button', { name: 'Set the password' }));
    expect(await screen.findByText('too easy to guess')).toBeInTheDocument();
  });
});

describe('the bid form', () => {
  const item: Item = {
    id: 'lot',
    title: 'Lamp',
    description: '',
    currency: 'usd',
    currency_decimals: 2,
    base_price: 10_000,
    min_increment: 500,
    current_price: 12_000,
    minimum_next_bid: 12_500,
    bid_count: 1,
    close_at: '2030-01-01T00:00:00Z',
    status: 'open',
    created_at: '2026-01-01T00:00:00Z',
    soft_close: null,
    extensions_used: 0,
    ledger_head: null,
  };

  it('offers the poison slider and refuses a step below the increment before sending', async () => {
    const placed = vi.fn();
    render(wrap(<BidForm item={item} onPlaced={placed} />));
    expect(screen.getByLabelText('Amount (USD)')).toHaveValue('125.00');
    await userEvent.click(screen.getByLabelText(/Poison/));
    const slider = screen.getByLabelText(/Budget/);
    expect(slider).toHaveAttribute('min', '12500');
    expect(Number(slider.getAttribute('max'))).toBeGreaterThan(12_500);
    await userEvent.clear(screen.getByLabelText('Step (USD)'));
    await userEvent.type(screen.getByLabelText('Step (USD)'), '4');
    await userEvent.click(screen.getByRole('button', { name: 'Place bid' }));
    expect(await screen.findByText('The step must be at least the minimum increment')).toBeInTheDocument();
    expect(placed).not.toHaveBeenCalled();
  });

  it('sets the budget with the slider, and refuses one below the amount', async () => {
    let body: unknown = null;
    server.use(
      http.post('*/api/v1/items/lot/bid', async ({ request }) => {
        body = await request.json();
        return HttpResponse.json({ bid: { id: 'b' }, item }, { status: 201 });
      }),
    );
    const placed = vi.fn();
    render(wrap(<BidForm item={item} onPlaced={placed} />));
    await userEvent.click(screen.getByLabelText(/Poison/));
    await userEvent.clear(screen.getByLabelText('Amount (USD)'));
    await userEvent.type(screen.getByLabelText('Amount (USD)'), '300');
    await userEvent.click(screen.getByRole('button', { name: 'Place bid' }));
    expect(await screen.findByText('The budget must be at least the amount')).toBeInTheDocument();
    expect(placed).not.toHaveBeenCalled();

    fireEvent.change(screen.getByLabelText(/Budget/), { target: { value: '45000' } });
    expect(screen.getByText('$450.00', { selector: 'output' })).toBeInTheDocument();
    // The slider validates as it moves: the objection goes.
    await waitFor(() => expect(screen.queryByText('The budget must be at least the amount')).not.toBeInTheDocument());
    await userEvent.click(screen.getByRole('button', { name: 'Place bid' }));
    await waitFor(() => expect(placed).toHaveBeenCalled());
    expect(body).toEqual({ amount: 30_000, poison: { budget: 45_000, step: 500 } });
  });

  it('shows bid_too_low with the new minimum next to the amount', async () => {
    server.use(
      http.post('*/api/v1/items/lot/bid', () => problem(422, 'bid_too_low', { minimum_next_bid: 13_000 })),
    );
    render(wrap(<BidForm item={item} onPlaced={vi.fn()} />));
    await userEvent.click(screen.getByRole('button', { name: 'Place bid' }));
    expect(await screen.findByText('Bid at least $130.00')).toBeInTheDocument();
  });

  it("reads and writes amounts with the server's decimals: huf has 2, though the browser says 0", async () => {
    const stove: Item = { ...item, currency: 'huf', currency_decimals: 2, minimum_next_bid: 12_345, min_increment: 100 };
    let body: unknown = null;
    server.use(
      http.post('*/api/v1/items/lot/bid', async ({ request }) => {
        body = await request.json();
        return HttpResponse.json({ bid: { id: 'b' }, item: stove }, { status: 201 });
      }),
    );
    const placed = vi.fn();
    render(wrap(<BidForm item={stove} onPlaced={placed} />));
    expect(screen.getByLabelText('Amount (HUF)')).toHaveValue('123.45');
    expect(screen.getByText('At least HUF 123.45')).toBeInTheDocument();
    await userEvent.click(screen.getByLabelText(/Poison/));
    expect(screen.getByLabelText('Step (HUF)')).toHaveValue('1.00');
    await userEvent.clear(screen.getByLabelText('Amount (HUF)'));
    await userEvent.type(screen.getByLabelText('Amount (HUF)'), '150.5');
    fireEvent.change(screen.getByLabelText(/Budget/), { target: { value: '30000' } });
    expect(screen.getByText('HUF 300.00', { selector: 'output' })).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Place bid' }));
    await waitFor(() => expect(placed).toHaveBeenCalled());
    expect(body).toEqual({ amount: 15_050, poison: { budget: 30_000, step: 100 } });
  });

  it('asks for whole amounts of a currency without decimals', async () => {
    const yen: Item = { ...item, currency: 'jpy', currency_decimals: 0, minimum_next_bid: 700, min_increment: 10 };
    render(wrap(<BidForm item={yen} onPlaced={vi.fn()} />));
    expect(screen.getByLabelText('Amount (JPY)')).toHaveValue('700');
    await userEvent.clear(screen.getByLabelText('Amount (JPY)'));
    await userEvent.type(screen.getByLabelText('Amount (JPY)'), '700.50');
    await userEvent.click(screen.getByRole('button', { name: 'Place bid' }));
    expect(await screen.findByText('Enter an amount as a whole number')).toBeInTheDocument();
  });

  it('sends a poisoned bid in minor units and hands back the placed bid', async () => {
    let body: unknown = null;
    server.use(
      http.post('*/api/v1/items/lot/bid', async ({ request }) => {
        body = await request.json();
        return HttpResponse.json({ bid: { id: 'b' }, item }, { status: 201 });
      }),
    );
    const placed = vi.fn();
    render(wrap(<BidForm item={item} onPlaced={placed} />));
    await userEvent.click(screen.getByLabelText(/Poison/));
    await userEvent.click(screen.getByRole('button', { name: 'Place bid' }));
    await vi.waitFor(() => expect(placed).toHaveBeenCalled());
    expect(body).toEqual({ amount: 12_500, poison: { budget: 25_000, step: 500 } });
  });
});
