// Your account: the address and role the server knows you by, your display
// name, whether you are e-mailed notices, the way to change your password,
// two-step login, the identities you sign in with, and logging out of
// every browser at once.
import { zodResolver } from '@hookform/resolvers/zod';
import { useMutation } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { useForm } from 'react-hook-form';
import { Link, useNavigate } from 'react-router-dom';

import * as endpoints from '../api/endpoints';
import type { User } from '../api/types';
import { useAuth } from '../auth/useAuth';
import { ConfirmButton } from '../components/ConfirmButton';
import { Field } from '../components/Field';
import { ProblemAlert } from '../components/ProblemAlert';
import { placeFieldErrors } from '../forms';
import { displayNameSchema, type DisplayNameForm } from '../schemas';
import { SignInMethods, TwoStepLogin } from './AccountSecurity';

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
      const sent = { display_name: form.display_name };
      const changed = await endpoints.updateMe(sent);
      updateUser(sent, changed);
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
        // A change after saving is not saved: the word goes.
        registration={register('display_name', { onChange: () => setSaved(false) })}
        error={formState.errors.display_name?.message}
      />
      <ProblemAlert error={failure} />
      {/* Always there, so a screen reader hears its text change. */}
      <p role="status" className="status">
        {saved ? 'Your display name is saved.' : ''}
      </p>
      <button type="submit" disabled={formState.isSubmitting}>
        Save name
      </button>
    </form>
  );
}

/** The e-mail notices switch: saved as soon as it is flipped. */
function EmailNotices({ user }: { user: User }) {
  const { updateUser } = useAuth();
  const id = useId();
  const save = useMutation({
    mutationFn: (notify_email: boolean) => endpoints.updateMe({ notify_email }),
    onSuccess: (answer, notify_email) => updateUser({ notify_email }, answer),
  });
  // While saving, the switch shows where it is going; a failure puts it
  // back where the server has it.
  const on = save.isPending ? save.variables : user.notify_email;
  return (
    <>
      <h2>E-mail notices</h2>
      <div className="field checkbox">
        <input
          id={id}
          type="checkbox"
          role="switch"
          checked={on}
          aria-describedby={`${id}-hint`}
          // Not disabled while saving, which would take the focus away: a
          // flip meanwhile is ignored, the switch showing the one in flight.
          onChange={(event) => {
            if (!save.isPending) save.mutate(event.target.checked);
          }}
        />
        <label htmlFor={id}>E-mail me when I am outbid, my poisoned bid runs out, or I win</label>
      </div>
      <p id={`${id}-hint`} className="hint">
        Either way, every notice shows in the Notifications menu.
      </p>
      <ProblemAlert error={save.error} />
      {/* Always there, its text changing; what this switch saved, as the server answered it. */}
      <p role="status" className="status">
        {save.isSuccess ? (save.data.notify_email ? 'You will be e-mailed notices.' : 'You will not be e-mailed notices.') : ''}
      </p>
    </>
  );
}

/** Ends every session of the account: a lost phone, a shared computer. */
function LogOutEverywhere() {
  const { logout } = useAuth();
  const navigate = useNavigate();
  const [pending, setPending] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);
  // Not a mutation: logging out clears the mutation cache, and with it a
  // mutation's own callbacks, before the login page could be opened.
  const end = async () => {
    setPending(true);
    setFailure(null);
    try {
      await logout({ everywhere: true });
      void navigate('/login');
    } catch (error) {
      setFailure(error);
      setPending(false);
    }
  };
  return (
    <section aria-labelledby="everywhere-title">
      <h2 id="everywhere-title">Sessions</h2>
      <p>Logging out everywhere ends every session of your account, in every browser and on every device, this one too.</p>
      <ConfirmButton
        label="Log out everywhere"
        confirm="Yes, log out everywhere"
        keep="Keep my sessions"
        danger
        disabled={pending}
        onConfirm={() => void end()}
      />
      <ProblemAlert error={failure} />
    </section>
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
      <EmailNotices user={user} />
      <h2>Password</h2>
      <p>
        <Link to="/account/password">Change your password</Link>
      </p>
      <TwoStepLogin />
      <SignInMethods />
      <LogOutEverywhere />
    </section>
  );
}
