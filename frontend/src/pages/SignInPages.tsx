// The second step of a login (a code from the authenticator app, or a
// recovery code) and the page a sign-in with an OpenID provider returns to.
import { useEffect, useState, type FormEvent } from 'react';
import { Link, useLocation, useNavigate, useSearchParams } from 'react-router-dom';

import { accessToken, ApiError } from '../api/client';
import type { Challenge } from '../auth/challenge';
import { useAuth } from '../auth/useAuth';
import { useProviders } from '../auth/useProviders';
import { Field } from '../components/Field';
import { ProblemAlert } from '../components/ProblemAlert';

/**
 * Asks for the code (or a recovery code) that completes a login. A wrong
 * code may be tried again on the same challenge; an expired challenge
 * sends the user back to the password (`onExpired`).
 */
export function SecondFactorStep({
  challenge,
  intro,
  onDone,
  onExpired,
}: {
  challenge: Challenge;
  /** What was proven so far, in words. */
  intro: string;
  onDone: () => void;
  onExpired: () => void;
}) {
  const { completeLogin } = useAuth();
  const [recovery, setRecovery] = useState(false);
  const [value, setValue] = useState('');
  const [fieldError, setFieldError] = useState<string | undefined>();
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setFailure(null);
    setFieldError(undefined);
    const typed = value.trim();
    if (!typed) {
      setFieldError(recovery ? 'Enter one of your recovery codes' : 'Enter the six digits your app shows');
      return;
    }
    setBusy(true);
    try {
      await completeLogin(recovery ? { challenge: challenge.challenge, recovery_code: typed } : { challenge: challenge.challenge, code: typed });
      onDone();
    } catch (error) {
      if (accessToken.get() !== null) {
        // The tokens arrived and the challenge is spent; only reading the
        // account failed. The session is there: go on.
        onDone();
      } else if (error instanceof ApiError && error.code === 'invalid_code') {
        setFieldError(recovery ? 'That recovery code is wrong or was used already' : 'That code is wrong or was used already; wait for the next one');
      } else if (error instanceof ApiError && error.code === 'invalid_challenge') {
        onExpired();
      } else {
        setFailure(error);
      }
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(event) => void submit(event)} noValidate>
      <p>
        {intro} To finish logging in, {recovery ? 'enter one of your recovery codes.' : 'enter the code your authenticator app shows.'}
      </p>
      {/* Focused: the form that was submitted is gone. */}
      {recovery ? (
        <Field key="recovery" label="Recovery code" autoComplete="off" autoFocus value={value} onChange={(event) => setValue(event.target.value)} error={fieldError} />
      ) : (
        <Field key="code" label="Code" inputMode="numeric" autoComplete="one-time-code" autoFocus value={value} onChange={(event) => setValue(event.target.value)} error={fieldError} />
      )}
      <ProblemAlert error={failure} />
      <button type="submit" disabled={busy}>
        Continue
      </button>
      <button
        type="button"
        className="secondary"
        onClick={() => {
          setRecovery(!recovery);
          setValue('');
          setFieldError(undefined);
        }}
      >
        {recovery ? 'Use a code from the app' : 'Use a recovery code instead'}
      </button>
    </form>
  );
}

/** What each refusal of a provider sign-in means, in words. */
const REFUSALS: Record<string, string> = {
  invalid_state: 'The sign-in took too long, or was started in another browser. Please try again.',
  invalid_token: "The provider's answer could not be verified. Please try again.",
  provider_error: 'The provider refused or cancelled the sign-in.',
  provider_unavailable: 'The provider cannot be reached right now. Please try again later.',
  email_not_verified: 'The provider has not verified your e-mail address, so no account was made. Verify it there, or register with a password.',
  account_exists: 'An account with this e-mail address exists already. Log in with your password, then link the provider on your account page.',
  identity_in_use: 'That identity is linked to another account.',
  provider_already_linked: 'Your account already has an identity of this provider linked. Unlink it first to link another.',
  account_disabled: 'This account has been deactivated.',
  invalid_ticket: 'The request to link expired. Start again from your account page.',
};

/**
 * Where a sign-in or link through an OpenID provider lands: `?error=CODE`
 * in words, `?linked=NAME`, `#mfa=CHALLENGE` (the account's second factor
 * completes the sign-in), or (signed in: the refresh cookie is set) on to
 * the auctions once the session is picked up.
 */
export function AuthCompletePage() {
  const [params] = useSearchParams();
  const { pathname, search, hash } = useLocation();
  const { status } = useAuth();
  const navigate = useNavigate();
  const providers = useProviders();
  const [expired, setExpired] = useState(false);
  // Read once, then taken out of the address (and the history).
  const [challenge] = useState(() => new URLSearchParams(hash.replace(/^#/, '')).get('mfa'));
  const error = params.get('error');
  const linked = params.get('linked');
  useEffect(() => {
    if (hash) void navigate(`${pathname}${search}`, { replace: true });
  }, [hash, pathname, search, navigate]);
  const signingIn = !error && !linked;
  useEffect(() => {
    if (signingIn && status === 'authenticated') void navigate('/', { replace: true });
  }, [signingIn, status, navigate]);
  if (signingIn && challenge && status !== 'authenticated') {
    return (
      <section aria-labelledby="complete-title" className="narrow">
        <h1 id="complete-title">Signing in</h1>
        {expired ? (
          <p role="alert">
            That took too long. <Link to="/login">Sign in again</Link>
          </p>
        ) : (
          <SecondFactorStep
            challenge={{ challenge }}
            intro="The provider knows you."
            onDone={() => void navigate('/', { replace: true })}
            onExpired={() => setExpired(true)}
          />
        )}
      </section>
    );
  }
  let body;
  if (error) {
    body = (
      <>
        <p role="alert">{Object.hasOwn(REFUSALS, error) ? REFUSALS[error] : 'Something went wrong on our side. Please try again.'}</p>
        <p>
          <Link to="/login">Back to log in</Link>
        </p>
      </>
    );
  } else if (linked) {
    const provider = providers.data?.find((p) => p.name === linked);
    body = (
      <p role="status">
        {provider ? `You can now sign in with ${provider.label}.` : 'The identity is linked.'} <Link to="/account">Back to your account</Link>
      </p>
    );
  } else if (status === 'anonymous') {
    body = (
      <p role="alert">
        The sign-in did not finish. <Link to="/login">Try again</Link>
      </p>
    );
  } else {
    body = <p role="status">Signing you in…</p>;
  }
  return (
    <section aria-labelledby="complete-title" className="narrow">
      <h1 id="complete-title">{error ? 'Sign-in failed' : linked ? 'Identity linked' : 'Signing in'}</h1>
      {body}
    </section>
  );
}
