// The password rules the server checks, asked once per page load.
import { useQuery } from '@tanstack/react-query';
import { useMemo } from 'react';
import { z } from 'zod';

import * as endpoints from '../api/endpoints';
import type { PasswordPolicy } from '../api/types';
import { DEFAULT_PASSWORD_POLICY } from '../schemas';

/** What a policy answer must look like to be believed. */
const policySchema = z.object({
  password_min_length: z.number().int().positive(),
  password_max_length: z.number().int().positive(),
});

/**
 * The server's password policy; its usual one until it has answered, or if
 * the answer is not a policy (a proxy's error page, say).
 */
export function usePasswordPolicy(): PasswordPolicy {
  const { data } = useQuery({ queryKey: ['password-policy'], queryFn: endpoints.passwordPolicy, staleTime: Infinity });
  return useMemo(() => {
    const parsed = policySchema.safeParse(data);
    return parsed.success ? parsed.data : DEFAULT_PASSWORD_POLICY;
  }, [data]);
}

/** The hint under a new-password field. */
export function passwordHint(policy: PasswordPolicy): string {
  return `At least ${policy.password_min_length} characters. A few unrelated words make a strong one.`;
}
