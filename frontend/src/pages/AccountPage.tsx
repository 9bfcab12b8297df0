// Your account: the address and role the server knows you by, your display
// name, and the way to change your password.
import { zodResolver } from '@hookform/resolvers/zod';
import { useState } from 'react';
import { useForm } from 'react-hook-form';
import { Link } from 'react-router-dom';

import * as endpoints from '../api/endpoints';
import type { User } from '../api/types';
import { useAuth } from '../auth/useAuth';
import { Field } from '../components/Field';
import { ProblemAlert } from '../components/ProblemAlert';
import { placeFieldErrors } from '../forms';
import { displayNameSchema, type DisplayNameForm } from '../schemas';

function DisplayName({ user }: { user: User }) {
  const { updateUser } = useAuth();
  const [saved, setSaved] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);
  const { register, handleSubmit, setError, reset, formState } = useForm<DisplayNameForm>({
    resolver: zodResolver(displayNameSchema),
    defaultValues: { display_name: user.display_name },
  });
  const submit = handleSubmit(async (form) => {
    setSaved(false);
    setFailure(null);
    try {
      const changed = await endpoints.updateMe({ display_name: form.display_name });
      updateUser(changed);
      // The server's spelling (trimmed) is the one kept.
      reset({ display_name: changed.display_name });
      setSaved(true);
    } catch (error) {
      if (!placeFieldErrors(error, setError, { display_name: 'display_name' })) setFailure(error);
    }
  });
  return (
    <form onSubmit={(event) => void submit(event)} noValidate>
      <Field
        label="Display name"
        autoComplete="nickname"
        hint="Shown in the header; up to 100 characters."
        registration={register('display_name')}
        error={formState.errors.display_name?.message}
      />
      <ProblemAlert error={failure} />
      {saved && <p role="status">Your display name is saved.</p>}
      <button type="submit" disabled={formState.isSubmitting}>
        Save name
      </button>
    </form>
  );
}

export function AccountPage() {
  const { user } = useAuth();
  // Behind RequireLogin, and the frame waits while the session is restored.
  if (!user) return null;
  return (
    <section aria-labelledby="account-title" className="narrow">
      <h1 id="account-title">Your account</h1>
      <dl className="facts account">
        <div>
          <dt>E-mail</dt>
          <dd>{user.email}</dd>
        </div>
        <div>
          <dt>Role</dt>
          <dd>{user.role === 'admin' ? 'Admin' : 'User'}</dd>
        </div>
      </dl>
      <DisplayName user={user} />
      <h2>Password</h2>
      <p>
        <Link to="/account/password">Change your password</Link>
      </p>
    </section>
  );
}
