// Who is logged in, as components ask for it; AuthProvider (AuthContext.tsx)
// provides it.
import { createContext, useContext } from 'react';

import type { CompleteLogin, UpdateMe, User } from '../api/types';

export interface Auth {
  status: 'loading' | 'anonymous' | 'authenticated';
  user: User | null;
  /** Rejects with the ApiError `mfa_required` (its `challenge` in the problem) when a second factor completes the login. */
  login: (email: string, password: string) => Promise<void>;
  /** Completes a login that answered `mfa_required`. */
  completeLogin: (body: CompleteLogin) => Promise<void>;

  /** What the login page says after a logout it should explain, or `null`. */
  farewell: string | null;
  /** Ends this session, or with `everywhere` every session of the account. */
  logout: (options?: { everywhere?: boolean }) => Promise<void>;
  refreshUser: () => Promise<void>;
  /**
   * Takes from the server's answer to a change (PATCH /users/me) only the
   * fields that request `sent`: another change's answer may land later and
   * would otherwise put back what this one changed.
   */
  updateUser: (sent: UpdateMe, answer: User) => void;
}

export const AuthContext = createContext<Auth | null>(null);

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error('useAuth outside AuthProvider');
  return auth;
}
