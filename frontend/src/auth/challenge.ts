// A login that answered `mfa_required`: the password was right, and the
// account's second factor completes it with this challenge.
import { ApiError } from '../api/client';

export interface Challenge {
  challenge: string;
}

/** The challenge of an `mfa_required` answer, if `error` is one. */
export function challengeOf(error: unknown): Challenge | null {
  if (error instanceof ApiError && error.code === 'mfa_required' && typeof error.problem.challenge === 'string') {
    return { challenge: error.problem.challenge };
  }
  return null;
}
