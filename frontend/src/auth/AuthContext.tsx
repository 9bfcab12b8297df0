// Who is logged in. The access token lives in memory (api/client.ts); on a
// reload the session is restored through the refresh cookie.
import { useCallback, useEffect, useMemo, useState, type ReactNode } from 'react';

import { onLoggedOut, restoreSession } from '../api/client';
import * as endpoints from '../api/endpoints';
import type { User } from '../api/types';
import { AuthContext, type Auth } from './useAuth';

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [status, setStatus] = useState<Auth['status']>('loading');

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
      await refreshUser();
    },
    [refreshUser],
  );

  const logout = useCallback(async () => {
    try {
      await endpoints.logout();
    } finally {
      setUser(null);
      setStatus('anonymous');
    }
  }, []);

  // The answer to a change is the account as it now is: no need to ask
  // again. One that lands after a logout (or another login) is dropped.
  const updateUser = useCallback(
    (changed: User) => setUser((current) => (current?.id === changed.id ? changed : current)),
    [],
  );

  const value = useMemo(
    () => ({ status, user, login, logout, refreshUser, updateUser }),
    [status, user, login, logout, refreshUser, updateUser],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}
