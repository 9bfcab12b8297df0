import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse, ws } from 'msw';

import type { Notification, NotificationPage, StoredNotification } from '../api/types';
import { ann, FakeEventSource, mockApi, problem, renderApp, signedIn } from '../test/app';

const server = mockApi(...signedIn(ann), http.get('*/api/v1/items', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false })));

const LAMP = '3f1c2b4a-0d9e-4c8b-a7f6-e5d4c3b2a1f0';
const CHAIR = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const STOVE = '5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d';

function aNotification(over: Partial<StoredNotification> = {}): StoredNotification {
  return {
    id: 'n-1',
    type: 'outbid',
    data: { item_id: LAMP, item_title: 'A brass lamp', currency: 'usd', currency_decimals: 2, current_price: 13_000, minimum_next_bid: 13_500 },
    at: '2026-03-01T12:00:00Z',
    read: false,
    ...over,
  };
}

/**
 * The server's side: `stored` (newest first) served `pageSize` to a page by
 * position, each page with how many of all are unread, marked read as POST
 * /me/notifications/read says. Records what was asked.
 */
function notifications(stored: StoredNotification[], pageSize = 20) {
  const asked = { pages: [] as (string | null)[], marked: [] as unknown[] };
  server.use(
    http.get('*/api/v1/me/notifications', ({ request }) => {
      const cursor = new URL(request.url).searchParams.get('cursor');
      asked.pages.push(cursor);
      const start = Number(cursor ?? 0);
      const next = start + pageSize < stored.length ? String(start + pageSize) : null;
      const page: NotificationPage = {
        items: stored.slice(start, start + pageSize),
        next_cursor: next,
        has_more: next !== null,
        unread: stored.filter((notification) => !notification.read).length,
      };
      return HttpResponse.json(page);
    }),
    http.post('*/api/v1/me/notifications/read', async ({ request }) => {
      const body = (await request.json()) as { up_to_id: string };
      asked.marked.push(body);
      const at = stored.findIndex((notification) => notification.id === body.up_to_id);
      if (at < 0) return problem(404, 'not_found');
      stored.forEach((notification, index) => {
        if (index >= at) notification.read = true;
      });
      return new HttpResponse(null, { status: 204 });
    }),
  );
  return asked;
}

/** The notification socket; resolves with its `send` once the app connected. */
function notificationSocket() {
  const link = ws.link('ws://localhost:3000/ws');
  return new Promise<(notification: Notification) => void>((resolve) => {
    server.use(
      http.post('*/api/v1/ws-ticket', () => HttpResponse.json({ ticket: 'ticket-1', expires_in: 30 })),
      link.addEventListener('connection', ({ client }) => resolve((notification) => client.send(JSON.stringify(notification)))),
    );
  });
}

const nav = () => screen.getByRole('navigation', { name: 'Main' });
const menuButton = () => within(nav()).getByRole('button', { name: /^Notifications/ });
const panel = () => screen.getByRole('region', { name: 'Your notifications' });

describe('the notifications menu', () => {
  it('counts the unread ones and lists every one as a sentence, the unread marked new', async () => {
    notifications([
      aNotification({
        id: 'n-3',
        type: 'won',
        data: { item_id: CHAIR, item_title: 'A walnut chair', currency: 'usd', currency_decimals: 2, final_price: 30_500 },
        at: '2026-03-03T09:00:00Z',
      }),
      aNotification({
        id: 'n-2',
        type: 'auto_raised',
        data: { item_id: LAMP, item_title: 'A brass lamp', currency: 'usd', currency_decimals: 2, effective: 15_500, remaining_budget: 4_500 },
      }),
      aNotification({ id: 'n-1', read: true }),
    ]);
    renderApp('/');
    const button = await within(nav()).findByRole('button', { name: 'Notifications, 2 unread' });
    expect(button).toHaveAttribute('aria-expanded', 'false');
    expect(screen.queryByRole('region', { name: 'Your notifications' })).not.toBeInTheDocument();

    await userEvent.click(button);
    expect(button).toHaveAttribute('aria-expanded', 'true');
    expect(button).toHaveAttribute('aria-controls', panel().id);
    const entries = within(panel()).getAllByRole('listitem');
    expect(entries.map((entry) => within(entry).getByRole('paragraph').textContent)).toEqual([
      'You won! You pay $305.00.',
      'Your poison raised your bid to $155.00; $45.00 of budget left.',
      'You were outbid: the price is now $130.00.',
    ]);
    expect(within(entries[0]!).getByRole('link', { name: 'A walnut chair' })).toHaveAttribute('href', `/items/${CHAIR}`);
    expect(within(entries[2]!).getByRole('link', { name: 'A brass lamp' })).toHaveAttribute('href', `/items/${LAMP}`);
    expect(entries.map((entry) => entry.classList.contains('unread'))).toEqual([true, true, false]);
    expect(entries.map((entry) => within(entry).queryByText('New') !== null)).toEqual([true, true, false]);
    expect(entries[0]!.querySelector('time')).toHaveAttribute('datetime', '2026-03-03T09:00:00Z');
  });

  it('marks everything up to the newest read at once, before the list is read again: the count and the new marks go', async () => {
    const asked = notifications([aNotification({ id: 'n-2' }), aNotification({ id: 'n-1' })]);
    renderApp('/');
    await userEvent.click(await within(nav()).findByRole('button', { name: 'Notifications, 2 unread' }));
    await within(panel()).findAllByRole('listitem');
    // The list is not read again until the test says so: what shows is the
    // app's own update of what it had.
    let readAgain: () => void = () => {};
    const held = new Promise<void>((resolve) => (readAgain = resolve));
    const reads = asked.pages.length;
    server.use(
      http.get('*/api/v1/me/notifications', async () => {
        await held;
        return HttpResponse.json({ items: [], next_cursor: null, has_more: false, unread: 0 });
      }),
    );
    await userEvent.tab(); // onto "Mark all as read"
    await userEvent.keyboard('{Enter}');
    await waitFor(() => expect(menuButton()).toHaveAccessibleName('Notifications'));
    expect(asked.marked).toEqual([{ up_to_id: 'n-2' }]);
    expect(asked.pages).toHaveLength(reads);
    expect(within(panel()).queryByText('New')).not.toBeInTheDocument();
    expect(within(panel()).queryByRole('button', { name: 'Mark all as read' })).not.toBeInTheDocument();
    expect(panel().querySelectorAll('.unread')).toHaveLength(0);
    // The focus was on the button that went: it is on the panel's heading,
    // and the change is said.
    expect(within(panel()).getByRole('heading', { name: 'Your notifications' })).toHaveFocus();
    expect(within(screen.getByRole('navigation', { name: 'Main' })).getByText('All marked as read')).toHaveAttribute('role', 'status');
    act(() => readAgain());
  });

  it('marks read only what it sent: a notice that arrives meanwhile stays new', async () => {
    const stored = [aNotification({ id: 'n-2' }), aNotification({ id: 'n-1' })];
    const asked = notifications(stored);
    let answerMark: () => void = () => {};
    server.use(
      http.post('*/api/v1/me/notifications/read', async ({ request }) => {
        const body = (await request.json()) as { up_to_id: string };
        asked.marked.push(body);
        await new Promise<void>((resolve) => (answerMark = resolve));
        stored.forEach((notification, index) => {
          if (index >= stored.findIndex((n) => n.id === body.up_to_id)) notification.read = true;
        });
        return new HttpResponse(null, { status: 204 });
      }),
    );
    const connected = notificationSocket();
    renderApp('/');
    await userEvent.click(await within(nav()).findByRole('button', { name: 'Notifications, 2 unread' }));
    await within(panel()).findAllByRole('listitem');
    const send = await connected;
    await userEvent.click(within(panel()).getByRole('button', { name: 'Mark all as read' }));
    await waitFor(() => expect(asked.marked).toHaveLength(1));
    // A busy button says so, and keeps the focus.
    expect(within(panel()).getByRole('button', { name: 'Mark all as read' })).toHaveAttribute('aria-disabled', 'true');

    // While the mark is on its way a newer one is stored and pushed; the list shows it.
    const live: Notification = { type: 'won', data: { item_id: CHAIR, final_price: 30_500 }, at: '2026-03-04T10:00:00Z' };
    stored.unshift({ ...live, id: 'n-3', data: { ...live.data, item_title: 'A walnut chair', currency: 'usd', currency_decimals: 2 }, read: false });
    send(live);
    await waitFor(() => expect(within(panel()).getAllByRole('listitem')).toHaveLength(3));
    // The list is not read again after the mark until the test says so.
    let readAgain: () => void = () => {};
    const held = new Promise<void>((resolve) => (readAgain = resolve));
    server.use(
      http.get('*/api/v1/me/notifications', async () => {
        await held;
        return HttpResponse.json({ items: [], next_cursor: null, has_more: false, unread: 0 });
      }),
    );
    answerMark();
    await waitFor(() => expect(menuButton()).toHaveAccessibleName('Notifications, 1 unread'));
    const entries = within(panel()).getAllByRole('listitem');
    expect(entries.map((entry) => entry.classList.contains('unread'))).toEqual([true, false, false]);
    expect(within(entries[0]!).getByText('New')).toBeInTheDocument();
    expect(asked.marked).toEqual([{ up_to_id: 'n-2' }]);
    act(() => readAgain());
  });

  it('shows a failed mark as a problem and keeps the count; reopened, the old failure is gone', async () => {
    notifications([aNotification()]);
    server.use(http.post('*/api/v1/me/notifications/read', () => problem(503, 'service_unavailable')));
    renderApp('/');
    await userEvent.click(await within(nav()).findByRole('button', { name: 'Notifications, 1 unread' }));
    await userEvent.click(within(panel()).getByRole('button', { name: 'Mark all as read' }));
    expect(await within(panel()).findByRole('alert')).toHaveTextContent('the server said service_unavailable');
    expect(menuButton()).toHaveAccessibleName('Notifications, 1 unread');
    await userEvent.click(menuButton());
    await userEvent.click(menuButton());
    await within(panel()).findByRole('listitem');
    expect(within(panel()).queryByRole('alert')).not.toBeInTheDocument();
  });

  it("loads more by cursor (the focus on the first new entry), counts every unread one as the server does, and keeps one page once closed", async () => {
    const asked = notifications(
      [
        aNotification({ id: 'n-4' }),
        aNotification({ id: 'n-3' }),
        aNotification({ id: 'n-2', data: { item_id: STOVE, item_title: 'A tiled stove', currency: 'usd', currency_decimals: 2, current_price: 13_000 } }),
        aNotification({ id: 'n-1', type: 'lost', data: { item_id: LAMP, item_title: 'A brass lamp', currency: 'usd', currency_decimals: 2, final_price: 20_000 }, read: true }),
      ],
      2,
    );
    renderApp('/');
    await userEvent.click(await within(nav()).findByRole('button', { name: 'Notifications, 3 unread' }));
    await waitFor(() => expect(within(panel()).getAllByRole('listitem')).toHaveLength(2));
    expect(within(menuButton()).getByText('3')).toHaveClass('badge');
    await userEvent.click(within(panel()).getByRole('button', { name: 'Load more' }));
    expect(await within(panel()).findByText('The auction closed at $200.00; another bid won.')).toBeInTheDocument();
    expect(menuButton()).toHaveAccessibleName('Notifications, 3 unread');
    expect(within(panel()).queryByRole('button', { name: 'Load more' })).not.toBeInTheDocument();
    expect(asked.pages.at(-1)).toBe('2');
    // The button went with the last page: the focus is on what it brought.
    await waitFor(() => expect(within(panel()).getByRole('link', { name: 'A tiled stove' })).toHaveFocus());

    // Closed, one page is kept: reopening reads that one again, not both.
    await userEvent.keyboard('{Escape}');
    const reads = asked.pages.length;
    await userEvent.click(menuButton());
    await waitFor(() => expect(asked.pages.length).toBe(reads + 1));
    expect(asked.pages.at(-1)).toBeNull();
    expect(within(panel()).getAllByRole('listitem')).toHaveLength(2);
    expect(within(panel()).getByRole('button', { name: 'Load more' })).toBeInTheDocument();
  });

  it('clears a count beyond the loaded page when all are marked read', async () => {
    const asked = notifications([aNotification({ id: 'n-3' }), aNotification({ id: 'n-2' }), aNotification({ id: 'n-1' })], 1);
    renderApp('/');
    await userEvent.click(await within(nav()).findByRole('button', { name: 'Notifications, 3 unread' }));
    await waitFor(() => expect(within(panel()).getAllByRole('listitem')).toHaveLength(1));
    await userEvent.click(within(panel()).getByRole('button', { name: 'Mark all as read' }));
    await waitFor(() => expect(menuButton()).toHaveAccessibleName('Notifications'));
    expect(asked.marked).toEqual([{ up_to_id: 'n-3' }]);
    expect(within(menuButton()).queryByText('3')).not.toBeInTheDocument();
  });

  it("words each in its item's currency with the server's decimals, not the browser's", async () => {
    notifications([
      aNotification({
        id: 'n-3',
        type: 'outbid',
        // The forint: 2 decimals by ISO 4217 and the server; Intl says 0.
        data: { item_id: STOVE, item_title: 'A tiled stove', currency: 'huf', currency_decimals: 2, current_price: 12_345, minimum_next_bid: 12_845 },
      }),
      aNotification({ id: 'n-2', type: 'won', data: { item_id: CHAIR, item_title: 'A walnut chair', currency: 'jpy', currency_decimals: 0, final_price: 70_000 } }),
      // One stored before notifications said their currency: read as usd.
      aNotification({ id: 'n-1', type: 'lost', data: { item_id: LAMP, item_title: 'A brass lamp', final_price: 20_000 } }),
    ]);
    renderApp('/');
    await userEvent.click(await within(nav()).findByRole('button', { name: 'Notifications, 3 unread' }));
    await waitFor(() => expect(within(panel()).getAllByRole('listitem')).toHaveLength(3));
    expect(within(panel()).getAllByRole('paragraph').map((p) => p.textContent)).toEqual([
      'You were outbid: the price is now HUF\u00a0123.45.',
      'You won! You pay ¥70,000.',
      'The auction closed at $200.00; another bid won.',
    ]);
  });

  it('counts and lists a live notification as it arrives', async () => {
    const stored = [aNotification({ id: 'n-1', read: true })];
    notifications(stored);
    const connected = notificationSocket();
    renderApp('/');
    await userEvent.click(await within(nav()).findByRole('button', { name: 'Notifications' }));
    await waitFor(() => expect(within(panel()).getAllByRole('listitem')).toHaveLength(1));
    const send = await connected;

    // The server stores it, then pushes it (without its stored id).
    const live: Notification = { type: 'exhausted', data: { item_id: CHAIR, effective: 20_000, current_price: 21_000, minimum_next_bid: 21_500 }, at: '2026-03-04T10:00:00Z' };
    stored.unshift({ ...live, id: 'n-2', data: { ...live.data, item_title: 'A walnut chair', currency: 'usd', currency_decimals: 2 }, read: false });
    send(live);

    await waitFor(() => expect(menuButton()).toHaveAccessibleName('Notifications, 1 unread'));
    const entries = within(panel()).getAllByRole('listitem');
    expect(entries).toHaveLength(2);
    expect(entries[0]).toHaveTextContent('A walnut chair');
    expect(entries[0]).toHaveTextContent('Your poison is spent: the price $210.00 is above your budget.');
  });

  it("words a live toast in its item's currency once the page has seen it, else as usd", async () => {
    const stored = [
      aNotification({
        id: 'n-1',
        read: true,
        data: { item_id: STOVE, item_title: 'A tiled stove', currency: 'huf', currency_decimals: 2, current_price: 10_000, minimum_next_bid: 10_500 },
      }),
    ];
    notifications(stored);
    const connected = notificationSocket();
    renderApp('/');
    // The stored list read (it names the stove's currency), the socket open.
    await userEvent.click(await within(nav()).findByRole('button', { name: 'Notifications' }));
    await within(panel()).findByRole('link', { name: 'A tiled stove' });
    const send = await connected;
    const toasts = screen.getByRole('status', { name: 'Live updates' });

    send({ type: 'outbid', data: { item_id: STOVE, current_price: 15_000, minimum_next_bid: 15_500 }, at: '2026-03-04T10:00:00Z' });
    // (Text queries read Intl's no-break space as a space.)
    expect(await within(toasts).findByText('You were outbid: the price is now HUF 150.00.')).toBeInTheDocument();
    // The socket names an item this page never saw: no currency at hand.
    const unknown = '0f1e2d3c-4b5a-4968-8776-655443322110';
    send({ type: 'won', data: { item_id: unknown, final_price: 4_200 }, at: '2026-03-04T10:01:00Z' });
    expect(await within(toasts).findByText('You won! You pay $42.00.')).toBeInTheDocument();
  });

  it('closes on Escape (focus back on its button), on a click elsewhere, on the focus leaving it, and on following an entry', async () => {
    FakeEventSource.install();
    notifications([aNotification()]);
    server.use(http.get(`*/api/v1/items/${LAMP}/bid`, () => problem(404, 'not_found')));
    renderApp('/');
    const button = await within(nav()).findByRole('button', { name: 'Notifications, 1 unread' });
    await userEvent.click(button);
    await within(panel()).findByRole('listitem');
    // Into the panel by keyboard, so Escape has the focus to bring back.
    await userEvent.tab();
    expect(within(panel()).getByRole('button', { name: 'Mark all as read' })).toHaveFocus();
    await userEvent.keyboard('{Escape}');
    expect(button).toHaveAttribute('aria-expanded', 'false');
    expect(button).toHaveFocus();

    await userEvent.click(button);
    await userEvent.click(within(panel()).getByRole('heading', { name: 'Your notifications' }));
    expect(button).toHaveAttribute('aria-expanded', 'true');
    await userEvent.click(screen.getByRole('main'));
    expect(button).toHaveAttribute('aria-expanded', 'false');

    // Tabbing out of it (backwards, onto the link before it) closes it.
    await userEvent.click(button);
    await userEvent.tab({ shift: true });
    expect(within(nav()).getByRole('link', { name: 'My bids' })).toHaveFocus();
    expect(button).toHaveAttribute('aria-expanded', 'false');

    await userEvent.click(button);
    await userEvent.click(within(panel()).getByRole('link', { name: 'A brass lamp' }));
    expect(button).toHaveAttribute('aria-expanded', 'false');
    expect((await FakeEventSource.opened()).url).toBe(`/events/${LAMP}`);
  });

  it('leaves the focus alone on an Escape from outside it, and on one handled already', async () => {
    notifications([aNotification()]);
    renderApp('/');
    const button = await within(nav()).findByRole('button', { name: 'Notifications, 1 unread' });
    await userEvent.click(button);
    const text = await within(panel()).findByText('You were outbid: the price is now $130.00.');
    // Handled by someone else first (a dialog of the page's own): not ours.
    const handled = (event: KeyboardEvent) => event.preventDefault();
    document.addEventListener('keydown', handled, { capture: true });
    await userEvent.keyboard('{Escape}');
    document.removeEventListener('keydown', handled, { capture: true });
    expect(button).toHaveAttribute('aria-expanded', 'true');
    // A click on the panel's text leaves the focus nowhere: Escape closes,
    // and does not pull the focus to the button.
    await userEvent.click(text);
    expect(document.body).toHaveFocus();
    await userEvent.keyboard('{Escape}');
    expect(button).toHaveAttribute('aria-expanded', 'false');
    expect(button).not.toHaveFocus();
  });

  it('reads the list again when the socket connects: a notice sent while it was down is counted', async () => {
    const stored: StoredNotification[] = [];
    const asked = notifications(stored);
    renderApp('/');
    // No socket yet (the ticket is refused); the list read once, empty.
    await within(nav()).findByRole('button', { name: 'Notifications' });
    expect(asked.pages).toHaveLength(1);
    // A notice stored meanwhile: pushed to no one.
    stored.unshift(aNotification({ id: 'n-1' }));
    // The socket comes up on its next try, and the list is read again.
    void notificationSocket();
    expect(await within(nav()).findByRole('button', { name: 'Notifications, 1 unread' }, { timeout: 3000 })).toBeInTheDocument();
    await waitFor(() => expect(nav().querySelector('.menu')).toHaveAttribute('data-live', 'connected'));
  });

  it('says when there is nothing yet, and shows a failed read as a problem', async () => {
    renderApp('/');
    await userEvent.click(await within(nav()).findByRole('button', { name: 'Notifications' }));
    expect(await within(panel()).findByText(/Nothing yet/)).toBeInTheDocument();
    expect(within(panel()).queryByRole('button', { name: 'Mark all as read' })).not.toBeInTheDocument();

    server.use(http.get('*/api/v1/me/notifications', () => problem(503, 'service_unavailable')));
    await userEvent.keyboard('{Escape}');
    await userEvent.click(menuButton());
    expect(await within(panel()).findByRole('alert')).toHaveTextContent('the server said service_unavailable');
  });
});
