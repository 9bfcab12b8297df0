import { http, HttpResponse, delay } from 'msw';
import { setupServer } from 'msw/node';

import { ApiError, REFRESH_LOCK, accessToken, createClient, onLoggedOut, onSlowDown, restoreSession } from './client';

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => {
  server.resetHandlers();
  accessToken.set(null);
});
afterAll(() => server.close());

const problem = (status: number, error_code: string, detail = 'no') =>
  HttpResponse.json(
    { type: `/problems/${error_code}`, title: 'Problem', status, detail, error_code, request_id: 'r' },
    { status, headers: { 'content-type': 'application/problem+json' } },
  );

const tokens = (access: string) =>
  HttpResponse.json({ access_token: access, token_type: 'bearer', expires_in: 900, refresh_token: 'r', refresh_expires_in: 1 });

describe('the refresh interceptor', () => {
  it('refreshes once for concurrent 401s and replays every queued request', async () => {
    let refreshes = 0;
    server.use(
      http.post('*/api/v1/auth/refresh', async () => {
        refreshes += 1;
        await delay(50);
        return tokens('fresh');
      }),
      http.get('*/api/v1/things/:n', ({ request, params }) =>
        request.headers.get('authorization') === 'Bearer fresh'
          ? HttpResponse.json({ n: Number(params.n) })
          : problem(401, 'invalid_token'),
      ),
    );
    const client = createClient();
    accessToken.set('stale');
    const answers = await Promise.all([1, 2, 3, 4].map((n) => client.get<{ n: number }>(`/things/${n}`)));
    expect(answers.map((a) => a.data.n)).toEqual([1, 2, 3, 4]);
    expect(refreshes).toBe(1);
    expect(accessToken.get()).toBe('fresh');
  });

  it('logs out when the refresh fails, and surfaces the original problem', async () => {
    server.use(
      http.post('*/api/v1/auth/refresh', () => problem(401, 'token_reused')),
      http.get('*/api/v1/users/me', () => problem(401, 'invalid_token', 'the access token has expired')),
    );
    const client = createClient();
    accessToken.set('expired');
    const loggedOut = vi.fn();
    const stop = onLoggedOut(loggedOut);
    const failure = await client.get('/users/me').catch((e: unknown) => e);
    stop();
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).code).toBe('invalid_token');
    expect(loggedOut).toHaveBeenCalledTimes(1);
    expect(accessToken.get()).toBeNull();
  });

  it('keeps the session when the refresh fails for another reason than 401', async () => {
    server.use(
      http.post('*/api/v1/auth/refresh', () => problem(503, 'service_unavailable')),
      http.get('*/api/v1/users/me', () => problem(401, 'invalid_token')),
    );
    const client = createClient();
    accessToken.set('expired');
    const loggedOut = vi.fn();
    const stop = onLoggedOut(loggedOut);
    await client.get('/users/me').catch(() => {});
    stop();
    expect(loggedOut).not.toHaveBeenCalled();
    expect(accessToken.get()).toBe('expired');
  });

  it('restores the session through the same single refresh as a 401', async () => {
    let refreshes = 0;
    server.use(
      http.post('*/api/v1/auth/refresh', async () => {
        refreshes += 1;
        await delay(30);
        return tokens('once');
      }),
    );
    const client = createClient();
    // React's development mode runs effects twice: both restores share one refresh.
    expect(await Promise.all([restoreSession(client), restoreSession(client)])).toEqual([true, true]);
    expect(refreshes).toBe(1);
  });

  it('holds the cross-tab lock while it refreshes, bounded in time', async () => {
    const held: string[] = [];
    const request = vi.fn(
      async (name: string, options: { signal?: AbortSignal }, work: () => Promise<unknown>) => {
        expect(options.signal).toBeInstanceOf(AbortSignal);
        held.push(name);
        try {
          return await work();
        } finally {
          held.pop();
        }
      },
    );
    vi.stubGlobal('navigator', { ...navigator, locks: { request } });
    let heldDuringRefresh: string[] = [];
    server.use(
      http.post('*/api/v1/auth/refresh', () => {
        heldDuringRefresh = [...held];
        return tokens('locked');
      }),
    );
    try {
      expect(await restoreSession(createClient())).toBe(true);
    } finally {
      vi.unstubAllGlobals();
    }
    expect(request).toHaveBeenCalledTimes(1);
    expect(heldDuringRefresh).toEqual([REFRESH_LOCK]);
    expect(held).toEqual([]);
    expect(accessToken.get()).toBe('locked');
  });

  it('keeps the session when the lock cannot be had in time', async () => {
    const request = vi.fn(() => Promise.reject(new DOMException('timed out', 'TimeoutError')));
    vi.stubGlobal('navigator', { ...navigator, locks: { request } });
    const loggedOut = vi.fn();
    const stop = onLoggedOut(loggedOut);
    try {
      expect(await restoreSession(createClient())).toBe(false);
    } finally {
      stop();
      vi.unstubAllGlobals();
    }
    expect(loggedOut).not.toHaveBeenCalled();
  });

  it('does not refresh for anonymous requests', async () => {
    let refreshes = 0;
    server.use(
      http.post('*/api/v1/auth/refresh', () => {
        refreshes += 1;
        return tokens('x');
      }),
      http.post('*/api/v1/auth/login', () => problem(401, 'invalid_credentials', 'wrong email or password')),
    );
    const failure = await createClient().post('/auth/login', {}).catch((e: unknown) => e);
    expect((failure as ApiError).problem.detail).toBe('wrong email or password');
    expect(refreshes).toBe(0);
  });

  it('waits out a 429 for Retry-After, says so, then retries', async () => {
    let calls = 0;
    server.use(
      http.get('*/api/v1/items', () => {
        calls += 1;
        return calls === 1
          ? HttpResponse.json(
              { type: '/problems/rate_limited', title: 'Too Many Requests', status: 429, detail: 'slow', error_code: 'rate_limited' },
              { status: 429, headers: { 'retry-after': '1' } },
            )
          : HttpResponse.json({ items: [], next_cursor: null, has_more: false });
      }),
    );
    const told = vi.fn();
    const stop = onSlowDown(told);
    const started = Date.now();
    const answer = await createClient().get('/items');
    stop();
    expect(answer.status).toBe(200);
    expect(calls).toBe(2);
    expect(told).toHaveBeenCalledWith(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('restores a session from the cookie, or finds none', async () => {
    server.use(http.post('*/api/v1/auth/refresh', () => tokens('restored')));
    expect(await restoreSession(createClient())).toBe(true);
    expect(accessToken.get()).toBe('restored');
    server.use(http.post('*/api/v1/auth/refresh', () => problem(401, 'invalid_token')));
    expect(await restoreSession(createClient())).toBe(false);
    expect(accessToken.get()).toBeNull();
  });

  it('turns a network failure into a problem too', async () => {
    server.use(http.get('*/api/v1/items', () => HttpResponse.error()));
    const failure = await createClient().get('/items').catch((e: unknown) => e);
    expect((failure as ApiError).code).toBe('network_error');
  });
});
