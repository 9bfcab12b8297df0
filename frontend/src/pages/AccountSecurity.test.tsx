import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';

import { ann, mockApi, problem, renderApp, signedIn } from '../test/app';

const server = mockApi(...signedIn(ann));

const URI = 'otpauth://totp/Poison%20Pill:ann%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Poison%20Pill';

describe('two-step login on the account page', () => {
  it('turns on with the password, a QR code and a first code, then shows the recovery codes once', async () => {
    let enabled = false;
    const sent: unknown[] = [];
    server.use(
      http.get('*/api/v1/auth/mfa/totp', () => HttpResponse.json({ enabled, recovery_codes_left: enabled ? 10 : 0 })),
      http.post('*/api/v1/auth/mfa/totp', async ({ request }) => {
        const body = (await request.json()) as { password: string };
        sent.push(body);
        if (body.password !== 'violet kettle drums at dawn') return problem(403, 'invalid_credentials');
        return HttpResponse.json({ secret: 'JBSWY3DPEHPK3PXP', otpauth_uri: URI });
      }),
      http.post('*/api/v1/auth/mfa/totp/confirm', async ({ request }) => {
        const body = (await request.json()) as { code: string };
        sent.push(body);
        if (body.code !== '123456') return problem(403, 'invalid_code');
        enabled = true;
        return HttpResponse.json({ recovery_codes: ['aaaa-bbbb-cccc-dddd', 'eeee-ffff-gggg-hhhh'] });
      }),
    );
    renderApp('/account');
    expect(await screen.findByText(/Off\. With it on, a stolen password alone/)).toBeInTheDocument();
    await userEvent.click(await screen.findByRole('button', { name: 'Turn on two-step login' }));
    await userEvent.type(screen.getByLabelText('Your password'), 'wrong password');
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByText('That is not your password')).toBeInTheDocument();
    await userEvent.clear(screen.getByLabelText('Your password'));
    await userEvent.type(screen.getByLabelText('Your password'), 'violet kettle drums at dawn');
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));

    const qr = await screen.findByRole('img', { name: /QR code of the secret/ });
    expect(qr.getAttribute('src')).toMatch(/^data:image\/gif;base64,/);
    expect(screen.getByText('JBSWY3DPEHPK3PXP')).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText('The code the app shows'), '654321');
    await userEvent.click(screen.getByRole('button', { name: 'Turn on' }));
    expect(await screen.findByText(/That code is wrong; enter the one the app shows now/)).toBeInTheDocument();
    await userEvent.clear(screen.getByLabelText('The code the app shows'));
    await userEvent.type(screen.getByLabelText('The code the app shows'), '123 456');
    await userEvent.click(screen.getByRole('button', { name: 'Turn on' }));

    expect(await screen.findByText('aaaa-bbbb-cccc-dddd')).toBeInTheDocument();
    expect(screen.getByText('eeee-ffff-gggg-hhhh')).toBeInTheDocument();
    expect(await screen.findByText(/10 recovery codes left/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'I have saved them' }));
    expect(screen.queryByText('aaaa-bbbb-cccc-dddd')).not.toBeInTheDocument();
    expect(sent).toEqual([
      { password: 'wrong password' },
      { password: 'violet kettle drums at dawn' },
      { code: '654321' },
      { code: '123456' },
    ]);
  });

  it('turns off with the password', async () => {
    let enabled = true;
    server.use(
      http.get('*/api/v1/auth/mfa/totp', () => HttpResponse.json({ enabled, recovery_codes_left: 7 })),
      http.delete('*/api/v1/auth/mfa/totp', async ({ request }) => {
        const body = (await request.json()) as { password: string };
        if (body.password !== 'violet kettle drums at dawn') return problem(403, 'invalid_credentials');
        enabled = false;
        return new HttpResponse(null, { status: 204 });
      }),
    );
    renderApp('/account');
    expect(await screen.findByText(/7 recovery codes left/)).toBeInTheDocument();
    const field = screen.getByLabelText('Your password, to turn it off');
    await userEvent.type(field, 'nope');
    await userEvent.click(screen.getByRole('button', { name: 'Turn off two-step login' }));
    expect(await screen.findByText('That is not your password')).toBeInTheDocument();
    await userEvent.clear(field);
    await userEvent.type(field, 'violet kettle drums at dawn');
    await userEvent.click(screen.getByRole('button', { name: 'Turn off two-step login' }));
    expect(await screen.findByText(/Off\. With it on/)).toBeInTheDocument();
  });

  it('shows why it cannot turn on', async () => {
    server.use(http.post('*/api/v1/auth/mfa/totp', () => problem(409, 'password_not_set')));
    renderApp('/account');
    await userEvent.click(await screen.findByRole('button', { name: 'Turn on two-step login' }));
    await userEvent.type(screen.getByLabelText('Your password'), 'anything at all');
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByText(/Your account has no password yet/)).toBeInTheDocument();
  });
});

describe('sign-in providers on the account page', () => {
  it('lists linked identities, unlinks one, and links another through a ticket', async () => {
    let linked = [{ provider: 'google', subject: 's-1', email: 'ann@gmail.example', linked_at: '2026-11-01T00:00:00Z' }];
    const assigned: string[] = [];
    vi.stubGlobal('location', { ...window.location, assign: (url: string) => assigned.push(url) });
    server.use(
      http.get('*/api/v1/auth/oidc/providers', () =>
        HttpResponse.json([
          { name: 'google', label: 'Google' },
          { name: 'corp', label: 'Corp SSO' },
        ]),
      ),
      http.get('*/api/v1/users/me/identities', () => HttpResponse.json(linked)),
      http.delete('*/api/v1/users/me/identities/google', () => {
        linked = [];
        return new HttpResponse(null, { status: 204 });
      }),
      http.post('*/api/v1/auth/oidc/link-ticket', () => HttpResponse.json({ ticket: 'tick et', expires_in: 60 }, { status: 201 })),
    );
    renderApp('/account');
    expect(await screen.findByText(/Google \(ann@gmail\.example\), linked/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Link Corp SSO' }));
    await waitFor(() => expect(assigned).toEqual(['/api/v1/auth/oidc/corp/start?link=tick%20et']));
    await userEvent.click(screen.getByRole('button', { name: 'Unlink Google' }));
    expect(await screen.findByText(/No provider is linked/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Link Google' })).toBeInTheDocument();
  });

  it('explains a refused unlink of the last way to sign in', async () => {
    server.use(
      http.get('*/api/v1/auth/oidc/providers', () => HttpResponse.json([{ name: 'google', label: 'Google' }])),
      http.get('*/api/v1/users/me/identities', () =>
        HttpResponse.json([{ provider: 'google', subject: 's-1', email: null, linked_at: '2026-11-01T00:00:00Z' }]),
      ),
      http.delete('*/api/v1/users/me/identities/google', () => problem(409, 'last_sign_in_method')),
    );
    renderApp('/account');
    await userEvent.click(await screen.findByRole('button', { name: 'Unlink Google' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('the server said last_sign_in_method');
  });

  it('shows nothing when no provider is configured or linked', async () => {
    renderApp('/account');
    expect(await screen.findByRole('heading', { name: 'Two-step login' })).toBeInTheDocument();
    expect(screen.queryByRole('heading', { name: 'Sign-in providers' })).not.toBeInTheDocument();
  });
});
