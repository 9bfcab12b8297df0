import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse } from 'msw';

import { auditTrailEventValues } from '../api/enums';
import type { AuditEntry } from '../api/types';
import { admin, ann, mockApi, problem, renderApp, signedIn } from '../test/app';

const server = mockApi(...signedIn(admin));

const ANN = '0b7e4c1a-3f5d-4e2a-9c8b-1d2e3f4a5b6c';
const ROOT = '7d1f0e2c-9a8b-4c3d-8e7f-6a5b4c3d2e1f';

function anEntry(over: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id: 'entry-1',
    at: '2026-03-01T12:00:00Z',
    event: 'login_succeeded',
    user_id: ANN,
    actor_id: null,
    ip: '203.0.113.7',
    request_id: 'req-0001',
    details: null,
    ...over,
  };
}

/** Answers GET /admin/audit from `pages[cursor ?? '']` (by `event` when asked), recording each query. */
function trail(pages: Record<string, { items: AuditEntry[]; next_cursor: string | null }>) {
  const asked: URLSearchParams[] = [];
  server.use(
    http.get('*/api/v1/admin/audit', ({ request }) => {
      const params = new URL(request.url).searchParams;
      asked.push(params);
      const page = pages[params.get('cursor') ?? ''];
      if (!page) return problem(400, 'invalid_cursor');
      const event = params.get('event');
      const items = event ? page.items.filter((entry) => entry.event === event) : page.items;
      return HttpResponse.json({ items, next_cursor: page.next_cursor, has_more: page.next_cursor !== null });
    }),
  );
  return asked;
}

describe('the audit page', () => {
  it('is linked in the navigation for admins', async () => {
    trail({ '': { items: [], next_cursor: null } });
    server.use(http.get('*/api/v1/items', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false })));
    renderApp('/');
    await userEvent.click(await screen.findByRole('link', { name: 'Audit' }));
    expect(await screen.findByRole('heading', { name: 'Audit trail' })).toBeInTheDocument();
    expect(await screen.findByText('The audit trail is empty.')).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'Audit' })).toHaveClass('active');
    expect(screen.getByRole('link', { name: 'Admin' })).not.toHaveClass('active');
  });

  it('turns away someone who is not an admin, without asking the server', async () => {
    const asked = trail({ '': { items: [], next_cursor: null } });
    server.use(...signedIn(ann));
    renderApp('/admin/audit');
    expect(await screen.findByRole('alert')).toHaveTextContent('This page is for admins.');
    expect(screen.queryByRole('link', { name: 'Audit' })).not.toBeInTheDocument();
    expect(asked).toHaveLength(0);
  });

  it('lists entries newest first in a table with headers', async () => {
    const asked = trail({
      '': {
        items: [
          anEntry({ id: 'e2', at: '2026-03-02T09:30:00Z', event: 'role_changed', user_id: ANN, actor_id: ROOT, details: 'user -> admin' }),
          anEntry({ id: 'e1', event: 'login_failed', user_id: null, ip: null, request_id: null, details: 'unknown address' }),
        ],
        next_cursor: null,
      },
    });
    renderApp('/admin/audit');
    const table = await screen.findByRole('table');
    expect(within(table).getAllByRole('columnheader').map((th) => th.textContent)).toEqual([
      'Time',
      'Event',
      'Account',
      'Actor',
      'IP',
      'Request id',
      'Details',
    ]);
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows).toHaveLength(2);
    const first = within(rows[0]!).getAllByRole('cell').map((td) => td.textContent);
    expect(first.slice(1)).toEqual(['Role changed', ANN, ROOT, '203.0.113.7', 'req-0001', 'user -> admin']);
    expect(within(rows[0]!).getByText(/2026/).closest('time')).toHaveAttribute('datetime', '2026-03-02T09:30:00Z');
    expect(within(rows[1]!).getAllByRole('cell').map((td) => td.textContent).slice(1)).toEqual([
      'Login failed',
      '—',
      '—',
      '—',
      '—',
      'unknown address',
    ]);
    expect(screen.queryByRole('button', { name: 'Load more' })).not.toBeInTheDocument();
    expect(asked.map(String)).toEqual(['limit=50']);
  });

  it('offers every event the API knows, and filters by one', async () => {
    const asked = trail({
      '': {
        items: [anEntry({ id: 'a', event: 'login_succeeded' }), anEntry({ id: 'b', event: 'login_failed', details: 'wrong password' })],
        next_cursor: null,
      },
    });
    renderApp('/admin/audit');
    await screen.findByRole('table');
    const select = screen.getByLabelText('Event');
    const options = within(select).getAllByRole('option');
    expect(options.map((option) => option.getAttribute('value'))).toEqual(['', ...auditTrailEventValues]);
    expect(options[0]).toHaveTextContent('Any event');

    await userEvent.selectOptions(select, 'Login failed');
    await userEvent.click(screen.getByRole('button', { name: 'Filter' }));
    await waitFor(() => expect(asked.at(-1)?.get('event')).toBe('login_failed'));
    expect(await screen.findByText('wrong password')).toBeInTheDocument();
    await waitFor(() => expect(within(screen.getByRole('table')).getAllByRole('row')).toHaveLength(2));
    expect(asked.at(-1)?.has('user_id')).toBe(false);

    await userEvent.selectOptions(select, 'Item created');
    await userEvent.click(screen.getByRole('button', { name: 'Filter' }));
    expect(await screen.findByText('No audit entries match these filters.')).toBeInTheDocument();

    await userEvent.click(screen.getByRole('button', { name: 'Clear' }));
    await waitFor(() => expect(within(screen.getByRole('table')).getAllByRole('row')).toHaveLength(3));
    expect(select).toHaveValue('');
    expect(asked.at(-1)?.has('event')).toBe(false);
  });

  it('rejects a malformed user id without a request, then sends a whole one', async () => {
    const asked = trail({ '': { items: [anEntry()], next_cursor: null } });
    renderApp('/admin/audit');
    await screen.findByRole('table');
    const account = screen.getByLabelText('Account (user id)');
    await userEvent.type(account, '0b7e4c1a-3f5d');
    await userEvent.click(screen.getByRole('button', { name: 'Filter' }));
    expect(await screen.findByText(/Enter a whole user id/)).toBeInTheDocument();
    expect(account).toHaveAttribute('aria-invalid', 'true');
    expect(account).toHaveAccessibleDescription(/Enter a whole user id/);
    expect(asked).toHaveLength(1);

    await userEvent.clear(account);
    await userEvent.type(account, ` ${ANN.toUpperCase()} `);
    await userEvent.click(screen.getByRole('button', { name: 'Filter' }));
    await waitFor(() => expect(asked).toHaveLength(2));
    expect(asked[1]?.get('user_id')).toBe(ANN.toUpperCase());
    expect(screen.queryByText(/Enter a whole user id/)).not.toBeInTheDocument();
  });

  it('loads more with the cursor, keeping the filter', async () => {
    const asked = trail({
      '': { items: [anEntry({ id: 'a', details: 'first page' })], next_cursor: 'page-2' },
      'page-2': { items: [anEntry({ id: 'b', details: 'second page' })], next_cursor: null },
    });
    renderApp('/admin/audit');
    await userEvent.type(await screen.findByLabelText('Account (user id)'), ANN);
    await userEvent.click(screen.getByRole('button', { name: 'Filter' }));
    await waitFor(() => expect(asked.at(-1)?.get('user_id')).toBe(ANN));
    await screen.findByText('first page');
    await userEvent.click(await screen.findByRole('button', { name: 'Load more' }));
    expect(await screen.findByText('second page')).toBeInTheDocument();
    expect(screen.getByText('first page')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Load more' })).not.toBeInTheDocument();
    expect(asked.at(-1)?.get('cursor')).toBe('page-2');
    expect(asked.at(-1)?.get('user_id')).toBe(ANN);
  });

  it('shows a failed read as a problem', async () => {
    server.use(http.get('*/api/v1/admin/audit', () => problem(503, 'service_unavailable')));
    renderApp('/admin/audit');
    expect(await screen.findByRole('alert')).toHaveTextContent('the server said service_unavailable');
    expect(screen.queryByRole('table')).not.toBeInTheDocument();
    expect(screen.queryByText('The audit trail is empty.')).not.toBeInTheDocument();
  });

  it('keeps the entries it has when a further page fails', async () => {
    trail({ '': { items: [anEntry({ details: 'kept' })], next_cursor: 'gone' } });
    renderApp('/admin/audit');
    await userEvent.click(await screen.findByRole('button', { name: 'Load more' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('the server said invalid_cursor');
    expect(screen.getByText('kept')).toBeInTheDocument();
  });
});
