// Who is logged in, as components ask for it; AuthProvider (AuthContext.tsx)
// provides it.
import { createContext, useContext } from 'react';

import type { User } from '../api/types';

export interface Auth {
  status: 'loading' | 'anonymous' | 'authenticated';
  user: User | null;
  login: (email: string, password: string) => Promise<void>;
  logout: () => Promise<void>;
  refreshUser: () => Promise<void>;
  /** Takes the account as the server answered a change to it (PATCH /users/me). */
  updateUser: (user: User) => void;
}

export const AuthContext = createContext<Auth | null>(null);

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error('useAuth outside AuthProvider');
  return auth;
}
