// The OpenID providers the server has configured (GET /auth/oidc/providers),
// read once and shared by every page that offers or names them.
import { useQuery } from '@tanstack/react-query';

import * as endpoints from '../api/endpoints';

export function useProviders() {
  return useQuery({ queryKey: ['oidc-providers'], queryFn: endpoints.oidcProviders, staleTime: 5 * 60_000 });
}
