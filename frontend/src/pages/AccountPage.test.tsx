import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';

import type { User } from '../api/types';
import { admin, ann, anonymous, mockApi, problem, renderApp, signedIn } from '../test/app';

const server = mockApi(...signedIn(ann));

/** Answers PATCH /users/me as the server does (the name trimmed), recording each body. */
function updates(account: User = ann) {
  const sent: unknown[] = [];
  server.use(
    http.patch('*/api/v1/users/me', async ({ request }) => {
      const body = (await request.json()) as Partial<User>;
      sent.push(body);
      return HttpResponse.json({ ...account, ...body, display_name: body.display_name?.trim() ?? account.display_name });
    }),
  );
  return sent;
}

const nav = () => screen.getByRole('navigation', { name: 'Main' });

describe('the account page', () => {
  it('is the header’s link on your name, and shows your address and role', async () => {
    server.use(http.get('*/api/v1/items', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false })));
    renderApp('/');
    await userEvent.click(await within(nav()).findByRole('link', { name: 'Ann, your account' }));
    expect(await screen.findByRole('heading', { level: 1, name: 'Your account' })).toBeInTheDocument();
    expect(within(nav()).getByRole('link', { name: 'Ann, your account' })).toHaveClass('active');
    const facts = screen.getAllByRole('definition').map((dd) => dd.textContent);
    expect(facts).toEqual(['ann@example.com', 'User']);
    expect(screen.getByLabelText('Display name')).toHaveValue('Ann');
  });

  it('says an admin is one', async () => {
    server.use(...signedIn(admin));
    renderApp('/account');
    expect(await screen.findByText('Admin', { selector: 'dd' })).toBeInTheDocument();
  });

  it('changes the display name, and the header follows', async () => {
    const sent = updates();
    renderApp('/account');
    const name = await screen.findByLabelText('Display name');
    await userEvent.clear(name);
    await userEvent.type(name, '  Ann Example ');
    await userEvent.click(screen.getByRole('button', { name: 'Save name' }));
    expect(await screen.findByText('Your display name is saved.')).toHaveAttribute('role', 'status');
    expect(sent).toEqual([{ display_name: 'Ann Example' }]);
    expect(within(nav()).getByRole('link', { name: 'Ann Example, your account' })).toHaveTextContent('Ann Example');
    expect(name).toHaveValue('Ann Example');
  });

  it('checks the name before sending, and puts the server’s objection on the field', async () => {
    const sent: unknown[] = [];
    server.use(
      http.patch('*/api/v1/users/me', async ({ request }) => {
        sent.push(await request.json());
        return problem(422, 'validation_failed', { errors: [{ field: 'display_name', message: 'must not contain control characters' }] });
      }),
    );
    renderApp('/account');
    const name = await screen.findByLabelText('Display name');
    await userEvent.clear(name);
    await userEvent.type(name, '   ');
    await userEvent.click(screen.getByRole('button', { name: 'Save name' }));
    expect(await screen.findByText('Enter a display name')).toBeInTheDocument();
    expect(name).toHaveAttribute('aria-invalid', 'true');
    await userEvent.clear(name);
    await userEvent.type(name, 'x'.repeat(101));
    await userEvent.click(screen.getByRole('button', { name: 'Save name' }));
    expect(await screen.findByText('Use at most 100 characters')).toBeInTheDocument();
    expect(sent).toHaveLength(0);

    await userEvent.clear(name);
    await userEvent.type(name, 'Ann');
    await userEvent.click(screen.getByRole('button', { name: 'Save name' }));
    expect(await screen.findByText('must not contain control characters')).toBeInTheDocument();
    expect(name).toHaveAccessibleDescription(/must not contain control characters/);
    expect(sent).toHaveLength(1);
    expect(within(nav()).getByRole('link', { name: 'Ann, your account' })).toBeInTheDocument();
  });

  it('shows any other failure as a problem', async () => {
    server.use(http.patch('*/api/v1/users/me', () => problem(503, 'service_unavailable')));
    renderApp('/account');
    await userEvent.click(await screen.findByRole('button', { name: 'Save name' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('the server said service_unavailable');
    expect(screen.queryByText('Your display name is saved.')).not.toBeInTheDocument();
  });

  it('turns e-mail notices off and on, saved at once', async () => {
    let account: User = { ...ann };
    const sent: unknown[] = [];
    server.use(
      http.patch('*/api/v1/users/me', async ({ request }) => {
        const body = (await request.json()) as Partial<User>;
        sent.push(body);
        account = { ...account, ...body };
        return HttpResponse.json(account);
      }),
    );
    renderApp('/account');
    const notices = await screen.findByRole('switch', { name: 'E-mail me when I am outbid, my poisoned bid runs out, or I win' });
    expect(notices).toBeChecked();
    expect(notices).toHaveAccessibleDescription('Either way, every notice shows in the Notifications menu.');

    await userEvent.click(notices);
    expect(await screen.findByText('You will not be e-mailed notices.')).toHaveAttribute('role', 'status');
    expect(notices).not.toBeChecked();
    await userEvent.click(notices);
    expect(await screen.findByText('You will be e-mailed notices.')).toBeInTheDocument();
    expect(notices).toBeChecked();
    expect(sent).toEqual([{ notify_email: false }, { notify_email: true }]);
  });

  it('shows the switch where it is going while saving, and puts it back when that fails', async () => {
    let answer: (response: Response) => void = () => {};
    let asked = 0;
    server.use(
      http.patch('*/api/v1/users/me', () => {
        asked += 1;
        return new Promise<Response>((resolve) => {
          answer = resolve;
        });
      }),
    );
    renderApp('/account');
    const notices = await screen.findByRole('switch');
    await userEvent.click(notices);
    expect(notices).not.toBeChecked();
    await userEvent.click(notices); // ignored while the first is in flight
    expect(notices).not.toBeChecked();
    await waitFor(() => expect(asked).toBe(1));
    answer(problem(503, 'service_unavailable'));
    expect(await screen.findByRole('alert')).toHaveTextContent('the server said service_unavailable');
    expect(notices).toBeChecked();
    expect(asked).toBe(1);
  });

  it('keeps the switch where it was saved when a slow name save answers after it', async () => {
    // The server as it is: each answer is the account after that change.
    let account: User = { ...ann };
    let releaseName: () => void = () => {};
    server.use(
      http.patch('*/api/v1/users/me', async ({ request }) => {
        const body = (await request.json()) as Partial<User>;
        account = { ...account, ...body };
        const answer = { ...account };
        // The name's answer is held back until after the switch's.
        if (body.display_name !== undefined) await new Promise<void>((resolve) => (releaseName = resolve));
        return HttpResponse.json(answer);
      }),
    );
    renderApp('/account');
    const name = await screen.findByLabelText('Display name');
    await userEvent.clear(name);
    await userEvent.type(name, 'Ann Example');
    await userEvent.click(screen.getByRole('button', { name: 'Save name' }));
    await waitFor(() => expect(account.display_name).toBe('Ann Example'));

    const notices = screen.getByRole('switch');
    await userEvent.click(notices);
    expect(await screen.findByText('You will not be e-mailed notices.')).toBeInTheDocument();
    // The name's answer, older (notify_email still on), lands last.
    releaseName();
    expect(await screen.findByText('Your display name is saved.')).toBeInTheDocument();
    expect(within(nav()).getByRole('link', { name: 'Ann Example, your account' })).toBeInTheDocument();
    expect(notices).not.toBeChecked();
    expect(screen.getByText('You will not be e-mailed notices.')).toBeInTheDocument();
  });

  it('keeps its status lines in place, changing only their words, and drops "saved" once the name changes', async () => {
    updates();
    renderApp('/account');
    const name = await screen.findByLabelText('Display name');
    const form = name.closest('form')!;
    const status = within(form).getByRole('status');
    expect(status).toBeEmptyDOMElement();
    await userEvent.click(screen.getByRole('button', { name: 'Save name' }));
    await waitFor(() => expect(status).toHaveTextContent('Your display name is saved.'));
    await userEvent.type(name, 'x');
    expect(status).toBeEmptyDOMElement();
    expect(within(form).getByRole('status')).toBe(status);
  });

  it('leads on to changing the password', async () => {
    server.use(http.get('*/api/v1/auth/policy', () => HttpResponse.json({ password_min_length: 15, password_max_length: 128 })));
    renderApp('/account');
    await userEvent.click(await screen.findByRole('link', { name: 'Change your password' }));
    expect(await screen.findByRole('heading', { name: 'Change your password' })).toBeInTheDocument();
    // Still your account in the header.
    await waitFor(() => expect(within(nav()).getByRole('link', { name: 'Ann, your account' })).toHaveClass('active'));
  });

  it('sends a visitor to the login', async () => {
    server.use(...anonymous);
    renderApp('/account');
    expect(await screen.findByRole('heading', { name: 'Log in' })).toBeInTheDocument();
  });

  it('logs out everywhere after asking, and says so on the login page', async () => {
    let ended = 0;
    server.use(
      http.post('*/api/v1/auth/logout-all', () => {
        ended += 1;
        return new HttpResponse(null, { status: 204 });
      }),
    );
    renderApp('/account');
    await userEvent.click(await screen.findByRole('button', { name: 'Log out everywhere' }));
    // Asked first: nothing is ended by one click; focus goes to the question.
    expect(ended).toBe(0);
    expect(screen.getByRole('button', { name: 'Yes, log out everywhere' })).toHaveFocus();
    await userEvent.click(screen.getByRole('button', { name: 'Keep my sessions' }));
    expect(screen.getByRole('button', { name: 'Log out everywhere' })).toHaveFocus();
    await userEvent.click(screen.getByRole('button', { name: 'Log out everywhere' }));
    await userEvent.click(screen.getByRole('button', { name: 'Yes, log out everywhere' }));
    expect(await screen.findByRole('heading', { name: 'Log in' })).toBeInTheDocument();
    const farewell = screen.getByText('You are logged out everywhere: every session of your account has ended.');
    expect(farewell).toHaveAttribute('role', 'status');
    expect(farewell).toHaveFocus();
    expect(ended).toBe(1);
  });

  it('stays logged in and says so when the server could not end the sessions', async () => {
    server.use(http.post('*/api/v1/auth/logout-all', () => problem(503, 'service_unavailable')));
    renderApp('/account');
    await userEvent.click(await screen.findByRole('button', { name: 'Log out everywhere' }));
    await userEvent.click(screen.getByRole('button', { name: 'Yes, log out everywhere' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('service_unavailable');
    expect(screen.getByRole('heading', { level: 1, name: 'Your account' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Log out everywhere' })).toBeEnabled();
  });
});
