// "Sign in with …" buttons, one per OpenID provider the server has
// configured; nothing at all when it has none. Each is a plain link: the
// sign-in is a top-level navigation to the provider and back.
import * as endpoints from '../api/endpoints';
import { useProviders } from '../auth/useProviders';

export function ProviderButtons({ verb }: { verb: string }) {
  const providers = useProviders();
  if (!providers.data?.length) return null;
  return (
    <div className="providers" role="group" aria-label="Use an account you already have">
      <p className="hint">Or use an account you already have:</p>
      {providers.data.map((provider) => (
        <a key={provider.name} className="button secondary" href={endpoints.oidcStartUrl(provider.name)}>
          {verb} with {provider.label}
        </a>
      ))}
    </div>
  );
}
