// The password rules the server checks, asked once per page load.
import { useQuery } from '@tanstack/react-query';

import * as endpoints from '../api/endpoints';
import type { PasswordPolicy } from '../api/types';
import { DEFAULT_PASSWORD_POLICY } from '../schemas';

/** The server's password policy; its usual one until it has answered. */
export function usePasswordPolicy(): PasswordPolicy {
  const { data } = useQuery({ queryKey: ['password-policy'], queryFn: endpoints.passwordPolicy, staleTime: Infinity });
  return data ?? DEFAULT_PASSWORD_POLICY;
}

/** The hint under a new-password field. */
export function passwordHint(policy: PasswordPolicy): string {
  return `At least ${policy.password_min_length} characters. A few unrelated words make a strong one.`;
}
