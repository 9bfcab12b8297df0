// Who is logged in. The access token lives in memory (api/client.ts); on a
// reload the session is restored through the refresh cookie.
import { useQueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';

import { onLoggedOut, restoreSession } from '../api/client';
import * as endpoints from '../api/endpoints';
import type { CompleteLogin, UpdateMe, User } from '../api/types';
import { AuthContext, type Auth } from './useAuth';

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [status, setStatus] = useState<Auth['status']>('loading');
  const [farewell, setFarewell] = useState<string | null>(null);
  const queryClient = useQueryClient();

  // Logged out (by the button, or the session ended): nothing read for the
  // last user stays in memory on a shared computer. Run after the render
  // that unmounted what showed it (the menu, the pages behind the login), so
  // those queries are inactive and go; the active ones left are what a
  // public page shows anyone, and stay with it.
  const wasIn = useRef(false);
  useEffect(() => {
    if (status === 'authenticated') wasIn.current = true;
    if (status !== 'anonymous' || !wasIn.current) return;
    wasIn.current = false;
    queryClient.removeQueries({ type: 'inactive' });
    queryClient.getMutationCache().clear();
  }, [status, queryClient]);

  const refreshUser = useCallback(async () => {
    const current = await endpoints.me();
    setUser(current);
    setStatus('authenticated');
  }, []);

  useEffect(() => {
    let active = true;
    restoreSession()
      .then(async (restored) => {
        if (!active) return;
        if (restored) await refreshUser();
        else setStatus('anonymous');
      })
      .catch(() => active && setStatus('anonymous'));
    const stop = onLoggedOut(() => {
      setUser(null);
      setStatus('anonymous');
    });
    return () => {
      active = false;
      stop();
    };
  }, [refreshUser]);

  const login = useCallback(
    async (email: string, password: string) => {
      await endpoints.login({ email, password });
      setFarewell(null);
      await refreshUser();
    },
    [refreshUser],
  );

  const completeLogin = useCallback(
    async (body: CompleteLogin) => {
      await endpoints.completeLogin(body);
      setFarewell(null);
      await refreshUser();
    },
    [refreshUser],
  );

  const logout = useCallback(async (options?: { everywhere?: boolean }) => {
    // Ending every session must not fail quietly: when the server did not
    // confirm it, this one stays, so the page can say so.
    if (options?.everywhere) {
      await endpoints.logoutEverywhere();
      setFarewell('You are logged out everywhere: every session of your account has ended.');
    }
    try {
      if (!options?.everywhere) await endpoints.logout();
    } finally {
      setUser(null);
      setStatus('anonymous');
    }
  }, []);

  // The answer to a change is the account as it now is: no need to ask
  // again. Only the fields the change sent are taken from it: answers to
  // two changes may land out of order (a slow name save after a flip of
  // notify_email), and the late one would put back the earlier state of
  // the other field. One that lands after a logout (or another login) is
  // dropped.
  const updateUser = useCallback(
    (sent: UpdateMe, answer: User) =>
      setUser((current) => {
        if (current?.id !== answer.id) return current;
        const next: User = { ...current };
        for (const field of Object.keys(sent) as (keyof UpdateMe)[]) Object.assign(next, { [field]: answer[field] });
        return next;
      }),
    [],
  );

  const value = useMemo(
    () => ({ status, user, farewell, login, completeLogin, logout, refreshUser, updateUser }),
    [status, user, farewell, login, completeLogin, logout, refreshUser, updateUser],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}
