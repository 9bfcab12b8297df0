// The API client: one axios instance that carries the access token (kept in
// memory only; the refresh token lives in its HttpOnly cookie), refreshes it
// silently on a 401 with one refresh in flight at a time, and waits out a
// 429 before retrying. Every error becomes an ApiError holding the server's
// problem+json.
import axios, { AxiosError, type AxiosInstance, type InternalAxiosRequestConfig } from 'axios';

import type { TokenResponse } from './types';

export interface FieldProblem {
  field: string;
  message: string;
}

/** RFC 7807 problem details as the server sends them. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  error_code: string;
  request_id?: string;
  errors?: FieldProblem[];
  [extension: string]: unknown;
}

export class ApiError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail || problem.title);
    this.name = 'ApiError';
    this.problem = problem;
  }
  get status(): number {
    return this.problem.status;
  }
  get code(): string {
    return this.problem.error_code;
  }
}

/** The server's token response. */

type Listener = () => void;

/** The access token, in memory only: it never touches storage. */
class TokenStore {
  private token: string | null = null;
  private listeners = new Set<Listener>();

  get(): string | null {
    return this.token;
  }

  set(token: string | null): void {
    this.token = token;
    this.listeners.forEach((listener) => listener());
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export const accessToken = new TokenStore();

/** Told when a refresh failed: the session is over. */
const loggedOutListeners = new Set<Listener>();
export function onLoggedOut(listener: Listener): () => void {
  loggedOutListeners.add(listener);
  return () => loggedOutListeners.delete(listener);
}

/** Told when the server asked us to slow down, with the seconds to wait. */
const slowDownListeners = new Set<(seconds: number) => void>();
export function onSlowDown(listener: (seconds: number) => void): () => void {
  slowDownListeners.add(listener);
  return () => slowDownListeners.delete(listener);
}

interface RetryConfig extends InternalAxiosRequestConfig {
  _refreshed?: boolean;
  _throttled?: number;
}

const REFRESH_PATH = '/auth/refresh';
/** A 429 is retried this often at most before it is shown as an error. */
const MAX_THROTTLED_RETRIES = 2;

export function problemOf(error: unknown): Problem {
  if (error instanceof ApiError) return error.problem;
  if (error instanceof AxiosError && error.response) {
    const data = error.response.data as Partial<Problem> | undefined;
    if (data && typeof data === 'object' && typeof data.error_code === 'string') {
      return data as Problem;
    }
    return {
      type: 'about:blank',
      title: error.response.statusText || 'Request failed',
      status: error.response.status,
      detail: `the server answered ${error.response.status}`,
      error_code: 'unexpected',
    };
  }
  return {
    type: 'about:blank',
    title: 'Network error',
    status: 0,
    detail: 'the server could not be reached; check your connection and try again',
    error_code: 'network_error',
  };
}

export function retryAfterSeconds(error: AxiosError): number {
  // A header's value comes as a string; anything else is no delay we can read.
  const header: unknown = error.response?.headers?.['retry-after'];
  const seconds = typeof header === 'string' || typeof header === 'number' ? Number.parseInt(String(header), 10) : Number.NaN;
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 1;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `work` holding the cross-tab refresh lock where the browser has one.
 * A refresh token works once: two tabs refreshing with the same cookie at
 * the same moment would look like a replay, and the server would end the
 * whole session. Serialized, the second tab sends the cookie the first one
 * just received.
 */
function acrossTabs<T>(work: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  if (!locks) return work();
  // Bounded: a tab whose refresh hangs must not hold every other tab's
  // refresh (and session restore) hostage.
  return (
    locks.request(REFRESH_LOCK, { signal: AbortSignal.timeout(REFRESH_TIMEOUT_MS * 2) }, work) as Promise<T>
  ).catch((error: unknown) => {
    // Where locks are refused (a sandboxed frame), refresh without one.
    if (error instanceof DOMException && error.name === 'SecurityError') return work();
    throw error;
  });
}

/** The name of the cross-tab refresh lock. */
export const REFRESH_LOCK = 'poison-pill-refresh';

/** How long a refresh may take before it counts as failed (not logged out). */
const REFRESH_TIMEOUT_MS = 10_000;

/** Each client's single-flight refresh, for restoreSession. */
const refreshers = new WeakMap<AxiosInstance, () => Promise<string>>();

/** Builds the client; `baseURL` is the API root. */
export function createClient(baseURL = '/api/v1'): AxiosInstance {
  const client = axios.create({ baseURL, withCredentials: true });
  let refreshing: Promise<string> | null = null;

  /**
   * One refresh at a time: concurrent 401s (and a session restore) wait for
   * the same one. Only the server's 401 ends the session; a network error,
   * a 429 or a 503 leaves it for the next try.
   */
  const refresh = (): Promise<string> => {
    refreshing ??= acrossTabs(() =>
      client.post<TokenResponse>(REFRESH_PATH, undefined, {
        _refreshed: true,
        timeout: REFRESH_TIMEOUT_MS,
      } as RetryConfig),
    )
      .then((response) => {
        accessToken.set(response.data.access_token);
        return response.data.access_token;
      })
      .catch((error: unknown) => {
        if (error instanceof ApiError && error.status === 401) {
          accessToken.set(null);
          loggedOutListeners.forEach((listener) => listener());
        }
        throw error;
      })
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  };
  refreshers.set(client, refresh);

  client.interceptors.request.use((config) => {
    const token = accessToken.get();
    if (token && !config.headers.has('Authorization')) {
      config.headers.set('Authorization', `Bearer ${token}`);
    }
    return config;
  });

  client.interceptors.response.use(undefined, async (error: unknown) => {
    if (!(error instanceof AxiosError) || !error.config || !error.response) {
      throw new ApiError(problemOf(error));
    }
    const config = error.config as RetryConfig;
    const status = error.response.status;
    const isRefresh = config.url === REFRESH_PATH;
    if (status === 401 && !isRefresh && !config._refreshed && accessToken.get() !== null) {
      config._refreshed = true;
      // Another request refreshed meanwhile: just use its token.
      const current = accessToken.get();
      if (current && config.headers.get('Authorization') !== `Bearer ${current}`) {
        config.headers.set('Authorization', `Bearer ${current}`);
        return client.request(config);
      }
      const token = await refresh().catch(() => null);
      if (token) {
        config.headers.set('Authorization', `Bearer ${token}`);
        return client.request(config);
      }
    }
    if (status === 429 && (config._throttled ?? 0) < MAX_THROTTLED_RETRIES) {
      config._throttled = (config._throttled ?? 0) + 1;
      const seconds = retryAfterSeconds(error);
      slowDownListeners.forEach((listener) => listener(seconds));
      await sleep(seconds * 1000);
      return client.request(config);
    }
    throw new ApiError(problemOf(error));
  });

  return client;
}

export const api = createClient();

/** Restores the session from the refresh cookie; `false` when there is none. */
export async function restoreSession(client: AxiosInstance = api): Promise<boolean> {
  const refresh = refreshers.get(client);
  if (!refresh) return false;
  try {
    await refresh();
    return true;
  } catch {
    return false;
  }
}
