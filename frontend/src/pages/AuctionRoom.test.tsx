import { cleanup, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { http, HttpResponse, ws } from 'msw';

import type { Item, Notification, OwnBid, RevealedBid } from '../api/types';
import { aBid, anItem, ann, anonymous, FakeEventSource, mockApi, problem, renderApp, signedIn } from '../test/app';

const server = mockApi(...anonymous);
beforeEach(() => FakeEventSource.install());

const text = (testId: string) => screen.getByTestId(testId).textContent;
const price = (id: number, current_price: number) => ({
  item_id: 'lot',
  current_price,
  minimum_next_bid: current_price + 500,
  bid_count: id,
  at: '2026-06-01T00:00:00Z',
  close_at: '2030-01-01T00:00:00Z',
  extensions_used: 0,
  ledger_head: null,
});

function revealed(seq: number, bidder_id: string, over: Partial<RevealedBid> = {}): RevealedBid {
  return { seq, bidder_id, amount: 12_500, poison: null, state: 'lost', effective: 12_500, created_at: '2026-01-02T00:00:00.000000Z', salt: '0'.repeat(32), hash: null, ...over };
}

/** Serves the revealed bids two to a page. */
function revealedBids(bids: RevealedBid[]) {
  server.use(
    http.get('*/api/v1/items/lot/bids', ({ request }) => {
      const cursor = Number(new URL(request.url).searchParams.get('cursor') ?? 0);
      const next = cursor + 2 < bids.length ? String(cursor + 2) : null;
      return HttpResponse.json({ items: bids.slice(cursor, cursor + 2), next_cursor: next, has_more: next !== null });
    }),
  );
}

/** Your bid as GET /items/lot/bid answers it; `null` is a 404. */
function yourBid(bid: () => OwnBid | null) {
  server.use(
    http.get('*/api/v1/items/lot/bid', () => {
      const current = bid();
      return current ? HttpResponse.json(current) : problem(404, 'not_found');
    }),
  );
}

/** The notification socket; resolves with its `send` once the app connected. */
function notificationSocket() {
  const link = ws.link('ws://localhost:3000/ws');
  let tickets = 0;
  const connected = new Promise<(notification: Notification) => void>((resolve) => {
    server.use(
      http.post('*/api/v1/ws-ticket', () => HttpResponse.json({ ticket: `ticket-${++tickets}`, expires_in: 30 })),
      link.addEventListener('connection', ({ client }) => {
        expect(client.url.searchParams.get('ticket')).toBe(`ticket-${tickets}`);
        resolve((notification) => client.send(JSON.stringify(notification)));
      }),
    );
  });
  return connected;
}

describe('the auction room', () => {
  it('shows a visitor the live price, then the outcome and every bid once closed', async () => {
    revealedBids([
      revealed(1, 'user-bob-000042', { amount: 13_000, poison: { budget: 20_000, step: 500 }, state: 'won', effective: 13_000 }),
      revealed(2, 'user-cy-000777', { amount: 12_500, state: 'lost', effective: 12_500 }),
      revealed(3, 'user-di-000999', { amount: 12_000, state: 'lost', effective: 12_000 }),
    ]);
    server.use(http.get('*/api/v1/items/lot', () => HttpResponse.json(anItem({ status: 'closed', final_price: 13_000, winner_id: 'user-bob-000042' }))));
    renderApp('/items/lot');
    const stream = await FakeEventSource.opened();
    expect(screen.getByText('Connecting…')).toBeInTheDocument();
    expect(stream.url).toBe('/events/lot');
    stream.open();
    expect(screen.getByText('Loading…')).toBeInTheDocument();

    stream.emit('snapshot', 1, anItem());
    expect(screen.getByRole('heading', { level: 1, name: 'Lamp' })).toBeInTheDocument();
    expect(screen.getByText('A brass desk lamp')).toBeInTheDocument();
    expect(text('current-price')).toBe('$120.00');
    expect(text('minimum-next-bid')).toBe('$125.00');
    expect(text('bid-count')).toBe('1');
    expect(text('status')).toMatch(/^\d+ d \d+ h$/);
    const room = screen.getByRole('article');
    expect(within(room).getByRole('link', { name: 'Log in' })).toHaveAttribute('href', '/login');
    expect(room).toHaveTextContent('Log in to bid.');
    expect(screen.queryByRole('button', { name: 'Place bid' })).not.toBeInTheDocument();

    stream.emit('price', 2, price(2, 13_000));
    expect(text('current-price')).toBe('$130.00');
    expect(text('minimum-next-bid')).toBe('$135.00');
    stream.emit('price', 2, price(2, 99_900)); // a replay of what was seen: ignored
    expect(text('current-price')).toBe('$130.00');

    stream.emit('closed', 3, { item_id: 'lot', final_price: 13_000, has_winner: true, status: 'closed' });
    expect(text('status')).toBe('Closed');
    expect(await screen.findByText('Sold for $130.00 to bidder 000042.')).toBeInTheDocument();
    const table = await screen.findByRole('region', { name: 'Every bid' });
    const rows = within(table)
      .getAllByRole('row')
      .slice(1)
      .map((row) => within(row).getAllByRole('cell').map((cell) => cell.textContent));
    expect(rows).toEqual([
      ['1', 'bidder 000042', '$130.00', 'up to $200.00, step $5.00', 'Won at $130.00'],
      ['2', 'bidder 000777', '$125.00', '—', 'Lost at $125.00'],
      ['3', 'bidder 000999', '$120.00', '—', 'Lost at $120.00'],
    ]);
    expect(within(room).queryByRole('link', { name: 'Log in' })).not.toBeInTheDocument();
  });

  it('says when an auction closed without bids, or was cancelled', async () => {
    revealedBids([]);
    server.use(http.get('*/api/v1/items/lot', () => HttpResponse.json(anItem({ status: 'closed', current_price: null, final_price: null, winner_id: null }))));
    renderApp('/items/lot');
    const stream = await FakeEventSource.opened();
    stream.emit('snapshot', 0, anItem({ status: 'closed', current_price: null, bid_count: 0, final_price: null }));
    expect(text('current-price')).toBe('No bids yet');
    expect(screen.getByTestId('outcome')).toHaveTextContent('Closed without a winner.');
    expect(await screen.findByText('Nobody bid.')).toBeInTheDocument();

    stream.emit('snapshot', 0, anItem({ status: 'cancelled', current_price: null, bid_count: 0 }));
    expect(text('status')).toBe('Cancelled');
    expect(screen.queryByTestId('outcome')).not.toBeInTheDocument();
  });

  it('lets a bidder place one bid and tells them when a higher price passes it', async () => {
    server.use(...signedIn(ann));
    yourBid(() => null);
    let sent: unknown = null;
    server.use(
      http.post('*/api/v1/items/lot/bid', async ({ request }) => {
        sent = await request.json();
        return HttpResponse.json(
          { bid: aBid({ amount: 12_500, effective: 12_500, state: 'leading' }), item: anItem({ current_price: 12_500, bid_count: 2 }) },
          { status: 201 },
        );
      }),
    );
    renderApp('/items/lot');
    const stream = await FakeEventSource.opened();
    stream.emit('snapshot', 1, anItem());
    await userEvent.click(await screen.findByRole('button', { name: 'Place bid' }));

    expect(await screen.findByTestId('bid-state')).toHaveTextContent('Leading at $125.00');
    expect(sent).toEqual({ amount: 12_500 });
    expect(screen.getByRole('region', { name: 'Your bid' })).toHaveTextContent('$125.00');
    expect(screen.queryByRole('button', { name: 'Place bid' })).not.toBeInTheDocument();
    expect(screen.queryByRole('meter')).not.toBeInTheDocument();

    stream.emit('price', 2, price(2, 12_500)); // its own price: still leading
    expect(text('bid-state')).toBe('Leading at $125.00');
    stream.emit('price', 3, price(3, 13_000));
    expect(text('bid-state')).toBe('Outbid');
  });

  it('keeps a poisoned bid’s budget bar current from prices and notifications', async () => {
    server.use(...signedIn(ann));
    let closed = false;
    const poisoned = aBid({ amount: 12_500, poison: { budget: 20_000, step: 500 }, state: 'leading', effective: 12_000, remaining_budget: 8_000 });
    yourBid(() => (closed ? { ...poisoned, state: 'lost', effective: 20_000, remaining_budget: 0 } : poisoned));
    revealedBids([revealed(1, ann.id, { amount: 12_500, effective: 20_000 }), revealed(2, 'user-bob-000042', { state: 'won', effective: 20_500 })]);
    server.use(http.get('*/api/v1/items/lot', () => HttpResponse.json(anItem({ status: 'closed', final_price: 20_500, winner_id: 'user-bob-000042' }))));
    const socket = notificationSocket();
    renderApp('/items/lot');
    const stream = await FakeEventSource.opened();
    stream.emit('snapshot', 1, anItem({ current_price: 12_000 }));

    const yours = await screen.findByRole('region', { name: 'Your bid' });
    expect(yours).toHaveTextContent('$125.00 with poison up to $200.00 in steps of $5.00');
    expect(text('bid-state')).toBe('Leading at $120.00');
    expect(text('budget-left')).toBe('$75.00 of $75.00 poison left');

    stream.emit('price', 2, price(2, 15_000));
    expect(text('bid-state')).toBe('Leading at $150.00');
    expect(text('budget-left')).toBe('$50.00 of $75.00 poison left');
    expect(screen.getByRole('meter', { name: 'Poison budget left' })).toHaveAttribute('aria-valuenow', '5000');

    const send = await socket;
    send({ type: 'auto_raised', data: { item_id: 'lot', effective: 16_000, remaining_budget: 4_000 }, at: '' });
    expect(await screen.findByText('Your poison raised your bid to $160.00; $40.00 of budget left.')).toBeInTheDocument();
    expect(text('bid-state')).toBe('Leading at $160.00');
    expect(text('budget-left')).toBe('$40.00 of $75.00 poison left');

    send({ type: 'outbid', data: { item_id: 'another-lot', current_price: 50_000 }, at: '' });
    expect(await screen.findByText('You were outbid: the price is now $500.00.')).toBeInTheDocument();
    expect(text('bid-state')).toBe('Leading at $160.00');

    send({ type: 'exhausted', data: { item_id: 'lot', effective: 20_000, current_price: 20_500 }, at: '' });
    expect(await screen.findByText('Your poison is spent: the price $205.00 is above your budget.')).toBeInTheDocument();
    expect(text('bid-state')).toBe('Exhausted: your whole budget is spent');
    expect(text('budget-left')).toBe('$0.00 of $75.00 poison left');

    closed = true;
    stream.emit('closed', 3, { item_id: 'lot', final_price: 20_500, has_winner: true, status: 'closed' });
    send({ type: 'lost', data: { item_id: 'lot', final_price: 20_500 }, at: '' });
    expect(await screen.findByText('The auction closed at $205.00; another bid won.')).toBeInTheDocument();
    expect(await screen.findByText('Sold for $205.00 to bidder 000042.')).toBeInTheDocument();
    await waitFor(() => expect(text('bid-state')).toBe('Lost'));
    const table = await screen.findByRole('region', { name: 'Every bid' });
    expect(within(table).getAllByRole('row')[1]).toHaveTextContent('you');

    await userEvent.click(screen.getAllByRole('button', { name: 'Dismiss' })[0]!);
    expect(screen.queryByText('Your poison raised your bid to $160.00; $40.00 of budget left.')).not.toBeInTheDocument();
  });

  it('brings a bid read while prices moved up to the stream’s price', async () => {
    server.use(...signedIn(ann));
    let answer: () => void = () => {};
    const answered = new Promise<void>((resolve) => (answer = resolve));
    server.use(
      http.get('*/api/v1/items/lot/bid', async () => {
        await answered;
        return HttpResponse.json(aBid({ amount: 12_500, poison: { budget: 20_000, step: 500 }, effective: 12_000, remaining_budget: 8_000 }));
      }),
    );
    renderApp('/items/lot');
    const stream = await FakeEventSource.opened();
    stream.emit('snapshot', 1, anItem({ current_price: 12_000 }));
    stream.emit('price', 2, price(2, 16_000));
    answer();
    expect(await screen.findByTestId('bid-state')).toHaveTextContent('Leading at $160.00');
    expect(text('budget-left')).toBe('$40.00 of $75.00 poison left');
  });

  it('tells the winner they won', async () => {
    server.use(...signedIn(ann));
    yourBid(() => aBid({ state: 'won', effective: 12_500 }));
    revealedBids([revealed(1, ann.id, { state: 'won' })]);
    renderApp('/items/lot');
    const stream = await FakeEventSource.opened();
    stream.emit('snapshot', 2, anItem({ status: 'closed', current_price: 12_500, final_price: 12_500, winner_id: ann.id }));
    expect(await screen.findByText('You won.')).toBeInTheDocument();
    expect(screen.getByTestId('outcome')).toHaveTextContent('Sold for $125.00 to you.');
    expect(text('bid-state')).toBe('Won at $125.00');
  });

  it("shows every amount with the server's decimals, the live toasts too (huf: 2, where the browser says 0)", async () => {
    server.use(...signedIn(ann));
    const forint = { currency: 'huf', currency_decimals: 2 };
    yourBid(() => aBid({ amount: 12_500, poison: { budget: 20_000, step: 500 }, state: 'leading', effective: 12_345, remaining_budget: 7_655 }));
    const socket = notificationSocket();
    renderApp('/items/lot');
    const stream = await FakeEventSource.opened();
    stream.emit('snapshot', 1, anItem({ ...forint, current_price: 12_345, minimum_next_bid: 12_845 }));
    // Intl puts a no-break space between the code and the amount.
    expect(text('current-price')).toBe('HUF\u00a0123.45');
    expect(text('minimum-next-bid')).toBe('HUF\u00a0128.45');
    expect(await screen.findByRole('region', { name: 'Your bid' })).toHaveTextContent(
      'HUF 125.00 with poison up to HUF 200.00 in steps of HUF 5.00',
    );
    expect(text('budget-left')).toBe('HUF\u00a075.00 of HUF\u00a075.00 poison left');

    // The socket's message names no currency: the room's item says it.
    const send = await socket;
    send({ type: 'auto_raised', data: { item_id: 'lot', effective: 16_000, remaining_budget: 4_000 }, at: '' });
    expect(await screen.findByText('Your poison raised your bid to HUF 160.00; HUF 40.00 of budget left.')).toBeInTheDocument();
    expect(text('budget-left')).toBe('HUF\u00a040.00 of HUF\u00a075.00 poison left');
  });

  it('shows a failed read of your bid', async () => {
    server.use(...signedIn(ann), http.get('*/api/v1/items/lot/bid', () => problem(500, 'internal')));
    renderApp('/items/lot');
    const stream = await FakeEventSource.opened();
    stream.emit('snapshot', 1, anItem());
    expect(await screen.findByRole('alert')).toHaveTextContent('Problem: the server said internal');
    expect(screen.queryByRole('region', { name: 'Your bid' })).not.toBeInTheDocument();
  });
});

describe('soft close, the chart and the ledger', () => {
  // The vector of crates/domain/src/ledger/tests.rs.
  const ITEM = '01939a6e-7f00-7000-8000-000000000001';
  const H1 = '1e6dcaaf56544cf86a00e6c69157ad0a487a0f6173fe8f5733284e173110298a';
  const H2 = 'fbfd6b1bc35e2a482295c036288497eb7939a88e8a11648775ee1f27b035f22d';
  const LISTED = '2026-01-01T00:00:00Z'; // anItem's created_at
  const vector = (): RevealedBid[] => [
    revealed(1, '01939a6e-7f00-7000-8000-0000000000b1', {
      amount: 12_500,
      poison: { budget: 20_000, step: 500 },
      state: 'won',
      effective: 13_500,
      created_at: '2026-12-05T10:00:00.123456Z',
      salt: '000102030405060708090a0b0c0d0e0f',
      hash: H1,
    }),
    revealed(2, '01939a6e-7f00-7000-8000-0000000000b2', {
      amount: 13_000,
      created_at: '2026-12-05T10:00:01.000000Z',
      hash: H2,
    }),
  ];
  const lot = (over: Partial<Item> = {}) => anItem({ id: ITEM, ...over });
  const closed = (over: Partial<Item> = {}) => lot({ status: 'closed', current_price: 13_500, bid_count: 2, ledger_head: H2, ...over });
  const seen = (heads: [number, string][]) =>
    localStorage.setItem(`pp:ledger:${ITEM}`, JSON.stringify({ listed: LISTED, heads: Object.fromEntries(heads), written: 1 }));

  function served(bids: RevealedBid[]) {
    server.use(
      http.get(`*/api/v1/items/${ITEM}/bids`, () => HttpResponse.json({ items: bids, next_cursor: null, has_more: false })),
      http.get(`*/api/v1/items/${ITEM}`, () => HttpResponse.json(closed({ final_price: 13_500, winner_id: bids[0]?.bidder_id }))),
    );
  }

  /** The room of the closed item, with `bids` revealed; the ledger check's text once it is done. */
  async function checked(bids: RevealedBid[], item: Item = closed()) {
    served(bids);
    renderApp(`/items/${ITEM}`);
    const stream = await FakeEventSource.opened();
    stream.emit('snapshot', 3, item);
    const check = await screen.findByTestId('ledger-check');
    await waitFor(() => expect(check).not.toHaveTextContent('Checking'));
    return check;
  }

  afterEach(() => localStorage.clear());

  /** A fresh page for the next case of one test. */
  function again() {
    cleanup();
    FakeEventSource.install();
  }

  it('shows the rule, follows an extension live and draws the prices', async () => {
    renderApp(`/items/${ITEM}`);
    const stream = await FakeEventSource.opened();
    stream.open();
    const rule = { window_secs: 300, extend_by_secs: 120, max_extensions: 3 };
    stream.emit('snapshot', 1, lot({ soft_close: rule, close_at: '2030-01-01T00:00:00Z', ledger_head: H1 }));
    expect(screen.getByTestId('soft-close-rule')).toHaveTextContent(
      'Soft close: a bid that changes the leader in the last 5 min moves the close to 2 min after it, up to 3 times (0 used).',
    );
    expect(screen.queryByTestId('extended')).not.toBeInTheDocument();
    expect(await screen.findByTestId('price-chart')).toHaveTextContent('One price so far: $120.00.');

    const moved = '2030-01-01T00:01:00Z';
    const at = new Date(Date.now() + 1000).toISOString();
    stream.emit('price', 2, { ...price(2, 13_000), at, item_id: ITEM, close_at: moved, extensions_used: 1, ledger_head: H2 });
    stream.emit('extended', 2, { item_id: ITEM, close_at: moved, extensions_used: 1 });
    expect(screen.getByTestId('extended')).toHaveTextContent('(1 of 3 extensions used)');
    expect(screen.getByTestId('status').querySelector('time')).toHaveAttribute('dateTime', moved);
    expect(screen.getByTestId('soft-close-rule')).toHaveTextContent('(1 used).');
    expect(screen.getByTestId('price-chart')).toHaveTextContent(/^Price while you watch2 prices, from \$120\.00 .* to \$130\.00/);
    // Every head seen is kept for the check after close.
    expect(JSON.parse(localStorage.getItem(`pp:ledger:${ITEM}`) ?? '{}')).toMatchObject({ listed: LISTED, heads: { 1: H1, 2: H2 } });
    // A replayed older close never moves it back; a replayed extension tells nothing new.
    stream.emit('price', 3, { ...price(3, 14_000), at, item_id: ITEM, close_at: '2030-01-01T00:00:00Z', extensions_used: 0, ledger_head: H2 });
    stream.emit('extended', 2, { item_id: ITEM, close_at: '2030-01-01T00:00:30Z', extensions_used: 1 });
    expect(screen.getByTestId('status').querySelector('time')).toHaveAttribute('dateTime', moved);
    // A stream reopened after a gap: its snapshot's price joins the chart.
    stream.emit('snapshot', 5, lot({ soft_close: rule, close_at: moved, extensions_used: 1, bid_count: 5, current_price: 16_000, ledger_head: H2 }));
    expect(screen.getByTestId('price-chart')).toHaveTextContent('4 prices');
    expect(screen.getByTestId('extended')).toBeInTheDocument();
  });

  it('verifies the revealed bids against every head this browser saw', async () => {
    seen([
      [1, H1],
      [2, H2],
    ]);
    const check = await checked(vector());
    expect(check).toHaveTextContent('Verified: these 2 bids hash to every head this browser saw while the auction ran, the last after bid 2');
    expect(check).toHaveClass('ledger-ok');
    // After close the chart replays the rule over every bid.
    expect(await screen.findByTestId('price-chart')).toHaveTextContent('Price over the auction2 prices, from $125.00');
  });

  it('only calls the data consistent when this browser saw no head', async () => {
    const check = await checked(vector());
    expect(check).toHaveTextContent("Consistent: these 2 bids hash to the item's head");
    expect(check).toHaveTextContent("so this shows only that the server's data agree with themselves");
    expect(check).not.toHaveClass('ledger-ok');
  });

  it('says where the chain breaks: a changed bid, a fork, bids held back, a bid not chained', async () => {
    const [first, second] = vector() as [RevealedBid, RevealedBid];
    seen([[2, H2]]);
    expect(await checked([first, { ...second, amount: 12_900 }])).toHaveTextContent(
      "Warning: The ledger breaks at bid #2: that bid's shown hash is not what its data hash to.",
    );
    again();
    // The server shows another head after bid 2 than this browser saw.
    seen([[2, H1]]);
    expect(await checked(vector())).toHaveTextContent('The ledger breaks at bid #3: the chain does not reach a head this browser saw');
    again();
    // Only the first bid shown, though the item has two.
    seen([[1, H1]]);
    expect(await checked([first])).toHaveTextContent("The ledger breaks at bid #2: the bids shown do not reach the item's head");
    again();
    expect(await checked([first, { ...second, hash: null }])).toHaveTextContent('bid #2: that bid is not chained yet');
    again();
    localStorage.clear();
    expect(await checked(vector(), closed({ ledger_head: null }))).toHaveTextContent('This item has no ledger head yet');
  });
});
