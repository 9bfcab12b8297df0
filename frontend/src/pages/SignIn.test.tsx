import { cleanup, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';

import { accessToken } from '../api/client';
import { ann, anonymous, mockApi, problem, renderApp, signedIn, tokens } from '../test/app';

const server = mockApi(...anonymous);

const providers = http.get('*/api/v1/auth/oidc/providers', () =>
  HttpResponse.json([
    { name: 'google', label: 'Google' },
    { name: 'corp', label: 'Corp SSO' },
  ]),
);

/** A login whose password is right and whose account has a second factor. */
function challenged() {
  server.use(http.post('*/api/v1/auth/login', () => problem(401, 'mfa_required', { challenge: 'the-challenge', expires_in: 300 })));
}

async function logIn() {
  renderApp('/login');
  await userEvent.type(await screen.findByLabelText('E-mail'), 'ann@example.com');
  await userEvent.type(screen.getByLabelText('Password'), 'violet kettle drums at dawn');
  await userEvent.click(screen.getByRole('button', { name: 'Log in' }));
}

describe('a login with a second factor', () => {
  it('asks for the code and completes the login with it, retrying a wrong one on the same challenge', async () => {
    challenged();
    const sent: unknown[] = [];
    server.use(
      http.post('*/api/v1/auth/mfa', async ({ request }) => {
        const body = (await request.json()) as { code?: string };
        sent.push(body);
        if (body.code === '111111') return problem(401, 'invalid_code');
        return tokens('token-after-code');
      }),
      http.get('*/api/v1/users/me', () => HttpResponse.json(ann)),
      http.post('*/api/v1/ws-ticket', () => problem(503, 'service_unavailable')),
      http.get('*/api/v1/me/notifications', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false, unread: 0 })),
      http.get('*/api/v1/items', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false })),
    );
    await logIn();
    const code = await screen.findByLabelText('Code');
    expect(code).toHaveAttribute('autocomplete', 'one-time-code');
    await userEvent.type(code, '111111');
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByText(/That code is wrong or was used already/)).toBeInTheDocument();
    await userEvent.clear(screen.getByLabelText('Code'));
    await userEvent.type(screen.getByLabelText('Code'), '222222');
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    await waitFor(() => expect(accessToken.get()).toBe('token-after-code'));
    expect(sent).toEqual([
      { challenge: 'the-challenge', code: '111111' },
      { challenge: 'the-challenge', code: '222222' },
    ]);
  });

  it('takes a recovery code instead, and says when one is spent', async () => {
    challenged();
    const sent: unknown[] = [];
    server.use(
      http.post('*/api/v1/auth/mfa', async ({ request }) => {
        sent.push(await request.json());
        return problem(401, 'invalid_code');
      }),
    );
    await logIn();
    await userEvent.click(await screen.findByRole('button', { name: 'Use a recovery code instead' }));
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByText('Enter one of your recovery codes')).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText('Recovery code'), ' 7k3m-q9zd-x2ra-hf0c ');
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByText(/That recovery code is wrong or was used already/)).toBeInTheDocument();
    expect(sent).toEqual([{ challenge: 'the-challenge', recovery_code: '7k3m-q9zd-x2ra-hf0c' }]);
    await userEvent.click(screen.getByRole('button', { name: 'Use a code from the app' }));
    expect(screen.getByLabelText('Code')).toHaveValue('');
  });

  it('goes back to the password when the challenge expired, and shows other failures', async () => {
    challenged();
    server.use(http.post('*/api/v1/auth/mfa', () => problem(401, 'invalid_challenge')));
    await logIn();
    await userEvent.type(await screen.findByLabelText('Code'), '123456');
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByText('That took too long; log in again.')).toBeInTheDocument();
    expect(screen.getByLabelText('Password')).toBeInTheDocument();

    // What was typed is still there: one click logs in again.
    server.use(http.post('*/api/v1/auth/mfa', () => problem(423, 'account_locked')));
    expect(screen.getByLabelText('E-mail')).toHaveValue('ann@example.com');
    await userEvent.click(screen.getByRole('button', { name: 'Log in' }));
    await userEvent.type(await screen.findByLabelText('Code'), '123456');
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('the server said account_locked');
  });
});

describe('signing in with a provider', () => {
  it('offers a button per configured provider on the login and register pages', async () => {
    server.use(providers);
    renderApp('/login');
    const google = await screen.findByRole('link', { name: 'Sign in with Google' });
    expect(google).toHaveAttribute('href', '/api/v1/auth/oidc/google/start');
    expect(screen.getByRole('link', { name: 'Sign in with Corp SSO' })).toHaveAttribute('href', '/api/v1/auth/oidc/corp/start');
  });

  it('offers none when the server has none', async () => {
    renderApp('/register');
    expect(await screen.findByRole('heading', { name: 'Create an account' })).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByRole('group', { name: 'Use an account you already have' })).not.toBeInTheDocument());
  });

  it('says in words why a sign-in was refused', async () => {
    renderApp('/auth/complete?error=account_exists');
    expect(await screen.findByRole('heading', { name: 'Sign-in failed' })).toBeInTheDocument();
    expect(screen.getByRole('alert')).toHaveTextContent(/An account with this e-mail address exists already/);
  });

  it('says so for a code it does not know', async () => {
    for (const code of ['something_new', '__proto__', 'constructor']) {
      renderApp(`/auth/complete?error=${code}`);
      expect(await screen.findByRole('alert')).toHaveTextContent('Something went wrong on our side');
      cleanup();
    }
  });

  it('confirms a link by the provider’s label, and names nothing it does not know', async () => {
    server.use(providers);
    renderApp('/auth/complete?linked=google');
    expect(await screen.findByText(/You can now sign in with Google\./)).toHaveAttribute('role', 'status');
    cleanup();
    renderApp('/auth/complete?linked=evil.example');
    expect(await screen.findByText(/The identity is linked\./)).toBeInTheDocument();
  });

  it('goes on when the browser is already signed in', async () => {
    server.use(
      ...signedIn(ann),
      http.get('*/api/v1/items', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false })),
    );
    renderApp('/auth/complete#mfa=stale');
    expect(await screen.findByRole('heading', { name: /auctions/i })).toBeInTheDocument();
  });

  it('asks for the second factor when the account has one, then signs in', async () => {
    const sent: unknown[] = [];
    let first = true;
    server.use(
      http.post('*/api/v1/auth/mfa', async ({ request }) => {
        sent.push(await request.json());
        return tokens('token-after-provider');
      }),
      http.get('*/api/v1/users/me', () => HttpResponse.json(ann)),
      http.post('*/api/v1/ws-ticket', () => problem(503, 'service_unavailable')),
      http.get('*/api/v1/me/notifications', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false, unread: 0 })),
      http.get('*/api/v1/items', () => {
        first = false;
        return HttpResponse.json({ items: [], next_cursor: null, has_more: false });
      }),
    );
    renderApp('/auth/complete#mfa=from-provider');
    await userEvent.type(await screen.findByLabelText('Code'), '123456');
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    await waitFor(() => expect(first).toBe(false));
    expect(sent).toEqual([{ challenge: 'from-provider', code: '123456' }]);
    expect(accessToken.get()).toBe('token-after-provider');
  });

  it('sends an expired provider sign-in back to log in', async () => {
    server.use(http.post('*/api/v1/auth/mfa', () => problem(401, 'invalid_challenge')));
    renderApp('/auth/complete#mfa=old');
    await userEvent.type(await screen.findByLabelText('Code'), '123456');
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('That took too long.');
  });

  it('says when the sign-in left no session', async () => {
    renderApp('/auth/complete');
    expect(await screen.findByRole('alert')).toHaveTextContent('The sign-in did not finish.');
  });

  it('picks up the session the sign-in started and goes on to the auctions', async () => {
    server.use(
      ...signedIn(ann),
      http.get('*/api/v1/items', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false })),
    );
    renderApp('/auth/complete');
    expect(await screen.findByRole('heading', { name: /auctions/i })).toBeInTheDocument();
    expect(accessToken.get()).toBe(`token-of-${ann.id}`);
  });
});
