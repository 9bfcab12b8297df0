// Putting a server's validation problem next to the fields it names.
import type { FieldValues, Path, UseFormSetError } from 'react-hook-form';

import { ApiError } from './api/client';

/**
 * Sets each field error of a 422 on the form (server field names mapped by
 * `fields`); returns whether any was placed, so the caller shows the rest.
 */
export function placeFieldErrors<T extends FieldValues>(
  error: unknown,
  setError: UseFormSetError<T>,
  fields: Record<string, Path<T>>,
): boolean {
  if (!(error instanceof ApiError) || !error.problem.errors) return false;
  let placed = false;
  for (const problem of error.problem.errors) {
    const field = fields[problem.field];
    if (field) {
      setError(field, { type: 'server', message: problem.message });
      placed = true;
    }
  }
  return placed;
}
