// Register, verify e-mail, log in, forgot and reset password, change password.
import { zodResolver } from '@hookform/resolvers/zod';
import { useEffect, useMemo, useRef, useState } from 'react';
import { useForm } from 'react-hook-form';
import { Link, useLocation, useNavigate, useSearchParams } from 'react-router-dom';

import { ApiError } from '../api/client';
import * as endpoints from '../api/endpoints';
import { useAuth } from '../auth/useAuth';
import { passwordHint, usePasswordPolicy } from '../auth/passwordPolicy';
import { Field } from '../components/Field';
import { ProviderButtons } from '../components/ProviderButtons';
import { ProblemAlert } from '../components/ProblemAlert';
import { placeFieldErrors } from '../forms';
import { challengeOf, type Challenge } from '../auth/challenge';
import { SecondFactorStep } from './SignInPages';
import {
  changePasswordSchema,
  forgotSchema,
  loginSchema,
  registerSchema,
  resetSchema,
  type ChangePasswordForm,
  type ForgotForm,
  type LoginForm,
  type RegisterForm,
  type ResetForm,
} from '../schemas';


export function RegisterPage() {
  const [done, setDone] = useState<string | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const policy = usePasswordPolicy();
  const schema = useMemo(() => registerSchema(policy), [policy]);
  const { register, handleSubmit, setError, formState } = useForm<RegisterForm>({ resolver: zodResolver(schema) });
  const submit = handleSubmit(async (form) => {
    setFailure(null);
    try {
      await endpoints.register({ ...form, display_name: form.display_name || undefined });
      setDone(form.email);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'email_taken') {
        setError('email', { message: 'An account with this address exists; log in instead' });
      } else if (!placeFieldErrors(error, setError, { email: 'email', password: 'password', display_name: 'display_name' })) {
        setFailure(error);
      }
    }
  });
  if (done) {
    return (
      <section aria-labelledby="register-title">
        <h1 id="register-title">Check your inbox</h1>
        <p>We sent a link to {done}. Open it to verify your address, then log in.</p>
      </section>
    );
  }
  return (
    <section aria-labelledby="register-title" className="narrow">
      <h1 id="register-title">Create an account</h1>
      <form onSubmit={(event) => void submit(event)} noValidate>
        <Field label="E-mail" type="email" autoComplete="email" registration={register('email')} error={formState.errors.email?.message} />
        <Field label="Display name (optional)" autoComplete="nickname" registration={register('display_name')} error={formState.errors.display_name?.message} />
        <Field label="Password" type="password" autoComplete="new-password" hint={passwordHint(policy)} registration={register('password')} error={formState.errors.password?.message} />
        <ProblemAlert error={failure} />
        <button type="submit" disabled={formState.isSubmitting}>
          Register
        </button>
      </form>
      <ProviderButtons verb="Sign up" />
      <p>
        Already registered? <Link to="/login">Log in</Link>
      </p>
    </section>
  );
}

export function VerifyEmailPage() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const [state, setState] = useState<'working' | 'done' | 'failed'>('working');
  const [failure, setFailure] = useState<unknown>(null);
  const started = useRef(false);
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    endpoints
      .verifyEmail(token)
      .then(() => setState('done'))
      .catch((error: unknown) => {
        setFailure(error);
        setState('failed');
      });
  }, [token]);
  return (
    <section aria-labelledby="verify-title" className="narrow">
      <h1 id="verify-title">Verify your e-mail</h1>
      {state === 'working' && <p>Verifying…</p>}
      {state === 'done' && (
        <p role="status">
          Your address is verified. <Link to="/login">Log in</Link>
        </p>
      )}
      {state === 'failed' && (
        <>
          <ProblemAlert error={failure} />
          <p>The link may have expired or been used; log in to ask for a new one.</p>
        </>
      )}
    </section>
  );
}

/** Why you are on the login page, said first: focused, so it is read out. */
function Farewell({ text }: { text: string }) {
  const said = useRef<HTMLParagraphElement>(null);
  useEffect(() => said.current?.focus(), []);
  return (
    <p role="status" ref={said} tabIndex={-1}>
      {text}
    </p>
  );
}

export function LoginPage() {
  const { login } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [failure, setFailure] = useState<unknown>(null);
  const [unverified, setUnverified] = useState<string | null>(null);
  const [challenge, setChallenge] = useState<Challenge | null>(null);
  const [expired, setExpired] = useState(false);
  const { register, handleSubmit, formState } = useForm<LoginForm>({ resolver: zodResolver(loginSchema) });
  // Why you were logged out, when it was your own doing elsewhere.
  const { farewell } = useAuth();
  const goBack = () => {
    const back = (location.state as { from?: string } | null)?.from ?? '/';
    void navigate(back, { replace: true });
  };
  const submit = handleSubmit(async (form) => {
    setFailure(null);
    setUnverified(null);
    setExpired(false);
    try {
      await login(form.email, form.password);
      goBack();
    } catch (error) {
      const second = challengeOf(error);
      if (second) {
        setChallenge(second);
        return;
      }
      if (error instanceof ApiError && error.code === 'email_not_verified') setUnverified(form.email);
      setFailure(error);
    }
  });
  if (challenge) {
    return (
      <section aria-labelledby="login-title" className="narrow">
        <h1 id="login-title">Log in</h1>
        <SecondFactorStep
          challenge={challenge}
          intro="Your password is right."
          onDone={goBack}
          onExpired={() => {
            setChallenge(null);
            setExpired(true);
          }}
        />
      </section>
    );
  }
  return (
    <section aria-labelledby="login-title" className="narrow">
      <h1 id="login-title">Log in</h1>
      {farewell && <Farewell text={farewell} />}
      {expired && <p role="alert">That took too long; log in again.</p>}
      <form onSubmit={(event) => void submit(event)} noValidate>
        <Field label="E-mail" type="email" autoComplete="username" registration={register('email')} error={formState.errors.email?.message} />
        <Field label="Password" type="password" autoComplete="current-password" registration={register('password')} error={formState.errors.password?.message} />
        <ProblemAlert error={failure} />
        {unverified && (
          <button type="button" className="secondary" onClick={() => void endpoints.resendVerification(unverified)}>
            Send the verification link again
          </button>
        )}
        <button type="submit" disabled={formState.isSubmitting}>
          Log in
        </button>
      </form>
      <ProviderButtons verb="Sign in" />
      <p>
        <Link to="/forgot-password">Forgot your password?</Link> · <Link to="/register">Create an account</Link>
      </p>
    </section>
  );
}

export function ForgotPasswordPage() {
  const [sent, setSent] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);
  const { register, handleSubmit, formState } = useForm<ForgotForm>({ resolver: zodResolver(forgotSchema) });
  const submit = handleSubmit(async (form) => {
    setFailure(null);
    try {
      await endpoints.forgotPassword(form.email);
      setSent(true);
    } catch (error) {
      setFailure(error);
    }
  });
  return (
    <section aria-labelledby="forgot-title" className="narrow">
      <h1 id="forgot-title">Forgot your password?</h1>
      {sent ? (
        <p role="status">If that address has an account, a reset link is on its way. It works once, for an hour.</p>
      ) : (
        <form onSubmit={(event) => void submit(event)} noValidate>
          <Field label="E-mail" type="email" autoComplete="email" registration={register('email')} error={formState.errors.email?.message} />
          <ProblemAlert error={failure} />
          <button type="submit" disabled={formState.isSubmitting}>
            Send a reset link
          </button>
        </form>
      )}
    </section>
  );
}

export function ResetPasswordPage() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const [done, setDone] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);
  const policy = usePasswordPolicy();
  const schema = useMemo(() => resetSchema(policy), [policy]);
  const { register, handleSubmit, setError, formState } = useForm<ResetForm>({ resolver: zodResolver(schema) });
  const submit = handleSubmit(async (form) => {
    setFailure(null);
    try {
      await endpoints.resetPassword(token, form.new_password);
      setDone(true);
    } catch (error) {
      if (!placeFieldErrors(error, setError, { new_password: 'new_password' })) setFailure(error);
    }
  });
  return (
    <section aria-labelledby="reset-title" className="narrow">
      <h1 id="reset-title">Choose a new password</h1>
      {done ? (
        <p role="status">
          Your password is changed and every session ended. <Link to="/login">Log in</Link>
        </p>
      ) : (
        <form onSubmit={(event) => void submit(event)} noValidate>
          <Field label="New password" type="password" autoComplete="new-password" hint={passwordHint(policy)} registration={register('new_password')} error={formState.errors.new_password?.message} />
          <Field label="Repeat it" type="password" autoComplete="new-password" registration={register('confirm')} error={formState.errors.confirm?.message} />
          <ProblemAlert error={failure} />
          <button type="submit" disabled={formState.isSubmitting}>
            Set the password
          </button>
        </form>
      )}
    </section>
  );
}

export function ChangePasswordPage() {
  const [done, setDone] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);
  const policy = usePasswordPolicy();
  const schema = useMemo(() => changePasswordSchema(policy), [policy]);
  const { register, handleSubmit, setError, reset, formState } = useForm<ChangePasswordForm>({
    resolver: zodResolver(schema),
  });
  const submit = handleSubmit(async (form) => {
    setFailure(null);
    try {
      await endpoints.changePassword(form.current_password, form.new_password);
      reset();
      setDone(true);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'invalid_credentials') {
        setError('current_password', { message: 'That is not your current password' });
      } else if (!placeFieldErrors(error, setError, { new_password: 'new_password' })) {
        setFailure(error);
      }
    }
  });
  return (
    <section aria-labelledby="change-title" className="narrow">
      <h1 id="change-title">Change your password</h1>
      {done && <p role="status">Password changed; your other sessions were ended.</p>}
      <form onSubmit={(event) => void submit(event)} noValidate>
        <Field label="Current password" type="password" autoComplete="current-password" registration={register('current_password')} error={formState.errors.current_password?.message} />
        <Field label="New password" type="password" autoComplete="new-password" hint={passwordHint(policy)} registration={register('new_password')} error={formState.errors.new_password?.message} />
        <Field label="Repeat the new password" type="password" autoComplete="new-password" registration={register('confirm')} error={formState.errors.confirm?.message} />
        <ProblemAlert error={failure} />
        <button type="submit" disabled={formState.isSubmitting}>
          Change password
        </button>
      </form>
    </section>
  );
}
