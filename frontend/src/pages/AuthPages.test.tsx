import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';

import { accessToken } from '../api/client';
import { ann, anonymous, mockApi, problem, renderApp, signedIn, tokens } from '../test/app';

const server = mockApi(
  ...anonymous,
  http.get('*/api/v1/auth/policy', () => HttpResponse.json({ password_min_length: 15, password_max_length: 128 })),
);

describe('verifying an e-mail address', () => {
  it('sends the link’s token once and says the address is verified', async () => {
    const tokensSent: unknown[] = [];
    server.use(
      http.post('*/api/v1/auth/verify-email', async ({ request }) => {
        tokensSent.push(await request.json());
        return HttpResponse.json(ann);
      }),
    );
    renderApp('/verify-email?token=abc');
    expect(await screen.findByText(/Your address is verified\./)).toHaveAttribute('role', 'status');
    expect(tokensSent).toEqual([{ token: 'abc' }]);
  });

  it('explains a used or expired link', async () => {
    server.use(http.post('*/api/v1/auth/verify-email', () => problem(400, 'invalid_token')));
    renderApp('/verify-email?token=old');
    expect(await screen.findByRole('alert')).toHaveTextContent('the server said invalid_token');
    expect(screen.getByText(/The link may have expired or been used/)).toBeInTheDocument();
  });
});

describe('a forgotten password', () => {
  it('asks for a reset link without saying whether the account exists', async () => {
    let sent: unknown = null;
    server.use(
      http.post('*/api/v1/auth/password/forgot', async ({ request }) => {
        sent = await request.json();
        return new HttpResponse(null, { status: 202 });
      }),
    );
    renderApp('/forgot-password');
    await userEvent.type(await screen.findByLabelText('E-mail'), ' ann@example.com ');
    await userEvent.click(screen.getByRole('button', { name: 'Send a reset link' }));
    expect(await screen.findByText(/If that address has an account, a reset link is on its way/)).toHaveAttribute('role', 'status');
    expect(sent).toEqual({ email: 'ann@example.com' });
  });

  it('shows a failure to send', async () => {
    server.use(http.post('*/api/v1/auth/password/forgot', () => problem(503, 'service_unavailable')));
    renderApp('/forgot-password');
    await userEvent.type(await screen.findByLabelText('E-mail'), 'ann@example.com');
    await userEvent.click(screen.getByRole('button', { name: 'Send a reset link' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('the server said service_unavailable');
  });

  it('sets the new password from the mailed link', async () => {
    let sent: unknown = null;
    server.use(
      http.post('*/api/v1/auth/password/reset', async ({ request }) => {
        sent = await request.json();
        return new HttpResponse(null, { status: 204 });
      }),
    );
    renderApp('/reset-password?token=mailed');
    await userEvent.type(await screen.findByLabelText('New password'), 'violet kettle drums at dawn');
    await userEvent.type(screen.getByLabelText('Repeat it'), 'violet kettle drums at dawn');
    await userEvent.click(screen.getByRole('button', { name: 'Set the password' }));
    expect(await screen.findByText(/Your password is changed and every session ended/)).toHaveAttribute('role', 'status');
    expect(sent).toEqual({ token: 'mailed', new_password: 'violet kettle drums at dawn' });
  });
});

describe('logging in before verifying', () => {
  it('offers to send the verification link again', async () => {
    const resent: unknown[] = [];
    server.use(
      http.post('*/api/v1/auth/login', () => problem(403, 'email_not_verified')),
      http.post('*/api/v1/auth/resend-verification', async ({ request }) => {
        resent.push(await request.json());
        return new HttpResponse(null, { status: 202 });
      }),
    );
    renderApp('/login');
    await userEvent.type(await screen.findByLabelText('E-mail'), 'ann@example.com');
    await userEvent.type(screen.getByLabelText('Password'), 'violet kettle drums at dawn');
    await userEvent.click(screen.getByRole('button', { name: 'Log in' }));
    await userEvent.click(await screen.findByRole('button', { name: 'Send the verification link again' }));
    await waitFor(() => expect(resent).toEqual([{ email: 'ann@example.com' }]));
    expect(screen.getByRole('alert')).toHaveTextContent('the server said email_not_verified');
  });
});

describe('changing the password', () => {
  it('refuses a wrong current password on its field, then changes it and keeps the new session', async () => {
    let attempts = 0;
    server.use(
      ...signedIn(ann),
      http.post('*/api/v1/auth/password/change', async ({ request }) => {
        attempts += 1;
        const { current_password } = (await request.json()) as { current_password: string };
        return current_password === 'the old one is long' ? tokens('after-change') : problem(403, 'invalid_credentials');
      }),
    );
    renderApp('/account/password');
    await userEvent.type(await screen.findByLabelText('Current password'), 'not my password');
    await userEvent.type(screen.getByLabelText('New password'), 'violet kettle drums at dawn');
    await userEvent.type(screen.getByLabelText('Repeat the new password'), 'violet kettle drums at dawn');
    await userEvent.click(screen.getByRole('button', { name: 'Change password' }));
    expect(await screen.findByText('That is not your current password')).toBeInTheDocument();
    expect(screen.getByLabelText('Current password')).toHaveAttribute('aria-invalid', 'true');

    await userEvent.clear(screen.getByLabelText('Current password'));
    await userEvent.type(screen.getByLabelText('Current password'), 'the old one is long');
    await userEvent.click(screen.getByRole('button', { name: 'Change password' }));
    expect(await screen.findByText(/Password changed; your other sessions were ended/)).toHaveAttribute('role', 'status');
    expect(attempts).toBe(2);
    expect(accessToken.get()).toBe('after-change');
    expect(screen.getByLabelText('Current password')).toHaveValue('');
  });

  it('puts the server’s verdict on the new password next to it', async () => {
    server.use(
      ...signedIn(ann),
      http.post('*/api/v1/auth/password/change', () =>
        problem(422, 'validation_failed', { errors: [{ field: 'new_password', message: 'this password is too common' }] }),
      ),
    );
    renderApp('/account/password');
    await userEvent.type(await screen.findByLabelText('Current password'), 'the old one is long');
    await userEvent.type(screen.getByLabelText('New password'), 'password password');
    await userEvent.type(screen.getByLabelText('Repeat the new password'), 'password password');
    await userEvent.click(screen.getByRole('button', { name: 'Change password' }));
    expect(await screen.findByText('this password is too common')).toBeInTheDocument();
    expect(screen.getByLabelText('New password')).toHaveAttribute('aria-invalid', 'true');
  });
});
