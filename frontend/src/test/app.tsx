// Shared by the page tests: the API's shapes as the server sends them, its
// problem answers, a session, the whole app rendered at a path, and an
// EventSource (jsdom has none) the test drives event by event.
import { QueryClient } from '@tanstack/react-query';
import { act, cleanup, render, waitFor } from '@testing-library/react';
import { http, HttpResponse, type RequestHandler, type WebSocketHandler } from 'msw';
import { setupServer } from 'msw/node';
import { MemoryRouter } from 'react-router-dom';

import { App } from '../App';
import { accessToken } from '../api/client';
import type { Item, OwnBid, User } from '../api/types';

export const ann: User = {
  id: 'user-ann-0001',
  email: 'ann@example.com',
  display_name: 'Ann',
  role: 'user',
  email_verified: true,
  notify_email: true,
  is_active: true,
  created_at: '2026-01-01T00:00:00Z',
};

export const admin: User = { ...ann, id: 'user-admin-01', email: 'root@example.com', display_name: 'Root', role: 'admin' };

export function anItem(over: Partial<Item> = {}): Item {
  return {
    id: 'lot',
    title: 'Lamp',
    description: 'A brass desk lamp',
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
    ...over,
  };
}

export function aBid(over: Partial<OwnBid> = {}): OwnBid {
  return {
    id: 'bid-1',
    item_id: 'lot',
    currency: 'usd',
    currency_decimals: 2,
    amount: 12_500,
    poison: null,
    state: 'leading',
    effective: 12_000,
    remaining_budget: 0,
    created_at: '2026-01-02T00:00:00Z',
    ...over,
  };
}

/** A problem+json answer as the server sends it. */
export function problem(status: number, error_code: string, extra: Record<string, unknown> = {}) {
  return HttpResponse.json(
    { type: `/problems/${error_code}`, title: 'Problem', status, detail: `the server said ${error_code}`, error_code, ...extra },
    { status, headers: { 'content-type': 'application/problem+json' } },
  );
}

export function tokens(access: string) {
  return HttpResponse.json({ access_token: access, token_type: 'bearer', expires_in: 900, refresh_token: 'r', refresh_expires_in: 1 });
}

/** The server configures no OpenID providers unless a test says so. */
const noProviders = http.get('*/api/v1/auth/oidc/providers', () => HttpResponse.json([]));

/** No refresh cookie: the app starts logged out. */
export const anonymous = [http.post('*/api/v1/auth/refresh', () => problem(401, 'invalid_token')), noProviders];

/** A refresh cookie of `user`: the app starts logged in as them. */
export function signedIn(user: User) {
  return [
    http.post('*/api/v1/auth/refresh', () => tokens(`token-of-${user.id}`)),
    http.get('*/api/v1/users/me', () => HttpResponse.json(user)),
    // The notification socket asks for a ticket; no socket answers by default.
    http.post('*/api/v1/ws-ticket', () => problem(503, 'service_unavailable')),
    // The header's notifications menu reads them; none by default.
    http.get('*/api/v1/me/notifications', () => HttpResponse.json({ items: [], next_cursor: null, has_more: false, unread: 0 })),
    // The account page's ways to sign in: the password alone by default.
    noProviders,
    http.get('*/api/v1/users/me/identities', () => HttpResponse.json([])),
    http.get('*/api/v1/auth/mfa/totp', () => HttpResponse.json({ enabled: false, recovery_codes_left: 0 })),
  ];
}

/**
 * An msw server for one test file, with `handlers` as its defaults. After
 * each test the app is unmounted first, so nothing it still had in flight
 * (a reconnect, a refetch) meets the next test's handlers or globals.
 */
export function mockApi(...handlers: (RequestHandler | WebSocketHandler)[]) {
  const server = setupServer(...handlers);
  beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
  afterEach(() => {
    cleanup();
    server.resetHandlers();
    accessToken.set(null);
    vi.unstubAllGlobals();
  });
  afterAll(() => server.close());
  return server;
}

/** The whole app (routes, providers, layout) at `path`, and its query cache. */
export function renderApp(path: string) {
  const queryClient = new QueryClient({
    defaultOptions: { queries: { retry: false, refetchOnWindowFocus: false } },
  });
  const rendered = render(
    <MemoryRouter initialEntries={[path]}>
      <App queryClient={queryClient} />
    </MemoryRouter>,
  );
  return { ...rendered, queryClient };
}

type MessageListener = (message: MessageEvent<string>) => void;

/** Stands in for EventSource: `FakeEventSource.latest()` is the open stream. */
export class FakeEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static instances: FakeEventSource[] = [];

  readyState = FakeEventSource.CONNECTING;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  private readonly listeners = new Map<string, MessageListener[]>();

  constructor(readonly url: string) {
    FakeEventSource.instances.push(this);
  }

  static install() {
    FakeEventSource.instances = [];
    vi.stubGlobal('EventSource', FakeEventSource);
  }

  static latest(): FakeEventSource {
    const source = FakeEventSource.instances.at(-1);
    if (!source) throw new Error('no EventSource was opened');
    return source;
  }

  /** The stream the app opens: its effect may run a little after the render. */
  static opened(): Promise<FakeEventSource> {
    return waitFor(() => FakeEventSource.latest());
  }

  addEventListener(type: string, listener: MessageListener) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close() {
    this.readyState = FakeEventSource.CLOSED;
  }

  /** The server accepted the stream. */
  open() {
    act(() => {
      this.readyState = FakeEventSource.OPEN;
      this.onopen?.();
    });
  }

  /** The server sent event `type` with `id` and `data` (as JSON). */
  emit(type: string, id: number, data: unknown) {
    const message = new MessageEvent<string>(type, { data: JSON.stringify(data), lastEventId: String(id) });
    act(() => this.listeners.get(type)?.forEach((listener) => listener(message)));
  }

  /** The stream broke; `closed` when the browser gave up reconnecting. */
  fail(closed: boolean) {
    act(() => {
      this.readyState = closed ? FakeEventSource.CLOSED : FakeEventSource.CONNECTING;
      this.onerror?.();
    });
  }
}
