// A failed request, shown by its problem title and detail.
import { ApiError, problemOf } from '../api/client';

export function ProblemAlert({ error }: { error: unknown }) {
  if (!error) return null;
  const problem = error instanceof ApiError ? error.problem : problemOf(error);
  return (
    <div className="alert" role="alert">
      <strong>{problem.title}</strong>
      {problem.detail && <span>: {problem.detail}</span>}
    </div>
  );
}
