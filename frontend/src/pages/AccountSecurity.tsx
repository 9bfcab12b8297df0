// The account page's ways to sign in: identities linked from OpenID
// providers (link, unlink), and the second factor (turn on with a QR code
// and a first code, see the recovery codes once, turn off).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import qrcode from 'qrcode-generator';
import { useState, type FormEvent } from 'react';

import { ApiError } from '../api/client';
import * as endpoints from '../api/endpoints';
import type { TotpEnrolment } from '../api/types';
import { useProviders } from '../auth/useProviders';
import { Field } from '../components/Field';
import { ProblemAlert } from '../components/ProblemAlert';

/** Linked identities, and a link button per configured provider not linked yet. */
export function SignInMethods() {
  const queryClient = useQueryClient();
  const providers = useProviders();
  const linked = useQuery({ queryKey: ['identities'], queryFn: endpoints.identities });
  const unlink = useMutation({
    mutationFn: endpoints.unlinkIdentity,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['identities'] }),
  });
  const link = useMutation({
    // A ticket, then a top-level navigation to the provider: it comes back
    // to /auth/complete?linked=NAME.
    mutationFn: async (provider: string) => {
      const ticket = await endpoints.linkTicket();
      window.location.assign(endpoints.oidcStartUrl(provider, ticket.ticket));
      // Pending until the page unloads: the buttons stay off meanwhile.
      await new Promise<never>(() => {});
    },
  });
  const configured = providers.data ?? [];
  const identities = linked.data ?? [];
  if (!configured.length && !identities.length) return null;
  const label = (name: string) => configured.find((p) => p.name === name)?.label ?? name;
  const unlinked = configured.filter((p) => !identities.some((i) => i.provider === p.name));
  return (
    <>
      <h2>Sign-in providers</h2>
      {identities.length ? (
        <ul className="identities">
          {identities.map((identity) => (
            <li key={identity.provider}>
              <span>
                {label(identity.provider)}
                {identity.email ? ` (${identity.email})` : ''}, linked <time dateTime={identity.linked_at}>{new Date(identity.linked_at).toLocaleDateString()}</time>
              </span>{' '}
              <button type="button" className="secondary" disabled={unlink.isPending} onClick={() => unlink.mutate(identity.provider)}>
                Unlink {label(identity.provider)}
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p>No provider is linked: you sign in with your password.</p>
      )}
      {unlinked.map((provider) => (
        <button key={provider.name} type="button" className="secondary" disabled={link.isPending} onClick={() => link.mutate(provider.name)}>
          Link {provider.label}
        </button>
      ))}
      <ProblemAlert error={unlink.error ?? link.error} />
    </>
  );
}

/** The secret as a QR code an authenticator app can scan. */
function QrCode({ uri }: { uri: string }) {
  const qr = qrcode(0, 'M');
  qr.addData(uri);
  qr.make();
  return <img className="qr" src={qr.createDataURL(4, 4)} alt="QR code of the secret for your authenticator app" />;
}

/** Accounts made by a provider sign-in have no password to prove. */
const NO_PASSWORD = 'Your account has no password yet (you signed up with a provider). Set one with "Forgot your password?" on the login page first.';

type Step = { kind: 'idle' } | { kind: 'password' } | { kind: 'scan'; enrolment: TotpEnrolment };

/** Turning the second factor on: the password, the secret, a first code; `onEnabled` gets the recovery codes. */
function TurnOn({ onEnabled }: { onEnabled: (codes: string[]) => void }) {
  const [step, setStep] = useState<Step>({ kind: 'idle' });
  const [value, setValue] = useState('');
  const [fieldError, setFieldError] = useState<string | undefined>();
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async (event: FormEvent, work: () => Promise<void>) => {
    event.preventDefault();
    setFailure(null);
    setFieldError(undefined);
    setBusy(true);
    try {
      await work();
    } catch (error) {
      if (error instanceof ApiError && error.code === 'invalid_credentials') setFieldError('That is not your password');
      else if (error instanceof ApiError && error.code === 'password_not_set') setFieldError(NO_PASSWORD);
      else if (error instanceof ApiError && error.code === 'invalid_code') setFieldError('That code is wrong; enter the one the app shows now');
      else setFailure(error);
    } finally {
      setBusy(false);
    }
  };
  if (step.kind === 'idle') {
    return (
      <button type="button" onClick={() => setStep({ kind: 'password' })}>
        Turn on two-step login
      </button>
    );
  }
  if (step.kind === 'password') {
    return (
      <form
        onSubmit={(event) =>
          void run(event, async () => {
            const enrolment = await endpoints.beginTotp(value);
            setValue('');
            setStep({ kind: 'scan', enrolment });
          })
        }
        noValidate
      >
        <Field label="Your password" type="password" autoComplete="current-password" value={value} onChange={(event) => setValue(event.target.value)} error={fieldError} />
        <ProblemAlert error={failure} />
        <button type="submit" disabled={busy || !value}>
          Continue
        </button>
      </form>
    );
  }
  return (
    <form
      onSubmit={(event) =>
        void run(event, async () => {
          const { recovery_codes } = await endpoints.confirmTotp(value.replace(/\s/g, ''));
          setValue('');
          setStep({ kind: 'idle' });
          onEnabled(recovery_codes);
        })
      }
      noValidate
    >
      <p>Scan this with your authenticator app, or type the secret in:</p>
      <QrCode uri={step.enrolment.otpauth_uri} />
      <p>
        <code className="secret">{step.enrolment.secret}</code>
      </p>
      <Field label="The code the app shows" inputMode="numeric" autoComplete="one-time-code" value={value} onChange={(event) => setValue(event.target.value)} error={fieldError} />
      <ProblemAlert error={failure} />
      <button type="submit" disabled={busy || !value}>
        Turn on
      </button>
    </form>
  );
}

/** The recovery codes, shown once right after turning the factor on. */
function RecoveryCodes({ codes, onSaved }: { codes: string[]; onSaved: () => void }) {
  return (
    <div>
      <p role="status">Two-step login is on. Keep these recovery codes somewhere safe: each logs you in once without the app, and they are not shown again.</p>
      <ul className="recovery-codes">
        {codes.map((code) => (
          <li key={code}>
            <code>{code}</code>
          </li>
        ))}
      </ul>
      <button type="button" onClick={onSaved}>
        I have saved them
      </button>
    </div>
  );
}

/** Turning the second factor off, with the password. */
function TurnOff({ onChanged }: { onChanged: () => void }) {
  const [password, setPassword] = useState('');
  const off = useMutation({
    mutationFn: () => endpoints.disableTotp({ password }),
    onSuccess: () => {
      setPassword('');
      onChanged();
    },
  });
  const wrong = off.error instanceof ApiError && off.error.code === 'invalid_credentials';
  return (
    <form
      onSubmit={(event) => {
        event.preventDefault();
        off.mutate();
      }}
      noValidate
    >
      <Field label="Your password, to turn it off" type="password" autoComplete="current-password" value={password} onChange={(event) => setPassword(event.target.value)} error={wrong ? 'That is not your password' : undefined} />
      {!wrong && <ProblemAlert error={off.error} />}
      <button type="submit" className="secondary" disabled={off.isPending || !password}>
        Turn off two-step login
      </button>
    </form>
  );
}

/** Whether logins need a code, and the way to change that. */
export function TwoStepLogin() {
  const queryClient = useQueryClient();
  const status = useQuery({ queryKey: ['totp'], queryFn: endpoints.totpStatus });
  const [codes, setCodes] = useState<string[] | null>(null);
  const changed = () => void queryClient.invalidateQueries({ queryKey: ['totp'] });
  return (
    <>
      <h2>Two-step login</h2>
      {codes && <RecoveryCodes codes={codes} onSaved={() => setCodes(null)} />}
      {status.data?.enabled ? (
        <>
          <p>
            On: logging in with your password also asks for a code from your authenticator app. {status.data.recovery_codes_left} recovery codes left.
          </p>
          <TurnOff onChanged={changed} />
        </>
      ) : (
        <>
          <p>Off. With it on, a stolen password alone cannot log in to your account.</p>
          {status.data && (
            <TurnOn
              onEnabled={(shown) => {
                setCodes(shown);
                changed();
              }}
            />
          )}
        </>
      )}
      <ProblemAlert error={status.error} />
    </>
  );
}
